"""The prepared-layer cache: hits give the same verdicts, changed layers miss, damaged entries are rebuilt."""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct

import numpy as np
import pytest
import shapely

from threelines.batch.local import run_batch
from threelines.cachedir import CACHE_ENV, cache_folder
from threelines.layers import cache
from threelines.layers.cache import CACHE_FORMAT, cache_key, read_layer_cached
from threelines.layers.manifest import load_manifest
from threelines.layers.read import LayerData, read_layer


def results(folder):
    return [json.loads(line) for line in (folder / "results.jsonl").read_text("utf-8").splitlines()]


def entries(folder):
    return sorted(p.name for p in folder.glob("*.layer"))


def same_layer(a, b):
    assert len(a) == len(b) > 0
    # The same types, parts and rings, in the same order, and the coordinates bit for bit.
    assert shapely.equals_identical(a.geometry, b.geometry).all()
    np.testing.assert_array_equal(shapely.get_type_id(a.geometry), shapely.get_type_id(b.geometry))
    xy_a, xy_b = shapely.get_coordinates(a.geometry), shapely.get_coordinates(b.geometry)
    assert xy_a.tobytes() == xy_b.tobytes()
    assert list(a.ids) == list(b.ids)
    assert list(a.names) == list(b.names)
    assert a.attributes == b.attributes
    assert (a.classes is None) == (b.classes is None)
    if a.classes is not None:
        assert list(a.classes) == list(b.classes)


def test_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_folder() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "threelines"


def test_a_hit_gives_the_layer_as_read(manifest, layer_cache_dir):
    for spec in manifest.layers.values():
        if spec.role == "raster":
            continue
        fresh = read_layer(spec, manifest.working_crs)
        first = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)  # miss: written
        second = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)  # hit
        same_layer(fresh, first)
        same_layer(fresh, second)
    assert len(entries(layer_cache_dir)) == sum(s.role != "raster" for s in manifest.layers.values())


def test_batch_with_the_cache_gives_the_verdicts_without_it(tmp_path, sample_dir, manifest, ruleset, layer_cache_dir):
    source = [str(sample_dir / "projects.gpkg")]
    plain = run_batch(source, tmp_path / "plain", manifest, ruleset, cache=False)
    assert entries(layer_cache_dir) == []  # --no-cache writes nothing
    cold = run_batch(source, tmp_path / "cold", manifest, ruleset)
    written = entries(layer_cache_dir)
    assert len(written) >= 4
    warm = run_batch(source, tmp_path / "warm", manifest, ruleset, jobs=2, chunk_size=5)
    assert entries(layer_cache_dir) == written
    assert plain.verdicts == cold.verdicts == warm.verdicts
    assert results(tmp_path / "plain") == results(tmp_path / "cold")
    by_id = {r["project"]["id"]: r for r in results(tmp_path / "warm")}
    assert [by_id[r["project"]["id"]] for r in results(tmp_path / "plain")] == results(tmp_path / "plain")


def test_a_changed_layer_file_misses(tmp_path, sample_dir, layer_cache_dir):
    import pyogrio

    shutil.copytree(sample_dir, tmp_path / "s")
    manifest = load_manifest(tmp_path / "s" / "layers.yaml")
    spec = manifest.layers["redline"]
    before = cache_key(spec, manifest.working_crs)
    old = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    assert entries(layer_cache_dir) == [f"{before}.layer"]
    frame = pyogrio.read_dataframe(spec.path, layer=spec.layer)
    frame.loc[0, spec.name_field] = "改过的红线"
    pyogrio.write_dataframe(frame, spec.path, layer=spec.layer)
    after = cache_key(spec, manifest.working_crs)
    assert after != before
    new = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    assert entries(layer_cache_dir) == sorted([f"{before}.layer", f"{after}.layer"])
    assert new.names[0] == "改过的红线" != old.names[0]
    same_layer(new, read_layer(spec, manifest.working_crs))


def test_a_shapefile_sidecar_is_part_of_the_key(tmp_path, sample_dir):
    shutil.copytree(sample_dir, tmp_path / "s")
    manifest = load_manifest(tmp_path / "s" / "layers.yaml")
    spec = manifest.layers["caps"]
    before = cache_key(spec, manifest.working_crs)
    dbf = spec.path.with_suffix(".dbf")
    dbf.write_bytes(dbf.read_bytes() + b"\x1a")
    assert cache_key(spec, manifest.working_crs) != before


def arrays_start(data: bytes) -> tuple[dict, int]:
    """A cache entry's header and where its arrays begin."""
    (size,) = struct.unpack_from("<Q", data, 17)
    header = json.loads(data[25 : 25 + size])
    return header, -(-(25 + size + header["text"]) // 8) * 8


@pytest.mark.parametrize("damage", [b"", b"THREELINES-LAYER\n", b"PAR1 not a cache entry", "cut short", "too long",
                                    "other format", "fewer features", "offset past the end", "offsets backwards",
                                    "offsets that wrap round", "a ring without coordinates",
                                    "a multipolygon's part without rings", "a position twice",
                                    "a position out of range", "a negative count"])  # fmt: skip
def test_a_damaged_entry_is_rebuilt(manifest, layer_cache_dir, caplog, damage):
    spec = manifest.layers["units"]
    read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    (entry,) = layer_cache_dir.glob("*.layer")
    data = entry.read_bytes()
    header, at = arrays_start(data)
    group = header["geometry"][0]  # the sample's units: polygons, then multipolygons
    rings = at + 8 * group["rows"] + 16 * group["coords"]  # the offsets of the rings into the coordinates
    if damage == "offset past the end":  # GEOS would read past the coordinates: refused before
        data = data[:rings] + struct.pack("<q", 10**9) + data[rings + 8 :]
    elif damage == "offsets backwards":
        data = data[: rings + 8] + struct.pack("<q", 10**9) + data[rings + 16 :]
    elif damage == "offsets that wrap round":  # each difference of neighbours >= 0 once it wraps: GEOS would crash
        data = data[: rings + 8] + struct.pack("<qq", 2**63 - 1, -2) + data[rings + 24 :]
    elif damage == "a ring without coordinates":  # shapely's builder reads past its arrays on such a polygon
        data = data[: rings + 8] + struct.pack("<q", 0) + data[rings + 16 :]
    elif damage == "a multipolygon's part without rings":
        multi = header["geometry"][1]
        assert multi["type"] == int(shapely.GeometryType.MULTIPOLYGON)
        parts = rings + 8 * sum(group["offsets"]) + 8 * multi["rows"] + 16 * multi["coords"] + 8 * multi["offsets"][0]
        data = data[: parts + 8] + struct.pack("<q", 0) + data[parts + 16 :]
    elif damage == "a position twice":  # the group's second geometry given to its first one's feature too
        data = data[:at] + data[at + 8 : at + 16] + data[at + 8 :]
    elif damage == "a position out of range":
        data = data[:at] + struct.pack("<q", header["features"]) + data[at + 8 :]
    elif damage == "a negative count":  # numpy would read a count of -1 as "the rest of the entry"
        coords = re.search(rb'"coords":(\d+)', data).group(1)
        data = data.replace(b'"coords":' + coords, b'"coords":' + b"-1".rjust(len(coords)), 1)
    elif damage == "cut short":
        data = data[: len(data) // 2]
    elif damage == "too long":
        data += b"\0"
    elif damage == "other format":  # a cache entry of another version
        data = data.replace(f'"format":{CACHE_FORMAT}'.encode(), f'"format":{CACHE_FORMAT - 1}'.encode(), 1)
    elif damage == "fewer features":  # the header disagrees with the offsets and the features
        features = re.search(rb'"features":(\d+)', data).group(1)
        data = data.replace(
            b'"features":' + features, b'"features":' + str(int(features) - 1).encode().rjust(len(features)), 1
        )
    else:
        data = damage
    entry.write_bytes(data)
    with caplog.at_level(logging.INFO, logger="threelines.layers.cache"):
        layer = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    assert "cannot be used" in caplog.text
    same_layer(layer, read_layer(spec, manifest.working_crs))
    assert entry.stat().st_size > 1000  # rewritten whole
    assert list(layer_cache_dir.glob("*.tmp")) == []
    same_layer(read_layer_cached(spec, manifest.working_crs, layer_cache_dir), layer)


def test_an_unwritable_folder_only_skips_the_cache(manifest, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    spec = manifest.layers["units"]
    layer = read_layer_cached(spec, manifest.working_crs, blocker / "cache")
    same_layer(layer, read_layer(spec, manifest.working_crs))


def test_repair_warnings_are_told_again_on_a_hit(tmp_path, sample_dir, caplog, layer_cache_dir):
    import geopandas as gpd
    import pyogrio

    shutil.copytree(sample_dir / "layers", tmp_path / "layers")
    bowtie = shapely.Polygon([(115.9, 28.5), (116.0, 28.6), (116.0, 28.5), (115.9, 28.6)])
    frame = gpd.GeoDataFrame({"id": ["x"]}, geometry=[bowtie], crs=4490)
    pyogrio.write_dataframe(frame, tmp_path / "layers" / "bad.gpkg")
    (tmp_path / "layers.yaml").write_text(
        "layers:\n  - {name: r, role: redline, path: layers/bad.gpkg}\n", encoding="utf-8"
    )
    manifest = load_manifest(tmp_path / "layers.yaml")
    spec = manifest.layers["r"]
    with caplog.at_level(logging.WARNING):
        first = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
        told = caplog.text.count("layer 'r': repaired 1 invalid geometry (FID 1)")
        second = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    assert told == 1
    assert caplog.text.count("layer 'r': repaired 1 invalid geometry (FID 1)") == 2
    assert len(entries(layer_cache_dir)) == 1
    assert second.warnings == first.warnings
    np.testing.assert_array_equal(shapely.area(second.geometry), shapely.area(first.geometry))


def test_cli_no_cache_leaves_the_cache_alone(run, tmp_path, sample_dir, layer_cache_dir):
    site = sample_dir / "projects" / "P04.geojson"
    assert run("-q", "batch", site, "-o", tmp_path / "a", "--no-cache").exit_code == 0
    assert entries(layer_cache_dir) == []
    assert run("-q", "batch", site, "-o", tmp_path / "b").exit_code == 0
    assert len(entries(layer_cache_dir)) >= 4
    assert results(tmp_path / "a")[0]["verdict"] == results(tmp_path / "b")[0]["verdict"] == "conditional"


def mixed_layer(spec) -> LayerData:
    """A layer of polygons and multipolygons, with holes, rings either way round, and an empty polygon."""
    clockwise = shapely.Polygon([(0, 0), (0, 10), (10, 10), (10, 0)])
    holed = shapely.Polygon([(20, 0), (30, 0), (30, 10), (20, 10)], [[(22, 2), (22, 4), (24, 4), (24, 2)]])
    parts = shapely.MultiPolygon([holed, shapely.Polygon([(40, 0.1), (50, 0.3), (45, 7.7)])])
    geometry = np.array([clockwise, parts, holed, shapely.Polygon(), shapely.MultiPolygon([clockwise])], dtype=object)
    n = len(geometry)
    return LayerData(spec=spec, geometry=geometry, ids=np.array([f"f{i}" for i in range(n)], dtype=object),
                     names=np.array([None] * n, dtype=object), classes=None,
                     attributes=[{"i": i} for i in range(n)], warnings=["noted"])  # fmt: skip


def test_geometries_of_every_kind_come_back_as_they_were(manifest, layer_cache_dir, monkeypatch):
    spec = manifest.layers["redline"]
    layer = mixed_layer(spec)
    monkeypatch.setattr(cache, "read_layer", lambda *_: layer)
    assert read_layer_cached(spec, manifest.working_crs, layer_cache_dir) is layer  # a miss: written
    monkeypatch.setattr(cache, "read_layer", None)  # a hit cannot read the layer
    again = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    same_layer(again, layer)
    assert shapely.is_ccw(shapely.get_exterior_ring(again.geometry[0])) == shapely.is_ccw(
        shapely.get_exterior_ring(layer.geometry[0])
    )
    assert again.warnings == ["noted"]
    assert again.attributes == layer.attributes


def every_kind_layer(spec) -> LayerData:
    """:func:`mixed_layer`'s polygons with points, lines and their multi forms among them, in no order of type."""
    polygons = mixed_layer(spec).geometry
    others = [shapely.Point(1, 2), shapely.LineString([(0, 0), (3, 1), (4, 4)]), shapely.MultiPoint([(5, 5), (6, 7)]),
              shapely.MultiLineString([[(0, 0), (1, 1)], [(2, 2), (3, 5), (9, 9)]]), shapely.Point(-3, 0.5)]  # fmt: skip
    # Empty ones after the others of their type: a slice may hold nothing else.
    empty = [shapely.LineString(), shapely.MultiPoint(), shapely.MultiLineString(), shapely.MultiPolygon()]
    geometry = np.array([g for pair in zip(polygons, others, strict=True) for g in pair] + empty, dtype=object)
    n = len(geometry)
    return LayerData(spec=spec, geometry=geometry, ids=np.array([f"f{i}" for i in range(n)], dtype=object),
                     names=np.array([f"n{i}" for i in range(n)], dtype=object), classes=None,
                     attributes=[{"i": i} for i in range(n)], warnings=[])  # fmt: skip


@pytest.mark.parametrize("slice_coords", [1, 3, 7, cache.SLICE_COORDS])
def test_geometries_read_a_slice_at_a_time_come_back_as_they_were(manifest, layer_cache_dir, monkeypatch,
                                                                  slice_coords):  # fmt: skip
    spec = manifest.layers["redline"]
    layer = every_kind_layer(spec)
    monkeypatch.setattr(cache, "read_layer", lambda *_: layer)
    read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    monkeypatch.setattr(cache, "read_layer", None)
    monkeypatch.setattr(cache, "SLICE_COORDS", slice_coords)  # slices of one feature each, of several, of all
    same_layer(read_layer_cached(spec, manifest.working_crs, layer_cache_dir), layer)


def test_an_entry_is_read_without_a_copy_of_it_in_memory(manifest, layer_cache_dir, monkeypatch):
    import tracemalloc

    spec = manifest.layers["redline"]
    rings = [shapely.Polygon(shapely.get_coordinates(shapely.Point(i, 0).buffer(0.4, 250))) for i in range(200)]
    layer = LayerData(spec=spec, geometry=np.array(rings, dtype=object), ids=np.arange(200).astype(object),
                      names=np.full(200, None, dtype=object), classes=None, attributes=[{}] * 200, warnings=[])  # fmt: skip
    monkeypatch.setattr(cache, "read_layer", lambda *_: layer)
    read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    (entry,) = layer_cache_dir.glob("*.layer")
    monkeypatch.setattr(cache, "read_layer", None)
    monkeypatch.setattr(cache, "SLICE_COORDS", 5_000)  # 80 kB of the entry's 3.2 MB of coordinates at a time
    tracemalloc.start()
    try:
        again = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    same_layer(again, layer)
    assert entry.stat().st_size > 3_000_000
    assert peak < 600_000  # read whole, the entry alone was 3.2 MB


def test_geometries_the_arrays_cannot_hold_are_not_cached(manifest, layer_cache_dir, monkeypatch, caplog):
    spec = manifest.layers["redline"]
    layer = mixed_layer(spec)
    layer.geometry[2] = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.Point(5, 5)])
    monkeypatch.setattr(cache, "read_layer", lambda *_: layer)
    with caplog.at_level(logging.INFO, logger="threelines.layers.cache"):
        assert read_layer_cached(spec, manifest.working_crs, layer_cache_dir) is layer
    assert "cannot write the cache entry" in caplog.text
    assert entries(layer_cache_dir) == []
    assert list(layer_cache_dir.glob("*.tmp")) == []


def test_an_entry_of_the_former_format_is_not_read(manifest, layer_cache_dir, monkeypatch):
    spec = manifest.layers["units"]
    monkeypatch.setattr(cache, "CACHE_FORMAT", CACHE_FORMAT - 1)
    read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    (old,) = entries(layer_cache_dir)
    monkeypatch.setattr(cache, "CACHE_FORMAT", CACHE_FORMAT)
    layer = read_layer_cached(spec, manifest.working_crs, layer_cache_dir)
    assert len(entries(layer_cache_dir)) == 2
    assert old in entries(layer_cache_dir)
    same_layer(layer, read_layer(spec, manifest.working_crs))
