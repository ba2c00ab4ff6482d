"""The committed sample is what the generator makes, and is sound data."""

from __future__ import annotations

import subprocess
import sys

import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from threelines.layers.read import read_layer

FILES = [
    ("layers/county.gpkg", None),
    ("layers/redline.gpkg", None),
    ("layers/units.gpkg", None),
    ("layers/quality.geojson", None),
    ("layers/caps.shp", "GBK"),
    ("projects.gpkg", None),
    ("site/site.shp", None),
]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory, sample_dir):
    out = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [sys.executable, str(sample_dir.parents[1] / "scripts" / "make_sample.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.mark.parametrize(("name", "encoding"), FILES)
def test_generator_is_deterministic(regenerated, sample_dir, name, encoding):
    committed = pyogrio.read_dataframe(sample_dir / name, encoding=encoding)
    fresh = pyogrio.read_dataframe(regenerated / name, encoding=encoding)
    assert_geodataframe_equal(fresh, committed)


def test_raster_is_deterministic(regenerated, sample_dir):
    import rasterio

    with (
        rasterio.open(sample_dir / "layers" / "pm25.tif") as a,
        rasterio.open(regenerated / "layers" / "pm25.tif") as b,
    ):
        assert a.crs == b.crs
        assert a.transform == b.transform
        assert (a.read(1) == b.read(1)).all()
        assert 24 <= a.read(1, masked=True).min() < a.read(1, masked=True).max() <= 44


def test_units_tile_the_county(manifest, sample_dir):
    units = read_layer(manifest.layers["units"], manifest.working_crs)
    county = pyogrio.read_dataframe(sample_dir / "layers" / "county.gpkg").to_crs(manifest.working_crs)
    boundary = county.geometry.iloc[0]
    union = shapely.union_all(units.geometry)
    assert shapely.area(shapely.symmetric_difference(union, boundary)) < 1e-6 * boundary.area
    assert sum(shapely.area(units.geometry)) == pytest.approx(boundary.area, rel=1e-6)  # no overlaps
    assert set(units.classes) == {"priority", "key", "general"}
    assert all(code.startswith("ZH360121") and len(code) == 13 for code in units.ids)
    assert len(set(units.ids)) == len(units.ids)
    parks = [a["name"] for a in units.attributes if a.get("is_park")]
    assert sorted(parks) == ["南昌县向塘工业园重点管控单元", "南昌小蓝经济技术开发区重点管控单元"]


def test_layers_are_valid(manifest, caplog):
    for spec in manifest.layers.values():
        if spec.role == "raster":
            continue
        with caplog.at_level("WARNING"):
            data = read_layer(spec, manifest.working_crs)
        assert len(data) > 0
        assert shapely.is_valid(data.geometry).all()
    assert "repaired" not in caplog.text
