"""Re-screen a JSON report from its provenance block and say whether its verdicts still hold.

A report's verdict and triggers are compared with a fresh screening of the
same input, with the same options, against the manifest and rules the
report names (as they are now). Triggers are compared by rule, outcome,
feature, pollutant, and overlap and distance to the centimetre; messages
are not compared (they follow the report's language).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threelines.errors import ReportError
from threelines.provenance import changed_inputs


@dataclass
class Check:
    """The outcome of verifying one report file."""

    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every verdict and trigger is as the report says."""
        return not self.changed


def read_report(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON report (one object, or JSON Lines).

    Raises
    ------
    ReportError
        If the file cannot be read, is not JSON, or has no provenance block.
    """
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: is not UTF-8 text; give a report of screen --format json") from None
    try:
        records = [json.loads(text)] if text.lstrip().startswith("{") and "\n{" not in text.strip() else None
        if records is None:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path}: line {exc.lineno}: not JSON ({exc.msg}); give a report of screen --format json"
        ) from None
    for i, record in enumerate(records, 1):
        if not isinstance(record, dict) or "provenance" not in record:
            raise ReportError(
                f"{path}: record {i} has no provenance block; verify reads the JSON that screen --format json writes"
            )
        missing = _missing_keys(record)
        if missing:
            raise ReportError(f"{path}: record {i} lacks {missing}; it was not written by threelines screen")
    return records


def _missing_keys(record: dict[str, Any]) -> str | None:
    """The first key a re-screen needs that a record does not have, or None."""
    block = record["provenance"]
    needs = [
        (record, "project", dict), (record.get("project", {}), "id", str), (record, "verdict", str),
        (block, "manifest", dict), (block.get("manifest", {}), "path", str), (block, "rules", list),
        (block, "input", dict), (block, "layers", list),
    ]  # fmt: skip
    for where, key, kind in needs:
        if not isinstance(where, dict) or not isinstance(where.get(key), kind):
            return f"'{key}'"
    if not block["rules"] or not all(isinstance(r, dict) and isinstance(r.get("path"), str) for r in block["rules"]):
        return "'rules[].path'"
    return None


def trigger_keys(record: dict[str, Any]) -> set[tuple]:
    """What identifies each trigger of a JSON record, measures rounded to the centimetre."""

    def cm(value):
        return None if value is None else round(float(value), 2)

    return {
        (t["rule"], t["outcome"], str(t.get("feature_id")), t.get("pollutant"), cm(t.get("overlap_m2")),
         cm(t.get("distance_m")))
        for t in record.get("triggers", [])
    }  # fmt: skip


def verify(path: str | Path) -> Check:
    """Re-screen every project of a JSON report and compare.

    Raises
    ------
    ReportError
        If the report is unusable or its input cannot be read again.
    """
    records = read_report(path)
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(json.dumps(_setup(record["provenance"]), sort_keys=True), []).append(record)
    check = Check()
    for key, group in groups.items():
        fresh, manifest = _rescreen(json.loads(key), path)
        for record in group:
            pid = record["project"]["id"]
            now = fresh.get(pid)
            if now is None:
                check.changed.append(f"{pid}: no longer screened (not in the input, or refused)")
                continue
            differences = _compare(record, now)
            (check.changed if differences else check.unchanged).append(
                f"{pid}: {'; '.join(differences)}" if differences else f"{pid}: unchanged ({record['verdict']})"
            )
        check.inputs += [c for c in changed_inputs(group[0]["provenance"], manifest) if c not in check.inputs]
    return check


def _setup(provenance: dict[str, Any]) -> dict[str, Any]:
    """What a re-screen needs from a provenance block."""
    return {
        "manifest": provenance["manifest"]["path"],
        "rules": provenance["rules"][0]["path"],
        "input": provenance["input"],
        "options": provenance.get("options", {}),
    }


def _rescreen(setup: dict[str, Any], report: str | Path):
    """Screen the report's input again: JSON records by project id, and the manifest used."""
    from threelines.engine import screen
    from threelines.errors import ThreelinesError
    from threelines.manifest import load_manifest
    from threelines.rules import load_rules

    given, options = setup["input"], dict(setup["options"])
    crs, encoding = options.pop("crs", None), options.pop("encoding", None)
    if given.get("wkt"):
        from threelines.cli.options import wkt_frame

        source = wkt_frame(given["wkt"])
    elif given.get("path") in (None, "-"):
        raise ReportError(f"{report}: the project came from standard input, which cannot be read again")
    else:
        source = given["path"] + (f":{given['layer']}" if given.get("layer") else "")
        if not Path(given["path"]).exists():
            raise ReportError(f"{report}: its input {given['path']} is gone; restore it to verify the report")
    try:
        manifest = load_manifest(setup["manifest"])
        result = screen(source, manifest, load_rules(setup["rules"], manifest), crs=crs, encoding=encoding,
                        overrides=options)  # fmt: skip
    except ThreelinesError as exc:
        raise ReportError(f"{report}: cannot screen again: {exc}") from None
    return {v.project["id"]: v.to_dict() for v in result.verdicts}, manifest


def _compare(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The differences between a reported verdict and a fresh one, one phrase each."""
    out = []
    if before["verdict"] != now["verdict"]:
        out.append(f"verdict {before['verdict']} -> {now['verdict']}")
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
