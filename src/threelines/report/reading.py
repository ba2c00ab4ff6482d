"""Reading a report for ``verify``: bounded, typed, never trusted.

A report is the JSON of ``screen --format json`` (one object, a JSON array
or JSON Lines), the HTML report (which embeds that JSON), or a batch's
``results.jsonl`` with the ``provenance.json`` beside it. :func:`read_report`
reads any of them into a :class:`Report`, refusing a file too big, not UTF-8,
nested too deep or without the keys verify relies on, with one line that
says why; :func:`page_differences` says where an HTML page shows other than
what it embeds. :func:`threelines.report.verify.verify` then checks the files
the report names and screens its projects again.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threelines.errors import ReportError
from threelines.limits import MAX_JSON_DEPTH, MAX_REPORT_BYTES

#: The id of the ``<script type="application/json">`` element an HTML report embeds its JSON in.
EMBED_ID = "threelines-result"

_HINT = "give a report of screen --format json or --format html, or a batch's results.jsonl"


@dataclass
class Report:
    """A report's records, and for a batch the run's provenance (``provenance.json``)."""

    path: Path
    records: list[dict[str, Any]]
    batch: dict[str, Any] | None = None
    page: str | None = None


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
