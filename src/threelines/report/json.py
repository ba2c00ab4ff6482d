"""JSON output: one object for one project; for several, JSON Lines or one JSON array."""

from __future__ import annotations

import json
from typing import Any

from threelines.engine.verdict import Verdict


def verdict_json(
    verdict: Verdict, *, indent: int | None = None, provenance: dict[str, Any] | None = None, lang: str | None = None
) -> str:
    """Serialise one verdict (keys sorted, Chinese kept; measures rounded by ``to_dict``), with provenance."""
    record = verdict.to_dict(lang)
    if provenance is not None:
        record["provenance"] = provenance
    return json.dumps(record, sort_keys=True, ensure_ascii=False, indent=indent)


def format_json(
    verdicts: list[Verdict],
    *,
    indent: int | None = None,
    provenance: dict[str, Any] | None = None,
    lang: str | None = None,
    array: bool = False,
) -> str:
    """One project: one object (indented if asked); several: one object per line, or with ``array`` a JSON array.

    A ``.json`` file must be one JSON document, hence the array; JSON Lines
    suit ``.jsonl`` files and standard output (one line per project for
    ``jq`` and ``grep``).
    """
    if len(verdicts) == 1:
        return verdict_json(verdicts[0], indent=indent, provenance=provenance, lang=lang) + "\n"
    if array:
        records = [v.to_dict(lang) | ({"provenance": provenance} if provenance is not None else {}) for v in verdicts]
        return json.dumps(records, sort_keys=True, ensure_ascii=False, indent=indent) + "\n"
    return "".join(verdict_json(v, provenance=provenance, lang=lang) + "\n" for v in verdicts)
