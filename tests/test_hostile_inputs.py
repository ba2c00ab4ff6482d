"""Hostile and broken footprint inputs: one true line each, and the good features around them still screened."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from threelines import screen
from threelines.errors import FootprintError
from threelines.input import archives
from threelines.input.footprint import read_projects

# The sample's P05 (organic chemicals outside the park: reject) and P01 (warehousing: pass).
P05_AREA_M2 = 143978.0
P01_AREA_M2 = 119967.0


@pytest.fixture(scope="module")
def sample(sample_projects):
    return sample_projects.set_index("id")


def frame_of(sample, ids, crs=4490, **columns):
    """Sample projects as a GeoDataFrame in a CRS, with extra or replaced columns."""
    frame = sample.loc[list(ids)].reset_index().to_crs(crs)
    for name, values in columns.items():
        frame[name] = values
    return frame


def errors_of(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error: ")]


def one_error(result, *fragments: str) -> str:
    """The run exits 2 with exactly one Error line, holding every fragment, and no traceback."""
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = errors_of(result)
    for fragment in fragments:
        assert fragment in line
    return line


# -- Item 1: attribute ranges are checked at input -------------------------------------------------


def test_huge_radius_on_the_command_line_is_one_line_naming_the_attribute(run):
    result = run("screen", "--wkt", "POINT (116.16 28.70)", "--crs", "4490", "--radius", "1e12")
    one_error(result, "--wkt: project 'wkt': radius 1e+12 m is beyond the plausible limit of 50000 m")
    assert "layer" not in result.stderr


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("width", 1e9, "width 1e+09 m is beyond the plausible limit of 1000 m; give it in m"),
        ("radius", 1e12, "radius 1e+12 m is beyond the plausible limit of 50000 m; give it in m"),
        ("emit_vocs", 2e6, "emit_vocs 2e+06 t/a is beyond the plausible limit of 1e+06 t/a; give it in t/a"),
        ("water_m3", 1e11, "water_m3 1e+11 m3/a is beyond the plausible limit of 1e+10 m3/a; give it in m3/a"),
        ("emit_so2", "inf", "emit_so2 'inf' is not a finite number; give it in t/a"),
    ],
)
def test_an_implausible_number_is_that_projects_error_and_the_others_are_screened(
    tmp_path, sample, column, value, message
):
    frame = frame_of(sample, ["P05", "P01"])
    frame[column] = [value, None]
    path = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(frame, path)
    result = screen(path)
    assert result.problems == [f"{path}: project 'P05': {message}"]
    (good,) = result.verdicts
    assert (good.project["id"], good.verdict) == ("P01", "pass")
    assert good.project["area_m2"] == pytest.approx(P01_AREA_M2, rel=1e-3)


def test_zonal_statistics_never_raise_on_huge_or_unplaceable_footprints(manifest):
    from threelines.layers.zonal import zonal_columns

    spec = manifest.layers["pm25"]
    centre = shapely.Point(0, 0)  # the working CRS is centred on the county
    footprints = np.array(
        [centre.buffer(100), centre.buffer(1e6), centre.buffer(1e12), shapely.Polygon(), shapely.box(0, 0, np.inf, 1)],
        dtype=object,
    )
    value, cells = zonal_columns(footprints, manifest.working_crs, spec, "mean")
    assert cells[0] > 0
    assert np.isfinite(value[0])
    assert cells[1] > 100 * cells[0]  # the whole raster
    assert np.isfinite(value[1])
    assert np.isnan(value[2:]).all()
    assert (cells[2:] == 0).all()


# -- Item 2: one bad feature does not refuse its file ----------------------------------------------


def test_one_feature_outside_the_crs_does_not_refuse_the_other_49(tmp_path, sample):
    p01 = sample.loc[["P01"]].to_crs(4527).geometry.iloc[0]
    geoms = [shapely.affinity.translate(p01, i, 0) for i in range(49)] + [shapely.box(0, 0, 1, 1)]
    frame = gpd.GeoDataFrame({"id": [f"S{i + 1}" for i in range(50)], "industry": "G5920"}, geometry=geoms, crs=4527)
    path = tmp_path / "gk.gpkg"
    pyogrio.write_dataframe(frame, path)
    result = screen(path)
    assert result.problems == [
        f"{path}: project 'S50', feature 49 (0-based): in CGCS2000 / 3-degree Gauss-Kruger zone 39 coordinates such as "
        "0.0, 0.0 cannot be placed on Earth; check --crs (the zone, and whether X and Y are swapped)"
    ]
    assert len(result.verdicts) == 49
    assert {v.verdict for v in result.verdicts} == {"pass"}
    assert [v.project["area_m2"] for v in result.verdicts] == pytest.approx([P01_AREA_M2] * 49, rel=1e-3)


def test_a_swapped_feature_among_good_ones_is_its_own_problem(tmp_path, sample):
    frame = frame_of(sample, ["P05", "P01", "P04"])
    frame.loc[2, "geometry"] = shapely.transform(frame.geometry.iloc[2], lambda xy: xy[:, ::-1])
    path = tmp_path / "three.geojson"
    pyogrio.write_dataframe(frame, path)
    result = screen(path)
    (problem,) = result.problems
    assert problem.startswith(f"{path}: project 'P04', feature 2 (0-based): latitude and longitude look swapped")
    assert [(v.project["id"], v.verdict) for v in result.verdicts] == [("P05", "reject"), ("P01", "pass")]


def test_a_message_numbers_the_feature_as_its_batch_record_does(run, tmp_path, sample):
    frame = frame_of(sample, ["P05", "P01", "P04"])
    frame.loc[2, "geometry"] = shapely.transform(frame.geometry.iloc[2], lambda xy: xy[:, ::-1])
    path = tmp_path / "three.geojson"
    pyogrio.write_dataframe(frame, path)
    run("batch", path, "-o", tmp_path / "out", "-q")
    lines = (tmp_path / "out" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    (refused,) = [record for record in map(json.loads, lines) if "error" in record]
    assert refused["feature"] == 2
    assert "project 'P04', feature 2 (0-based): latitude and longitude look swapped" in refused["error"]


def test_when_most_features_fail_the_file_is_refused_as_a_whole(tmp_path, sample):
    frame = frame_of(sample, ["P05", "P01", "P04"])
    frame.loc[1:, "geometry"] = shapely.transform(frame.geometry.iloc[1:].values, lambda xy: xy[:, ::-1])
    path = tmp_path / "three.geojson"
    pyogrio.write_dataframe(frame, path)
    with pytest.raises(FootprintError) as refused:
        read_projects(path, sample_working_crs())
    assert str(refused.value).startswith(f"{path}: latitude and longitude look swapped (28.")


def sample_working_crs():
    from threelines.layers.manifest import load_manifest
    from threelines.sample import manifest_path

    return load_manifest(manifest_path()).working_crs


def test_a_list_attribute_is_that_features_error(run, tmp_path, sample):
    frame = frame_of(sample, ["P05", "P01", "P04", "P06"], id=["P05", "P01", "P04", "P06"])
    document = json.loads(frame.to_json())
    document["features"][2]["properties"]["industry"] = ["C3311"]
    path = tmp_path / "four.geojson"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = run("screen", path, "--format", "json")
    one_error(result, f"Error: {path}: project 'P04': industry ['C3311'] is not a code; give one code as text")
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(v["project"]["id"], v["verdict"]) for v in verdicts] == [
        ("P05", "reject"), ("P01", "pass"), ("P06", "conditional"),
    ]  # fmt: skip


def test_an_object_attribute_is_that_features_error(tmp_path, sample):
    document = json.loads(frame_of(sample, ["P05", "P01"]).to_json())
    document["features"][0]["properties"]["width"] = {"value": 30}
    path = tmp_path / "two.geojson"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = screen(path)
    assert result.problems == [f"{path}: project 'P05': width {{'value': 30}} is not a number; give one number"]
    assert [v.project["id"] for v in result.verdicts] == ["P01"]


# -- Item 7: an unreadable attribute table is an error ----------------------------------------------


def p05_shapefile(tmp_path, sample) -> Path:
    frame = frame_of(sample, ["P05"])[["id", "name", "industry", "geometry"]]
    path = tmp_path / "site.shp"
    pyogrio.write_dataframe(frame, path)
    return path


def test_a_dbf_of_random_bytes_is_an_error_not_a_silent_pass(run, tmp_path, sample):
    path = p05_shapefile(tmp_path, sample)
    size = path.with_suffix(".dbf").stat().st_size
    path.with_suffix(".dbf").write_bytes(np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes())
    result = run("screen", path)
    one_error(result, f"Error: {path}: cannot read the attribute table site.dbf (", "copy every file of the shapefile")
    assert "PASS" not in result.stdout.upper()


def test_a_truncated_dbf_is_an_error(run, tmp_path, sample):
    path = p05_shapefile(tmp_path, sample)
    dbf = path.with_suffix(".dbf")
    data = dbf.read_bytes()
    dbf.write_bytes(data[:-20])
    result = run("screen", path)
    one_error(result, "cannot read the attribute table site.dbf (it is truncated:", "copy every file of the shapefile")


def test_a_dbf_with_fewer_records_than_shapes_is_an_error(tmp_path, sample):
    frame = frame_of(sample, ["P05", "P01"])[["id", "industry", "geometry"]]
    pyogrio.write_dataframe(frame, tmp_path / "two.shp")
    pyogrio.write_dataframe(frame.iloc[:1], tmp_path / "one.shp")
    (tmp_path / "two.dbf").write_bytes((tmp_path / "one.dbf").read_bytes())
    wanted = r"cannot read the attribute table two\.dbf \(it holds 1 records for the 2 shapes of the \.shp\)"
    with pytest.raises(FootprintError, match=wanted):
        read_projects(tmp_path / "two.shp", sample_working_crs())


def test_the_sound_shapefile_still_screens(tmp_path, sample):
    (verdict,) = screen(p05_shapefile(tmp_path, sample)).verdicts
    assert (verdict.project["industry"], verdict.verdict) == ("C2614", "reject")


# -- Item 9: a polygon without area is an error ------------------------------------------------------


def test_a_collinear_polygon_is_an_error_not_a_tiny_site(tmp_path, sample):
    flat = shapely.Polygon([(116.18, 28.59), (116.181, 28.591), (116.182, 28.592), (116.18, 28.59)])
    frame = gpd.GeoDataFrame({"id": ["flat", "P01"]}, geometry=[flat, sample.loc["P01"].geometry], crs=4490)
    path = tmp_path / "flat.geojson"
    pyogrio.write_dataframe(frame, path)
    result = screen(path)
    assert result.problems == [
        f"{path}: project 'flat': is a polygon with no area (its vertices lie on one line); check the drawing"
    ]
    assert [v.project["id"] for v in result.verdicts] == ["P01"]


# -- Item 13: archives are checked before anything is unpacked ---------------------------------------


def zip_of(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def test_a_zip_bomb_is_refused_before_anything_is_written(run, tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(archives, "_extract_member", lambda *args: written.append(args) or 0)
    bomb = zip_of(tmp_path / "bomb.zip", {"site.geojson": b" " * (8 * 1024**2)})
    assert bomb.stat().st_size < 200_000
    result = run("screen", bomb)
    one_error(result, f"Error: {bomb}: member 'site.geojson' unpacks", "beyond the limit of 200:1 (a zip bomb?)")
    assert written == []


def test_archive_limits_on_members_and_bytes(run, tmp_path, monkeypatch):
    many = zip_of(tmp_path / "many.zip", {f"n{i}.geojson": b"{}" for i in range(5)})
    monkeypatch.setattr(archives, "MAX_ARCHIVE_MEMBERS", 4)
    one_error(run("screen", many), "the archive holds 5 members, more than the limit of 4; split it")
    monkeypatch.setattr(archives, "MAX_ARCHIVE_BYTES", 9)
    big = zip_of(tmp_path / "big.zip", {"a.geojson": b"0123456789"})
    one_error(run("screen", big), "the archive unpacks to 10 bytes, more than the limit of 9")


def test_a_member_bigger_than_its_header_says_is_refused(run, tmp_path, p05_geojson):
    data = p05_geojson.read_bytes()
    path = zip_of(tmp_path / "liar.zip", {"site.geojson": data}, method=zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24 : central + 28] = struct.pack("<I", 100)  # the central directory's uncompressed size
    path.write_bytes(bytes(raw))
    # zipfile reads no more than the declared size, and the checksum then fails: refused, nothing screened.
    one_error(run("screen", path), f"Error: {path}: is not a readable zip archive (Bad CRC-32 for file 'site.geojson')")


def test_the_byte_counter_stops_a_member_that_streams_past_its_declared_size(tmp_path):
    class Lying:  # an archive whose member streams more than its header declares
        def open(self, info):
            return io.BytesIO(b"x" * (3 * archives._CHUNK))

    info = zipfile.ZipInfo("site.geojson")
    info.file_size = 10
    with pytest.raises(
        FootprintError, match="holds more than the 10 bytes its header declares; the archive is refused"
    ):
        archives._extract_member(Lying(), info, tmp_path, "a.zip", budget=10)
    assert (tmp_path / "site.geojson").stat().st_size == 0  # the first chunk already went past: nothing written


@pytest.mark.parametrize("name", ["../evil.geojson", "/tmp/evil.geojson", "a/../../evil.geojson"])
def test_members_named_outside_the_archive_refuse_it(run, tmp_path, p05_geojson, name):
    path = zip_of(tmp_path / "slip.zip", {name: p05_geojson.read_bytes(), "good.geojson": p05_geojson.read_bytes()})
    one_error(run("screen", path), f"member {name!r} would be unpacked outside the archive's folder")
    assert not (tmp_path.parent / "evil.geojson").exists()


def test_a_kmz_bomb_is_refused_before_gdal_unpacks_it(run, tmp_path):
    bomb = zip_of(tmp_path / "site.kmz", {"doc.kml": b"<kml>" + b" " * (8 * 1024**2) + b"</kml>"})
    one_error(run("screen", bomb), f"Error: {bomb}: member 'doc.kml' unpacks", "(a zip bomb?)")


def test_a_zip_member_that_is_a_link_is_skipped(run, tmp_path, p05_geojson):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("passwd.csv")
        link.external_attr = 0o120777 << 16  # a symbolic link, as Info-ZIP stores one
        archive.writestr(link, "/etc/passwd")
        archive.writestr("site.geojson", p05_geojson.read_bytes())
    result = run("screen", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert f"{path}: skipped member passwd.csv: it is a symbolic link" in result.stderr
    assert json.loads(result.stdout)["verdict"] == "reject"


def test_a_sound_zip_still_screens(tmp_path, p05_geojson):
    path = zip_of(tmp_path / "ok.zip", {"in/site.geojson": p05_geojson.read_bytes()})
    (verdict,) = screen(path).verdicts
    assert verdict.verdict == "reject"


# -- Item 14: links out of an input folder are skipped ------------------------------------------------


def test_links_out_of_the_folder_are_skipped_with_a_warning(run, tmp_path, p05_geojson):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "corners.csv").write_text("X,Y\n3160000,39500000\n3160100,39500000\n3160100,39500100\n", "utf-8")
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "site.geojson").write_bytes(p05_geojson.read_bytes())
    (inbox / "sub" / "also.geojson").symlink_to(inbox / "site.geojson")  # inside the folder: read
    (inbox / "corners.csv").symlink_to(outside / "corners.csv")
    (inbox / "passwd.csv").symlink_to("/etc/passwd")
    (inbox / "away").symlink_to(outside, target_is_directory=True)
    result = run("screen", inbox, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    warned = [line for line in result.stderr.splitlines() if "outside the input folder" in line]
    assert any(f"{inbox / 'corners.csv'}: skipped: it is a link to {outside / 'corners.csv'}" in w for w in warned)
    assert any(f"{inbox / 'passwd.csv'}: skipped: it is a link to /etc/passwd" in w for w in warned)
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [v["verdict"] for v in verdicts] == ["reject", "reject"]


def test_a_pipe_is_not_read(run, tmp_path):
    fifo = tmp_path / "site.geojson"
    os.mkfifo(fifo)
    one_error(run("screen", fifo), f"Error: {fifo}: is not a regular file (a pipe, device or folder); give a file")


# -- Messages that pointed the wrong way -----------------------------------------------------------------


def test_a_truncated_shp_says_truncated_not_empty_geometry(run, tmp_path, sample):
    frame = sample.loc[["P05", "P01", "P04"]].reset_index()[["id", "industry", "geometry"]]
    path = tmp_path / "three.shp"
    pyogrio.write_dataframe(frame, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = one_error(run("screen", path), f"three.shp (the shapefile's geometry) is truncated: {len(data) // 2:,} of")
    assert "empty geometry" not in line


def test_a_vertex_at_1e308_is_not_called_metres(run):
    result = run("screen", "--wkt", "POLYGON ((116.18 28.59, 1e308 28.59, 116.18 28.6, 116.18 28.59))", "--crs", "4490")
    line = one_error(result, "has a coordinate of 1e+308, too large for a place on Earth in any CRS")
    assert "metres, not degrees" not in line


def test_a_nan_coordinate_is_named(run):
    result = run("screen", "--wkt", "POLYGON ((116.18 28.59, nan 28.59, 116.19 28.6, 116.18 28.59))", "--crs", "4490")
    line = one_error(result, "has a NaN or infinite coordinate")
    assert "area changed" not in result.stderr
    assert "nan m2" not in line


def test_a_nan_vertex_among_good_features_is_only_that_features_error(tmp_path, sample):
    document = json.loads(frame_of(sample, ["P05", "P01"]).to_json())
    document["features"][0]["geometry"]["coordinates"][0][1][0] = None
    path = tmp_path / "two.geojson"
    path.write_text(json.dumps(document).replace("null", "NaN"), encoding="utf-8")
    result = screen(path)
    assert len(result.problems) == 1
    assert "has a NaN or infinite coordinate" in result.problems[0]
    assert [v.project["id"] for v in result.verdicts] == ["P01"]


@pytest.mark.parametrize(
    "text",
    ["POLYGON ((1 2", "POLYGON ((0 0, 1 0, 1 1 0 0))", "BLAH (1 2)"],
    ids=["unterminated", "missing comma", "unknown type"],
)
def test_malformed_wkt_says_it_cannot_be_parsed(run, text):
    line = one_error(run("screen", "--wkt", text, "--crs", "4490"), "cannot parse it as WKT (ParseException: ")
    assert "empty" not in line


def test_curved_wkt_is_linearised_and_screened(run, sample):
    x, y = sample.loc["P05"].geometry.centroid.coords[0]
    r = 0.001
    wkt = f"CURVEPOLYGON (CIRCULARSTRING ({x - r} {y}, {x} {y + r}, {x + r} {y}, {x} {y - r}, {x - r} {y}))"
    result = run("screen", "--wkt", wkt, "--crs", "4490", "--industry", "C2614", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "arcs were replaced by short straight segments" in result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "reject"
    assert verdict["project"]["area_m2"] == pytest.approx(np.pi * (r * 111_000) ** 2, rel=0.2)


def test_broken_curved_wkt_is_one_line(run):
    one_error(run("screen", "--wkt", "CIRCULARSTRING (116 28, 116.01", "--crs", "4490"), "cannot parse it as WKT")


def test_an_unrecognised_format_does_not_talk_of_driver_prefixes(run, tmp_path):
    path = tmp_path / "site.geojson"
    path.write_bytes(bytes(range(256)) * 2)
    line = one_error(run("screen", path), "its content is not in any vector format GDAL reads")
    assert "<DRIVER>" not in line
    assert "prefix" not in line


@pytest.fixture
def p05_geojson(tmp_path, sample) -> Path:
    path = tmp_path / "source" / "p05.geojson"
    path.parent.mkdir()
    pyogrio.write_dataframe(frame_of(sample, ["P05"]), path)
    return path


def test_a_geometry_too_long_to_densify_is_left_uncut():
    """Metres read as degrees would be cut into billions of pieces; such a geometry is left for the checks."""
    from pyproj import CRS
    from shapely import LineString, get_num_coordinates

    from threelines.densify import densify, densify_step
    from threelines.limits import MAX_DENSIFY_PIECES

    lonlat = CRS.from_epsg(4490)
    step = densify_step(lonlat)
    huge = LineString([(0, 0), (3_000_000.0, 0)])  # 3,000 km in metres, taken for degrees
    fits = LineString([(0, 0), (step * MAX_DENSIFY_PIECES / 2, 0)])
    out = densify([huge, fits], lonlat)
    assert out[0] is huge
    assert get_num_coordinates(out[1]) == MAX_DENSIFY_PIECES // 2 + 1
