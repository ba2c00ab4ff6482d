"""A readable summary of verdicts for a person at a terminal."""

from __future__ import annotations

import textwrap
from collections import Counter

from threelines.engine.verdict import VERDICTS, Verdict

#: Verdict words in both languages, as screening platforms print them.
VERDICT_WORDS = {"pass": "PASS 通过", "conditional": "CONDITIONAL 有条件准入", "reject": "REJECT 不予准入"}

_INDENT = " " * 6


def _wrap(text: str, indent: str = _INDENT + "    ") -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)


def format_verdict(verdict: Verdict, lang: str | None = None) -> str:
    """Describe one project's verdict, triggers, units and missing information (rule texts in ``lang``)."""
    from threelines.report.document import trigger_text

    p = verdict.project
    lines = [f"{p['id']}  {p['name'] or ''}".rstrip()]
    industry = f"{p['industry']} {p['industry_name']}" if p["industry"] else "not given"
    lines.append(
        f"{_INDENT}industry {industry} | kind {p['kind']} | area {p['area_ha']:,.2f} ha ({p['area_mu']:,.1f} mu)"
    )
    if p.get("plane_area_m2"):
        lines.append(
            f"{_INDENT}area on the drawing {p['plane_area_m2']:,.2f} m2 ({p['plane_area_mu']:,.2f} mu), "
            "in the plane of the input's CRS: compare this one with the site drawing "
            "(the area above is on the ellipsoid, for the rules)"
        )
    lines.append(f"{_INDENT}verdict  {VERDICT_WORDS[verdict.verdict]}")
    for unit in verdict.units:
        lines.append(f"{_INDENT}unit     {unit.code} {unit.name or ''} ({unit.class_}) {unit.share:.1%}")
    for t in verdict.triggers:
        title, message = (trigger_text(t, key, lang) for key in ("title", "message")) if lang else (t.title, t.message)
        lines.append(f"{_INDENT}[{t.outcome}] {t.rule} ({t.dimension}): {title}")
        lines.append(_wrap(message))
        if t.basis:
            lines.append(_wrap(f"basis: {t.basis}"))
    for req in verdict.requirements:
        lines.append(_wrap(f"[requirement] {req.clause} ({req.dimension}, {req.unit}): {req.text}", _INDENT))
    for note in verdict.unresolved:
        lines.append(f"{_INDENT}[information missing] {note.rule}: {note.reason}")
    for warning in verdict.warnings:
        lines.append(_wrap(f"[warning] {warning}", _INDENT))
    return "\n".join(lines)


def format_text(verdicts: list[Verdict], lang: str | None = None) -> str:
    """All verdicts, then a one-line count by verdict."""
    counts = Counter(v.verdict for v in verdicts)
    summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    missing = sum(1 for v in verdicts if v.unresolved)
    tail = f"; {missing} with information missing" if missing else ""
    body = "\n\n".join(format_verdict(v, lang) for v in verdicts)
    mark = next((v.jurisdiction["sample"] for v in verdicts if (v.jurisdiction or {}).get("sample")), None)
    if mark:  # the bundled synthetic layers: never mistaken for a real screening
        body = f"*** {mark} ***\n\n{body}"
    return f"{body}\n\n{len(verdicts)} project{'s' * (len(verdicts) != 1)} screened: {summary}{tail}\n"
