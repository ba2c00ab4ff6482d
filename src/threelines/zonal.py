"""Zonal statistics of a raster layer over each footprint.

The raster is read once, as the window that covers all footprints (in the
raster's own CRS, so cells are never resampled); each footprint then masks
only its own part of that window. The cells whose centres lie in the
footprint count; a footprint narrower than a cell or smaller than four
cells (a road across a 1 km grid, a site, a point) takes every cell it
touches instead, so its statistic does not depend on where the cell
centres happen to fall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS

from threelines.errors import ManifestError
from threelines.manifest import LayerSpec

#: Statistics a zonal rule can test.
STATS = ("mean", "max", "min", "share")

#: A footprint smaller than this many cells takes every cell it touches.
SMALL_FOOTPRINT_CELLS = 4


@dataclass(frozen=True)
class Zonal:
    """One footprint's statistic: its value (NaN without data) and the cells it used."""

    value: float
    cells: int


def zonal_stats(
    footprints: np.ndarray, working_crs: CRS, spec: LayerSpec, stat: str, classes: tuple[float, ...] = ()
) -> list[Zonal]:
    """Compute a statistic of a raster band over each footprint.

    Parameters
    ----------
    footprints : numpy.ndarray of shapely geometries
        In the working CRS.
    working_crs : pyproj.CRS
    spec : LayerSpec
        A raster layer (north-up; the manifest checks it).
    stat : str
        ``mean``, ``max``, ``min``, or ``share`` (the share of cells whose
        value is one of ``classes``).
    classes : tuple of float
        The cell values ``share`` counts.

    Returns
    -------
    list of Zonal
        One per footprint; ``value`` is NaN where the footprint covers only
        nodata cells or lies off the raster.
    """
    import rasterio
    from affine import Affine
    from geopandas import GeoSeries
    from rasterio.errors import RasterioIOError
    from rasterio.features import geometry_mask

    native = np.asarray(GeoSeries(footprints, crs=working_crs).to_crs(spec.crs).values, dtype=object)
    try:
        with rasterio.open(spec.path) as src:
            base = src.transform
            rows, cols = _span(base, shapely.total_bounds(native), src.height, src.width)
            if rows[0] >= rows[1] or cols[0] >= cols[1]:
                return [Zonal(value=float("nan"), cells=0) for _ in native]
            window = ((rows[0], rows[1]), (cols[0], cols[1]))
            values = np.ma.filled(src.read(spec.band, window=window, masked=True).astype(float), np.nan)
    except RasterioIOError as exc:
        raise ManifestError(f"layer {spec.name!r}: cannot read {spec.path}: {exc}") from None
    cell_area = abs(base.a * base.e)
    cell_size = min(abs(base.a), abs(base.e))
    out = []
    for geom in native:  # each footprint masks only its own part of the shared window
        (r0, r1), (c0, c1) = _span(base, shapely.bounds(geom), src.height, src.width)
        r0, r1 = max(r0, rows[0]) - rows[0], min(r1, rows[1]) - rows[0]
        c0, c1 = max(c0, cols[0]) - cols[0], min(c1, cols[1]) - cols[0]
        if r0 >= r1 or c0 >= c1:
            out.append(Zonal(value=float("nan"), cells=0))
            continue
        block = values[r0:r1, c0:c1]
        transform = base @ Affine.translation(cols[0] + c0, rows[0] + r0)
        area, length = shapely.area(geom), shapely.length(geom)
        small = area < SMALL_FOOTPRINT_CELLS * cell_area or (length > 0 and 2 * area / length < cell_size)
        inside = ~geometry_mask([geom], out_shape=block.shape, transform=transform, all_touched=small)
        cells = block[inside]
        cells = cells[~np.isnan(cells)]
        out.append(Zonal(value=_stat(cells, stat, classes), cells=int(cells.size)))
    return out


def _span(transform, bounds, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The rows and columns (start, stop) of the cells a box touches, clipped to the raster."""
    inverse = ~transform
    xs, ys = (bounds[0], bounds[2], bounds[0], bounds[2]), (bounds[1], bounds[1], bounds[3], bounds[3])
    cols, rows = zip(*(inverse @ (x, y) for x, y in zip(xs, ys, strict=True)), strict=True)
    r0, r1 = math.floor(min(rows)), math.ceil(max(rows))
    c0, c1 = math.floor(min(cols)), math.ceil(max(cols))
    r1, c1 = max(r1, r0 + 1), max(c1, c0 + 1)  # a point still touches one cell
    return (max(r0, 0), min(r1, height)), (max(c0, 0), min(c1, width))


def _stat(cells: np.ndarray, stat: str, classes: tuple[float, ...]) -> float:
    if cells.size == 0:
        return float("nan")
    if stat == "share":
        return float(np.isin(cells, classes).mean())
    return float({"mean": np.mean, "max": np.max, "min": np.min}[stat](cells))
