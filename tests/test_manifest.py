"""Manifest loading: a malformed manifest is one clear line naming the file and line, exit 2."""

from __future__ import annotations

import shutil
import textwrap

import geopandas as gpd
import pyogrio
import pytest
import shapely

from threelines.errors import ManifestError
from threelines.layers.manifest import load_manifest
from threelines.layers.read import read_layer


@pytest.fixture
def workdir(tmp_path, sample_dir):
    """A copy of the sample layers where a test may write its own manifest."""
    shutil.copytree(sample_dir / "layers", tmp_path / "layers")
    return tmp_path


def write(workdir, text: str):
    path = workdir / "layers.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_sample_manifest(manifest):
    assert list(manifest.layers) == ["redline", "units", "quality", "caps", "pm25", "county"]
    assert manifest.layers["pm25"].role == "raster"
    assert manifest.unit_layer.name == "units"
    assert manifest.layers["units"].crs.to_epsg() == 4527
    assert manifest.working_crs.is_projected
    assert "Albers" in manifest.working_crs.name


@pytest.mark.parametrize("marked", [True, False])
def test_a_copy_of_the_sample_keeps_its_mark_when_it_says_so(workdir, sample_dir, manifest, marked):
    # The mark goes with the bundled file's path; a copy elsewhere (as layers push writes) says `sample: true`.
    text = (sample_dir / "layers.yaml").read_text("utf-8")
    copy = load_manifest(write(workdir, text + ("sample: true\n" if marked else "")))
    assert manifest.jurisdiction["sample"] == "SAMPLE DATA — synthetic layers"
    unmarked = {k: v for k, v in manifest.jurisdiction.items() if k != "sample"}
    assert copy.jurisdiction == (manifest.jurisdiction if marked else unmarked)


def test_gbk_shapefile_reads_with_encoding(manifest):
    caps = read_layer(manifest.layers["caps"], manifest.working_crs)
    assert sorted(caps.names) == [
        "南昌县东南部浅层地下水超采区",
        "南昌县用水总量控制区",
        "南昌县莲塘镇高污染燃料禁燃区",
    ]


def test_unit_classes_are_normalised(manifest):
    units = read_layer(manifest.layers["units"], manifest.working_crs)
    assert set(units.classes) == {"priority", "key", "general"}
    assert units.attributes[0]["class"] in {"priority", "key", "general"}


CASES = [
    (
        "missing file",
        """
        layers:
          - {name: redline, role: redline, path: layers/nothere.gpkg}
        """,
        "layers.yaml:3: layer 'redline': file layers/nothere.gpkg not found (paths are relative to the manifest)",
    ),
    (
        "unknown role",
        """
        layers:
          - name: redline
            role: red_line
            path: layers/redline.gpkg
        """,
        "layers.yaml:4: layers[0].role: 'red_line' is not one of ['redline', 'unit', 'quality', 'cap', 'raster', 'boundary']",
    ),
    (
        "missing field",
        """
        layers:
          - {name: redline, role: redline, path: layers/redline.gpkg, name_field: title}
        """,
        "layers.yaml:3: layer 'redline': name_field 'title' is not a field of layers/redline.gpkg; fields: id, name, type, area_ha",
    ),
    (
        "unknown key",
        """
        layers:
          - {name: redline, role: redline, path: layers/redline.gpkg, id_fld: id}
        """,
        "layers.yaml:3: layers[0]: Additional properties are not allowed ('id_fld' was unexpected)",
    ),
    (
        "missing key",
        """
        layers:
          - {name: redline, role: redline}
        """,
        "layers.yaml:3: layers[0]: 'path' is a required property",
    ),
    (
        "unit without class field",
        """
        layers:
          - {name: units, role: unit, path: layers/units.gpkg}
        """,
        "layers.yaml:3: layer 'units': a unit layer needs class_field (the column holding the unit class)",
    ),
    (
        "duplicate name",
        """
        layers:
          - {name: a, role: redline, path: layers/redline.gpkg}
          - {name: a, role: cap, path: layers/caps.shp}
        """,
        "layers.yaml:4: layer name 'a' is used twice; names must be unique",
    ),
    (
        "duplicate key",
        """
        layers:
          - name: a
            name: b
            role: redline
            path: layers/redline.gpkg
        """,
        "layers.yaml:4: key 'name' appears twice; keep one",
    ),
    (
        "not yaml",
        """
        layers: [
        """,
        "layers.yaml:3: not valid YAML: expected the node content, but found '<stream end>'",
    ),
    (
        "nul in path",
        """
        layers:
          - {name: r, role: redline, path: "a\\0b.gpkg"}
        """,
        "layers.yaml:3: layer 'r': the path contains a NUL character",
    ),
    (
        "encoding on a geopackage",
        """
        layers:
          - {name: r, role: redline, path: layers/redline.gpkg, encoding: GBK}
        """,
        "layers.yaml:3: layer 'r': 'encoding' is for shapefiles; a GPKG file is UTF-8",
    ),
    (
        "web mercator working crs",
        """
        working_crs: EPSG:3857
        layers:
          - {name: r, role: redline, path: layers/redline.gpkg}
        """,
        "layers.yaml:2: working_crs 'EPSG:3857' (WGS 84 / Pseudo-Mercator) is not an equal-area projection in metres",
    ),
    (
        "kilometre working crs",
        """
        working_crs: "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=km"
        layers:
          - {name: r, role: redline, path: layers/redline.gpkg}
        """,
        "layers.yaml:2: working_crs '+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=km' is not an "
        "equal-area projection in metres",
    ),
    (
        "bad crs",
        """
        layers:
          - {name: redline, role: redline, path: layers/redline.gpkg, crs: "EPSG:99999"}
        """,
        "layers.yaml:3: layer 'redline': crs: 'EPSG:99999' is not a CRS pyproj understands",
    ),
]


@pytest.mark.parametrize(("label", "text", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_manifest(workdir, label, text, message):
    path = write(workdir, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path.parent}/{message}")
    assert "\n" not in str(info.value)


def test_equal_area_working_crs_is_accepted(workdir):
    path = write(
        workdir,
        """
        working_crs: "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m"
        layers:
          - {name: r, role: redline, path: layers/redline.gpkg}
        """,
    )
    assert load_manifest(path).working_crs.coordinate_operation.method_name == "Albers Equal Area"


def test_line_layer_is_refused(workdir):
    frame = gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.LineString([(115.9, 28.5), (116.0, 28.6)])], crs=4490)
    pyogrio.write_dataframe(frame, workdir / "layers" / "lines.gpkg")
    path = write(workdir, "layers:\n  - {name: r, role: redline, path: layers/lines.gpkg}\n")
    with pytest.raises(ManifestError, match="holds LineString geometries; layers must be polygons"):
        load_manifest(path)


def test_gbk_layer_without_cpg_is_guessed(workdir):
    # The sample's caps.shp is GBK with no .cpg: without 'encoding' the bytes decide.
    path = write(workdir, "layers:\n  - {name: c, role: cap, path: layers/caps.shp, name_field: name}\n")
    manifest = load_manifest(path)
    assert manifest.layers["c"].encoding == "GB18030"
    assert "南昌县莲塘镇高污染燃料禁燃区" in read_layer(manifest.layers["c"], manifest.working_crs).names


def test_layer_without_crs_needs_one(workdir):
    frame = gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.box(115.9, 28.5, 116.0, 28.6)])
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.write_dataframe(frame, workdir / "layers" / "nocrs.shp")
    path = write(workdir, "layers:\n  - {name: r, role: redline, path: layers/nocrs.shp}\n")
    with pytest.raises(ManifestError, match=r"nocrs.shp has no CRS; add 'crs: EPSG:4490' \(or the right code\)"):
        load_manifest(path)
    path = write(workdir, "layers:\n  - {name: r, role: redline, path: layers/nocrs.shp, crs: 4490}\n")
    assert load_manifest(path).layers["r"].crs.to_epsg() == 4490


def test_unknown_unit_class_names_the_unit(workdir):
    frame = gpd.GeoDataFrame(
        {"code": ["ZH36012110001"], "cls": ["优先"]}, geometry=[shapely.box(115.9, 28.5, 116.0, 28.6)], crs=4490
    )
    pyogrio.write_dataframe(frame, workdir / "layers" / "u.gpkg")
    path = write(workdir, "layers:\n  - {name: u, role: unit, path: layers/u.gpkg, id_field: code, class_field: cls}\n")
    manifest = load_manifest(path)
    with pytest.raises(ManifestError, match="unit 'ZH36012110001' has class '优先', which is not one of priority"):
        read_layer(manifest.layers["u"], manifest.working_crs)
    path = write(
        workdir,
        "layers:\n  - {name: u, role: unit, path: layers/u.gpkg, id_field: code, class_field: cls,"
        " class_map: {优先: priority}}\n",
    )
    manifest = load_manifest(path)
    assert list(read_layer(manifest.layers["u"], manifest.working_crs).classes) == ["priority"]


def test_invalid_layer_polygon_is_repaired_with_a_warning(workdir, caplog):
    bowtie = shapely.Polygon([(115.9, 28.5), (116.0, 28.6), (116.0, 28.5), (115.9, 28.6)])
    frame = gpd.GeoDataFrame({"id": ["x"]}, geometry=[bowtie], crs=4490)
    pyogrio.write_dataframe(frame, workdir / "layers" / "bad.gpkg")
    manifest = load_manifest(write(workdir, "layers:\n  - {name: r, role: redline, path: layers/bad.gpkg}\n"))
    with caplog.at_level("WARNING"):
        data = read_layer(manifest.layers["r"], manifest.working_crs)
    assert shapely.is_valid(data.geometry).all()
    assert data.geometry[0].area > 0
    assert "layer 'r': repaired 1 invalid geometry (FID 1)" in caplog.text


def test_cli_reports_a_bad_manifest_in_one_line(run, workdir, sample_dir):
    path = write(workdir, "layers:\n  - {name: redline, role: red_line, path: layers/redline.gpkg}\n")
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--layers", path)
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: {path}:2: layers[0].role: 'red_line' is not one of ['redline', 'unit', 'quality', 'cap', 'raster', 'boundary']\n"
    )
    assert result.stdout == ""


def test_empty_values_are_absent_from_feature_records(workdir):
    import pandas as pd

    frame = gpd.GeoDataFrame(
        {"id": ["a", "b"], "approved": pd.to_datetime(["2020-05-01", None]), "cap": [1, None]},
        geometry=[shapely.box(115.9, 28.5, 116.0, 28.6), shapely.box(116.0, 28.5, 116.1, 28.6)],
        crs=4490,
    )
    pyogrio.write_dataframe(frame, workdir / "layers" / "dated.gpkg")
    manifest = load_manifest(write(workdir, "layers:\n  - {name: q, role: quality, path: layers/dated.gpkg}\n"))
    records = read_layer(manifest.layers["q"], manifest.working_crs).attributes
    assert records[0]["approved"].startswith("2020-05-01")
    assert records[0]["cap"] == 1.0
    assert set(records[1]) == {"id"}


def test_south_up_raster_is_refused(workdir):
    import numpy as np
    import rasterio
    from affine import Affine

    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "float32", "crs": "EPSG:4490",
               "transform": Affine.translation(115.9, 28.5) @ Affine.scale(0.01, 0.01)}  # fmt: skip
    with rasterio.open(workdir / "layers" / "up.tif", "w", **profile) as dst:
        dst.write(np.ones((4, 4), dtype="float32"), 1)
    path = write(workdir, "layers:\n  - {name: g, role: raster, path: layers/up.tif}\n")
    with pytest.raises(ManifestError, match="is not a north-up grid"):
        load_manifest(path)
