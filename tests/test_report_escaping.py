"""Text from outside (project ids and names, rule titles, messages, basis) is inert in Markdown and HTML reports."""

from __future__ import annotations

import base64
import json
import re
import shutil

import pytest

from threelines.report.pages import embedded_json, markdown_text

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
LINK = "[click](javascript:alert(3))"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, sample_dir):
    """P02 with a hostile id and name, screened against rules whose title and basis are hostile too."""
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(sample_dir, root / "s")
    rules = root / "s" / "rules.yaml"
    text = rules.read_text("utf-8")
    text = text.replace("      en: Overlaps an ecological protection red line",
                        f"      en: '{IMG} | `rm -rf` {LINK}'", 1)  # fmt: skip
    text = re.sub(
        r"(?m)^    basis: 《关于划定并严守生态保护红线的若干意见》.*$",
        f"    basis: '{SCRIPT} *bold* 《意见》'",
        text,
        count=1,
    )
    rules.write_text(text, encoding="utf-8")
    site = json.loads((sample_dir / "projects" / "P02.geojson").read_text("utf-8"))
    site["features"][0]["properties"].update(id=f"# P02 {SCRIPT}", name=f"- {IMG} {LINK} | x\n## heading")
    path = root / "site.geojson"
    path.write_text(json.dumps(site, ensure_ascii=False), encoding="utf-8")
    return root, path, rules


def render(run, hostile, fmt: str) -> str:
    root, path, rules = hostile
    out = root / f"r.{fmt}"
    if not out.exists():
        args = ("--layers", root / "s" / "layers.yaml", "--rules", rules, "--lang", "en")
        result = run("screen", path, *args, "-o", out)
        assert result.exit_code == 0, result.stderr
    return out.read_text("utf-8")


def test_markdown_text_makes_payloads_inert():
    assert markdown_text(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert markdown_text(IMG) == "&lt;img src=x onerror=alert(2)&gt;"
    assert markdown_text(LINK) == "\\[click\\](javascript:alert(3))"
    assert markdown_text("a | b `c` *d* _e_ ~f~ \\g") == "a \\| b \\`c\\` \\*d\\* \\_e\\_ \\~f\\~ \\\\g"
    assert markdown_text("# title") == "\\# title"
    assert markdown_text("- item") == "\\- item"
    assert markdown_text("+ item") == "\\+ item"
    assert markdown_text("1. item") == "1\\. item"
    assert markdown_text("> quote") == "&gt; quote"
    assert markdown_text("line\n\n# two") == "line # two"  # one line: a # inside it starts nothing
    assert markdown_text("&lt;") == "&amp;lt;"
    # ordinary text is left as it is
    assert markdown_text("南昌县 GB 3095-2012 12.5% -3 m") == "南昌县 GB 3095-2012 12.5% -3 m"
    assert markdown_text(None) == ""


def test_markdown_report_escapes_project_and_rule_texts(run, hostile):
    page = render(run, hostile, "md")
    for payload in (SCRIPT, IMG, LINK, "`rm -rf`", "*bold*", "\n## heading", "\n# P02"):
        assert payload not in page
    assert "## Project \\# P02 &lt;script&gt;alert(1)&lt;/script&gt; \\- &lt;img src=x onerror=alert(2)&gt; " in page
    assert "\\[click\\](javascript:alert(3)) \\| x ## heading" in page
    # the rule title and the basis, in their table cells: the row keeps its 10 cells
    row = next(line for line in page.splitlines() if line.startswith("| redline-overlap"))
    assert "&lt;img src=x onerror=alert(2)&gt; \\| \\`rm -rf\\` \\[click\\](javascript:alert(3))" in row
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\*bold\\*" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 11


def test_html_report_escapes_project_and_rule_texts(run, hostile):
    page = render(run, hostile, "html")
    assert SCRIPT not in page
    assert IMG not in page
    assert "onerror=alert(2)>" not in page
    assert "<h2>Project # P02 &lt;script&gt;alert(1)&lt;/script&gt; - &lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt; | `rm -rf` [click](javascript:alert(3))" in page
    assert 'data-project="# P02 &lt;script&gt;alert(1)&lt;/script&gt;"' in page
    # only the embedded JSON is a script element, and nothing inside it can close it
    assert re.findall(r"<script[^>]*>", page) == ['<script type="application/json" id="threelines-result">']
    embedded = page.split('id="threelines-result">')[1].split("</script>")[0]
    assert "<" not in embedded
    assert ">" not in embedded
    assert json.loads(embedded)[0]["project"]["id"] == f"# P02 {SCRIPT}"
    # the map, an SVG inside an <img>, carries no text from outside (its text is drawn as outlines)
    maps = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(maps) == 1
    svg = base64.b64decode(maps[0]).decode("utf-8")
    assert "alert" not in svg
    assert "<script" not in svg


def test_embedded_json_cannot_break_out_of_its_script():
    records = [{"name": "</script><script>alert(1)</script><!-- & -->", "zh": "南昌\u2028"}]
    text = embedded_json(records)
    for bad in ("</", "<!--", "-->", "<", ">", "&", "\u2028"):
        assert bad not in text
    assert json.loads(text) == records


def test_a_hostile_report_verifies(run, hostile):
    root, _, _ = hostile
    render(run, hostile, "html")
    result = run("verify", root / "r.html")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == f"# P02 {SCRIPT}: unchanged (reject)\n"
