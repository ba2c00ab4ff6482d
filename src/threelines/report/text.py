"""A readable summary of verdicts for a person at a terminal."""

from __future__ import annotations

import textwrap
from collections import Counter

from threelines.engine.verdict import VERDICTS, Verdict
from threelines.report.i18n import TEXT_ZH, reason_text, warning_text, words

#: Verdict words in both languages, as screening platforms print them.
VERDICT_WORDS = {"pass": "PASS 通过", "conditional": "CONDITIONAL 有条件准入", "reject": "REJECT 不予准入"}

_INDENT = " " * 6
#: Control-unit classes with a Chinese name (优先保护单元, 重点管控单元, 一般管控单元).
CLASSES = ("priority", "key", "general")


def _wrap(text: str, indent: str = _INDENT + "    ") -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)


def format_verdict(verdict: Verdict, lang: str | None = None) -> str:
    """Describe one project's verdict, triggers, units and missing information.

    Under ``lang="zh"`` every label is Chinese (rule titles and messages too where the rule file gives them);
    otherwise the labels are English, the verdict word bilingual, as they have always been printed.
    """
    if lang == "zh":
        return _format_verdict_zh(verdict)
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


def _format_verdict_zh(verdict: Verdict) -> str:
    """:func:`format_verdict` with Chinese labels, units (公顷, 亩), classes, dimensions and reasons."""
    from threelines.report.document import trigger_text

    w, t_ = words("zh"), TEXT_ZH
    p = verdict.project
    lines = [f"{p['id']}  {p['name'] or ''}".rstrip()]
    industry = f"{p['industry']} {p['industry_name']}" if p["industry"] else w["not_given"]
    kind = w.get(f"{p['kind']}_kind", p["kind"])
    lines.append(
        f"{_INDENT}{t_['industry']} {industry} | {t_['kind']} {kind} | "
        f"{t_['area']} {p['area_ha']:,.2f} {w['ha']}（{p['area_mu']:,.1f} {w['mu']}）"
    )
    if p.get("plane_area_m2"):
        text = t_["plane_area"].format(m2=f"{p['plane_area_m2']:,.2f}", mu=f"{p['plane_area_mu']:,.2f}")
        lines.append(_wrap(text, _INDENT))
    lines.append(f"{_INDENT}{t_['verdict']}  {w[verdict.verdict]}")
    for unit in verdict.units:
        cls = w.get(unit.class_, unit.class_) if unit.class_ in CLASSES else unit.class_
        lines.append(f"{_INDENT}{t_['unit']}  {unit.code} {unit.name or ''}（{cls}）{unit.share:.1%}")
    for t in verdict.triggers:
        title, message = (trigger_text(t, key, "zh") for key in ("title", "message"))
        lines.append(f"{_INDENT}[{w[t.outcome]}] {t.rule}（{w.get(t.dimension, t.dimension)}）：{title}")
        lines.append(_wrap(message))
        if t.basis:
            lines.append(_wrap(f"{t_['basis']}：{t.basis}"))
    for req in verdict.requirements:
        unit = t_["all_units"] if req.unit == "*" else w.get(req.unit, req.unit)
        where = f"{w.get(req.dimension, req.dimension)}，{unit}"
        lines.append(_wrap(f"[{t_['requirement']}] {req.clause}（{where}）：{req.text}", _INDENT))
    for note in verdict.unresolved:
        lines.append(f"{_INDENT}[{t_['unresolved']}] {note.rule}：{reason_text(note.reason, 'zh')}")
    for warning in verdict.warnings:
        lines.append(_wrap(f"[{t_['warning']}] {warning_text(warning, 'zh')}", _INDENT))
    return "\n".join(lines)


def format_text(verdicts: list[Verdict], lang: str | None = None) -> str:
    """All verdicts, then a one-line count by verdict."""
    counts = Counter(v.verdict for v in verdicts)
    missing = sum(1 for v in verdicts if v.unresolved)
    body = "\n\n".join(format_verdict(v, lang) for v in verdicts)
    mark = next((v.jurisdiction["sample"] for v in verdicts if (v.jurisdiction or {}).get("sample")), None)
    if lang == "zh":
        w = words("zh")
        if mark:
            body = f"*** {w['sample_mark']} ***\n\n{body}"
        summary = "，".join(TEXT_ZH["count"].format(word=w[v], n=counts[v]) for v in VERDICTS)
        tail = TEXT_ZH["with_missing"].format(n=missing) if missing else ""
        return f"{body}\n\n{TEXT_ZH['screened'].format(n=len(verdicts), counts=summary)}{tail}\n"
    summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    tail = f"; {missing} with information missing" if missing else ""
    if mark:  # the bundled synthetic layers: never mistaken for a real screening
        body = f"*** {mark} ***\n\n{body}"
    return f"{body}\n\n{len(verdicts)} project{'s' * (len(verdicts) != 1)} screened: {summary}{tail}\n"
