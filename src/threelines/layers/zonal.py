"""Zonal statistics of a raster layer over each footprint.

The raster is read once, as the window that covers all footprints (in the
raster's own CRS, so cells are never resampled); the cells of every
footprint's box are then tested against it in bulk. The cells whose centres
lie in the footprint count; a footprint narrower than a cell or smaller than four
cells (a road across a 1 km grid, a site, a point) takes every cell it
touches instead, so its statistic does not depend on where the cell
centres happen to fall.

The band is opened once per file (:mod:`threelines.layers.rasters`, which
keeps a small band's grid in the cache folder); rasterio is imported only
to read a raster afresh or by window, and for a footprint with cell centres
on its edge (:func:`_masked`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS

from threelines.arrays import sorted_distinct
from threelines.errors import ManifestError
from threelines.input.crs import to_crs
from threelines.layers.rasters import io_error, open_raster
from threelines.layers.spec import LayerSpec

#: Statistics a zonal rule can test.
STATS = ("mean", "max", "min", "share")

#: A footprint smaller than this many cells takes every cell it touches.
SMALL_FOOTPRINT_CELLS = 4


@dataclass(frozen=True)
class Zonal:
    """One footprint's statistic: its value (NaN without data) and the cells it used."""

    value: float
    cells: int


def zonal_columns(
    footprints: np.ndarray,
    working_crs: CRS,
    spec: LayerSpec,
    stat: str,
    classes: tuple[float, ...] = (),
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute a statistic of a raster band over each footprint, as two columns (no object per footprint).

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
    cache_dir : Path, optional
        The cache folder that keeps small rasters' grids (None: read the
        raster from its file).

    Returns
    -------
    value : numpy.ndarray of float
        Per footprint; NaN where it covers only nodata cells or lies off the
        raster.
    cells : numpy.ndarray of int64
        Per footprint, the cells the statistic used.
    """
    native = to_crs(np.asarray(footprints, dtype=object), working_crs, spec.crs)
    # A footprint that cannot be placed in the raster's CRS (inf or NaN bounds) has no cells;
    # it must not widen the shared window or break the arithmetic of the others.
    placed = np.isfinite(shapely.bounds(native)).all(axis=1)
    value, cells = np.full(len(native), np.nan), np.zeros(len(native), dtype=np.int64)
    if not placed.any():
        return value, cells
    try:
        raster = open_raster(spec, cache_dir)
        base, height, width = raster.transform, raster.height, raster.width
        bounds = shapely.bounds(native[placed])  # all finite: plain minima and maxima
        rows, cols = _span(base, (*bounds[:, :2].min(axis=0), *bounds[:, 2:].max(axis=0)), height, width)
        if rows[0] >= rows[1] or cols[0] >= cols[1]:
            return value, cells
        values = raster.window(rows, cols)
    except io_error() as exc:  # evaluated only when an exception is raised: no rasterio import otherwise
        raise ManifestError(f"layer {spec.name!r}: cannot read {spec.path}: {exc}") from None
    cell_area = abs(base.a * base.e)
    cell_size = min(abs(base.a), abs(base.e))
    with np.errstate(divide="ignore", invalid="ignore"):
        area, length = shapely.area(native), shapely.length(native)
        small = (area < SMALL_FOOTPRINT_CELLS * cell_area) | ((length > 0) & (2 * area / length < cell_size))
    small &= placed
    which = np.flatnonzero(small)
    value[which], cells[which] = _touched_cells(native[which], values, base, rows, cols, stat, classes)
    which = np.flatnonzero(~small & placed)
    value[which], cells[which], on_edge = _centre_cells(native[which], values, base, rows, cols, stat, classes)
    for i in which[on_edge].tolist():  # cell centres on its edge: counted as GDAL's rasterisation counts them
        masked = _masked(native[i], values, base, rows, cols, stat, classes)
        value[i], cells[i] = masked.value, masked.cells
    return value, cells


def _touched_cells(shapes, values, base, rows, cols, stat, classes) -> tuple[np.ndarray, np.ndarray]:
    """Statistics over every cell small footprints touch, for all of them in a few vectorised calls.

    The cells of each footprint's box are tested against it at once with
    shapely (a polygon must reach into a cell, not just share its edge; a
    point or line takes the cells it lies in or on). A cell with one of the
    footprint's vertices inside it, off its edges, needs no test: a valid
    polygon's inside comes up to each of its vertices. That is most cells of
    a small footprint; shapely tests the others (a cell an edge only
    crosses, or only the footprint's box reaches). Returns each footprint's
    value (NaN without cells) and count of cells.
    """
    if len(shapes) == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    owner, row, col = _box_cells(shapely.bounds(shapes), base, rows, cols)
    x0, y0 = base @ (col, row)
    x1, y1 = base @ (col + 1, row + 1)
    x0, y0, x1, y1 = np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)
    hit = np.zeros(len(owner), dtype=bool)
    hit[_vertex_cells(shapes, owner, row, col, base)] = True
    test = np.flatnonzero(~hit)
    boxes = shapely.box(x0[test], y0[test], x1[test], y1[test])
    mine = shapes[owner[test]]
    hit[test] = shapely.intersects(mine, boxes)
    edge = np.flatnonzero(hit[test] & (shapely.area(shapes) > 0)[owner[test]])
    hit[test[edge]] = ~shapely.touches(mine[edge], boxes[edge])
    cell = values[row - rows[0], col - cols[0]]
    keep = hit & ~np.isnan(cell)
    owner, cell = owner[keep], cell[keep]
    n = len(shapes)
    counts = np.bincount(owner, minlength=n)
    if stat == "mean":
        result = np.bincount(owner, weights=cell, minlength=n) / np.maximum(counts, 1)
    elif stat == "share":
        result = np.bincount(owner, weights=np.isin(cell, classes).astype(float), minlength=n) / np.maximum(counts, 1)
    else:
        result = np.full(n, -np.inf if stat == "max" else np.inf)
        (np.maximum if stat == "max" else np.minimum).at(result, owner, cell)
    result[counts == 0] = np.nan
    return result, counts


#: Cells tested against footprints at once: bounds the memory of one vectorised pass.
CELLS_PER_PASS = 1_000_000

#: A cell centre closer than this share of a cell to a large footprint's edge is left to GDAL's
#: rasterisation to count or not (its rule for centres on an edge is its own).
EDGE_SHARE = 1e-6


def _box_cells(bounds: np.ndarray, base, rows, cols) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of the window within each box's rows and columns: its box's position, row and column.

    Row-major within each box, boxes in order.
    """
    r0, r1, c0, c1 = _box_spans(bounds, base, rows, cols)
    heights, widths = np.maximum(r1 - r0, 0), np.maximum(c1 - c0, 0)
    counts = heights * widths
    owner = np.repeat(np.arange(len(bounds)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    row = np.repeat(r0, counts) + offset // np.repeat(np.maximum(widths, 1), counts)
    col = np.repeat(c0, counts) + offset % np.repeat(np.maximum(widths, 1), counts)
    return owner, row, col


def _box_spans(bounds: np.ndarray, base, rows, cols) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows (start, stop) and columns (start, stop) of the window's cells within each box."""
    inverse = ~base
    c_a, r_a = _near(inverse @ (bounds[:, 0], bounds[:, 3]), rows, cols)
    c_b, r_b = _near(inverse @ (bounds[:, 2], bounds[:, 1]), rows, cols)
    r0 = np.clip(np.floor(np.minimum(r_a, r_b)).astype(int), rows[0], rows[1])
    r1 = np.clip(
        np.maximum(np.ceil(np.maximum(r_a, r_b)).astype(int), np.floor(np.minimum(r_a, r_b)).astype(int) + 1),
        rows[0],
        rows[1],
    )
    c0 = np.clip(np.floor(np.minimum(c_a, c_b)).astype(int), cols[0], cols[1])
    c1 = np.clip(
        np.maximum(np.ceil(np.maximum(c_a, c_b)).astype(int), np.floor(np.minimum(c_a, c_b)).astype(int) + 1),
        cols[0],
        cols[1],
    )
    return r0, r1, c0, c1


def _vertex_cells(shapes, owner, row, col, base) -> np.ndarray:
    """Positions in ``owner, row, col`` (as :func:`_box_cells` gives them) of cells with a vertex of their shape inside.

    Inside off the edges, the edges placed as the cells' boxes are (the
    same arithmetic), so that a vertex on or next to an edge is left out.
    """
    counts = np.bincount(owner, minlength=len(shapes))
    start = np.cumsum(counts) - counts
    filled = counts > 0
    r0, c0 = np.zeros(len(shapes), dtype=int), np.zeros(len(shapes), dtype=int)
    r0[filled], c0[filled] = row[start[filled]], col[start[filled]]
    height = np.ones(len(shapes), dtype=int)
    height[filled] = row[start[filled] + counts[filled] - 1] - r0[filled] + 1
    width = counts // height
    xy, of = shapely.get_coordinates(shapes, return_index=True)
    c, r = ~base @ (xy[:, 0], xy[:, 1])
    with np.errstate(invalid="ignore"):
        c, r = np.floor(c), np.floor(r)
        mine = (r >= r0[of]) & (r < r0[of] + height[of]) & (c >= c0[of]) & (c < c0[of] + width[of])
    xy, of, r, c = xy[mine], of[mine], r[mine].astype(int), c[mine].astype(int)
    x0, y0 = base @ (c, r)
    x1, y1 = base @ (c + 1, r + 1)
    off_edges = (
        (np.minimum(x0, x1) < xy[:, 0])
        & (xy[:, 0] < np.maximum(x0, x1))
        & (np.minimum(y0, y1) < xy[:, 1])
        & (xy[:, 1] < np.maximum(y0, y1))
    )
    of, r, c = of[off_edges], r[off_edges], c[off_edges]
    return start[of] + (r - r0[of]) * width[of] + (c - c0[of])


def _centre_cells(shapes, values, base, rows, cols, stat, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Statistics over the cells whose centres lie in each large footprint, in a few vectorised passes.

    Each footprint's box of cells is tested at once against it (prepared),
    so a batch of large footprints costs no rasterisation per footprint.
    The statistic of each footprint is taken over its cells in row order,
    as one masked window of its own would give them (see :func:`_row_stats`).
    Returns each footprint's value (NaN without cells), count of cells, and
    whether it has a cell centre on its edge (a box drawn on the grid):
    which of those cells count is for :func:`_masked` to say.
    """
    value, cells = np.full(len(shapes), np.nan), np.zeros(len(shapes), dtype=np.int64)
    doubtful = np.zeros(len(shapes), dtype=bool)
    if len(shapes) == 0:
        return value, cells, doubtful
    bounds = shapely.bounds(shapes)
    r0, r1, c0, c1 = _box_spans(bounds, base, rows, cols)
    passes = np.cumsum((r1 - r0) * (c1 - c0)) // CELLS_PER_PASS  # the cells of the boxes, as _box_cells gives them
    for group in np.split(np.arange(len(shapes)), np.flatnonzero(np.diff(passes)) + 1):
        mine = shapes[group]
        shapely.prepare(mine)
        owner, row, col = _box_cells(bounds[group], base, rows, cols)
        x, y = base @ (col + 0.5, row + 0.5)
        inside = shapely.contains_xy(mine[owner], x, y)
        doubtful[group] = _on_edge(mine, bounds[group], base, rows, cols)
        owner, cell = owner[inside], values[row[inside] - rows[0], col[inside] - cols[0]]
        keep = ~np.isnan(cell)
        value[group], cells[group] = _row_stats(owner[keep], cell[keep], len(group), stat, classes)
    return value, cells, doubtful


def _on_edge(shapes, bounds: np.ndarray, base, rows, cols) -> np.ndarray:
    """Whether a cell centre of each shape's box (as :func:`_box_cells` gives them) lies on its edge.

    On it: closer than :data:`EDGE_SHARE` of a cell. Each edge segment is
    walked along its longer axis, one line of cell centres at a time: on
    each, only the centre nearest to where the segment's line crosses can be
    that close, and only if it lies within a thousandth of a cell of it
    (far more than the tolerance, in cells, on a north-up grid). GEOS
    measures those few centres, not every centre of every box.
    """
    out = np.zeros(len(shapes), dtype=bool)
    xy, of = shapely.get_coordinates(shapes, return_index=True)
    col, row = ~base @ (xy[:, 0], xy[:, 1])
    far = ~((np.abs(col) < 1e9) & (np.abs(row) < 1e9))  # beyond any raster: left to the rasterisation, which is exact
    out[of[far]] = True
    # Consecutive vertices of a shape: its edges, and a few joins between its rings (extra centres GEOS rules out).
    segment = np.flatnonzero((of[1:] == of[:-1]) & ~out[of[1:]])
    of = of[segment]
    wide = np.abs(col[segment + 1] - col[segment]) >= np.abs(row[segment + 1] - row[segment])
    # Along (u) a wide segment: columns; across it (v): rows. A tall one the other way round.
    u_a, u_b = np.where(wide, col[segment], row[segment]), np.where(wide, col[segment + 1], row[segment + 1])
    v_a, v_b = np.where(wide, row[segment], col[segment]), np.where(wide, row[segment + 1], col[segment + 1])
    r0, r1, c0, c1 = _box_spans(bounds, base, rows, cols)  # only the centres of the shape's box are asked about
    u_lo, u_hi = np.where(wide, c0[of], r0[of]), np.where(wide, c1[of], r1[of]) - 1
    v_lo, v_hi = np.where(wide, r0[of], c0[of]), np.where(wide, r1[of], c1[of]) - 1
    first = np.maximum(np.ceil(np.minimum(u_a, u_b) - 0.5 - 1e-3), u_lo).astype(int)
    last = np.minimum(np.floor(np.maximum(u_a, u_b) - 0.5 + 1e-3), u_hi).astype(int)
    counts = np.maximum(last - first + 1, 0)
    # A shape whose edges would walk past more centres than its box holds (a zigzag of many short segments, each
    # crossing lines of centres again and again) has every centre of its box measured instead: the walk's memory
    # never exceeds the boxes' cells, which the cells' own tests in _centre_cells hold at once anyway.
    walked = np.bincount(of, weights=counts, minlength=len(shapes))
    dense = walked > (r1 - r0) * (c1 - c0)
    if dense.any():
        out[dense] = _box_on_edge(shapes[dense], bounds[dense], base, rows, cols)
        counts[dense[of]] = 0
    at = np.repeat(np.arange(len(segment)), counts)
    u = np.repeat(first, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(u_b != u_a, (v_b - v_a) / (u_b - u_a), 0.0)  # a segment of one point: its own v
    v = v_a[at] + (u + 0.5 - u_a[at]) * slope[at]
    nearest = np.floor(v)  # the centre line nearest to v
    keep = (np.abs(v - nearest - 0.5) <= 1e-3) & (nearest >= v_lo[at]) & (nearest <= v_hi[at])
    at, u, nearest = at[keep], u[keep], nearest[keep].astype(int)
    if len(at):
        owner = of[at]
        c, r = np.where(wide[at], u, nearest), np.where(wide[at], nearest, u)
        x, y = base @ (c + 0.5, r + 0.5)  # as :func:`_centre_cells` places them
        which = sorted_distinct(owner)
        edges = shapely.boundary(shapes[which])
        shapely.prepare(edges)
        close = shapely.dwithin(edges[np.searchsorted(which, owner)], shapely.points(x, y), _edge_tolerance(base))
        out[owner[close]] = True
    return out


def _box_on_edge(shapes, bounds: np.ndarray, base, rows, cols) -> np.ndarray:
    """Whether a cell centre of each shape's box lies on its edge, every centre of the box measured."""
    owner, row, col = _box_cells(bounds, base, rows, cols)
    x, y = base @ (col + 0.5, row + 0.5)
    edges = shapely.boundary(shapes)
    shapely.prepare(edges)
    close = shapely.dwithin(edges[owner], shapely.points(x, y), _edge_tolerance(base))
    return np.bincount(owner[close], minlength=len(shapes)) > 0


def _edge_tolerance(base) -> float:
    """How close to an edge a cell centre is on it: :data:`EDGE_SHARE` of a cell."""
    return EDGE_SHARE * min(abs(base.a), abs(base.e))


def _row_stats(owner: np.ndarray, cell: np.ndarray, n: int, stat: str, classes) -> tuple[np.ndarray, np.ndarray]:
    """The statistic of each of ``n`` footprints over its cells (``owner`` ascending), and its count of cells.

    Exactly what :func:`_stat` gives for each footprint's cells alone: a sum
    of floats depends on its order (numpy sums by pairs), so the
    footprints with the same count of cells are stacked as the rows of one
    array, each summed on its own.
    """
    counts = np.bincount(owner, minlength=n)
    value = np.full(n, np.nan)
    start = np.cumsum(counts) - counts
    for size in sorted_distinct(counts[counts > 0]).tolist():  # a few dozen counts, however many footprints
        which = np.flatnonzero(counts == size)
        block = cell[start[which][:, None] + np.arange(size)]
        if stat == "share":
            value[which] = np.isin(block, classes).mean(axis=1)
        else:
            value[which] = {"mean": np.mean, "max": np.max, "min": np.min}[stat](block, axis=1)
    return value, counts


def _masked(geom, values, base, rows, cols, stat, classes) -> Zonal:
    """The statistic of one footprint over the cells GDAL's rasterisation puts in it (centres inside)."""
    from affine import Affine
    from rasterio.features import geometry_mask

    x0, y0, x1, y1 = shapely.bounds(geom)
    (r0, r1), (c0, c1) = _span(base, (x0, y0, x1, y1), rows[1], cols[1])
    r0, r1 = max(r0, rows[0]) - rows[0], r1 - rows[0]
    c0, c1 = max(c0, cols[0]) - cols[0], c1 - cols[0]
    if r0 >= r1 or c0 >= c1:
        return Zonal(value=float("nan"), cells=0)
    block = values[r0:r1, c0:c1]
    transform = Affine(*base) @ Affine.translation(cols[0] + c0, rows[0] + r0)
    cells = block[~geometry_mask([geom], out_shape=block.shape, transform=transform)]
    cells = cells[~np.isnan(cells)]
    return Zonal(value=_stat(cells, stat, classes), cells=int(cells.size))


def _near(col_row, rows, cols):
    """Column and row positions clipped just beyond the window, so that a huge box cannot overflow the integers."""
    col, row = col_row
    # np.minimum and np.maximum: as np.clip, without its checks, which cost more than a small batch's cells.
    return np.minimum(np.maximum(col, cols[0] - 1), cols[1] + 1), np.minimum(np.maximum(row, rows[0] - 1), rows[1] + 1)


def _span(transform, bounds, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The rows and columns (start, stop) of the cells a box touches, clipped to the raster."""
    inverse = ~transform
    xs, ys = (bounds[0], bounds[2], bounds[0], bounds[2]), (bounds[1], bounds[1], bounds[3], bounds[3])
    cols, rows = zip(*(inverse @ (x, y) for x, y in zip(xs, ys, strict=True)), strict=True)
    # Clipped just beyond the raster, so that a huge box cannot overflow the integers (NaN: nothing).
    rows = [min(max(r, -1.0), height + 1.0) for r in rows if not math.isnan(r)] or [-1.0]
    cols = [min(max(c, -1.0), width + 1.0) for c in cols if not math.isnan(c)] or [-1.0]
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
