"""The reports' Chinese font: the package's GB 2312 subset of Noto Sans CJK SC, and text outside it."""

from __future__ import annotations

import base64
import importlib.util
import io
import re
from pathlib import Path

import pyogrio
import pytest
from fontTools.ttLib import TTFont

from threelines.report import i18n
from threelines.report import map as report_map

ROOT = Path(__file__).resolve().parents[1]


def gb2312_characters() -> set[str]:
    """The characters of GB 2312, as the script that cuts the font counts them."""
    spec = importlib.util.spec_from_file_location("make_cjk_font", ROOT / "scripts" / "make_cjk_font.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.gb2312()


def test_the_font_is_a_packaged_gb2312_subset_with_its_licence():
    path = report_map.cjk_font_path()
    assert path.parent.name == "fonts"
    assert path.parent.parent.name == "report"
    assert 2_000_000 < path.stat().st_size < 5_000_000
    licence = (path.parent / "OFL.txt").read_text("utf-8")
    assert "SIL OPEN FONT LICENSE" in licence
    assert "Adobe" in licence
    have = report_map.font_characters()
    gb2312 = gb2312_characters()
    assert len(gb2312) == 7445  # 6,763 hanzi and 682 other characters
    assert not [c for c in gb2312 if ord(c) not in have]
    own = "".join(v for pair in i18n._WORDS.values() for v in pair) + "".join(i18n.TEXT_ZH.values())
    assert report_map.missing_characters(own) == ""
    with TTFont(path, lazy=True) as font:
        assert font["name"].getDebugName(1) == "Noto Sans CJK SC GB2312"  # renamed: a modified version


def test_missing_characters_names_each_once():
    assert report_map.missing_characters("南昌县 鄌郚镇 鄌 ABC") == "鄌郚"
    assert report_map.missing_characters("《通知》（试行）①℃") == ""


def test_an_html_report_with_characters_outside_the_font(run, sample_dir, tmp_path):
    frame = pyogrio.read_dataframe(sample_dir / "projects" / "P04.geojson")
    frame["name"] = "鄌郚镇金属结构件加工厂项目"  # 鄌 and 郚 are not in GB 2312
    site = tmp_path / "site.geojson"
    pyogrio.write_dataframe(frame, site)
    out = tmp_path / "r.html"
    result = run("screen", site, "--format", "html", "--lang", "zh", "-o", out)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "has no glyph" in line]
    assert warnings == [
        "threelines: WARNING: HTML report: the report font (Noto Sans CJK SC, GB 2312 subset) has no glyph for "
        "郚 (U+90DA) 鄌 (U+910C); they show in another font where the reader has one, else as boxes"
    ]
    page = out.read_text("utf-8")
    assert "鄌郚镇金属结构件加工厂项目" in page
    embedded = base64.b64decode(re.search(r"url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", page)[1])
    with TTFont(io.BytesIO(embedded)) as font:
        cmap = font.getBestCmap()
    assert ord("镇") in cmap
    assert ord("鄌") not in cmap


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_a_map_with_characters_in_no_font_still_draws(sample_dir, manifest, ruleset, monkeypatch, caplog, fmt):
    """A legend word in neither the subset nor DejaVu Sans (☃ is in DejaVu): drawn, and one warning says which."""
    from threelines.engine.screen import screen
    from threelines.report.evidence import collect

    words = i18n.words("zh") | {"legend_footprint": "项目范围 ☃ 𠀀"}
    monkeypatch.setattr(report_map, "words", lambda lang: words)
    screening = screen(sample_dir / "projects" / "P04.geojson", manifest, ruleset)
    (evidence,) = collect(screening.verdicts, screening.footprints, manifest)
    with caplog.at_level("WARNING", logger="threelines.report.map"):
        drawn = report_map.render(evidence, "zh", fmt)  # matplotlib's own glyph warnings would fail the test
    assert drawn.startswith(b"<?xml" if fmt == "svg" else b"\x89PNG")
    assert [r.getMessage() for r in caplog.records if r.name == "threelines.report.map"] == [
        "map: the report font (Noto Sans CJK SC, GB 2312 subset) has no glyph for ☃ (U+2603) 𠀀 (U+20000); "
        "they show in another font where the reader has one, else as boxes"
    ]
