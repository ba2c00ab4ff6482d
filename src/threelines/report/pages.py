"""HTML and Markdown reports from the content of :mod:`threelines.report.document`.

The HTML is one self-contained file: styles inline, each map an SVG inside
the page as a data URI, and the Chinese glyphs the page uses cut from Noto
Sans CJK SC (with fontTools) and embedded, so it opens the same with no
network and no CJK font installed, and prints on A4.
"""

from __future__ import annotations

import base64
import io
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


@lru_cache(maxsize=1)
def _markdown_environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # Every value a Markdown template shows goes through markdown_text: nothing can be forgotten.
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,
        finalize=markdown_text,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


#: Characters that start inline Markdown (emphasis, code, links, tables, strikethrough, escapes).
_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
#: What makes a line a heading, quote, list item or setext underline when it starts the line.
_MD_BLOCK = re.compile(r"^(\s*\d*)([#+.)-])(?=\s|$)")


def markdown_text(value: Any) -> str:
    """Text from outside made inert in Markdown and in the HTML a Markdown viewer makes of it.

    ``<``, ``>`` and ``&`` become entities (no tag, comment or autolink can
    start); the characters of emphasis, code, links, tables and escapes get
    a backslash; a leading ``#``, ``-``, ``+`` or ``1.`` cannot start
    a block; line breaks become spaces, so a value stays inside its line or
    table cell.
    """
    if value is None:
        return ""
    text = re.sub(r"\s*[\r\n]+\s*", " ", str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_BLOCK.sub(r"\1\\\2", text)


def html_page(doc: dict[str, Any], maps_svg: list[bytes | None], records: list[dict] | None = None) -> str:
    """The HTML report: the document, its maps, the glyphs it needs, and its JSON result.

    ``records`` (each project's JSON, with its provenance) are embedded in a
    ``<script type="application/json" id="threelines-result">`` element, so
    that ``threelines verify`` can check the page that was handed in.
    """
    doc = dict(doc)
    doc["result_json"] = embedded_json(records) if records else ""
    doc["projects"] = [
        {**p, "map_svg": base64.b64encode(svg).decode("ascii") if svg else None}
        for p, svg in zip(doc["projects"], maps_svg, strict=True)
    ]
    return _self_contained("report.html.j2", doc)


def embedded_json(records: list[dict]) -> str:
    """JSON that cannot end the ``<script>`` it is in: ``<``, ``>`` and ``&`` escaped as JSON unicode escapes.

    Outside strings JSON has none of these characters, so the escapes only
    ever land inside strings, where they mean the same; ``</script>`` and
    ``<!--`` cannot appear.
    """
    text = json.dumps(records, sort_keys=True, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def siting_page(doc: dict[str, Any], map_svg: bytes) -> str:
    """The HTML page of a siting: zones map, area by outcome, candidate areas, zones, provenance."""
    return _self_contained("siting.html.j2", {**doc, "map_svg": base64.b64encode(map_svg).decode("ascii")})


def _self_contained(name: str, doc: dict[str, Any]) -> str:
    """Render a page twice: once to learn which glyphs it shows, then with those glyphs embedded."""
    template = _environment().get_template(name)
    draft = template.render(**doc, font_css="")
    return template.render(**doc, font_css=_font_css(_visible_text(draft)))


def markdown_page(doc: dict[str, Any]) -> str:
    """The Markdown report: the same content as the HTML, without the map."""
    text = _markdown_environment().get_template("report.md.j2").render(**doc)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _visible_text(page: str) -> str:
    """The characters a page shows (tags, styles and data URIs left out)."""
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    page = re.sub(r"<[^>]+>", "", page)
    return page


def _font_css(text: str) -> str:
    """An @font-face rule embedding the CJK glyphs of ``text`` (none needed: no rule)."""
    from threelines.report.map import warn_missing_glyphs

    needed = {c for c in text if ord(c) > 0x2E7F}  # CJK punctuation and ideographs onwards
    if not needed:
        return ""
    # A character outside the subset is left to the next font of the page's CSS (the reader's own).
    warn_missing_glyphs("".join(sorted(needed)), "HTML report")
    data = _subset("".join(sorted(needed)) + "0123456789")
    encoded = base64.b64encode(data).decode("ascii")
    return f'@font-face {{ font-family: "ReportCJK"; src: url(data:font/otf;base64,{encoded}) format("opentype"); }}'


def _subset(text: str) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    from threelines.report.map import cjk_font_path

    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_bounds = False  # the font's own bounds do; recomputing them from every outline is most of the time
    with TTFont(cjk_font_path(), lazy=True, recalcBBoxes=False) as font:
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=text)
        subsetter.subset(font)
        out = io.BytesIO()
        font.save(out)
    return out.getvalue()
