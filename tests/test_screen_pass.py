"""What one screening pass keeps between passes: whole small rasters, rule-set parts, and the few-row grouping."""

from __future__ import annotations

import os

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import CRS

from threelines.engine import compile as compile_module
from threelines.engine.compile import distinct_rows
from threelines.layers import grids, rasters, zonal
from threelines.layers.spec import LayerSpec

X0, Y0 = 400000.0, 3150000.0


def write_grid(path, grid: np.ndarray) -> None:
    import rasterio

    profile = {"driver": "GTiff", "width": grid.shape[1], "height": grid.shape[0], "count": 1, "dtype": "float32",
               "nodata": -1.0, "crs": "EPSG:4548",
               "transform": Affine.translation(X0, Y0 + 100 * grid.shape[0]) @ Affine.scale(100, -100)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(grid.astype("float32"), 1)


@pytest.fixture
def grid_layer(tmp_path):
    path = tmp_path / "grid.tif"
    grid = np.arange(30 * 40, dtype=float).reshape(30, 40)
    grid[:, 35:] = -1.0  # nodata east of column 35
    write_grid(path, grid)
    spec = LayerSpec(name="grid", role="raster", path=path, layer=None, id_field=None, name_field=None,
                     class_field=None, class_map={}, crs=CRS.from_epsg(4548), encoding=None, fields={},
                     bounds=(0.0, 0.0, 0.0, 0.0))  # fmt: skip
    return spec, grid


def footprints():
    box = shapely.box
    return np.array(
        [
            box(X0 + 250, Y0 + 250, X0 + 1250, Y0 + 1750),  # large: masks its own block
            box(X0 + 510, Y0 + 510, X0 + 530, Y0 + 530),  # small: inside one cell
            shapely.Point(X0 + 3650, Y0 + 1500),  # on nodata
            box(X0 + 3300, Y0 + 100, X0 + 3900, Y0 + 900),  # half nodata
            box(X0 - 5000, Y0 - 5000, X0 - 4000, Y0 - 4000),  # off the raster
        ],
        dtype=object,
    )


def zonal_stats(shapes, crs, spec, stat, cache_dir=None) -> list[zonal.Zonal]:
    """Each footprint's statistic and cells as one :class:`~threelines.layers.zonal.Zonal` (from the columns)."""
    value, cells = zonal.zonal_columns(shapes, crs, spec, stat, cache_dir=cache_dir)
    return [zonal.Zonal(value=v, cells=c) for v, c in zip(value.tolist(), cells.tolist(), strict=True)]


@pytest.mark.parametrize("stat", ["mean", "max", "min"])
def test_a_raster_kept_whole_gives_what_a_window_read_gives(grid_layer, monkeypatch, stat):
    spec, _ = grid_layer
    kept = zonal_stats(footprints(), spec.crs, spec, stat)
    assert rasters._RASTERS[(str(spec.path), spec.band)][1].cells is not None
    rasters._RASTERS.clear()
    monkeypatch.setattr(rasters, "WHOLE_RASTER_CELLS", 10)  # now too large to keep: read by window
    windowed = zonal_stats(footprints(), spec.crs, spec, stat)
    assert rasters._RASTERS[(str(spec.path), spec.band)][1].cells is None
    assert [z.cells for z in kept] == [z.cells for z in windowed] == [160, 1, 0, 16, 0]
    np.testing.assert_array_equal([z.value for z in kept], [z.value for z in windowed])  # NaN where NaN
    assert np.isnan(kept[2].value)
    assert np.isnan(kept[4].value)


@pytest.mark.parametrize("stat", ["mean", "max", "min"])
def test_large_footprints_measured_together_count_the_cells_gdal_counts(grid_layer, monkeypatch, stat):
    spec, _ = grid_layer
    rng = np.random.default_rng(16)
    centres = rng.uniform([X0 + 300, Y0 + 300], [X0 + 3700, Y0 + 2700], (60, 2))
    blobs = shapely.buffer(shapely.points(centres), rng.uniform(150, 900, 60), quad_segs=3)
    # The aligned box of footprints(): its cell centres lie on its edge, where GDAL has its own rule.
    shapes = np.concatenate([blobs, footprints()[:1]])
    monkeypatch.setattr(zonal, "CELLS_PER_PASS", 200)  # several passes
    together = zonal_stats(shapes, spec.crs, spec, stat)
    raster = rasters.open_raster(spec)
    rows, cols = (0, raster.height), (0, raster.width)
    alone = [zonal._masked(s, raster.cells, raster.transform, rows, cols, stat, ()) for s in shapes]
    assert [z.cells for z in together] == [z.cells for z in alone]
    assert sum(z.cells for z in together) > 500
    np.testing.assert_array_equal([z.value for z in together], [z.value for z in alone])


def test_footprints_on_edge_are_those_with_a_box_centre_on_their_edge(grid_layer):
    spec, _ = grid_layer
    raster = rasters.open_raster(spec)
    base, rows, cols = raster.transform, (0, raster.height), (0, raster.width)
    rng = np.random.default_rng(7)
    shapes = []
    for i in range(400):
        (c, r), (w, h) = rng.integers(0, 36, 2), rng.integers(1, 8, 2)
        # On cell edges, through cell centres, between them, and a ten-millionth of a cell beside the centres.
        snap = (0.0, 0.5, 0.25, 0.5 + 1e-7)[i % 4]
        (xa, ya), (xb, yb) = base @ (c + snap, r + snap), base @ (c + w + snap, r + h + snap)
        shape = shapely.box(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))
        if i % 4 == 1:  # a hole whose edge runs through centres
            shape = shape.difference(shapely.box(*base @ (c + 0.5, r + h - 0.5), *base @ (c + w - 0.5, r + 0.5)))
        if i % 5 == 2:  # a diamond through centres, and a part beside it
            x, y = base @ (c + 0.5 + w, r + 0.5)
            diamond = shapely.Polygon(
                [(x, y), (x + 100 * w, y - 100 * w), (x, y - 200 * w), (x - 100 * w, y - 100 * w)]
            )
            shape = shapely.MultiPolygon([diamond, shapely.box(x + 5000, y, x + 5310, y + 310)])
        shapes.append(shape)
    shapes = np.array(shapes, dtype=object)
    every = _every_centre_measured(shapes, base, rows, cols)
    assert 50 < every.sum() < len(shapes) - 50
    np.testing.assert_array_equal(zonal._on_edge(shapes, shapely.bounds(shapes), base, rows, cols), every)


def test_a_zigzag_footprint_has_its_box_measured_not_its_edges_walked(grid_layer, monkeypatch):
    spec, _ = grid_layer
    raster = rasters.open_raster(spec)
    base, rows, cols = raster.transform, (0, raster.height), (0, raster.width)
    # 2,000 teeth, each crossing the box's 30 rows of centres twice: walking its edges would visit 120,000
    # centres, where its box holds 900 (a hostile footprint could make that billions).
    teeth = np.linspace(2, 32, 4001)
    top, bottom = base @ (teeth[::2], np.full(2001, 2.0)), base @ (teeth[1::2], np.full(2000, 32.0))
    ring = np.empty((4001, 2))
    ring[::2], ring[1::2] = np.column_stack(top), np.column_stack(bottom)
    corner = base @ (32.0, 33.0)
    zigzag = shapely.Polygon([*ring, corner, base @ (2.0, 33.0)])
    through = shapely.Polygon([*ring[:-1], base @ (32.5, 2.5), corner, base @ (2.0, 33.0)])  # a vertex on a centre
    shapes = np.array([zigzag, through, shapely.box(*base @ (3.25, 10.25), *base @ (9.25, 4.25))], dtype=object)
    assert shapely.is_valid(shapes).all()
    every = _every_centre_measured(shapes, base, rows, cols)
    assert every.tolist() == [False, True, False]
    boxed = []
    measure_box = zonal._box_on_edge
    monkeypatch.setattr(zonal, "_box_on_edge", lambda shapes, *args: boxed.extend(shapes) or measure_box(shapes, *args))
    np.testing.assert_array_equal(zonal._on_edge(shapes, shapely.bounds(shapes), base, rows, cols), every)
    assert boxed == [zigzag, through]  # the box's 900 centres each, not 120,000 along the edges


def _every_centre_measured(shapes, base, rows, cols) -> np.ndarray:
    """Whether each shape has a cell centre of its box on its edge, every centre of every box measured."""
    owner, row, col = zonal._box_cells(shapely.bounds(shapes), base, rows, cols)
    x, y = base @ (col + 0.5, row + 0.5)
    tolerance = zonal.EDGE_SHARE * min(abs(base.a), abs(base.e))
    every = np.zeros(len(shapes), dtype=bool)
    every[owner[shapely.dwithin(shapely.boundary(shapes)[owner], shapely.points(x, y), tolerance)]] = True
    return every


def test_a_raster_file_rewritten_is_read_again(grid_layer):
    spec, grid = grid_layer
    site = footprints()[1:2]
    (before,) = zonal_stats(site, spec.crs, spec, "mean")
    assert before.value == grid[24, 5]  # row 24 from the top holds y 500-600
    write_grid(spec.path, grid + 1000.0)
    stat = os.stat(spec.path)
    os.utime(spec.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))  # a new time even on a coarse clock
    (after,) = zonal_stats(site, spec.crs, spec, "mean")
    assert after.value == grid[24, 5] + 1000.0


def test_kept_cells_cannot_be_changed(grid_layer):
    spec, _ = grid_layer
    zonal_stats(footprints(), spec.crs, spec, "mean")
    cells = rasters._RASTERS[(str(spec.path), spec.band)][1].cells
    with pytest.raises(ValueError, match="read-only"):
        cells[0, 0] = 0.0


@pytest.mark.parametrize("shape", [(0, 2), (1, 2), (7, 2), (64, 3), (65, 3), (500, 2), (40,)])
def test_distinct_rows_few_and_many_agree(shape):
    codes = np.random.default_rng(sum(shape)).integers(0, 4, size=shape)
    first, inverse = distinct_rows(codes)
    assert inverse.shape == (shape[0],)
    assert np.array_equal(codes[first][inverse], codes)  # each row points at its own value
    assert len(first) == len({tuple(np.atleast_1d(r)) for r in codes.tolist()})  # one per distinct row
    assert all(first[g] <= i for i, g in enumerate(inverse.tolist()))  # at its first row


def test_fixed_parts_are_kept_per_rule_set():
    import geopandas as gpd

    from threelines.input.footprint import projects_from_frame
    from threelines.layers.manifest import load_manifest
    from threelines.rules import load_rules
    from threelines.sample import resolve_layers, resolve_rules

    manifest = load_manifest(resolve_layers(None))
    rules = load_rules(resolve_rules(None, manifest.rules), manifest)
    frame = gpd.GeoDataFrame({"id": ["a"], "industry": ["G5920"]}, geometry=[footprints()[0]], crs=4548)
    projects = projects_from_frame(frame, manifest.working_crs)
    one = compile_module.compile_rules(rules, manifest, projects)
    two = compile_module.compile_rules(rules, manifest, projects)
    assert one.clause_index is two.clause_index
    assert one.reach is two.reach
    again = load_rules(
        resolve_rules(None, manifest.rules), manifest
    )  # another rule set: its own parts, equal to the first's
    three = compile_module.compile_rules(again, manifest, projects)
    assert three.clause_index is not one.clause_index
    assert three.reach == one.reach
    assert three.vector_layers == one.vector_layers


def kept_grids(folder):
    return sorted(folder.glob(f"*{grids.GRID_SUFFIX}"))


@pytest.mark.parametrize("stat", ["mean", "max", "min"])
def test_a_grid_kept_on_disk_gives_what_the_raster_gives(grid_layer, tmp_path, stat):
    spec, _ = grid_layer
    folder = tmp_path / "cache"
    shapes = footprints()
    fresh = zonal_stats(shapes, spec.crs, spec, stat, cache_dir=folder)  # read with rasterio, grid written
    (kept,) = kept_grids(folder)
    rasters._RASTERS.clear()
    grid = grids.load_grid(kept, spec)
    assert (grid.height, grid.width, grid.transform) == (30, 40, rasters.open_raster(spec).transform)
    assert "4548" in grid.crs
    rasters._RASTERS.clear()
    again = zonal_stats(shapes, spec.crs, spec, stat, cache_dir=folder)  # from the grid
    assert [z.cells for z in fresh] == [z.cells for z in again] == [160, 1, 0, 16, 0]
    np.testing.assert_array_equal([z.value for z in fresh], [z.value for z in again])  # NaN where NaN


def damage_cut(path):
    path.write_bytes(path.read_bytes()[:-100])


def damage_garbage(path):
    path.write_bytes(b"not a grid at all")


def damage_cells(path):
    """A well-formed archive whose cells no longer match the grid's size."""
    with np.load(path) as archive:
        members = {name: archive[name] for name in archive.files}
    members["cells"] = members["cells"][:-1]
    with path.open("wb") as out:
        np.savez(out, **members)


@pytest.mark.parametrize("damage", [damage_cut, damage_garbage, damage_cells])
def test_a_damaged_grid_file_is_ignored_and_the_raster_read_again(grid_layer, tmp_path, caplog, damage):
    spec, _ = grid_layer
    folder = tmp_path / "cache"
    fresh = zonal_stats(footprints(), spec.crs, spec, "mean", cache_dir=folder)
    (kept,) = kept_grids(folder)
    damage(kept)
    rasters._RASTERS.clear()
    with caplog.at_level("INFO", logger="threelines.layers.grids"):
        again = zonal_stats(footprints(), spec.crs, spec, "mean", cache_dir=folder)
    assert "cannot be used" in caplog.text
    np.testing.assert_array_equal([z.value for z in fresh], [z.value for z in again])
    assert grids.load_grid(kept, spec) is not None  # written afresh


def test_another_rasters_grid_is_not_taken_for_this_one(grid_layer, tmp_path):
    spec, grid = grid_layer
    folder = tmp_path / "cache"
    (before,) = zonal_stats(footprints()[1:2], spec.crs, spec, "mean", cache_dir=folder)
    (old,) = kept_grids(folder)
    write_grid(spec.path, grid + 1000.0)  # the file changed: its grid is named after its new bytes
    new = grids.grid_path(spec, folder)
    assert new != old
    old.rename(new)  # the old grid put in its place
    assert grids.load_grid(new, spec) is None
    rasters._RASTERS.clear()
    (after,) = zonal_stats(footprints()[1:2], spec.crs, spec, "mean", cache_dir=folder)
    assert after.value == before.value + 1000.0


def test_a_raster_too_large_to_keep_is_read_from_its_file(grid_layer, tmp_path, monkeypatch):
    spec, _ = grid_layer
    folder = tmp_path / "cache"
    monkeypatch.setattr(grids, "MAX_CACHED_GRID_CELLS", 30 * 40 - 1)
    zonal_stats(footprints(), spec.crs, spec, "mean", cache_dir=folder)
    assert kept_grids(folder) == []


@pytest.mark.parametrize("stat", ["mean", "max", "min", "share"])
def test_statistics_of_many_footprints_at_once_are_those_of_each_alone(stat):
    # Sums of hundreds of cells: numpy's pairwise sum of each footprint's cells, not one running sum of all.
    rng = np.random.default_rng(7)
    counts = np.concatenate([rng.integers(0, 400, 60), [0, 1, 7, 8, 9, 128, 129, 129]])
    owner = np.repeat(np.arange(len(counts)), counts)
    cells = rng.uniform(0, 80, len(owner))
    cells[::3] = cells[::3].round(1)
    classes = (12.0, 40.0, 41.5)
    cells[::5] = rng.choice(classes, len(cells[::5]))
    value, found = zonal._row_stats(owner, cells, len(counts), stat, classes)
    alone = [zonal._stat(part, stat, classes) for part in np.split(cells, np.cumsum(counts)[:-1])]
    np.testing.assert_array_equal(found, counts)
    np.testing.assert_array_equal(value, alone)  # to the last bit, NaN without cells
    if stat == "mean":  # one running sum per footprint would not do: it differs here
        running = np.bincount(owner, weights=cells, minlength=len(counts)) / np.maximum(counts, 1)
        assert (running[counts > 0] != value[counts > 0]).any()
