"""How a reported project differs from a fresh screening of it, one phrase a difference.

``verify`` (:mod:`threelines.report.verify`) pairs each record of a report
with a fresh verdict of the same project and keeps what :func:`compare` says:
its attributes and area (numbers to a billionth), its verdict, its control
units, requirements and undecided rules, and its triggers (by rule, outcome,
feature and pollutant, overlap and distance to the centimetre). Messages
follow the report's language and are not compared.
"""

from __future__ import annotations

import math
from typing import Any


def trigger_keys(record: dict[str, Any]) -> set[tuple]:
    """What identifies each trigger of a JSON record, measures rounded to the centimetre."""

    def cm(value):
        return None if value is None else round(float(value), 2)

    return {
        (t["rule"], t["outcome"], str(t.get("feature_id")), t.get("pollutant"), cm(t.get("overlap_m2")),
         cm(t.get("distance_m")))
        for t in record.get("triggers", [])
    }  # fmt: skip


def compare(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The differences between a reported project and a fresh screening of it, one phrase each."""
    out = _project_differences(before["project"], now["project"])
    if before["verdict"] != now["verdict"]:
        out.append(f"verdict {before['verdict']} -> {now['verdict']}")
    for key, what in (("units", "control units"), ("requirements", "access-list requirements"),
                      ("unresolved", "rules not decided")):  # fmt: skip
        was, is_ = _listed(before, key), _listed(now, key)
        if was != is_:
            out.append(f"{what} {', '.join(was) or '(none)'} -> {', '.join(is_) or '(none)'}")
    old, new = trigger_keys(before), trigger_keys(now)
    old_by = {k[:4]: k for k in old - new}
    new_by = {k[:4]: k for k in new - old}
    for what in sorted(old_by.keys() | new_by.keys(), key=str):
        name = f"trigger {what[0]} ({what[1]}, feature {what[2]}{', ' + what[3] if what[3] else ''})"
        if what not in new_by:
            out.append(f"{name} is gone")
        elif what not in old_by:
            out.append(f"{name} is new")
        else:
            (*_, m2_was, d_was), (*_, m2_now, d_now) = old_by[what], new_by[what]
            if m2_was != m2_now:
                out.append(f"{name}: overlap {m2_was} -> {m2_now} m2")
            if d_was != d_now:
                out.append(f"{name}: distance {d_was} -> {d_now} m")
    return out


def _listed(record: dict[str, Any], key: str) -> list[str]:
    """A record's control units (code and share), requirements (clause) or undecided rules (rule), sorted."""
    items = record.get(key)
    if not isinstance(items, list):
        return []
    if key == "units":
        return sorted(f"{u.get('code')} {u.get('share')}" for u in items if isinstance(u, dict))
    field_ = "clause" if key == "requirements" else "rule"
    return sorted(str(u.get(field_)) for u in items if isinstance(u, dict))


def _project_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Recorded project attributes (area included) that differ from the fresh ones."""
    out = []
    for key in sorted(before.keys() | now.keys()):
        was, is_ = before.get(key), now.get(key)
        if not _equal(was, is_):
            out.append(f"{key} {_show(was)} -> {_show(is_)}")
    return out


def _equal(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _show(value: Any) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
