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
project of its input.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threelines.errors import ReportError
from threelines.limits import MAX_JSON_DEPTH, MAX_REPORT_BYTES
from threelines.report.provenance import dataset_sha256, layer_sha256

#: The id of the ``<script type="application/json">`` element an HTML report embeds its JSON in.
EMBED_ID = "threelines-result"

_HINT = "give a report of screen --format json or --format html, or a batch's results.jsonl"


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


@dataclass
class Report:
    """A report's records, and for a batch the run's provenance (``provenance.json``)."""

    path: Path
    records: list[dict[str, Any]]
    batch: dict[str, Any] | None = None
    page: str | None = None


# -- Reading a report: bounded, typed, never trusted ---------------------------------------------


def read_report(path: str | Path) -> Report:
    """Read a report (JSON, JSON Lines, HTML, or a batch's results.jsonl / its folder).

    Raises
    ------
    ReportError
        If the file is too big, unreadable, not UTF-8, nested too deep, not
        JSON, holds no projects, or any record lacks a key or has a key of
        the wrong type.
    """
    path = Path(path)
    if path.is_dir() and (path / "results.jsonl").is_file():
        path = path / "results.jsonl"
    text = _read_text(path)
    page = text if text.lstrip()[:1] == "<" else None
    data = _parse(path, _embedded(path, page) if page is not None else text)
    records = data if isinstance(data, list) else [data]
    if not records:
        raise ReportError(f"{path}: holds no projects; {_HINT}")
    for i, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise ReportError(f"{path}: record {i} is a JSON {type(record).__name__}, not an object; {_HINT}")
    batch = None
    if all("provenance" not in r for r in records) and (path.parent / "provenance.json").is_file():
        provenance_path = path.parent / "provenance.json"
        batch = _parse(provenance_path, _read_text(provenance_path))
        _check_schema(provenance_path, {"project": {"id": ""}, "error": "", "provenance": batch}, "provenance")
        if not isinstance(batch.get("inputs"), list):
            raise ReportError(f"{provenance_path}: lacks 'inputs'; it was not written by threelines batch")
    else:
        for i, record in enumerate(records, 1):
            if "error" in record or "provenance" not in record:
                raise ReportError(
                    f"{path}: record {i} has no provenance block; verify reads the JSON that screen --format json "
                    "or --format html writes"
                )
    for i, record in enumerate(records, 1):
        _check_schema(path, record, f"record {i}")
    return Report(path, records, batch, page)


def _read_text(path: Path) -> str:
    """A report file's text, refused when too big, empty or not UTF-8."""
    try:
        if not path.is_file():
            raise ReportError(f"{path}: is not a file; {_HINT}")
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise ReportError(
                f"{path}: {size:,} bytes, more than the {MAX_REPORT_BYTES:,} a report may have; "
                "verify it in parts (one report per input)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it ({exc.strerror})") from None
    if not raw.strip():
        raise ReportError(f"{path}: is empty; {_HINT}")
    if b"\x00" in raw:
        raise ReportError(f"{path}: is binary, not a report; {_HINT}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: is not UTF-8 text; {_HINT}") from None
    return text


def _embedded(path: Path, page: str) -> str:
    """The JSON an HTML report embeds in its ``<script id="threelines-result">``."""
    found = re.search(rf'<script type="application/json" id="{EMBED_ID}">(.*?)</script>', page, flags=re.S)
    if found is None:
        raise ReportError(f"{path}: an HTML page without the embedded result (id {EMBED_ID}); {_HINT}")
    return found.group(1)


_SECTION = re.compile(r'<section class="project" id="project-\d+" data-project="([^"]*)">(.*?)</section>', re.S)


def page_differences(page: str, records: list[dict[str, Any]]) -> list[str]:
    """Where an HTML report's visible projects (id, verdict, rules triggered) disagree with its embedded JSON."""
    from threelines.report.i18n import LANGUAGES, words

    sections = _SECTION.findall(page)
    if len(sections) != len(records):
        return [f"the page shows {len(sections)} project(s), and its embedded result holds {len(records)}"]
    out = []
    for (shown_id, body), record in zip(sections, records, strict=True):
        pid = record["project"]["id"]
        verdict = re.search(r'<span class="verdict (\w+)" data-verdict="(\w+)">([^<]*)</span>', body)
        rules = [html.unescape(r) for r in re.findall(r'<tr data-rule="([^"]*)">', body)]
        said = {words(lang)[record["verdict"]] for lang in LANGUAGES}
        if html.unescape(shown_id) != pid:
            out.append(f"{pid}: the page shows it as {html.unescape(shown_id)!r}")
        elif verdict is None or {verdict[1], verdict[2]} != {record["verdict"]} or not verdict[3].endswith(tuple(said)):
            out.append(f"{pid}: the page shows another verdict than its embedded result ({record['verdict']})")
        elif rules != [t["rule"] for t in record["triggers"]]:
            out.append(f"{pid}: the page shows other triggers than its embedded result")
    return out


def json_depth(value: Any, limit: int | None = None) -> int:
    """How deep arrays and objects nest in a parsed JSON value (walked without recursion; stops past ``limit``)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if limit is not None and deepest > limit:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _parse(path: Path, text: str) -> Any:
    """One JSON document, or JSON Lines, nested at most :data:`MAX_JSON_DEPTH` deep."""
    try:
        data = _loads(path, text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        if sum(1 for line in lines if line.strip()) < 2:
            raise ReportError(f"{path}: line {exc.lineno}: not JSON ({exc.msg}); {_HINT}") from None
        data = []
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    data.append(_loads(path, line))
                except json.JSONDecodeError as exc:
                    raise ReportError(f"{path}: line {n}: not JSON ({exc.msg}); {_HINT}") from None
    if json_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ReportError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} deep, the most a report may have")
    return data


def _loads(path: Path, text: str) -> Any:
    """``json.loads``; nesting deeper than the interpreter's stack allows is refused with the depth limit's line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise ReportError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} deep, the most a report may have") from None
    except ValueError as exc:  # a number too long to convert, and the like
        raise ReportError(f"{path}: not a JSON report ({exc}); {_HINT}") from None


def _check_schema(path: Path, record: Any, where: str) -> None:
    """Refuse a record whose keys verify relies on are missing or of the wrong type, naming the first."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(record))
    if error is None:
        return
    keys = ".".join(str(k) for k in error.absolute_path)
    if where == "provenance":
        keys = keys.removeprefix("provenance").lstrip(".")
        where = "the provenance block"
    if error.validator == "required":
        missing = ".".join(filter(None, (keys, error.message.split("'")[1] if "'" in error.message else "")))
        raise ReportError(f"{path}: {where} lacks '{missing}'; it was not written by threelines")
    message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    raise ReportError(f"{path}: {where}: {keys or 'top level'}: {message}; it was not written by threelines")


_VALIDATOR = None


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        from importlib import resources

        import jsonschema

        schema = json.loads((resources.files("threelines") / "schemas" / "report.schema.json").read_text("utf-8"))
        _VALIDATOR = jsonschema.Draft202012Validator(schema)
    return _VALIDATOR


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
        from threelines.input.sources import wkt_frame

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
