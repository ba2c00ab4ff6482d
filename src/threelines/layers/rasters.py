"""A raster layer's band, opened once while its file stays the same: its grid, and its cells when small enough.

A small band's grid is kept in the cache folder (see
:mod:`threelines.layers.grids`): a run that finds it there reads its cells
without importing rasterio, which it needs only to read the raster afresh
and to read a large raster by window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from threelines.layers.grids import Grid, Transform, grid_path, load_grid, store_grid
from threelines.layers.spec import LayerSpec

#: A raster band of at most this many cells is read whole once and kept in memory (8 bytes a cell as floats);
#: a larger one is read by window on every call.
WHOLE_RASTER_CELLS = 4_000_000


def io_error() -> type[Exception]:
    """The error rasterio raises for a file it cannot read."""
    from rasterio.errors import RasterioIOError

    return RasterioIOError


class Raster:
    """One band of a raster file: its grid, and its cells (as floats, nodata NaN) when it is small enough to keep.

    Read from the grid kept in ``folder`` when there is one; else from the
    file, keeping the grid there for the next run when it is small enough.
    """

    def __init__(self, spec: LayerSpec, folder: Path | None = None):
        self.path, self.band = spec.path, spec.band
        kept_at = grid_path(spec, folder) if folder is not None else None
        grid = load_grid(kept_at, spec) if kept_at is not None else None
        if grid is None:
            import rasterio

            with rasterio.open(self.path) as src:
                small = src.height * src.width <= WHOLE_RASTER_CELLS
                cells = _read(src, self.band, None) if small else None
                crs = src.crs.to_wkt() if src.crs else ""
                grid = Grid(Transform.of(src.transform), src.height, src.width, crs, cells)
            if kept_at is not None and cells is not None:
                store_grid(grid, kept_at, spec)
        self.transform, self.height, self.width, self.cells = grid.transform, grid.height, grid.width, grid.cells
        if self.cells is not None:
            self.cells.flags.writeable = False  # shared by every call: windows are views of it

    def window(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """The cells of rows and columns (start, stop), as floats with nodata NaN."""
        if self.cells is not None:
            return self.cells[rows[0] : rows[1], cols[0] : cols[1]]
        import rasterio

        with rasterio.open(self.path) as src:
            return _read(src, self.band, ((rows[0], rows[1]), (cols[0], cols[1])))


def _read(src, band: int, window) -> np.ndarray:
    return np.ma.filled(src.read(band, window=window, masked=True).astype(float), np.nan)


#: Rasters opened, by path and band, with the file's size and time they were read at (a changed file is read again).
_RASTERS: dict[tuple, tuple[tuple, Raster]] = {}


def open_raster(spec: LayerSpec, folder: Path | None = None) -> Raster:
    """The raster of a layer, its grid read once (and its cells, when small) while its file stays the same.

    ``folder`` is the cache folder that may keep its grid (None: none).
    """
    try:
        stat = Path(spec.path).stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
    except (OSError, TypeError, ValueError):  # not a local file (a URL, a /vsi path): read as it is each time
        return Raster(spec, folder)
    key = (str(spec.path), spec.band)
    kept = _RASTERS.get(key)
    if kept is None or kept[0] != stamp:
        try:
            kept = (stamp, Raster(spec, folder))
        except io_error():
            _RASTERS.pop(key, None)
            raise
        _RASTERS[key] = kept
    return kept[1]
