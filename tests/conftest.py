"""Shared fixtures: the bundled sample, a CLI runner, and writers for test footprints."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from click.testing import CliRunner

from threelines.cli.main import cli
from threelines.layers.manifest import load_manifest
from threelines.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(autouse=True)
def layer_cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """Point the prepared-layer cache at a temporary folder: tests never touch the user's cache."""
    folder = tmp_path_factory.mktemp("layer-cache")
    monkeypatch.setenv("THREELINES_CACHE", str(folder))
    return folder


@pytest.fixture(autouse=True)
def sample_layers(monkeypatch) -> Path:
    """Name the sample as the configured layers: tests screen it on purpose (reports still carry its mark).

    Tests of the defaults themselves remove the variable.
    """
    monkeypatch.setenv("THREELINES_LAYERS", str(SAMPLE / "layers.yaml"))
    monkeypatch.delenv("THREELINES_RULES", raising=False)
    return SAMPLE / "layers.yaml"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def manifest():
    return load_manifest(SAMPLE / "layers.yaml")


@pytest.fixture(scope="session")
def ruleset(manifest):
    return load_rules(SAMPLE / "rules.yaml", manifest)


@pytest.fixture(scope="session")
def sample_projects() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(SAMPLE / "projects.gpkg", layer="projects")


@pytest.fixture(scope="session")
def contract() -> dict:
    return json.loads((ROOT / "tests" / "data" / "verdict.schema.json").read_text("utf-8"))


@pytest.fixture
def run():
    """Invoke the CLI; return the result (stdout and stderr kept apart)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def write_project(tmp_path, sample_projects):
    """Write one sample project to a file in a given CRS and driver; return its path."""

    def write(pid: str, crs: str = "EPSG:4490", name: str = "site.geojson", columns=None, **kwargs) -> Path:
        frame = sample_projects[sample_projects.id == pid].to_crs(crs)
        if columns is not None:
            frame = frame[[*columns, "geometry"]]
        path = tmp_path / name
        pyogrio.write_dataframe(frame, path, **kwargs)
        return path

    return write
