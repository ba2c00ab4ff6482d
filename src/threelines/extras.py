"""The optional parts of the install: which packages each extra brings, and one message when one is missing.

The base install screens, writes every report and runs batches locally.
PostGIS layers, the Dask engine, the web service and GeoParquet footprints
need packages most users never use, so they come with
``pip install 'threelines[postgis]'``, ``'threelines[dask]'``,
``'threelines[serve]'``, ``'threelines[parquet]'`` (or ``'threelines[all]'``).
"""

from __future__ import annotations

import importlib

from threelines.errors import ThreelinesError

#: The modules each extra installs, in the order they are imported.
EXTRAS: dict[str, tuple[str, ...]] = {
    "postgis": ("psycopg",),
    "dask": ("dask", "distributed", "dask_geopandas"),
    "serve": ("fastapi", "uvicorn", "python_multipart"),
    "parquet": ("pyarrow",),
}


class ExtraMissing(ThreelinesError, ImportError):
    """A feature needs an extra that is not installed."""


def require(extra: str, feature: str) -> None:
    """Import the modules of ``extra``, or say which pip install adds them.

    Parameters
    ----------
    extra : str
        A key of :data:`EXTRAS`.
    feature : str
        What needs it, as the user asked for it (``batch --engine dask``).

    Raises
    ------
    ExtraMissing
        One line: the feature, the missing module and the command to run.
    """
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ExtraMissing(
                f"{feature} needs the {extra} extra ({module} is not installed): pip install 'threelines[{extra}]'"
            ) from None
