"""Every stated limit of limits.py is in the table of docs/limits.md, with its value, so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from threelines import limits

PAGE = Path(__file__).parents[1] / "docs" / "limits.md"


def shown(name: str, value: float) -> str:
    """How the table shows a limit's value."""
    if name.endswith("_BYTES"):
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if value >= size and value % size == 0:
                return f"{value // size:,} {unit}"
        return f"{value:,} bytes"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e9:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def stated() -> dict[str, float]:
    return {k: v for k, v in vars(limits).items() if k.isupper() and isinstance(v, int | float)}


def table() -> dict[str, str]:
    text = PAGE.read_text("utf-8")
    section = text.split("# Limits on untrusted input", 1)[1].split("\n#", 1)[0]
    return {m[1]: m[2].strip() for m in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M)}


def test_every_limit_is_in_the_docs_with_its_value():
    rows = table()
    assert {name: rows.get(name) for name in stated()} == {name: shown(name, v) for name, v in stated().items()}


def test_the_docs_name_no_limit_that_is_gone():
    assert set(table()) <= set(stated())
