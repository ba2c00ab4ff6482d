"""Screening many projects: the local pool, Dask, the run index and the summaries."""
