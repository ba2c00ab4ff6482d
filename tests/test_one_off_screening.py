"""A one-off screening reads small layers whole through the prepared-layer cache, larger ones near the footprints."""

from __future__ import annotations

import geopandas as gpd
import pyogrio

from threelines import screen
from threelines.cachedir import cache_folder
from threelines.engine import screen as screen_module
from threelines.layers.cache import CACHE_SUFFIX


def verdicts(result) -> list:
    return [(v.project["id"], v.verdict, [t.rule for t in v.triggers], v.units) for v in result.verdicts]


def test_small_layers_are_read_whole_once_then_from_the_cache(sample_dir, monkeypatch):
    footprint = gpd.read_file(sample_dir / "projects" / "P02.geojson")
    first = screen(footprint)
    assert len(list(cache_folder().glob(f"*{CACHE_SUFFIX}"))) == 4  # the vector layers the rules use

    def refuse(*args, **kwargs):
        raise AssertionError("a layer file was read")

    monkeypatch.setattr(pyogrio, "read_dataframe", refuse)
    monkeypatch.setattr(pyogrio, "read_info", refuse)
    again = screen(footprint)
    assert verdicts(again) == verdicts(first)
    assert verdicts(first)[0][1] == "reject"


def test_larger_layers_are_read_near_the_footprints(sample_dir, monkeypatch):
    monkeypatch.setattr(screen_module, "WHOLE_LAYERS_BYTES", 1000)
    near = screen(sample_dir / "projects" / "P02.geojson")
    assert list(cache_folder().glob(f"*{CACHE_SUFFIX}")) == []
    monkeypatch.undo()
    assert verdicts(screen(sample_dir / "projects" / "P02.geojson")) == verdicts(near)
