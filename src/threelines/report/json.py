"""JSON output: one object for one project, JSON Lines for several."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from threelines.verdict import Verdict

# Decimals kept per measure: centimetre-level areas and distances are more than survey data supports.
_DECIMALS = {"m2": 2, "_ha": 6, "_mu": 4, "ratio": 6, "distance_m": 2, "share": 6}


def rounded(value: Any, key: str = "") -> Any:
    """Round measures for output and turn NaN into null."""
    if isinstance(value, dict):
        return {k: rounded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, key) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        decimals = _decimals(key)
        return value if decimals is None else round(value, decimals)
    return value


@lru_cache(maxsize=256)
def _decimals(key: str) -> int | None:
    """The decimals kept for a key (looked up once per key name)."""
    return next((d for suffix, d in _DECIMALS.items() if key.endswith(suffix)), None)


def verdict_json(
    verdict: Verdict, *, indent: int | None = None, provenance: dict[str, Any] | None = None, lang: str | None = None
) -> str:
    """Serialise one verdict (keys sorted, Chinese kept as is), with its provenance block if given."""
    record = rounded(verdict.to_dict(lang))
    if provenance is not None:
        record["provenance"] = provenance
    return json.dumps(record, sort_keys=True, ensure_ascii=False, indent=indent)


def format_json(
    verdicts: list[Verdict],
    *,
    indent: int | None = None,
    provenance: dict[str, Any] | None = None,
    lang: str | None = None,
) -> str:
    """One project: one object (indented if asked); several: one object per line."""
    if len(verdicts) == 1:
        return verdict_json(verdicts[0], indent=indent, provenance=provenance, lang=lang) + "\n"
    return "".join(verdict_json(v, provenance=provenance, lang=lang) + "\n" for v in verdicts)
