"""The report's map: footprint, red lines, control units by class, zones, overlaps; scale bar, north arrow, legend.

Drawn with matplotlib (no pyplot, so it is safe in worker processes) in the
equal-area working CRS, whose grid north is true north at the layers'
central meridian (within a degree across a province). Text is drawn as
outlines in the SVG, so the map shows the same on a machine without CJK
fonts; the glyphs come from the package's subset of Noto Sans CJK SC (GB 2312
and the package's own words; SIL Open Font License, see ``fonts/OFL.txt``),
with matplotlib's DejaVu Sans behind it for symbols the subset lacks.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely

from threelines.report.evidence import ProjectEvidence
from threelines.report.i18n import words

log = logging.getLogger(__name__)

#: Fill colours of control units by class, as the provincial atlases colour them.
UNIT_COLOURS = {"priority": "#cfe8c8", "key": "#f7d2a3", "general": "#ececec"}
RED = "#d62728"
#: The report font: Noto Sans CJK SC cut to GB 2312 and the package's own text (scripts/make_cjk_font.py).
FONT_FILE = Path(__file__).parent / "fonts" / "NotoSansCJKsc-GB2312.otf"
#: Its family name, and the font matplotlib draws a character the subset lacks with.
FONT_FAMILIES = ("Noto Sans CJK SC GB2312", "DejaVu Sans")


def cjk_font_path() -> Path:
    """The Chinese font of the reports: the package's subset of Noto Sans CJK SC (OTF)."""
    return FONT_FILE


@lru_cache(maxsize=1)
def font_characters() -> frozenset[int]:
    """The code points the report font has glyphs for."""
    from fontTools.ttLib import TTFont

    with TTFont(FONT_FILE, lazy=True) as font:
        return frozenset(font.getBestCmap())


def missing_characters(text: str) -> str:
    """The characters of ``text`` the report font has no glyph for, each once, in order (spaces and controls aside)."""
    have = font_characters()
    return "".join(dict.fromkeys(c for c in text if ord(c) not in have and c.isprintable() and not c.isspace()))


def warn_missing_glyphs(text: str, where: str) -> str:
    """Log one warning naming the characters of ``text`` outside the report font; return them."""
    missing = missing_characters(text)
    if missing:
        log.warning(
            "%s: the report font (Noto Sans CJK SC, GB 2312 subset) has no glyph for %s; they show in another "
            "font where the reader has one, else as boxes",
            where,
            " ".join(f"{c} (U+{ord(c):04X})" for c in missing),
        )
    return missing


@lru_cache(maxsize=1)
def _font():
    """The map's font: the subset, registered with matplotlib once, with DejaVu Sans as fallback."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(FONT_FILE))
    return font_manager.FontProperties(family=list(FONT_FAMILIES))


def render(evidence: ProjectEvidence, lang: str, fmt: str = "svg", dpi: int = 150) -> bytes:
    """Draw one project's map as SVG (text as outlines) or PNG.

    Parameters
    ----------
    evidence : ProjectEvidence
    lang : str
        ``zh`` or ``en``: legend, scale bar and north arrow words.
    fmt : str
        ``svg`` or ``png``.
    dpi : int
        Resolution of a PNG.

    Returns
    -------
    bytes
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = _font()
    w = words(lang)
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "threelines", "hatch.linewidth": 0.6}):
        fig = Figure(figsize=(7.0, 6.2), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.01, 0.11, 0.98, 0.88))
        handles = _draw(ax, evidence, w, font)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
        return _finish(fig, ax, evidence.extent, handles, w, font, fmt)


def _finish(fig, ax, extent, handles: list, w: dict[str, str], font, fmt: str) -> bytes:
    """Scale bar, north arrow, the map's box, the legend below; the figure as SVG or PNG bytes."""
    _scale_bar(ax, extent, w, font)
    _north_arrow(ax, extent, w, font)
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal")
    legend = fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    for text in legend.get_texts():
        text.set_fontproperties(font)
        text.set_fontsize(8)
    warn_missing_glyphs("".join(t.get_text() for t in [*ax.texts, *legend.get_texts()]), "map")
    out = io.BytesIO()
    with warnings.catch_warnings():
        # Said once above, by character; matplotlib would warn for each glyph at each draw.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        fig.savefig(out, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()


#: Zone fills by outcome on siting maps.
OUTCOME_COLOURS = {"pass": "#4caf50", "conditional": "#f0a030", "reject": "#d9534f", "unknown": "#bdbdbd"}


def render_zones(siting, candidates, lang: str, fmt: str = "png", dpi: int = 150) -> bytes:
    """Draw a siting's zones by outcome, the candidate areas numbered by rank, scale bar, north arrow, legend.

    Parameters
    ----------
    siting : threelines.siting.zones.Siting
    candidates : geopandas.GeoDataFrame or None
        In the working CRS, with ``rank``.
    lang : str
    fmt : str
        ``png`` or ``svg``.
    """
    import matplotlib as mpl
    from geopandas import GeoSeries
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    font = _font()
    w = words(lang)
    minx, miny, maxx, maxy = siting.region.bounds
    pad = 0.03 * max(maxx - minx, maxy - miny)
    extent = (minx - pad, miny - pad, maxx + pad, maxy + pad)
    ratio = (extent[3] - extent[1]) / (extent[2] - extent[0])
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "threelines"}):
        height = 6.86 * ratio + 0.9  # the map at full width, the legend below it
        fig = Figure(figsize=(7.0, height), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.01, 0.9 / height, 0.98, 1 - 0.9 / height - 0.01))
        handles = []
        for outcome, colour in OUTCOME_COLOURS.items():
            mine = siting.zones.geometry[siting.zones["outcome"] == outcome].to_numpy()
            if len(mine):
                GeoSeries(mine).plot(ax=ax, facecolor=colour, edgecolor=colour, linewidth=0.3)  # no seams
                handles.append(Patch(facecolor=colour, label=w[outcome]))
        GeoSeries([siting.region]).boundary.plot(ax=ax, color="#222222", linewidth=1.2)
        handles.append(Line2D([], [], color="#222222", linewidth=1.2, label=w["legend_boundary"]))
        if candidates is not None and len(candidates):
            GeoSeries(candidates.geometry.to_numpy()).boundary.plot(ax=ax, color="#0b3d91", linewidth=1.4)
            for rank, point in zip(candidates["rank"], shapely.point_on_surface(candidates.geometry.to_numpy()),
                                   strict=True):  # fmt: skip
                ax.annotate(str(rank), (point.x, point.y), fontproperties=font, fontsize=9, color="#0b3d91",
                            ha="center", va="center")  # fmt: skip
            handles.append(Line2D([], [], color="#0b3d91", linewidth=1.4, label=w["candidates"]))
        ax.set_axis_off()
        return _finish(fig, ax, extent, handles, w, font, fmt)


def _clip(geoms, extent) -> np.ndarray:
    """Geometries cut to the map box (keeps the SVG small)."""
    clipped = shapely.clip_by_rect(np.asarray(geoms, dtype=object), *extent)
    return clipped[~shapely.is_empty(clipped)]


def _draw(ax, evidence: ProjectEvidence, w: dict[str, str], font) -> list:
    """Layers bottom to top; returns the legend entries of what was drawn."""
    from geopandas import GeoSeries
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    extent = evidence.extent
    for data in evidence.context.values():
        role = data.spec.role
        geoms = data.geometry
        if not len(geoms):
            continue
        if role == "unit":
            for cls, colour in UNIT_COLOURS.items():
                mine = _clip(geoms[data.classes == cls], extent)
                if len(mine):
                    GeoSeries(mine).plot(ax=ax, facecolor=colour, edgecolor="#9a9a9a", linewidth=0.6)
                    handles.append(Patch(facecolor=colour, edgecolor="#9a9a9a", label=w[f"legend_{cls}"]))
        elif role == "redline":
            mine = _clip(geoms, extent)
            if len(mine):
                style = dict(facecolor="#2e8b5755", edgecolor="#1b5e37", hatch="///")
                GeoSeries(mine).plot(ax=ax, linewidth=0.9, **style)
                handles.append(Patch(label=w["legend_redline"], **style))
        elif role in ("quality", "cap", "boundary"):
            style = {
                "quality": dict(edgecolor="#1f5fbf", linestyle="--", linewidth=1.0),
                "cap": dict(edgecolor="#7b3fa0", linestyle=":", linewidth=1.4),
                "boundary": dict(edgecolor="#222222", linestyle="-.", linewidth=1.6),
            }[role]
            mine = _clip(shapely.boundary(geoms), extent)
            if len(mine):
                GeoSeries(mine).plot(ax=ax, color=style["edgecolor"], linestyle=style["linestyle"],
                                     linewidth=style["linewidth"])  # fmt: skip
                handles.append(Line2D([], [], color=style["edgecolor"], linestyle=style["linestyle"],
                                      linewidth=style["linewidth"], label=w[f"legend_{role}"]))  # fmt: skip
    pieces = evidence.pieces
    footprint = evidence.footprint
    # Overlaps with red lines and cap zones are the evidence to see; units and quality zones are
    # already shown by their fills and outlines (and often cover the whole site).
    roles = {name: data.spec.role for name, data in evidence.context.items()}
    wanted = (pieces["piece"] == "overlap") & pieces["layer"].map(roles).isin(["redline", "cap"])
    overlaps = pieces.geometry[wanted].to_numpy()
    overlaps = overlaps[~shapely.is_empty(overlaps)] if len(overlaps) else overlaps
    if len(overlaps):
        GeoSeries(overlaps).plot(ax=ax, facecolor="#e0302fcc", edgecolor=RED, linewidth=0.5, hatch="xx")
        handles.append(Patch(facecolor="#e0302fcc", edgecolor=RED, hatch="xx", label=w["legend_overlap"]))
    lines = pieces[pieces["piece"] == "distance"]
    if len(lines):
        for geom, metres in zip(lines.geometry, lines["distance_m"], strict=True):
            (x0, y0), (x1, y1) = shapely.get_coordinates(geom)[[0, -1]]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="<->", color="#e07b00", linewidth=1.4))  # fmt: skip
            ax.annotate(_length(metres, w), ((x0 + x1) / 2, (y0 + y1) / 2), xytext=(6, 0),
                        textcoords="offset points", fontproperties=font, fontsize=8, color="#8a4b00",
                        ha="left", va="center")  # fmt: skip
        handles.append(Line2D([], [], color="#e07b00", linewidth=1.4, label=w["legend_distance"]))
    # The footprint goes on top, so that its outline shows over the overlaps.
    if shapely.get_type_id(footprint) in (0, 4):  # a point site
        x, y = shapely.get_coordinates(footprint).T
        ax.plot(x, y, marker="*", markersize=14, color=RED, markeredgecolor="white", linestyle="none", zorder=5)
    else:
        GeoSeries([footprint]).plot(ax=ax, facecolor="none", edgecolor=RED, linewidth=2.0, zorder=5)
    handles.append(Line2D([], [], color=RED, linewidth=2.0, label=w["legend_footprint"]))
    return handles


def _length(metres: float, w: dict[str, str]) -> str:
    return f"{metres / 1000:,.2f} {w['km']}" if metres >= 1000 else f"{metres:,.0f} {w['m']}"


def _scale_bar(ax, extent, w: dict[str, str], font) -> None:
    """A two-segment bar of a round length, about a fifth of the map's width, bottom left."""
    from matplotlib.patches import Rectangle

    width = extent[2] - extent[0]
    target = width / 5
    power = 10 ** math.floor(math.log10(target))
    length = max(s * power for s in (1, 2, 5) if s * power <= target)
    x0 = extent[0] + width * 0.04
    y0 = extent[1] + (extent[3] - extent[1]) * 0.05
    height = (extent[3] - extent[1]) * 0.012
    for i, colour in enumerate(("black", "white")):
        ax.add_patch(Rectangle((x0 + i * length / 2, y0), length / 2, height, facecolor=colour, edgecolor="black",
                               linewidth=0.8, zorder=10))  # fmt: skip
    label = f"{length / 1000:g} {w['km']}" if length >= 1000 else f"{length:g} {w['m']}"
    for x, text in ((x0, "0"), (x0 + length, label)):
        ax.text(x, y0 + height * 1.8, text, fontproperties=font, fontsize=8, ha="center", va="bottom", zorder=10)


def _north_arrow(ax, extent, w: dict[str, str], font) -> None:
    """An arrow and the letter for north, top right."""
    from matplotlib.patches import Polygon

    width, height = extent[2] - extent[0], extent[3] - extent[1]
    x, top = extent[2] - width * 0.06, extent[3] - height * 0.05
    size = height * 0.07
    ax.add_patch(Polygon([(x, top), (x - size * 0.3, top - size), (x, top - size * 0.75)], closed=True,
                         facecolor="black", edgecolor="black", zorder=10))  # fmt: skip
    ax.add_patch(Polygon([(x, top), (x + size * 0.3, top - size), (x, top - size * 0.75)], closed=True,
                         facecolor="white", edgecolor="black", zorder=10))  # fmt: skip
    ax.text(x, top - size * 1.05, w["north"], fontproperties=font, fontsize=10, ha="center", va="top", zorder=10)
