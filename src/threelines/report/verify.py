"""Re-screen a report from its provenance block and say whether it still holds.

A report is the JSON of ``screen --format json`` (one object, a JSON array
or JSON Lines), the HTML report (which embeds that JSON), or a batch's
``results.jsonl`` with the ``provenance.json`` beside it.

Nothing a report names is trusted: the manifest, rule file and input it
records are used only when the files there (or the ones given instead with
``--layers``, ``--rules``, ``--input``) have the recorded sha256; otherwise
they are reported changed and nothing is run. Each project is compared
with a fresh screening: its attributes and area, its verdict, its
triggers (by rule, outcome, feature, pollutant, and overlap and distance to
the centimetre), its control units, requirements and undecided rules
(messages follow the report's language and are not compared). A report
that records its project count must hold that many projects, and every
project of its input. The report itself is read by
:mod:`threelines.report.reading`, and a record compared with its project's
fresh screening by :mod:`threelines.report.differences`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threelines.errors import ReportError
from threelines.report.differences import compare
from threelines.report.provenance import dataset_sha256, layer_sha256
from threelines.report.reading import Report, page_differences, read_report


@dataclass
class Check:
    """The outcome of verifying one report file.

    ``changed`` and ``unchanged`` hold one line per project (or per missing
    project); ``inputs`` one line per recorded file that differs now.
    """

    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every project, verdict, trigger and recorded hash is as the report says."""
        return not self.changed and not self.inputs


@dataclass(frozen=True)
class Relocated:
    """Files to use instead of the paths a report records (their sha256 must still match)."""

    layers: str | None = None
    rules: str | None = None
    input: str | None = None


# -- Checking the files a report names, then screening again ---------------------------------------


def verify(path: str | Path, relocated: Relocated | None = None) -> Check:
    """Re-screen every project of a report and compare.

    Parameters
    ----------
    path : str or Path
        A JSON or HTML report of ``screen``, or a batch's ``results.jsonl``
        (or its output folder).
    relocated : Relocated, optional
        Files to use instead of the manifest, rule file or input the report
        records; they must have the recorded sha256 too.

    Returns
    -------
    Check

    Raises
    ------
    ReportError
        If the report is unusable, or a file it names is gone or cannot be
        screened again.
    """
    report = read_report(path)
    relocated = relocated or Relocated()
    check = Check()
    if report.page is not None:
        check.changed += page_differences(report.page, report.records)
    if report.batch is not None:
        _verify_batch(report, relocated, check)
        return check
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in report.records:
        groups.setdefault(json.dumps(_setup_key(record["provenance"]), sort_keys=True), []).append(record)
    if relocated.input and len(groups) > 1:
        raise ReportError(f"{report.path}: --input names one input, and the report has {len(groups)}")
    for group in groups.values():
        _verify_group(report.path, group, relocated, check)
    return check


def _setup_key(block: dict[str, Any]) -> dict[str, Any]:
    """What records screened together share."""
    return {k: block.get(k) for k in ("manifest", "rules", "layers", "input", "options", "project_count")}


def _verify_group(report: Path, group: list[dict[str, Any]], relocated: Relocated, check: Check) -> None:
    """Check the files of records that share a provenance block, screen their input again, compare."""
    from threelines.engine.screen import screen

    block = group[0]["provenance"]
    source = _input_source(report, block, relocated)
    trusted = _setup_files(report, block, relocated, check) & _input_file(report, block["input"], source, check)
    if not trusted:
        check.changed += [f"{r['project']['id']}: not screened again: a file it names changed" for r in group]
        return
    manifest, ruleset = _load(report, block, relocated, check)
    crs, encoding, options = _options(report, block)
    try:
        result = screen(source, manifest, ruleset, crs=crs, encoding=encoding, overrides=options)
    except _errors() as exc:
        raise ReportError(f"{report}: cannot screen again: {exc}") from None
    fresh = [v.to_dict() for v in result.verdicts]
    count = block.get("project_count")
    missing = _match(group, fresh, check, whole=count is not None)
    if count is not None and count != len(group) and not missing:
        check.changed.append(f"the report records {count} project(s) and holds {len(group)}")


def _options(report: Path, block: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The recorded ``--crs``, ``--encoding`` and attribute overrides; a key no option sets is refused."""
    from threelines.input.attributes import ATTRIBUTES

    options = dict(block.get("options", {}))
    unknown = sorted(set(options) - {"crs", "encoding", *ATTRIBUTES})
    if unknown:
        raise ReportError(
            f"{report}: the provenance block's options name {unknown[0]!r}, which no option of screen sets; "
            "it was not written by threelines"
        )
    return options.pop("crs", None), options.pop("encoding", None), options


def _errors():
    from threelines.errors import ThreelinesError

    return ThreelinesError


def _input_source(report: Path, block: dict[str, Any], relocated: Relocated):
    """The input to screen again: a WKT frame, or a path (``path:layer``)."""
    given = block.get("input")
    if not isinstance(given, dict):
        raise ReportError(f"{report}: the provenance block lacks 'input'; it was not written by threelines screen")
    if given.get("wkt") and not relocated.input:
        from threelines.input.wkt import wkt_frame

        return wkt_frame(given["wkt"])
    if given.get("path") in (None, "-") and not relocated.input:
        raise ReportError(f"{report}: the project came from standard input, which cannot be read again; give --input")
    path = relocated.input or given["path"]
    if dataset_sha256(path) is None:
        raise ReportError(f"{report}: its input {path} is gone; restore it to verify the report, or give --input")
    return path + (f":{given['layer']}" if given.get("layer") else "")


def _input_file(report: Path, given: dict[str, Any], source, check: Check) -> bool:
    """Whether the input to screen again has the recorded sha256 (a WKT: the hash of its text)."""
    if not isinstance(source, str):
        import hashlib

        now = hashlib.sha256(given["wkt"].encode()).hexdigest()
        return _same(check, "input WKT", given.get("sha256"), now)
    path = source[: -len(given["layer"]) - 1] if given.get("layer") else source
    return _same(check, f"input {path}", given.get("sha256"), dataset_sha256(path))


def _setup_files(report: Path, block: dict[str, Any], relocated: Relocated, check: Check) -> bool:
    """Whether the manifest and rule file to load have the recorded sha256 (only then are they read)."""
    ok = True
    for what, option, entry, given in (
        ("manifest", "--layers", block["manifest"], relocated.layers),
        ("rules", "--rules", block["rules"][0], relocated.rules),
    ):
        path = given or entry["path"]
        now = dataset_sha256(path)
        if now is None:
            raise ReportError(f"{report}: its {what} {path} is gone; restore it, or give {option}")
        ok = _same(check, f"{what} {path}", entry["sha256"], now) and ok
    return ok


def _same(check: Check, where: str, recorded: str | None, now: str | None) -> bool:
    """Compare a sha256 taken now with the recorded one; note a difference once in ``check.inputs``."""
    if now is not None and now == recorded:
        return True
    line = f"{where}: gone" if now is None else f"{where}: changed (sha256 {(recorded or '?')[:12]} -> {now[:12]})"
    if line not in check.inputs:
        check.inputs.append(line)
    return False


def _load(report: Path, block: dict[str, Any], relocated: Relocated, check: Check):
    """The manifest and rules (their files checked already); layers and access lists are compared once loaded."""
    from threelines.layers.manifest import load_manifest
    from threelines.report.provenance import rule_files
    from threelines.rules import load_rules

    try:
        manifest = load_manifest(relocated.layers or block["manifest"]["path"])
        ruleset = load_rules(relocated.rules or block["rules"][0]["path"], manifest)
    except _errors() as exc:
        raise ReportError(f"{report}: cannot screen again: {exc}") from None
    recorded = {e["name"]: e for e in block["layers"]}
    for name, spec in manifest.layers.items():
        entry = recorded.get(name)
        if entry is None:
            check.inputs.append(f"layer {name!r}: not in the report")
        else:
            _same(check, f"layer {name!r} {entry['path']}", entry["sha256"], layer_sha256(spec))
    lists = {Path(e["path"]).name: e for e in block["rules"][1:]}
    for path in rule_files(ruleset)[1:]:
        entry = lists.get(path.name)
        if entry is None:
            check.inputs.append(f"rules {path}: not in the report")
        else:
            _same(check, f"rules {path}", entry["sha256"], dataset_sha256(path))
    return manifest, ruleset


# -- Comparing -------------------------------------------------------------------------------------


def _match(records: list[dict[str, Any]], fresh: list[dict[str, Any]], check: Check, *, whole: bool) -> int:
    """Pair each record with a fresh verdict of the same project id (the one that agrees, if any), compare.

    ``whole``: the report claims to hold every project of its input, so a
    fresh project it lacks is missing. Returns how many are missing.
    """
    by_id: dict[str, list[dict[str, Any]]] = {}
    for now in fresh:
        by_id.setdefault(str(now["project"]["id"]), []).append(now)
    for record in records:
        pid = record["project"]["id"]
        candidates = by_id.get(pid, [])
        if not candidates:
            check.changed.append(f"{pid}: no longer screened (not in the input, or refused)")
            continue
        now = next((c for c in candidates if not compare(record, c)), candidates[0])
        candidates.remove(now)
        differences = compare(record, now)
        if differences:
            check.changed.append(f"{pid}: {'; '.join(differences)}")
        else:
            check.unchanged.append(f"{pid}: unchanged ({record['verdict']})")
    missing = [f"{pid}: missing from the report (screened now: {now['verdict']})" for pid, left in by_id.items()
               for now in left] if whole else []  # fmt: skip
    check.changed += missing
    return len(missing)


# -- A batch: results.jsonl with provenance.json ---------------------------------------------------


def _verify_batch(report: Report, relocated: Relocated, check: Check) -> None:
    """Screen every input of a batch again and compare each line of its results.jsonl, by input hash."""
    from threelines.batch.hashes import project_hashes
    from threelines.engine.screen import screen_checked
    from threelines.input.footprint import read_projects
    from threelines.report.provenance import setup_digest

    block, records = report.batch, report.records
    entries = block["inputs"]
    if relocated.input and len(entries) != 1:
        raise ReportError(f"{report.path}: --input names one input, and the batch had {len(entries)}")
    sources = []
    trusted = _setup_files(report.path, block, relocated, check)
    for entry in entries:
        source = _input_source(report.path, {**block, "input": entry}, relocated)
        trusted = _input_file(report.path, entry, source, check) and trusted
        sources.append(source)
    verdicts = [r for r in records if "error" not in r]
    if not trusted:
        check.changed += [f"{r['project']['id']}: not screened again: a file it names changed" for r in verdicts]
        return
    manifest, ruleset = _load(report.path, block, relocated, check)
    crs, encoding, options = _options(report.path, block)
    digest = setup_digest(block)
    fresh: dict[str, list] = {}
    for entry, source in zip(entries, sources, strict=True):
        try:
            projects = read_projects(
                source, manifest.working_crs, crs=crs, encoding=encoding, overrides=options,
                line_widths=manifest.line_widths,
            )  # fmt: skip
            outcomes = screen_checked(projects, manifest, ruleset)
        except _errors() as exc:
            raise ReportError(f"{report.path}: cannot screen again: {exc}") from None
        keys = project_hashes(projects, digest, (source, entry.get("path") or source))
        for key, outcome in zip(keys, outcomes, strict=True):
            fresh.setdefault(key, []).append(outcome if isinstance(outcome, str) else outcome.to_dict())
    for record in verdicts:
        pid, candidates = record["project"]["id"], fresh.get(record.get("input_hash", ""), [])
        if not candidates:
            check.changed.append(f"{pid}: no project of the inputs has its attributes and footprint now")
            continue
        now = candidates.pop(0)
        if isinstance(now, str):
            check.changed.append(f"{pid}: refused now: {now}")
            continue
        differences = compare(record, now)
        if differences:
            check.changed.append(f"{pid}: {'; '.join(differences)}")
        else:
            check.unchanged.append(f"{pid}: unchanged ({record['verdict']})")
    # A project with no line at all is missing; one the run met twice (the same features in two inputs) is not.
    refused = {r["project"]["id"] for r in records if "error" in r}
    recorded = {r.get("input_hash") for r in verdicts}
    for key, left in fresh.items():
        now = next((n for n in left if not isinstance(n, str)), None)
        if key not in recorded and now is not None and now["project"]["id"] not in refused:
            check.changed.append(f"{now['project']['id']}: missing from {report.path.name}")
