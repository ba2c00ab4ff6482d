"""`threelines serve`: a real server on a free loopback port gives the CLI's answers and refuses bad input with 4xx."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from serve_helpers import Server
from threelines import limits
from threelines.cli.serve import is_loopback

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
PROJECTS = sorted((SAMPLE / "projects").glob("P*.geojson"))
MAX_UPLOAD = 6_000_000  # small, so that the oversized upload is quick to send
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    env = {"THREELINES_CACHE": str(folder / "cache"), "THREELINES_TOKEN": ""}
    running = Server(folder, "--max-upload", str(MAX_UPLOAD), env={**env, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def cli_records():
    """The CLI's JSON records of the 13 sample projects (the folder of their GeoJSON files), by id."""
    out = subprocess.run(
        [sys.executable, "-m", "threelines", "screen", str(SAMPLE / "projects"), "--format", "json", "--lang", "en"],
        capture_output=True, text=True, check=True, env={**os.environ, "LC_ALL": "C.UTF-8"},
    )  # fmt: skip
    records = [json.loads(line) for line in out.stdout.splitlines()]
    return {r["project"]["id"]: r for r in records}


def without_provenance(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "provenance"}


def geojson(path: Path) -> bytes:
    return path.read_bytes()


def post_geojson(client, body: bytes | str, **params):
    return client.post("/v1/screen", content=body, params=params, headers={"Content-Type": "application/geo+json"})


def assert_problem(response, status: int, *phrases: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    for phrase in phrases:
        assert phrase in body["detail"], body["detail"]
    return body


@pytest.fixture(scope="module")
def p02():
    frame = pyogrio.read_dataframe(SAMPLE / "projects" / "P02.geojson")
    return frame[["id", "name", "industry", "geometry"]]


# --- the same answers as the CLI ----------------------------------------------------------------


def test_health_names_version_jurisdiction_and_hashes(client):
    from threelines import __version__

    health = client.get("/healthz").json()
    assert health["version"] == __version__
    assert health["jurisdiction"] == "南昌县三线一单 (sample)"
    assert health["manifest_sha256"] == hashlib.sha256((SAMPLE / "layers.yaml").read_bytes()).hexdigest()
    assert health["rules_sha256"] == hashlib.sha256((SAMPLE / "rules.yaml").read_bytes()).hexdigest()


def test_each_sample_project_gets_the_cli_answer(client, cli_records):
    assert len(cli_records) == 13
    for path in PROJECTS:
        response = post_geojson(client, geojson(path), lang="en")
        assert response.status_code == 200, response.text
        record = response.json()
        expected = cli_records[record["project"]["id"]]
        assert without_provenance(record) == without_provenance(expected)
        assert record["provenance"]["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert record["provenance"]["project_count"] == 1


def test_concurrent_requests_each_get_their_own_answer(server, cli_records):
    # Requests that arrive together are screened in one pass of the engine: each must still get its own answer.
    from concurrent.futures import ThreadPoolExecutor

    def one(path: Path) -> dict:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            return post_geojson(http, geojson(path), lang="en").json()

    with ThreadPoolExecutor(len(PROJECTS)) as pool:
        records = list(pool.map(one, PROJECTS * 2))
    assert [r["project"]["id"] for r in records] == [p.stem for p in PROJECTS] * 2
    for record in records:
        assert without_provenance(record) == without_provenance(cli_records[record["project"]["id"]])


def test_a_projected_footprint_keeps_its_plane_area_when_screened_with_others(server, tmp_path):
    # The area as the site drawing states it (in its projected CRS) is in the CLI's record; requests
    # screened together in one pass must each keep theirs (NaN-free only for the projected one).
    from concurrent.futures import ThreadPoolExecutor

    site = gpd.read_file(SAMPLE / "projects" / "P01.geojson").to_crs(4527)
    path = tmp_path / "P01-4527.geojson"
    site.to_file(path, driver="GeoJSON")
    out = subprocess.run(
        [sys.executable, "-m", "threelines", "screen", str(path), "--format", "json", "--lang", "en"],
        capture_output=True, text=True, check=True, env={**os.environ, "LC_ALL": "C.UTF-8"},
    )  # fmt: skip
    expected = json.loads(out.stdout)
    assert expected["project"]["plane_area_m2"] > 0

    def one(body: bytes) -> dict:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            return post_geojson(http, body, lang="en").json()

    bodies = [path.read_bytes(), geojson(PROJECTS[1])] * 4
    with ThreadPoolExecutor(len(bodies)) as pool:
        records = list(pool.map(one, bodies))
    for record in records[0::2]:
        assert record["project"]["plane_area_m2"] == pytest.approx(expected["project"]["plane_area_m2"], rel=1e-12)
        assert record["project"]["plane_area_mu"] == pytest.approx(expected["project"]["plane_area_mu"], rel=1e-12)
        assert without_provenance(record) == without_provenance(expected)
    for record in records[1::2]:
        assert "plane_area_m2" not in record["project"]


def test_a_feature_collection_answers_an_array(client, cli_records):
    features = [json.loads(p.read_text("utf-8"))["features"][0] for p in PROJECTS]
    body = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
            "features": features}  # fmt: skip
    response = post_geojson(client, json.dumps(body), lang="en")
    assert response.status_code == 200, response.text
    records = response.json()
    assert [r["project"]["id"] for r in records] == [f"P{n:02d}" for n in range(1, 14)]
    assert [r["verdict"] for r in records] == [cli_records[r["project"]["id"]]["verdict"] for r in records]
    for record in records:
        assert without_provenance(record) == without_provenance(cli_records[record["project"]["id"]])


def test_zip_upload_of_the_sample_folder_equals_the_cli(client, cli_records):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in PROJECTS:
            archive.write(path, f"projects/{path.name}")
    response = client.post("/v1/screen", params={"lang": "en"}, files={"file": ("projects.zip", buffer.getvalue())})
    assert response.status_code == 200, response.text
    records = {r["project"]["id"]: without_provenance(r) for r in response.json()}
    assert records == {k: without_provenance(v) for k, v in cli_records.items()}


def check_p02(record: dict) -> None:
    assert record["verdict"] == "reject"
    assert record["project"]["area_m2"] == pytest.approx(157475.0, rel=1e-3)
    assert record["triggers"][0]["rule"] == "redline-overlap"
    assert record["triggers"][0]["overlap_m2"] == pytest.approx(64693.0, rel=1e-3)


def _shapefile_zip(p02, folder: Path) -> tuple[str, bytes]:
    pyogrio.write_dataframe(p02, folder / "site.shp")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for ending in ("shp", "shx", "dbf", "prj", "cpg"):
            archive.write(folder / f"site.{ending}", f"site/site.{ending}")
    return "site.zip", buffer.getvalue()


def _kml(p02, folder: Path) -> tuple[str, bytes]:
    pyogrio.write_dataframe(p02.rename(columns={"name": "Name"}).to_crs(4326), folder / "site.kml", driver="KML")
    return "site.kml", (folder / "site.kml").read_bytes()


def _kmz(p02, folder: Path) -> tuple[str, bytes]:
    _, kml = _kml(p02, folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("doc.kml", kml)
    return "site.kmz", buffer.getvalue()


def _dxf(p02, folder: Path) -> tuple[str, bytes]:
    ring = shapely.LineString(p02.to_crs(4527).geometry.iloc[0].exterior.coords)
    with pytest.warns(UserWarning, match="'crs' was not provided"):  # a drawing has no CRS
        pyogrio.write_dataframe(gpd.GeoDataFrame(geometry=[ring]), folder / "site.dxf", driver="DXF")
    return "site.dxf", (folder / "site.dxf").read_bytes()


def _gpkg(p02, folder: Path) -> tuple[str, bytes]:
    pyogrio.write_dataframe(p02.to_crs(4527), folder / "site.gpkg", layer="site")
    return "site.gpkg", (folder / "site.gpkg").read_bytes()


def _corners(p02) -> np.ndarray:
    return np.asarray(p02.to_crs(4527).geometry.iloc[0].exterior.coords)[:-1]


def _csv(p02, folder: Path) -> tuple[str, bytes]:
    xy = _corners(p02)
    text = pd.DataFrame({"点号": range(1, len(xy) + 1), "X": xy[:, 1], "Y": xy[:, 0]}).to_csv(index=False)
    return "corners.csv", text.encode("utf-8")


def _xlsx(p02, folder: Path) -> tuple[str, bytes]:
    xy = _corners(p02)
    pd.DataFrame({"X": xy[:, 1], "Y": xy[:, 0]}).to_excel(folder / "corners.xlsx", index=False)
    return "corners.xlsx", (folder / "corners.xlsx").read_bytes()


@pytest.mark.parametrize("make", [_shapefile_zip, _kml, _kmz, _dxf, _gpkg, _csv, _xlsx],
                         ids=["zipped shapefile", "kml", "kmz", "dxf", "geopackage", "csv corners", "xlsx corners"])  # fmt: skip
def test_upload_in_each_format(client, tmp_path, p02, make):
    name, data = make(p02, tmp_path)
    response = client.post("/v1/screen", files={"file": (name, data)}, data={"industry": "N7869"})
    assert response.status_code == 200, response.text
    check_p02(response.json())
    assert response.json()["project"]["industry"] == "N7869"


def test_form_fields_are_the_project_attributes(client, p02):
    body = p02.assign(industry="C2614").to_json()
    response = client.post("/v1/screen", files={"file": ("site.geojson", body.encode())},
                           data={"industry": "2614", "emit_vocs": "12", "name": "化工项目"})  # fmt: skip
    record = response.json()
    assert record["project"]["industry"] == "C2614"
    assert record["project"]["emit_vocs"] == 12.0
    assert record["project"]["name"] == "化工项目"


def test_crs_parameter_reads_web_map_coordinates(client, p02):
    from threelines.input.crs import wgs84_to_gcj02

    shifted = p02.to_crs(4326).assign(geometry=lambda f: shapely.transform(f.geometry.values, wgs84_to_gcj02))
    doc = json.loads(shifted.to_json())
    doc.pop("crs", None)
    check_p02(post_geojson(client, json.dumps(doc), crs="gcj02").json())


@pytest.mark.parametrize(("fmt", "media", "marker"), [
    ("html", "text/html", "<html"), ("markdown", "text/markdown", "不予准入"), ("geojson", "application/geo+json", '"FeatureCollection"'),
])  # fmt: skip
def test_reports_in_other_formats(client, fmt, media, marker):
    response = post_geojson(client, geojson(SAMPLE / "projects" / "P05.geojson"), format=fmt, lang="zh")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    assert marker in response.text
    if fmt == "geojson":
        assert response.json()["provenance"]["project_count"] == 1


# --- siting, layers, industries, docs, page ---------------------------------------------------------------


def test_siting_zones_a_chemical_plant(client):
    response = client.post("/v1/siting", json={"profile": {"industry": "C2614", "emit_vocs": 5}})
    assert response.status_code == 200, response.text
    doc = response.json()
    outcomes = {f["properties"]["outcome"] for f in doc["features"]}
    assert {"reject", "conditional"} <= outcomes
    assert doc["rules"]["chem-outside-park"]["outcome"] == "reject"
    # P05, a chemical plant outside the park, is rejected by screen: its site lies in a reject zone for chem-outside-park.
    site = shapely.from_geojson(
        json.dumps(json.loads(geojson(SAMPLE / "projects" / "P05.geojson"))["features"][0]["geometry"])
    )
    inside = [f for f in doc["features"] if shapely.from_geojson(json.dumps(f["geometry"])).contains(site.centroid)]
    assert len(inside) == 1
    assert inside[0]["properties"]["outcome"] == "reject"
    assert "chem-outside-park" in inside[0]["properties"]["rules"]
    county = sum(doc["summary_m2"].values())
    assert county == pytest.approx(sum(f["properties"]["area_ha"] for f in doc["features"]) * 1e4, rel=1e-6)


def test_siting_over_a_region(client):
    # P06's site lies in the chemical park: zoned alone for a chemical plant, it is conditional all over.
    feature = json.loads(geojson(SAMPLE / "projects" / "P06.geojson"))["features"][0]
    region = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:4490"}},
        "features": [feature],
    }
    response = client.post("/v1/siting", json={"profile": {"industry": "C2614"}, "region": region})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert {f["properties"]["outcome"] for f in doc["features"]} == {"conditional"}
    assert "chem-in-park" in doc["features"][0]["properties"]["rules"]
    site_ha = 7.5  # P06's area
    assert sum(f["properties"]["area_ha"] for f in doc["features"]) == pytest.approx(site_ha, rel=0.01)
    line = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "LineString", "coordinates": [[115.9, 28.5], [115.91, 28.5]]},
    }
    assert_problem(client.post("/v1/siting", json={"profile": {}, "region": line}), 422, "region: holds no polygon")


def test_siting_refuses_an_unknown_attribute(client):
    assert_problem(
        client.post("/v1/siting", json={"profile": {"industri": "C2614"}}), 422, "unknown attribute 'industri'"
    )


def test_layers_and_their_features(client):
    layers = {layer["name"]: layer for layer in client.get("/v1/layers").json()}
    assert set(layers) == {"redline", "units", "quality", "caps", "pm25", "county"}
    assert layers["units"]["features"] == 47
    assert layers["pm25"]["role"] == "raster"
    assert all("path" not in layer for layer in layers.values())  # no server path is shown
    units = client.get("/v1/layers/units", params={"zoom": 9}).json()
    assert len(units["features"]) == 47
    assert {f["properties"]["class"] for f in units["features"]} == {"priority", "key", "general"}
    west, south, east, north = layers["units"]["bounds"]
    corner = f"{west},{south},{(west + east) / 2},{(south + north) / 2}"
    clipped = client.get("/v1/layers/units", params={"bbox": corner}).json()["features"]
    assert 0 < len(clipped) < 47
    for feature in clipped:
        minx, _miny, maxx, _maxy = shapely.from_geojson(json.dumps(feature["geometry"])).bounds
        assert minx >= west - 1e-6
        assert maxx <= (west + east) / 2 + 1e-6
    assert_problem(client.get("/v1/layers/pm25"), 422, "is a raster")
    assert_problem(client.get("/v1/layers/nowhere"), 404, "layer 'nowhere': not in the manifest")
    assert_problem(client.get("/v1/layers/units", params={"bbox": "1,2,3"}), 422, "west,south,east,north")


def test_the_pages_layers_come_compressed_and_equal_to_plain(client):
    # What the page asks for (zoom 12, whole) is kept compressed; other options are made per request.
    for params in ({"zoom": 12}, {"zoom": 12, "crs": "gcj02"}, {"zoom": 10}):
        packed = client.get("/v1/layers/units", params=params, headers={"Accept-Encoding": "gzip"})
        plain = client.get("/v1/layers/units", params=params, headers={"Accept-Encoding": "identity"})
        assert packed.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert int(packed.headers["content-length"]) < len(plain.content) / 2
        assert packed.json() == plain.json()
        assert len(plain.json()["features"]) == 47


def test_layers_shift_for_a_gcj02_base_map(client):
    from threelines.input.crs import wgs84_to_gcj02

    plain = client.get("/v1/layers/county").json()["features"][0]["geometry"]
    moved = client.get("/v1/layers/county", params={"crs": "gcj02"}).json()["features"][0]["geometry"]
    first = np.array(plain["coordinates"][0][0] if plain["type"] == "Polygon" else plain["coordinates"][0][0][0])
    shifted = np.array(moved["coordinates"][0][0] if moved["type"] == "Polygon" else moved["coordinates"][0][0][0])
    assert shifted == pytest.approx(wgs84_to_gcj02(first[None, :])[0], abs=2e-6)
    assert np.abs(shifted - first).max() > 1e-3  # GCJ-02 is hundreds of metres off in Jiangxi
    assert_problem(client.get("/v1/layers/county", params={"crs": "mars"}), 422, "gcj02 or bd09")


def test_industry_search(client):
    assert client.get("/v1/industries", params={"q": "2614"}).json()[0] == {
        "code": "C2614",
        "name": "有机化学原料制造",
        "name_en": "Manufacture of organic chemical raw materials",
        "level": "class",
    }
    codes = [h["code"] for h in client.get("/v1/industries", params={"q": "有机化学"}).json()]
    assert "C2614" in codes
    assert client.get("/v1/industries", params={"q": "zzzz"}).json() == []
    # English words, any case: a class through its own name or its group's.
    assert client.get("/v1/industries", params={"q": "Cement"}).json()[0]["code"] == "C3011"
    hits = client.get("/v1/industries", params={"q": "thermal power"}).json()
    assert [h["code"] for h in hits] == ["D4411"]
    assert hits[0]["name"] == "火力发电"
    textile = [h["code"] for h in client.get("/v1/industries", params={"q": "textile", "limit": 200}).json()]
    assert textile[0] == "C17"
    assert "C1711" in textile


def test_openapi_docs_and_page(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/v1/screen", "/v1/siting", "/v1/layers", "/v1/layers/{name}", "/v1/industries"} <= set(paths)
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert "/static/vendor/leaflet/leaflet.js" in page.text
    # The page's first calls are preloaded from its head, at the URLs its script asks for.
    assert '<link rel="preload" href="/v1/config" as="fetch" crossorigin="anonymous">' in page.text
    assert '<link rel="preload" href="/v1/layers/units?zoom=12" as="fetch" crossorigin="anonymous">' in page.text
    assert "`/v1/layers/${encodeURIComponent(layer.name)}?zoom=12`" in client.get("/static/app.js").text
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200
    config = client.get("/v1/config").json()
    assert config["tiles"] is None  # no outside tiles unless --tiles
    assert len(config["extent"]) == 4


# --- bad input: 4xx problem+json, never a 500 --------------------------------------------------------


def test_garbage_body(client):
    assert_problem(post_geojson(client, b"\x00\xffgarbage"), 422, "request body: is not JSON")


def test_garbage_upload(client):
    assert_problem(client.post("/v1/screen", files={"file": ("site.gpkg", b"SQLite format 3\x00" + b"\x01" * 80)}), 422)


@pytest.mark.parametrize(("body", "phrase"), [
    ('{"type": "Polygon"}', "feature 0 (0-based): its geometry is not valid GeoJSON"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": null}, 3]}',
     "request body: feature 1 (0-based): is not a GeoJSON Feature object"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": 3, "geometry": null}]}',
     "request body: feature 0 (0-based): 'properties' must be an object"),
    ('{"type": "FeatureCollection", "features": []}', "has no features"),
    ('{"type": "Topology"}', "is not a GeoJSON Feature or FeatureCollection"),
    ('{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[1, 2]]}}', "not valid GeoJSON"),
    ('[1, 2]', "is not a GeoJSON Feature"),
])  # fmt: skip
def test_invalid_geojson(client, body, phrase):
    assert_problem(post_geojson(client, body), 422, phrase)


def test_unknown_industry(client):
    doc = json.loads(geojson(SAMPLE / "projects" / "P05.geojson"))
    doc["features"][0]["properties"]["industry"] = "C9999"
    body = assert_problem(post_geojson(client, json.dumps(doc)), 422, "C9999")
    assert body["title"] == "Nothing screened"


def test_missing_crs(client, p02, tmp_path):
    pyogrio.write_dataframe(p02.to_crs(4490), tmp_path / "site.shp")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for ending in ("shp", "shx", "dbf", "cpg"):
            archive.write(tmp_path / f"site.{ending}", f"site.{ending}")
    response = client.post("/v1/screen", files={"file": ("site.zip", buffer.getvalue())})
    assert_problem(response, 422, "has no CRS (a shapefile needs its .prj); say which it is with --crs")
    assert str(tmp_path) not in response.text
    assert "threelines-upload-" not in response.text


def test_zip_bomb(client):
    # A bomb declares sizes far beyond its bytes; here the central directory claims 4 GB for a tiny member.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("site.geojson", b" " * 1000)
    data = bytearray(buffer.getvalue())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    assert_problem(client.post("/v1/screen", files={"file": ("site.zip", bytes(data))}), 413,
                   "uncompressed bytes", "MAX_UPLOAD_ARCHIVE_BYTES")  # fmt: skip


def test_zip_bomb_by_ratio(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("site.geojson", b" " * 50_000_000)
    assert_problem(
        client.post("/v1/screen", files={"file": ("site.zip", buffer.getvalue())}), 413, "MAX_COMPRESSION_RATIO"
    )


@pytest.mark.parametrize("member", ["../../etc/evil.geojson", "/tmp/evil.geojson", "a/../../evil.geojson"])
def test_zip_slip(client, member):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, geojson(SAMPLE / "projects" / "P01.geojson"))
    assert_problem(client.post("/v1/screen", files={"file": ("site.zip", buffer.getvalue())}), 422,
                   "points outside the archive")  # fmt: skip


def test_too_many_archive_members(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(limits.MAX_UPLOAD_ARCHIVE_MEMBERS + 1):
            archive.writestr(f"f{n}.txt", b"")
    assert_problem(client.post("/v1/screen", files={"file": ("site.zip", buffer.getvalue())}), 413,
                   "MAX_UPLOAD_ARCHIVE_MEMBERS")  # fmt: skip


def test_oversized_upload(client):
    response = client.post("/v1/screen", files={"file": ("site.geojson", b"{" + b" " * MAX_UPLOAD)})
    assert_problem(response, 413, f"limit of {MAX_UPLOAD:,} bytes", "--max-upload")


def test_too_many_vertices(client):
    angles = np.linspace(0, 2 * np.pi, limits.MAX_VERTICES_PER_FOOTPRINT + 1)
    ring = np.round(np.column_stack([115.95 + 0.01 * np.cos(angles), 28.5 + 0.01 * np.sin(angles)]), 5)
    body = json.dumps(
        {
            "type": "Feature",
            "properties": {"industry": "G5920"},
            "geometry": shapely.geometry.mapping(shapely.Polygon(ring)),
        }
    )
    assert_problem(post_geojson(client, body), 413, "vertices", "MAX_VERTICES_PER_FOOTPRINT")


def test_radius_and_width_beyond_their_limits(client):
    point = {"type": "Point", "coordinates": [115.93, 28.51]}
    body = json.dumps({"type": "Feature", "properties": {"id": "far", "radius": 1e9}, "geometry": point})
    assert_problem(
        post_geojson(client, body),
        422,
        "project 'far': radius 1e+09 m is beyond the plausible limit of 50000 m; give it in m",
    )


def test_one_failing_request_does_not_fail_those_screened_with_it():
    # Requests waiting together are screened in one pass; if that pass fails, each is screened alone.
    import threading

    from threelines.input.projects import Projects
    from threelines.serve.coalesce import Coalescer

    def run(projects):
        if "poison" in [a["id"] for a in projects.attrs]:
            raise RuntimeError("poison")
        return [f"answer {a['id']}" for a in projects.attrs]

    def projects(*ids):
        return Projects(source="s", attrs=[{"id": i} for i in ids], geometry=np.array([shapely.Point(0, 0)] * len(ids)),
                        area_m2=np.zeros(len(ids)))  # fmt: skip

    lock = threading.Lock()
    coalescer = Coalescer(run, lock)
    results: dict[str, object] = {}

    def ask(name, batch):
        try:
            results[name] = coalescer.screen(batch)
        except RuntimeError as exc:
            results[name] = str(exc)

    with lock:  # hold the engine so that all three wait, then go together
        threads = [threading.Thread(target=ask, args=(n, projects(*ids))) for n, ids in
                   (("a", ["a1", "a2"]), ("b", ["poison"]), ("c", ["c1"]))]  # fmt: skip
        for thread in threads:
            thread.start()
        time.sleep(0.3)
    for thread in threads:
        thread.join()
    assert results == {"a": ["answer a1", "answer a2"], "b": "poison", "c": ["answer c1"]}


def test_too_many_projects(client):
    feature = json.loads(geojson(SAMPLE / "projects" / "P12.geojson"))["features"][0]
    body = json.dumps({"type": "FeatureCollection", "features": [feature] * (limits.MAX_PROJECTS_PER_REQUEST + 1)})
    assert_problem(post_geojson(client, body), 413, "MAX_PROJECTS_PER_REQUEST")


def test_upload_name_cannot_name_a_path(client):
    data = geojson(SAMPLE / "projects" / "P01.geojson")
    response = client.post("/v1/screen", files={"file": ("../../../etc/passwd", data)})
    assert_problem(response, 422, "not a format screen reads")
    fine = client.post("/v1/screen", files={"file": ("../../tmp/x/P01.geojson", data)})
    assert fine.status_code == 200  # only the name is kept: it is read from the service's own folder
    assert fine.json()["provenance"]["input"]["upload"] == "P01.geojson"


def test_one_bad_project_is_named_and_the_others_answered(client):
    good = json.loads(geojson(SAMPLE / "projects" / "P05.geojson"))["features"][0]
    bad = json.loads(json.dumps(good))
    bad["properties"].update(id="BAD", industry="C9999")
    body = assert_problem(
        post_geojson(client, json.dumps({"type": "FeatureCollection", "features": [good, bad]})), 422, "'BAD'"
    )
    assert [r["project"]["id"] for r in body["results"]] == ["P05"]
    assert body["results"][0]["verdict"] == "reject"
    assert len(body["problems"]) == 1


def test_unsupported_media_type_and_unknown_form_field(client):
    assert_problem(client.post("/v1/screen", content=b"x", headers={"Content-Type": "text/plain"}), 415)
    response = client.post("/v1/screen", files={"file": ("a.geojson", b"{}")}, data={"path": "/etc/passwd"})
    assert_problem(response, 422, "form field 'path': not a project attribute")
    assert_problem(client.post("/v1/screen", files={"file": ("a.geojson", b"{}")}, data={"width": "wide"}), 422,
                   "'wide' is not a number")  # fmt: skip
    assert_problem(client.post("/v1/screen", data={"industry": "C2614"}, files={"other": ("a", b"")}), 422, "'file'")


def test_bad_query_parameters(client):
    body = geojson(SAMPLE / "projects" / "P05.geojson")
    assert_problem(post_geojson(client, body, format="pdf"), 422, "format")
    assert_problem(post_geojson(client, body, crs="EPSG:999999"), 422)


def test_cors_is_off_and_logs_hold_no_footprint(client, server):
    response = client.get("/healthz", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in response.headers
    post_geojson(client, geojson(SAMPLE / "projects" / "P05.geojson"))
    # A bow-tie is repaired with a warning that quotes its crossing point: not in the service's log.
    bowtie = [
        [115.93217, 28.51113],
        [115.94217, 28.52113],
        [115.94217, 28.51113],
        [115.93217, 28.52113],
        [115.93217, 28.51113],
    ]
    feature = {
        "type": "Feature",
        "properties": {"industry": "G5920"},
        "geometry": {"type": "Polygon", "coordinates": [bowtie]},
    }
    assert post_geojson(client, json.dumps(feature)).status_code == 200
    time.sleep(0.2)
    lines = server.log.read_text("utf-8").splitlines()
    assert any(
        line.startswith("threelines: INFO: POST /v1/screen 200 ") and line.endswith("projects=1") for line in lines
    )
    # No coordinates in the log (request lines only carry a time in ms, which may contain such digits).
    others = [
        line for line in lines if not re.fullmatch(r"threelines: INFO: \S+ \S+ \d{3} [\d.]+ms projects=\d+", line)
    ]
    assert not any("115.9" in line or "28.4" in line or "28.5" in line for line in others)
    assert not any("Self-intersection" in line or "repaired" in line for line in lines)


# --- binding and the token -------------------------------------------------------------------------


def test_loopback_addresses():
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.0.0.2")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.10")
    assert not is_loopback("example.org")


def test_a_non_loopback_host_needs_a_token(run, monkeypatch):
    monkeypatch.delenv("THREELINES_TOKEN", raising=False)
    result = run("serve", "--host", "0.0.0.0", "--port", "1")
    assert result.exit_code == 2
    assert "set THREELINES_TOKEN" in result.stderr
    assert "--no-auth" in result.stderr


def test_token_auth_cors_and_time_limit_on_all_interfaces(tmp_path):
    # Listens on every interface; the test only connects through 127.0.0.1.
    token = "s3cret-token"
    server = Server(tmp_path, "--host", "0.0.0.0", "--time-limit", "0.001", "--cors", "https://office.example",
                    env={"THREELINES_TOKEN": token, "THREELINES_CACHE": str(tmp_path / "cache")})  # fmt: skip
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.get("/healthz").status_code == 200
            assert_problem(http.get("/v1/layers"), 401, "Authorization: Bearer")
            assert_problem(http.get("/v1/layers", headers={"Authorization": "Bearer wrong"}), 401)
            good = {"Authorization": f"Bearer {token}"}
            assert http.get("/v1/layers", headers=good).status_code == 200
            allowed = http.get("/healthz", headers={"Origin": "https://office.example"})
            assert allowed.headers["access-control-allow-origin"] == "https://office.example"
            preflight = http.options("/v1/screen", headers={"Origin": "https://office.example",
                                     "Access-Control-Request-Method": "POST",
                                     "Access-Control-Request-Headers": "authorization, content-type"})  # fmt: skip
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://office.example"
            other = http.get("/healthz", headers={"Origin": "https://elsewhere.example"})
            assert "access-control-allow-origin" not in other.headers
            body = geojson(SAMPLE / "projects" / "P05.geojson")
            slow = http.post("/v1/screen", content=body, headers={**good, "Content-Type": "application/geo+json"})
            assert_problem(slow, 503, "limit of 0.001 s", "REQUEST_TIME_LIMIT_S")
    finally:
        server.stop()


def test_a_missing_serve_extra_is_one_line(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if `pip install threelines` had left it out
    result = run("serve", "--port", "0")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: threelines serve needs the serve extra (uvicorn is not installed): pip install 'threelines[serve]'"
    ]


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ((SAMPLE / "projects" / "P01.geojson").read_bytes(), [("lang", "en")]),
        ((SAMPLE / "projects" / "P01.geojson").read_bytes(), [("format", "markdown"), ("lang", "zh")]),
        (b'{"type": "FeatureCollection", "features": []}', []),
        (b"not json", []),
        (
            json.dumps({"type": "FeatureCollection", "features": [
                json.loads((SAMPLE / "projects" / "P01.geojson").read_bytes())["features"][0],
                {"type": "Feature", "properties": {"id": "bad", "industry": "X"},
                 "geometry": {"type": "Point", "coordinates": [115.9, 28.5]}},
            ]}).encode(),
            [("lang", "en")],
        ),
    ],
)  # fmt: skip
def test_lean_route_answers_as_fastapi_does(client, body, params):
    """A plain GeoJSON screening is answered without FastAPI's routing; a repeated parameter goes through it."""
    lean = client.post("/v1/screen", content=body, params=params, headers={"Content-Type": "application/geo+json"})
    routed = client.post(
        "/v1/screen", content=body, params=[*params, *params], headers={"Content-Type": "application/geo+json"}
    )
    assert lean.status_code == routed.status_code
    drop = ("date", "server-timing", "content-length")
    assert {k: v for k, v in lean.headers.items() if k not in drop} == {
        k: v for k, v in routed.headers.items() if k not in drop
    }
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # when each was screened, in any report
    assert stamp.sub("", lean.text) == stamp.sub("", routed.text)


def test_lean_route_takes_only_what_the_route_accepts():
    from threelines.serve.screen_route import _screen_options

    def options(query: bytes = b"", kind: bytes = b"application/geo+json", method: str = "POST", path="/v1/screen"):
        scope = {"type": "http", "method": method, "path": path, "query_string": query,
                 "headers": [(b"content-type", kind)]}  # fmt: skip
        return _screen_options(scope)

    assert options() == {"fmt": "json", "lang": None, "crs": None}
    assert options(b"format=html&lang=zh&crs=gcj02&other=1") == {"fmt": "html", "lang": "zh", "crs": "gcj02"}
    assert options(kind=b"application/json; charset=utf-8") is not None
    assert options(b"crs=") == {"fmt": "json", "lang": None, "crs": ""}
    for query in (b"format=pdf", b"lang=", b"lang=fr", b"crs=" + b"x" * 201, b"lang=en&lang=en"):
        assert options(query) is None, query
    assert options(kind=b"multipart/form-data; boundary=x") is None
    assert options(kind=b"text/plain") is None
    assert options(method="GET") is None
    assert options(path="/v1/siting") is None


def test_every_input_module_that_logs_is_quieted_or_known_not_to_quote_a_footprint():
    """A module moved or added under threelines.input that logs must be weighed: its warnings may quote a footprint."""
    import ast

    from threelines.serve.app import FOOTPRINT_LOGGERS

    # Reviewed: they name a file or an archive member, never a feature's coordinates or attributes.
    quoting_no_footprint = {"threelines.input.archives", "threelines.input.encoding"}
    folder = Path(__file__).resolve().parents[1] / "src" / "threelines" / "input"
    logging_modules = set()
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.Attribute) and node.attr == "getLogger" for node in ast.walk(tree)):
            logging_modules.add(f"threelines.input.{path.stem}")
    assert logging_modules, "no logging module found: the search is broken"
    assert logging_modules - quoting_no_footprint <= set(FOOTPRINT_LOGGERS)
