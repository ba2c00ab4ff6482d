"""A batch's layers: read once, by the process that forks the workers, and inherited by them."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from threelines.batch import workers
from threelines.batch.local import run_batch
from threelines.batch.workers import Screener
from threelines.cachedir import cache_folder
from threelines.engine import pairs
from threelines.engine import screen as engine
from threelines.input.footprint import read_projects
from threelines.layers import cache
from threelines.layers.manifest import load_manifest
from threelines.rules import load_rules


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text("utf-8").splitlines()]


@pytest.fixture
def journal(tmp_path, monkeypatch) -> Path:
    """A file where every process notes each layer it reads and each chunk it screens (forked workers keep the patch).

    Each line is ``PID read LAYER`` or ``PID screen``.
    """
    path = tmp_path / "journal.txt"
    read, screen = cache.read_layer_cached, engine.screen_checked

    def note(line: str) -> None:
        with path.open("a", encoding="utf-8") as fh:  # one short appended write: whole, whichever process
            fh.write(f"{os.getpid()} {line}\n")

    def reading(spec, *args, **kwargs):
        note(f"read {spec.name}")
        return read(spec, *args, **kwargs)

    def screening(*args, **kwargs):
        note("screen")
        return screen(*args, **kwargs)

    monkeypatch.setattr(cache, "read_layer_cached", reading)
    monkeypatch.setattr(pairs, "read_layer_cached", reading)
    monkeypatch.setattr(engine, "screen_checked", screening)
    return path


def entries(journal: Path) -> list[tuple[int, str]]:
    return [(int(pid), what) for pid, what in (line.split(" ", 1) for line in journal.read_text("utf-8").splitlines())]


def vector_layers(manifest, ruleset) -> set[str]:
    unit = {manifest.unit_layer.name} if manifest.unit_layer else set()
    return {n for n in {*ruleset.layers(), *unit} if manifest.layers[n].role != "raster"}


def test_workers_inherit_the_layers_read_once(tmp_path, sample_dir, manifest, ruleset, journal):
    two = run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "two", manifest, ruleset, jobs=2, chunk_size=2)
    done = entries(journal)
    reads = Counter(what for pid, what in done if what.startswith("read "))
    assert reads == Counter(f"read {name}" for name in vector_layers(manifest, ruleset))  # each layer once ...
    assert {pid for pid, what in done if what.startswith("read ")} == {os.getpid()}  # ... by this process
    screened_by = {pid for pid, what in done if what == "screen"}
    assert screened_by
    assert os.getpid() not in screened_by  # the workers screened every chunk

    journal.unlink()
    one = run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "one", manifest, ruleset, jobs=1, chunk_size=2)
    assert {pid for pid, _ in entries(journal)} == {os.getpid()}
    assert one.verdicts == two.verdicts
    assert records(tmp_path / "one") == records(tmp_path / "two")


def test_one_chunk_after_all_is_screened_with_the_layers_read_for_the_workers(sample_dir, manifest, ruleset, journal):
    projects = read_projects(sample_dir / "projects.gpkg", manifest.working_crs, line_widths=manifest.line_widths)
    task = (projects, str(sample_dir / "projects.gpkg"), ["-"] * len(projects), None)
    with Screener(manifest, ruleset, 2, cache_folder(), None, None) as screener:
        screener.start()  # several chunks were expected: the layers are read for the workers ...
        (lines,) = screener.map([task])  # ... but one came: screened here, with them
        assert screener.pool is None
    assert len(lines) == len(projects)
    done = entries(journal)
    assert {pid for pid, _ in done} == {os.getpid()}
    assert Counter(what for _, what in done) == Counter(
        ["screen", *(f"read {name}" for name in vector_layers(manifest, ruleset))]
    )
    assert workers._INHERITED == {}


def test_a_layer_that_cannot_be_read_is_each_projects_error_in_the_workers(tmp_path, sample_dir, journal):
    folder = tmp_path / "sample"
    shutil.copytree(sample_dir, folder)
    manifest = load_manifest(folder / "layers.yaml")
    ruleset = load_rules(folder / "rules.yaml", manifest)
    (folder / "layers" / "quality.geojson").write_text('{"type": "FeatureCollection", "features": [', "utf-8")
    result = run_batch([str(folder / "projects.gpkg")], tmp_path / "out", manifest, ruleset, jobs=2, chunk_size=2)
    assert result.errors == 13
    assert not result.verdicts
    for record in records(tmp_path / "out"):
        assert record["error"].startswith(f"layer 'quality': cannot read {folder / 'layers' / 'quality.geojson'}: ")
    done = entries(journal)
    screened_by = {pid for pid, what in done if what == "screen"}
    assert screened_by
    assert os.getpid() not in screened_by
    readers = Counter(pid for pid, what in done if what == "read quality")
    assert readers[os.getpid()] == 1  # this process tried it once, before forking the workers ...
    assert screened_by <= set(readers)  # ... and each worker again, to give its projects the error
