"""What a report says, in one language: the content both the HTML and the Markdown templates show.

:func:`build` turns verdicts (with their evidence and provenance) into plain
dicts of display strings, so the templates only lay them out.
"""

from __future__ import annotations

from typing import Any

from threelines import __version__
from threelines.engine.measure import M2_PER_MU
from threelines.engine.verdict import Trigger, Verdict
from threelines.report.i18n import pick, reason_text, words


def _num(value: float | None, decimals: int) -> str:
    return "" if value is None else f"{value:,.{decimals}f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def area_text(m2: float | None, w: dict[str, str]) -> str:
    """An area in m2, ha and mu, as Chinese land documents give it."""
    if m2 is None:
        return ""
    return f"{m2:,.2f} {w['m2']} / {m2 / 1e4:,.4f} {w['ha']} / {m2 / M2_PER_MU:,.2f} {w['mu']}"


def trigger_text(trigger: Trigger, key: str, lang: str) -> str:
    """A trigger's ``title`` or ``message`` in ``lang`` when the rule file gave that language."""
    translations = getattr(trigger, "translations", None) or {}
    return pick({k: v[key] for k, v in translations.items() if key in v}, getattr(trigger, key), lang)


def project_view(verdict: Verdict, lang: str) -> dict[str, Any]:
    """One project's section of a report."""
    w = words(lang)
    p = verdict.project
    outcomes = [t.outcome for t in verdict.triggers]
    industry = f"{p['industry']} {p.get('industry_name') or ''}".strip() if p.get("industry") else w["not_given"]
    return {
        "id": p["id"],
        "name": p.get("name") or "",
        "industry": industry,
        "kind": w.get(f"{p.get('kind')}_kind", p.get("kind") or ""),
        "area": area_text(p.get("area_m2"), w) if p.get("area_m2") else w["point_kind"],
        # Only for a footprint drawn in a projected CRS: the area its drawing states.
        "plane_area": area_text(p.get("plane_area_m2"), w) if p.get("plane_area_m2") else "",
        "verdict": verdict.verdict,
        "verdict_word": w[verdict.verdict],
        "counts": w["n_triggers"].format(reject=outcomes.count("reject"), conditional=outcomes.count("conditional")),
        "map_svg": None,  # the HTML page fills it in
        "triggers": [
            {
                "rule": t.rule,
                "title": trigger_text(t, "title", lang),
                "outcome": t.outcome,
                "outcome_word": w[t.outcome],
                "dimension": w.get(t.dimension, t.dimension),
                "layer": t.layer,
                "feature": " ".join(str(x) for x in (t.feature_id, t.feature_name) if x not in (None, "")),
                "overlap_m2": _num(t.overlap_m2, 2) if t.overlap_m2 else "",
                "overlap_ha": _num(t.overlap_ha, 4) if t.overlap_m2 else "",
                "overlap_mu": _num(t.overlap_mu, 2) if t.overlap_m2 else "",
                "share": _pct(t.overlap_ratio) if t.overlap_m2 else "",
                "distance": "" if t.distance_m is None or t.overlap_m2 else f"{t.distance_m:,.1f} {w['m']}",
                "message": trigger_text(t, "message", lang),
                "basis": t.basis or "",
            }
            for t in verdict.triggers
        ],
        "units": [
            {"code": u.code, "name": u.name or "", "class": w.get(u.class_, u.class_), "share": _pct(u.share)}
            for u in verdict.units
        ],
        "requirements": [
            {
                "clause": r.clause,
                "unit": r.unit,
                "dimension": w.get(r.dimension, r.dimension),
                "text": r.text,
                "basis": r.basis or "",
            }
            for r in verdict.requirements
        ],
        "unresolved": [{"rule": u.rule, "reason": reason_text(u.reason, lang)} for u in verdict.unresolved],
        "warnings": list(verdict.warnings),
        "clauses": clause_rows(verdict, w),
    }


def clause_rows(verdict: Verdict, w: dict[str, str]) -> list[dict[str, str]]:
    """The clause table (生态环境准入清单符合性分析表): clause, level, finding, and an empty response cell."""
    rows = []
    for c in verdict.clauses:
        note = f" ({w['from_prose']}: {'、'.join(c.matched)})" if c.source == "prose" and c.matched else ""
        rows.append(
            {
                "id": c.id,
                "text": c.text + note,
                "level": w.get(c.level, c.level) + (f" {c.unit}" if c.unit else ""),
                "dimension": w.get(c.dimension, c.dimension),
                "finding": c.finding,
                "finding_word": w.get(c.finding, c.finding),
                "reason": c.reason or "",
                "basis": c.basis or "",
            }
        )
    return rows


def jurisdiction_text(verdicts: list[Verdict]) -> str:
    """The jurisdiction the layers belong to, as a report names it (name, adcode, version, published)."""
    j = next((v.jurisdiction for v in verdicts if v.jurisdiction), None)
    if not j:
        return ""
    extra = ", ".join(f"{k} {j[k]}" for k in ("adcode", "version", "published") if j.get(k))
    return f"{j.get('name') or ''}" + (f" ({extra})" if extra else "")


def provenance_rows(provenance: dict[str, Any] | None, lang: str) -> list[tuple[str, str]]:
    """The provenance block as label / value rows (hashes in full: they are what a reader checks)."""
    if not provenance:
        return []
    w = words(lang)
    rows = [(w["tool_version"], f"threelines {provenance['tool_version']}")]
    rows.append((w["screened_at"], provenance["screened_at"]))
    given = provenance["input"]
    where = given.get("path") or ("WKT" if given.get("wkt") else "-")
    if given.get("layer"):
        where += f" (layer {given['layer']})"
    rows.append((w["input"], f"{where}  sha256 {given.get('sha256') or '-'}"))
    if provenance.get("options"):
        rows.append((w["options"], ", ".join(f"{k}={v}" for k, v in sorted(provenance["options"].items()))))
    rows.append((w["manifest"], f"{provenance['manifest']['path']}  sha256 {provenance['manifest']['sha256']}"))
    rows += [(f"{w['layers']}: {e['name']}", f"{e['path']}  sha256 {e['sha256']}") for e in provenance["layers"]]
    rows += [(w["rules"], f"{e['path']}  sha256 {e['sha256']}") for e in provenance["rules"]]
    crs = provenance["crs"]
    rows.append((w["working_crs"], crs.split('"')[1] if crs.count('"') >= 2 else crs))
    return rows


def build(verdicts: list[Verdict], lang: str, *, provenance: dict | None = None) -> dict[str, Any]:
    """The whole report's content.

    Parameters
    ----------
    verdicts : list of Verdict
    lang : str
        ``zh`` or ``en``.
    provenance : dict, optional
        The provenance block (see :mod:`threelines.report.provenance`).

    A screening against the bundled synthetic sample carries its mark.
    """
    w = words(lang)
    return {
        "lang": lang,
        "w": w,
        "title": w["report_title"],
        "generated_by": w["generated_by"].format(version=__version__),
        "projects": [project_view(v, lang) for v in verdicts],
        "provenance": provenance_rows(provenance, lang),
        "jurisdiction": jurisdiction_text(verdicts),
        "sample_mark": w["sample_mark"] if any((v.jurisdiction or {}).get("sample") for v in verdicts) else "",
    }
