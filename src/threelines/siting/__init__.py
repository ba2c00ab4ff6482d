"""Siting: where in a region a kind of project may go."""
