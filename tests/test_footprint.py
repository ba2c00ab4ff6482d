"""Footprint input: formats, attributes, and every bad input as one clear line with exit 2."""

from __future__ import annotations

import json

import geopandas as gpd
import pyogrio
import pytest
import shapely

from threelines.errors import FootprintError
from threelines.input.footprint import read_projects


@pytest.mark.parametrize(
    ("name", "driver"), [("site.geojson", "GeoJSON"), ("site.gpkg", "GPKG"), ("site.shp", "ESRI Shapefile")]
)
def test_formats_give_the_same_result(run, write_project, name, driver):
    path = write_project("P02", crs="EPSG:4527", name=name, driver=driver, columns=["id", "name", "industry", "kind"])
    result = run("screen", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "reject"
    assert doc["triggers"][0]["overlap_m2"] == pytest.approx(64693, rel=1e-3)
    assert doc["project"]["name"] == "湿地生态旅游度假村项目"


def test_gbk_shapefile_needs_and_takes_encoding(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id == "P05"][["id", "name", "industry", "geometry"]]
    path = tmp_path / "gbk.shp"
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    result = run("screen", path, "--encoding", "GBK", "--format", "json")
    assert json.loads(result.stdout)["project"]["name"] == "年产5万吨有机化学原料项目"


def test_gpkg_layer_syntax(run, sample_dir):
    result = run("screen", f"{sample_dir / 'projects.gpkg'}:projects", "--format", "json")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 13


def test_no_crs_is_refused_with_the_fix(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id == "P01"][["id", "industry", "geometry"]].to_crs(4490)
    frame = frame.set_crs(None, allow_override=True)
    path = tmp_path / "nocrs.shp"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.write_dataframe(frame, path)
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {path}: has no CRS (a shapefile needs its .prj); say which it is with --crs, e.g. --crs 4490 "
        "(CGCS2000 lon/lat) or --crs 4527 (CGCS2000 Gauss-Kruger zone 39, prefixed easting)\n"
    )
    fixed = run("screen", path, "--crs", "4490", "--format", "json")
    assert fixed.exit_code == 0
    assert json.loads(fixed.stdout)["verdict"] == "pass"


def _without_crs(frame, path):
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.write_dataframe(frame.set_crs(None, allow_override=True), path)
    return path


def test_prefixed_gauss_kruger_eastings_need_no_crs(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id == "P02"][["id", "industry", "geometry"]].to_crs(4527)
    path = _without_crs(frame, tmp_path / "gk.shp")
    result = run("screen", path, "--format", "json")
    assert result.exit_code == 0
    assert (
        "the eastings carry zone prefix 39, so they are read as CGCS2000 / 3-degree Gauss-Kruger zone 39 (EPSG:4527)"
        in (result.stderr)
    )
    assert json.loads(result.stdout)["triggers"][0]["overlap_m2"] == pytest.approx(64693, rel=1e-3)


@pytest.mark.parametrize(
    ("crs", "swap", "message"),
    [
        (4548, False, "eastings like 39"),
        (4527, True, "the eastings and northings look swapped"),
        (4490, True, "latitude and longitude look swapped"),
    ],
    ids=["unprefixed easting", "survey X/Y swapped", "lat/lon swapped"],
)
def test_classic_coordinate_mistakes(run, tmp_path, sample_projects, crs, swap, message):
    frame = sample_projects[sample_projects.id == "P01"][["id", "geometry"]].to_crs(crs)
    if swap:
        frame["geometry"] = shapely.transform(frame.geometry.values, lambda xy: xy[:, ::-1])
    path = _without_crs(frame, tmp_path / "site.shp")
    result = run("screen", path)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr or "carry no zone number" in result.stderr


def test_projected_metres_labelled_as_degrees(run, tmp_path, sample_projects):
    frame = (
        sample_projects[sample_projects.id == "P01"][["id", "geometry"]].to_crs(4527).set_crs(4490, allow_override=True)
    )
    path = tmp_path / "wrong.gpkg"
    pyogrio.write_dataframe(frame, path)
    result = run("screen", path)
    assert result.exit_code == 2
    assert "are metres, not degrees, but they are said to be in China Geodetic Coordinate System 2000" in result.stderr


def test_outside_china(run, tmp_path):
    path = tmp_path / "paris.geojson"
    pyogrio.write_dataframe(
        gpd.GeoDataFrame({"id": ["x"]}, geometry=[shapely.box(2.3, 48.8, 2.31, 48.81)], crs=4326), path
    )
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: 2.3000, 48.8000 lies outside China; check the coordinates and --crs\n"


@pytest.mark.parametrize("offset", ["gcj02", "bd09"])
def test_web_map_coordinates(run, tmp_path, sample_projects, offset):
    from threelines.input.crs import gcj02_to_bd09, wgs84_to_gcj02

    frame = sample_projects[sample_projects.id == "P02"][["id", "industry", "geometry"]].to_crs(4326)
    forward = wgs84_to_gcj02 if offset == "gcj02" else (lambda xy: gcj02_to_bd09(wgs84_to_gcj02(xy)))
    frame["geometry"] = shapely.transform(frame.geometry.values, forward)
    path = tmp_path / "web.geojson"
    pyogrio.write_dataframe(frame, path)
    as_wgs84 = json.loads(run("screen", path, "--format", "json").stdout)
    converted = json.loads(run("screen", path, "--crs", offset, "--format", "json").stdout)
    assert converted["triggers"][0]["overlap_m2"] == pytest.approx(64693, rel=1e-3)
    # read as if it were WGS84, the site is hundreds of metres off and the overlap differs
    assert as_wgs84["triggers"] == [] or as_wgs84["triggers"][0]["overlap_m2"] != pytest.approx(64693, rel=1e-2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read it as a vector file"),
        (b"\x00\x01garbage\xff" * 50, "cannot read it as a vector file"),
        (b'{"type": "FeatureCollection", "features": []}', "has no features; a footprint file needs at least one"),
    ],
    ids=["empty", "garbage", "no features"],
)
def test_unreadable_files(run, tmp_path, content, message):
    path = tmp_path / "site.geojson"
    path.write_bytes(content)
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_missing_file(run, tmp_path):
    result = run("screen", tmp_path / "nothere.shp")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nothere.shp'}: file not found\n"


def test_multi_layer_gpkg_needs_a_layer(run, tmp_path, sample_projects):
    path = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(sample_projects.iloc[:1], path, layer="a")
    pyogrio.write_dataframe(sample_projects.iloc[1:2], path, layer="b", append=True)
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: holds 2 layers (a, b); pick one as {path}:LAYER\n"


def test_one_bad_feature_is_reported_and_the_rest_screened(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id.isin(["P01", "P02", "P05"])].copy()
    frame.loc[frame.id == "P02", "industry"] = "X9999"
    frame.loc[frame.id == "P05", "geometry"] = shapely.Polygon()
    path = tmp_path / "three.gpkg"
    pyogrio.write_dataframe(frame, path)
    result = run("screen", path, "--format", "json")
    assert result.exit_code == 2
    assert [json.loads(line)["project"]["id"] for line in result.stdout.splitlines()] == ["P01"]
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"Error: {path}: project 'P02': industry 'X9999' is not a GB/T 4754-2017 code")
    assert errors[1] == f"Error: {path}: project 'P05': has an empty geometry; draw the footprint or remove the feature"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("kind", "polygon", "kind 'polygon' is not one of area, linear, point"),
        ("fuel", "木柴", "fuel '木柴' is not known; use one of biomass, coal, diesel"),
        ("emit_nox", "lots", "emit_nox 'lots' is not a number"),
        ("emit_nox", "-1", "emit_nox '-1' must be a number >= 0"),
    ],
)
def test_bad_attribute_values(tmp_path, sample_projects, manifest, column, value, message):
    frame = sample_projects[sample_projects.id == "P01"].copy()
    frame[column] = value
    path = tmp_path / "site.gpkg"
    pyogrio.write_dataframe(frame, path)
    projects = read_projects(path, manifest.working_crs)
    assert len(projects) == 0
    assert projects.problems == [f"{path}: project 'P01': {message}" + projects.problems[0].split(message, 1)[1]]


def test_shapefile_truncated_and_chinese_column_names(tmp_path, sample_projects, manifest):
    frame = sample_projects[sample_projects.id == "P10"][["id", "name", "industry", "geometry"]].copy()
    frame = frame.rename(columns={"name": "项目名称", "industry": "行业代码"})
    frame["water_sour"] = "groundwater"
    path = tmp_path / "site.shp"
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    (project,) = read_projects(path, manifest.working_crs, encoding="GBK").attrs
    assert (project["name"], project["industry"], project["water_source"]) == (
        "饮料生产基地项目",
        "C1524",
        "groundwater",
    )


def test_undecodable_attributes_ask_for_an_encoding(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id == "P10"][["id", "industry", "geometry"]]
    path = tmp_path / "site.shp"
    pyogrio.write_dataframe(frame, path, encoding="UTF-8")
    # A long UTF-8 field name cut to the shapefile's 10 bytes ends in a broken character.
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    second_field = 32 + 32
    dbf[second_field : second_field + 11] = "项目所属".encode()[:10] + b"\x00"
    path.with_suffix(".dbf").write_bytes(bytes(dbf))
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {path}: its attribute names or values are not UTF-8 text; "
        "give the right --encoding (GBK for most Chinese shapefiles)\n"
    )


def test_gbk_shapefile_without_cpg_is_guessed(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id == "P05"][["id", "name", "industry", "geometry"]]
    path = tmp_path / "gbk.shp"
    pyogrio.write_dataframe(frame.rename(columns={"industry": "行业代码"}), path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    doc = json.loads(run("screen", path, "--format", "json").stdout)
    assert (doc["project"]["name"], doc["project"]["industry"], doc["verdict"]) == (
        "年产5万吨有机化学原料项目",
        "C2614",
        "reject",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2614.0, "C2614"), (26, "C26"), (211, None), (1.5, None)],
)
def test_numeric_industry_codes(tmp_path, sample_projects, manifest, value, expected):
    frame = sample_projects[sample_projects.id == "P01"][["id", "geometry"]].copy()
    frame["industry"] = [value]
    path = tmp_path / "site.gpkg"
    pyogrio.write_dataframe(frame, path)
    projects = read_projects(path, manifest.working_crs)
    if expected:
        assert projects.attrs[0]["industry"] == expected
    else:
        assert projects.problems == [
            f"{path}: project 'P01': industry {value!r} is a number that may have lost a leading zero; "
            "store the column as text (e.g. '0211')"
        ]


@pytest.mark.parametrize(
    ("geom", "message"),
    [
        (shapely.LineString([(116.0, 28.4), (116.0, 28.4)]), "is a line of zero length; check its vertices"),
        (shapely.Polygon([(116.0, 28.4), (116.01, 28.41), (116.0, 28.4)]), "is a polygon with no area"),
    ],
    ids=["zero-length line", "flat polygon"],
)
def test_degenerate_footprints(tmp_path, manifest, geom, message):
    path = tmp_path / "site.geojson"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"id": ["d"], "width": [10.0]}, geometry=[geom], crs=4490), path)
    projects = read_projects(path, manifest.working_crs)
    assert projects.problems[0].startswith(f"{path}: project 'd': {message}")


def test_corner_table_with_too_few_points(run, tmp_path):
    path = tmp_path / "corners.csv"
    path.write_text("X,Y\n3150000,39400000\n", encoding="utf-8")
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:2: parcel '1' ring '1' has 1 point(s); a polygon needs at least 3\n"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # GDAL's own warning
def test_unclosed_ring_is_closed_with_a_warning(run, tmp_path):
    path = tmp_path / "open.geojson"
    path.write_text(
        '{"type": "Feature", "properties": {"id": "o"}, "geometry": {"type": "Polygon", '
        '"coordinates": [[[116.05, 28.55], [116.06, 28.55], [116.06, 28.56], [116.05, 28.56]]]}}',
        encoding="utf-8",
    )
    result = run("screen", path, "--format", "json")
    assert result.exit_code == 0
    assert "closed rings that were not closed" in result.stderr
    assert json.loads(result.stdout)["project"]["area_m2"] == pytest.approx(1.08e6, rel=0.02)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ring_of_two_points_is_an_error(run, tmp_path):
    path = tmp_path / "open.geojson"
    path.write_text(
        '{"type": "Feature", "properties": {"id": "o"}, '
        '"geometry": {"type": "Polygon", "coordinates": [[[116.05, 28.55], [116.051, 28.55]]]}}',
        encoding="utf-8",
    )
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(f"Error: {path}: ")


def test_chinese_attribute_words_are_understood(tmp_path, sample_projects, manifest):
    frame = sample_projects[sample_projects.id == "P10"].copy()
    frame["water_source"] = "地下水"
    frame["fuel"] = "天然气"
    path = tmp_path / "site.gpkg"
    pyogrio.write_dataframe(frame, path)
    (project,) = read_projects(path, manifest.working_crs).attrs
    assert (project["water_source"], project["fuel"]) == ("groundwater", "gas")


def test_line_needs_a_width(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id == "P03"][["id", "geometry"]]
    path = tmp_path / "road.geojson"
    pyogrio.write_dataframe(frame, path)
    result = run("screen", path)
    assert result.exit_code == 2
    assert "project 'P03': is a line and needs a width to become a footprint; give a 'width' column or --width" in (
        result.stderr
    )
    result = run("screen", path, "--width", "30", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["project"]["kind"] == "linear"
    assert doc["verdict"] == "conditional"


def test_unknown_industry_option_suggests_codes(run, sample_dir):
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--industry", "C2699")
    assert result.exit_code == 2
    assert "Invalid value for '--industry': industry code 'C2699' is not a GB/T 4754-2017 code; did you mean C26" in (
        result.stderr
    )


def test_invalid_polygon_is_repaired_with_a_warning(tmp_path, manifest, caplog):
    # A bow-tie drawn over P01's site.
    x, y = 116.0, 28.4
    bowtie = shapely.Polygon([(x, y), (x + 0.01, y + 0.01), (x + 0.01, y), (x, y + 0.01)])
    path = tmp_path / "bowtie.geojson"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"id": ["B"]}, geometry=[bowtie], crs=4490), path)
    with caplog.at_level("WARNING"):
        projects = read_projects(path, manifest.working_crs)
    assert shapely.is_valid(projects.geometry[0])
    assert projects.area_m2[0] > 0
    assert "project 'B': repaired an invalid polygon (Self-intersection" in caplog.text


def test_footprint_error_is_an_exception_for_the_library(tmp_path, manifest):
    with pytest.raises(FootprintError, match="file not found"):
        read_projects(tmp_path / "x.shp", manifest.working_crs)


def test_coordinates_that_do_not_fit_the_crs(run, write_project):
    # The P01 site in unprefixed Gauss-Kruger metres (EPSG:4548) declared as prefixed (EPSG:4527).
    path = write_project("P01", crs="EPSG:4548", name="site.gpkg", columns=["id", "industry"])
    result = run("screen", path, "--crs", "4527")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"Error: {path}: project 'P01': its coordinates cannot be placed in "
        "CGCS2000 / 3-degree Gauss-Kruger zone 39 (EPSG:4527); check the CRS (--crs), "
        "e.g. a prefixed Gauss-Kruger easting needs 4513-4533, an unprefixed one 4534-4554"
    )


def test_footprint_outside_the_jurisdiction_is_an_error(run, write_project, sample_dir):
    # The P01 site declared in the neighbouring zone 38 lands 300 km west, outside the county.
    path = write_project("P01", crs="EPSG:4548", name="site.gpkg", columns=["id", "industry"])
    result = run("screen", path, "--crs", "4547")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "the file says its CRS is CGCS2000 / 3-degree Gauss-Kruger CM 117E; using --crs" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: {path}: project 'P01': lies outside the layers of 南昌县 (sample, synthetic layers) "
        f"({sample_dir / 'layers.yaml'}); give the layers of its jurisdiction with --layers, or check its CRS (--crs)"
    )


def test_footprint_partly_outside_the_jurisdiction_warns(run, tmp_path, sample_dir):
    county = pyogrio.read_dataframe(sample_dir / "layers" / "county.gpkg").to_crs(4548).geometry.iloc[0]
    # A square astride the county's western boundary, on its westernmost vertex.
    x0, y0 = min(county.exterior.coords if county.geom_type == "Polygon" else county.geoms[0].exterior.coords)
    site = gpd.GeoDataFrame(
        {"id": ["edge"], "industry": ["G5920"]},
        geometry=[shapely.box(x0 - 200, y0 - 200, x0 + 200, y0 + 200)],
        crs=4548,
    )
    path = tmp_path / "edge.gpkg"
    pyogrio.write_dataframe(site, path)
    result = run("screen", path, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    (warning,) = doc["warnings"]
    share = sum(u["share"] for u in doc["units"])
    assert 0 < share < 1
    assert warning.startswith(f"{1 - share:.1%} of the footprint lies outside every control unit of layer 'units'")


def test_inside_the_layers_box_but_outside_every_unit(run, tmp_path, sample_dir):
    # The county's bounding box has empty corners: the north-west one is in no unit.
    site = gpd.GeoDataFrame({"id": ["nw"]}, geometry=[shapely.box(115.82, 28.94, 115.83, 28.95)], crs=4490)
    path = tmp_path / "nw.geojson"
    pyogrio.write_dataframe(site, path)
    result = run("screen", path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {path}: project 'nw': lies outside every control unit of 南昌县 (sample, synthetic layers) "
        f"({sample_dir / 'layers.yaml'}); give the layers of its jurisdiction with --layers, or check its CRS (--crs)\n"
    )


def test_manifest_default_line_width_by_industry(run, tmp_path, sample_projects):
    frame = sample_projects[sample_projects.id == "P03"][["id", "industry", "geometry"]]  # E4812, no width
    path = tmp_path / "road.geojson"
    pyogrio.write_dataframe(frame, path)
    result = run("screen", path, "--format", "json")
    assert result.exit_code == 0
    assert "a line without a width; buffered by the manifest's default of 30 m for E481" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["project"]["width"] == 30
    assert doc["project"]["area_m2"] == pytest.approx(6000 * 30, rel=2e-3)
    assert doc["verdict"] == "conditional"
    explicit = json.loads(run("screen", path, "--width", "12", "--format", "json").stdout)
    assert explicit["project"]["area_m2"] == pytest.approx(6000 * 12, rel=2e-3)


def test_plain_polygons_taken_over_the_array_equal_the_footprints_one_by_one(manifest):
    import geopandas as gpd
    import numpy as np

    from threelines.densify import densify
    from threelines.input.footprint import projects_from_frame
    from threelines.input.placing import one_footprint

    box = shapely.box(116.0, 28.5, 116.01, 28.51)
    geoms = [
        box,
        shapely.MultiPolygon([box]),
        shapely.MultiPolygon([box, shapely.box(116.02, 28.5, 116.03, 28.51)]),
        shapely.Polygon([(116.0, 28.5), (116.01, 28.51), (116.01, 28.5), (116.0, 28.51)]),  # a bow-tie
        shapely.LineString([(116.0, 28.5), (116.01, 28.5)]),
        shapely.Point(116.0, 28.5),
    ]
    frame = gpd.GeoDataFrame({"width": [None, None, None, None, 30.0, None]}, geometry=geoms, crs=4490)
    projects = projects_from_frame(frame, manifest.working_crs)
    # Long edges are densified in the source CRS first, as projects_from_frame does.
    dense = gpd.GeoSeries(densify(np.asarray(frame.geometry.array, dtype=object), frame.crs), crs=frame.crs)
    native = np.asarray(dense.to_crs(manifest.working_crs).array, dtype=object)
    for attrs, got, geom in zip(projects.attrs, projects.geometry, native, strict=True):
        project = {**attrs, "kind": None}
        want = one_footprint(geom, project, "t", {})
        assert shapely.to_wkb(got) == shapely.to_wkb(want)
        assert attrs["kind"] == project["kind"]
    assert [g.geom_type for g in projects.geometry] == [
        "Polygon",
        "Polygon",
        "MultiPolygon",
        "MultiPolygon",
        "Polygon",
        "Point",
    ]
