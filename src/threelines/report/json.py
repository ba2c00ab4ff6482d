"""JSON output: one object for one project, JSON Lines for several."""

from __future__ import annotations

import json

from threelines.verdict import Verdict


def verdict_json(verdict: Verdict, *, indent: int | None = None) -> str:
    """Serialise one verdict (keys sorted, Chinese kept as is; measures rounded by ``to_dict``)."""
    return json.dumps(verdict.to_dict(), sort_keys=True, ensure_ascii=False, indent=indent)


def format_json(verdicts: list[Verdict], *, indent: int | None = None) -> str:
    """One project: one object (indented if asked); several: one object per line."""
    if len(verdicts) == 1:
        return verdict_json(verdicts[0], indent=indent) + "\n"
    return "".join(verdict_json(v) + "\n" for v in verdicts)
