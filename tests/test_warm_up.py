"""A worker's warm-up: what every chunk shares is made before the first chunk, which then finds it made."""

from __future__ import annotations

import pyproj
import pytest

from threelines.batch import workers
from threelines.engine import screen, warm
from threelines.input import crs
from threelines.input.footprint import read_projects
from threelines.layers import rasters
from threelines.layers.manifest import load_manifest
from threelines.rules import load_rules


@pytest.fixture
def fresh(monkeypatch, sample_dir):
    """A manifest and rules of their own, with no transformer, extent box or raster kept yet; and a builds count."""
    for module, name in ((crs, "_TRANSFORMERS"), (crs, "_BY_TEXT"), (screen, "_EXTENT_BOXES"), (rasters, "_RASTERS")):
        monkeypatch.setattr(module, name, {})
    monkeypatch.setattr(workers, "_WORKER", {})
    built = []
    plain = pyproj.Transformer.from_crs

    def counted(*args, **kwargs):
        built.append(args[:2])
        return plain(*args, **kwargs)

    monkeypatch.setattr(pyproj.Transformer, "from_crs", counted)
    manifest = load_manifest(sample_dir / "layers.yaml")
    rules = load_rules(sample_dir / "rules.yaml", manifest)
    projects = read_projects(sample_dir / "projects.gpkg", manifest.working_crs)
    task = (projects, projects.source, [f"{i:032x}" for i in range(len(projects))], None)
    return manifest, rules, task, built


def test_after_preload_a_chunk_builds_no_transformer_and_reads_no_raster(fresh, tmp_path):
    manifest, rules, task, built = fresh
    assert any(rule.test == "zonal" for rule in rules.rules)  # the sample has a raster to warm
    workers.init_worker(manifest, rules, tmp_path)
    workers.preload()
    assert len(built) >= 2  # the layers' own, the extent's and the raster's (working to the raster's CRS)
    assert len(rasters._RASTERS) == 1
    built.clear()
    kept = dict(rasters._RASTERS)
    layers = workers._WORKER["layers"]
    assert all("tree" in vars(layer) for layer in layers.values())  # spatial indexes built
    made = {(name, repr(key)): value for name, layer in layers.items() for key, value in layer.derived.items()}
    assert {key for _, key in made} >= {"'texts'", "('zone codes',)"}
    assert sum(key.startswith("('far'") or key.startswith("('codes'") for _, key in made) > 0
    workers.screen_chunk(task)
    assert built == []  # nothing more built
    assert kept == rasters._RASTERS
    for (name, key), value in made.items():  # found made, not made again
        (same,) = [v for k, v in layers[name].derived.items() if repr(k) == key]
        assert same is value


def test_preload_gives_the_records_screening_cold_gives(fresh, tmp_path, monkeypatch):
    manifest, rules, task, built = fresh
    workers.init_worker(manifest, rules, tmp_path)
    cold = workers.screen_chunk(task)
    assert built  # without the warm-up, the chunk builds them
    for module, name in ((crs, "_TRANSFORMERS"), (crs, "_BY_TEXT"), (screen, "_EXTENT_BOXES"), (rasters, "_RASTERS")):
        monkeypatch.setattr(module, name, {})
    workers.init_worker(manifest, rules, tmp_path)
    workers.preload()
    warm_records = workers.screen_chunk(task)
    assert warm_records.text == cold.text
    assert warm_records.rows == cold.rows


def test_what_cannot_be_made_ahead_is_left_for_the_first_chunk(fresh, tmp_path, monkeypatch):
    manifest, rules, task, _ = fresh
    opened = rasters.open_raster

    def unreadable(spec, folder=None):
        raise OSError(f"{spec.path}: unreadable")

    monkeypatch.setattr(rasters, "open_raster", unreadable)
    workers.init_worker(manifest, rules, tmp_path)
    workers.preload()  # does not raise
    assert rasters._RASTERS == {}
    assert len(screen._EXTENT_BOXES) == 1  # the rest made all the same
    assert all("tree" in vars(layer) for layer in workers._WORKER["layers"].values())
    monkeypatch.setattr(rasters, "open_raster", opened)
    workers.screen_chunk(task)  # the first chunk opens it
    assert len(rasters._RASTERS) == 1


def test_warm_up_skips_layers_not_read(fresh, tmp_path):
    manifest, rules, _, built = fresh
    warm.warm_up(manifest, rules, {}, tmp_path)
    assert len(built) == 2  # the extent's (CGCS2000 to working) and the raster's (working to its CRS)
    assert len(rasters._RASTERS) == 1


def test_a_warm_up_that_fails_never_stops_the_worker(fresh, tmp_path, monkeypatch):
    manifest, rules, task, _ = fresh

    def failing(*args):
        raise RuntimeError("a step the warm-up did not foresee")

    monkeypatch.setattr(warm, "warm_up", failing)
    workers.init_worker(manifest, rules, tmp_path)
    workers.preload()  # logged, not raised: the loader goes on to fork its workers
    records = workers.screen_chunk(task)
    assert len(records) == len(task[0])
    assert all(b'"verdict"' in line for line in records.lines(range(len(records))))


def test_the_loader_reads_with_the_collector_held_then_restores_it(fresh, tmp_path, monkeypatch):
    import gc

    manifest, rules, _, _ = fresh
    seen = []
    plain = warm.warm_up

    def watched(*args):  # the last step of the loader's reading
        seen.append(gc.isenabled())
        return plain(*args)

    monkeypatch.setattr(warm, "warm_up", watched)
    assert gc.isenabled()
    workers._prepared((manifest, rules, tmp_path, "en", None))
    assert seen == [False]  # no collection walks the layers while they are made
    assert gc.isenabled()  # and the workers forked next collect as before
    assert set(workers._WORKER["layers"]) >= {"redline", "units"}
