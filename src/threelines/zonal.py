"""Zonal statistics of a raster layer over each footprint.

The raster is read once, as the window that covers all footprints (in the
raster's own CRS, so cells are never resampled); each footprint then selects
the cells whose centres it contains. A footprint smaller than a cell (or a
point) takes every cell it touches instead, so it is never left without data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import CRS

from threelines.errors import ManifestError
from threelines.manifest import LayerSpec

#: Statistics a zonal rule can test.
STATS = ("mean", "max", "min", "share")


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
        A raster layer.
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
    from rasterio.errors import RasterioIOError, WindowError
    from rasterio.features import geometry_mask
    from rasterio.windows import Window, from_bounds

    native = GeoSeries(footprints, crs=working_crs).to_crs(spec.crs).values
    try:
        with rasterio.open(spec.path) as src:
            wanted = from_bounds(*native.total_bounds, transform=src.transform).round_offsets().round_lengths()
            wanted = Window(wanted.col_off - 1, wanted.row_off - 1, wanted.width + 2, wanted.height + 2)
            try:
                window = wanted.intersection(Window(0, 0, src.width, src.height))
            except WindowError:  # the footprints lie off the raster
                return [Zonal(value=float("nan"), cells=0) for _ in native]
            data = src.read(spec.band, window=window, masked=True)
            # (src.window_transform multiplies affines with `*`, which affine 3 deprecates)
            transform = src.transform @ Affine.translation(window.col_off, window.row_off)
    except RasterioIOError as exc:
        raise ManifestError(f"layer {spec.name!r}: cannot read {spec.path}: {exc}") from None
    values = np.ma.filled(data.astype(float), np.nan)
    out = []
    for geom in native:  # one mask per footprint, over the shared window
        inside = ~geometry_mask([geom], out_shape=values.shape, transform=transform)
        if not inside.any() or np.isnan(values[inside]).all():
            inside = ~geometry_mask([geom], out_shape=values.shape, transform=transform, all_touched=True)
        cells = values[inside]
        cells = cells[~np.isnan(cells)]
        out.append(Zonal(value=_stat(cells, stat, classes), cells=int(cells.size)))
    return out


def _stat(cells: np.ndarray, stat: str, classes: tuple[float, ...]) -> float:
    if cells.size == 0:
        return float("nan")
    if stat == "share":
        return float(np.isin(cells, classes).mean())
    return float({"mean": np.mean, "max": np.max, "min": np.min}[stat](cells))
