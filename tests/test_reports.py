"""Reports: HTML (rendered in a real headless browser), Markdown, GeoJSON/GeoPackage evidence, provenance, --lang."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

SITE_P02 = Path(__file__).resolve().parents[1] / "data" / "sample" / "projects" / "P02.geojson"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def chromium_or_skip() -> str:
    """The browser; CI installs it, so there its absence fails instead of skipping."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def headless(*args: str, user_dir) -> subprocess.CompletedProcess:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={user_dir}",
    ]  # fmt: skip
    return subprocess.run([chromium_or_skip(), *flags, *args], capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def p02_html(tmp_path_factory):
    """The Chinese HTML report of P02 (a red-line overlap), written once for the module."""
    from click.testing import CliRunner

    from threelines.cli.main import cli

    out = tmp_path_factory.mktemp("html") / "p02.html"
    result = CliRunner().invoke(cli, ["screen", str(SITE_P02), "-o", str(out), "--lang", "zh"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out


def test_html_report_is_self_contained(p02_html):
    page = p02_html.read_text("utf-8")
    # nothing is fetched when the page opens: every src, href and url() is inline data
    assert re.findall(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", page) == []
    assert re.findall(r"url\((?!data:)", page) == []
    # no script runs: the one script element is the embedded JSON result, which is data
    assert re.findall(r"<script[^>]*>", page) == ['<script type="application/json" id="threelines-result">']
    assert "@import" not in page
    assert "@font-face" in page
    assert "data:font/otf;base64," in page
    assert "@page { size: A4;" in page
    # the verdict, the trigger with its evidence, the provenance
    assert 'data-verdict="reject"' in page
    assert "筛查结论: 不予准入" in page
    row = re.search(r'<tr data-rule="redline-overlap">.*?</tr>', page, re.S).group(0)
    for evidence in ("HX360121010", "64,693.34", "6.4693", "97.04", "41.1%"):
        assert evidence in row
    assert "占用生态保护红线“南昌县水源涵养林生态保护红线03”6.47公顷" in row  # the rule's Chinese message
    assert "数据来源与可复现性" in page
    assert f"sha256 {hashlib.sha256(SITE_P02.read_bytes()).hexdigest()}" in page


def test_html_map_is_an_svg_with_the_layers(p02_html):
    page = p02_html.read_text("utf-8")
    svg = base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page).group(1)).decode()
    assert svg.lstrip().startswith("<?xml")
    assert "<svg" in svg
    assert "<text" not in svg  # text drawn as outlines: no font needed to show it
    assert svg.count("<path") > 20  # units, red line, footprint, overlap, legend, scale bar, north arrow


def test_html_renders_in_a_headless_browser(p02_html, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    headless("--window-size=900,1800", f"--screenshot={shot}", p02_html.as_uri(), user_dir=tmp_path / "chrome")
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (1800, 900)
    not_white = (pixels < 245).any(axis=2).mean()
    assert not_white > 0.15  # a page with a map, not a blank one

    def near(rgb, tolerance=12):
        return (np.abs(pixels - np.array(rgb)).max(axis=2) <= tolerance).sum()

    assert near((0xC6, 0x28, 0x28)) > 2000  # the red "reject" verdict badge
    assert near((0xCF, 0xE8, 0xC8)) > 5000  # the priority unit's fill on the map
    # the DOM the browser built holds the map image and one table row per trigger
    dom = headless("--dump-dom", p02_html.as_uri(), user_dir=tmp_path / "chrome").stdout
    assert re.search(r'<img class="map" alt="位置与叠加分析图"', dom)
    assert len(re.findall(r"<tr data-rule=", dom)) == 2
    # printed, every page is A4 (595 x 842 pt)
    pdf = tmp_path / "p02.pdf"
    headless("--no-pdf-header-footer", f"--print-to-pdf={pdf}", p02_html.as_uri(), user_dir=tmp_path / "chrome")
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf.read_bytes())
    assert boxes
    assert {(round(float(w)), round(float(h))) for w, h in boxes} == {(595, 842)}


def test_markdown_report_parses_back(run, sample_dir, tmp_path):
    out = tmp_path / "p02.md"
    assert run("screen", sample_dir / "projects" / "P02.geojson", "-o", out, "--lang", "en").exit_code == 0
    text = out.read_text("utf-8")
    assert text.startswith("# Three lines, one list: screening report\n")
    assert "**Verdict: Reject** (1 reject and 1 conditional)" in text
    rows = [line for line in text.splitlines() if line.startswith(("| redline-overlap", "| YX-02")) and "<br>" in line]
    rows = [line for line in rows if line.count(" | ") == 9]  # the triggers table, not the clause table
    assert len(rows) == 2
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert cells[1:7] == [
        "Reject",
        "HX360121010 南昌县水源涵养林生态保护红线03",
        "64,693.34",
        "6.4693",
        "97.04",
        "41.1%",
    ]
    assert all(line.count(" | ") == 9 for line in rows)  # no cell broke the table
    assert "## Provenance" in text


def test_geojson_evidence_areas_match_the_verdict(run, sample_dir, manifest, tmp_path):
    site = sample_dir / "projects" / "P02.geojson"
    out = tmp_path / "p02.geojson"
    assert run("screen", site, "-o", out).exit_code == 0
    frame = pyogrio.read_dataframe(out)
    assert frame.crs.to_epsg() == 4490
    assert list(frame["piece"]) == ["footprint", "overlap", "overlap"]
    verdict = json.loads(run("screen", site, "--format", "json").stdout)
    areas = frame.to_crs(manifest.working_crs).area.to_numpy()
    assert areas[0] == pytest.approx(verdict["project"]["area_m2"], abs=0.01)
    for row, area in zip(frame.iloc[1:].itertuples(), areas[1:], strict=True):
        trigger = next(t for t in verdict["triggers"] if t["rule"] == row.rule)
        assert row.feature_id == trigger["feature_id"]
        assert area == pytest.approx(trigger["overlap_m2"], abs=0.01)
        assert row.overlap_mu == pytest.approx(trigger["overlap_mu"], abs=1e-4)
    assert not (tmp_path / "p02.source.geojson").exists()  # the input was already EPSG:4490
    collection = json.loads(out.read_text("utf-8"))
    assert collection["provenance"]["input"]["path"] == str(site.resolve())


def test_evidence_in_the_source_crs_too(run, sample_dir, tmp_path):
    site = sample_dir / "site" / "site.shp"  # CGCS2000 Gauss-Kruger zone 39 (EPSG:4527)
    gpkg = tmp_path / "e.gpkg"
    assert run("screen", site, "-o", gpkg).exit_code == 0
    assert [name for name, _ in pyogrio.list_layers(gpkg)] == ["evidence_4490", "evidence_source", "provenance"]
    block = json.loads(pyogrio.read_dataframe(gpkg, layer="provenance")["json"].iloc[0])
    assert block["input"]["path"] == str(site.resolve())
    national = pyogrio.read_dataframe(gpkg, layer="evidence_4490")
    source = pyogrio.read_dataframe(gpkg, layer="evidence_source")
    assert source.crs.to_epsg() == 4527
    assert national.crs.to_epsg() == 4490
    assert shapely.get_coordinates(source.geometry.values)[:, 0].min() > 39_000_000  # zone-prefixed eastings
    back = source.to_crs(4490).geometry.values
    assert shapely.equals_exact(back, national.geometry.values, tolerance=1e-8).all()
    geojson = tmp_path / "e.geojson"
    assert run("screen", site, "-o", geojson).exit_code == 0
    assert pyogrio.read_dataframe(tmp_path / "e.source.geojson").crs.to_epsg() == 4527
    again = run("screen", site, "-o", geojson)
    assert again.exit_code == 2
    assert again.stderr.strip() == f"Error: {geojson}: exists; give --overwrite to replace it, or another -o"


def test_geopackage_needs_a_file(run, sample_dir):
    result = run("screen", sample_dir / "projects" / "P02.geojson", "--format", "gpkg")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: a GeoPackage is a file: give -o NAME.gpkg"


def test_json_carries_provenance(run, sample_dir):
    site = sample_dir / "site" / "site.shp"
    doc = json.loads(run("screen", site, "--format", "json", "--industry", "C2614").stdout)
    prov = doc["provenance"]
    parts = [site.with_suffix(s) for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")]
    assert prov["input"] == {"path": str(site.resolve()), "sha256": _sha(*parts)}
    assert prov["manifest"] == {
        "path": str((sample_dir / "layers.yaml").resolve()),
        "sha256": _sha(sample_dir / "layers.yaml"),
    }
    assert [layer["name"] for layer in prov["layers"]] == ["redline", "units", "quality", "caps", "pm25", "county"]
    assert prov["layers"][0]["sha256"] == _sha(sample_dir / "layers" / "redline.gpkg")
    assert [r["path"].rsplit("/", 1)[1] for r in prov["rules"]] == ["rules.yaml", "access_list.csv"]
    assert prov["options"] == {"industry": "C2614"}
    assert prov["crs"].startswith('PROJCRS["CGCS2000 / Albers equal-area')
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", prov["screened_at"])
    from threelines import __version__

    assert prov["tool_version"] == __version__


def _sha(*paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_language_of_rule_texts(run, sample_dir, monkeypatch):
    site = sample_dir / "projects" / "P02.geojson"

    def redline(*args):
        doc = json.loads(run("screen", site, "--format", "json", *args).stdout)
        return next(t for t in doc["triggers"] if t["rule"] == "redline-overlap")

    zh = redline("--lang", "zh")
    assert zh["title"] == "占用生态保护红线"
    assert zh["message"].startswith(
        "占用生态保护红线“南昌县水源涵养林生态保护红线03”6.47公顷（97.0亩，占项目用地41.1%）"
    )
    assert redline("--lang", "en")["message"].startswith("Occupies 6.47 ha (97.0 mu, 41.1% of the site)")
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    assert redline()["title"] == "占用生态保护红线"  # the locale chooses when --lang is not given
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    assert redline()["title"] == "Overlaps an ecological protection red line"


def test_capacity_messages_in_both_languages(run, sample_dir):
    # P08 emits NOx and VOCs into an air zone that misses its target: offsets are required
    site = sample_dir / "projects" / "P08.geojson"

    def nox(lang):
        doc = json.loads(run("screen", site, "--format", "json", "--lang", lang).stdout)
        return next(t["message"] for t in doc["triggers"] if t["pollutant"] == "nox")

    assert nox("en") == (
        "NOx 2 t/a: offset 4 t/a (2x) required in 南昌县北部大气环境质量不达标区; "
        "倍量削减替代: the offset must come from reductions in the same zone"
    )
    assert nox("zh") == (
        "NOx 2 吨/年：须在南昌县北部大气环境质量不达标区内削减替代4 吨/年（2倍）；倍量削减替代：削减量须来自同一区域"
    )


def test_rule_text_languages_are_checked(run, sample_dir, tmp_path):
    shutil.copytree(sample_dir, tmp_path / "s")
    path = tmp_path / "s" / "rules.yaml"
    text = path.read_text("utf-8").replace("      en: Overlaps an ecological", "      fr: Overlaps an ecological", 1)
    path.write_text(text, encoding="utf-8")
    result = run("rules", "check", path, "--layers", tmp_path / "s" / "layers.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{path}:12: rules[0].title: Additional properties are not allowed ('fr' was unexpected)"
    ]


def test_verify_unchanged_then_changed(run, sample_dir, tmp_path):
    shutil.copytree(sample_dir, tmp_path / "s")
    s = tmp_path / "s"
    report = tmp_path / "r.json"
    args = ("--layers", s / "layers.yaml", "--rules", s / "rules.yaml")
    assert run("screen", s / "projects" / "P02.geojson", *args, "-o", report).exit_code == 0
    same = run("verify", report)
    assert same.exit_code == 0
    assert same.stdout == "P02: unchanged (reject)\n"
    # the red line it overlaps is taken out of the layer
    layer = s / "layers" / "redline.gpkg"
    frame = pyogrio.read_dataframe(layer)
    pyogrio.write_dataframe(frame[frame["id"] != "HX360121010"], layer, layer=pyogrio.list_layers(layer)[0][0])
    changed = run("verify", report)
    assert changed.exit_code == 1
    lines = changed.stdout.splitlines()
    assert lines[0] == (
        "P02: verdict reject -> conditional; trigger redline-overlap (reject, feature HX360121010) is gone"
    )
    assert lines[1].startswith(f"input changed: layer 'redline' {layer}: changed (sha256 ")


def test_verify_refuses_what_it_cannot_check(run, sample_dir, tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text('{"project": {"id": "P01"}, "verdict": "pass"}\n', encoding="utf-8")
    result = run("verify", plain)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {plain}: record 1 has no provenance block; verify reads the JSON that screen --format json "
        "or --format html writes"
    )
    site = tmp_path / "site.geojson"
    shutil.copy(sample_dir / "projects" / "P01.geojson", site)
    report = tmp_path / "r.json"
    assert run("screen", site, "-o", report).exit_code == 0
    site.unlink()
    gone = run("verify", report)
    assert gone.exit_code == 2
    assert gone.stderr.strip() == (
        f"Error: {report}: its input {site} is gone; restore it to verify the report, or give --input"
    )


HINT = "give a report of screen --format json or --format html, or a batch's results.jsonl"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe{", "is not UTF-8 text; " + HINT),
        (b'{"provenance": {}}', "record 1 lacks 'project'; it was not written by threelines"),
        (b'{"project": {"id": "P01"}, "verdict": "pass", "triggers": [], "provenance": {"manifest": {}}}',
         "record 1 lacks 'provenance.layers'; it was not written by threelines"),
    ],
)  # fmt: skip
def test_verify_refuses_broken_reports(run, tmp_path, content, message):
    report = tmp_path / "r.json"
    report.write_bytes(content)
    result = run("verify", report)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {report}: {message}"


def test_report_into_a_missing_folder(run, sample_dir, tmp_path):
    out = tmp_path / "nowhere" / "x.gpkg"
    result = run("screen", sample_dir / "projects" / "P01.geojson", "-o", out)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {out}: folder {out.parent} does not exist; create it or give another -o"
