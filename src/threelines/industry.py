"""GB/T 4754-2017 industry codes: normalise, validate, name and match by prefix.

The standard is hierarchical: section letter (``C``), 2-digit division
(``C26``), 3-digit group (``C261``), 4-digit class (``C2614``). Codes are
often written without the letter (``2614``); the letter follows from the
division number. A rule naming ``C26`` covers every code starting with it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from threelines.errors import IndustryCodeError

_CODE_RE = re.compile(r"^([A-T])?(\d{2,4})?$")


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, str], dict[str, str]]:
    """Return ``{code: name}`` and ``{division digits: section letter}``."""
    names: dict[str, str] = {}
    sections: dict[str, str] = {}
    for code, level, section, division, name in _rows("code", "level", "section", "division", "name"):
        names[code] = name.strip()
        if level == "division":
            sections[division] = section
    return names, sections


def _rows(*columns: str) -> Iterator[tuple[str, ...]]:
    """The standard's table of codes, a file of the package: each row's ``columns`` ('' where a row has none).

    Rows as tuples, not csv.DictReader's dicts: every run that names an
    industry reads the ~2,000 rows. The file is found beside this module:
    importlib.resources, for a path, would add its import to every such run.
    """
    with (Path(__file__).with_name("data") / "gbt4754_2017.csv").open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows)
        at = [header.index(name) for name in columns]
        for row in rows:
            yield tuple(row[i] if i < len(row) else "" for i in at)


@lru_cache(maxsize=1)
def _english() -> dict[str, str]:
    """``{code: English name}`` for the codes that have one (every section, division and group; some classes)."""
    return {code: name.strip() for code, name in _rows("code", "name_en") if name.strip()}


def name_en(code: str) -> str | None:
    """Return the English name of a canonical code, or None where the table has none (many classes)."""
    return _english().get(code)


LEVELS = {1: "section", 3: "division", 4: "group", 5: "class"}
_WORD_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class _Entry:
    code: str
    name: str
    name_en: str | None
    label: str  # the Chinese name, upper-cased, for matching
    own_words: str  # the words of its own English name, lower-case, each after a space
    words: str  # and those of its section's, division's and group's


@lru_cache(maxsize=1)
def _entries() -> tuple[_Entry, ...]:
    names, english = _table()[0], _english()
    out = []
    for code, label in names.items():
        own = "".join(f" {w}" for w in _WORD_RE.findall((english.get(code) or "").lower()))
        # A class's ancestors are its section letter and the first 3 and 4 characters of its code.
        above = [c for c in (code[:1], code[:3], code[:4]) if c != code and c in english]
        inherited = "".join(f" {w}" for c in above for w in _WORD_RE.findall(english[c].lower()))
        out.append(_Entry(code, label, english.get(code), label.upper(), own, own + inherited))
    return tuple(out)


def search(query: str | None, limit: int = 50) -> list[dict[str, str | None]]:
    """Find GB/T 4754-2017 codes by code, Chinese words or English words, best first.

    Each word of the query must match: the start of the code (with or
    without its section letter), a part of the Chinese name, or the start
    of a word of the English name of the code or of its section, division
    or group (any case). So ``cement`` finds C3011 (水泥制造), ``textile``
    every code under C17, ``thermal power`` D4411 (火力发电).

    Parameters
    ----------
    query : str or None
        The words; an empty query lists the classes.
    limit : int
        At most this many hits.

    Returns
    -------
    list of dict
        ``code``, ``name`` (Chinese), ``name_en`` (None where the table has
        none) and ``level``. The code the query names exactly comes first,
        then codes that start with it, then word matches: those matched by
        their own names before those matched through a parent's English
        name; classes (what rules and projects name) before shorter codes.
    """
    words = (query or "").split()
    exact = _canonical(words[0].upper()) if len(words) == 1 else None
    ranked = []
    for entry in _entries():
        rank = _rank(entry, words, exact)
        if rank is not None:
            ranked.append((rank, entry.code, entry))
    ranked.sort(key=lambda hit: hit[:2])
    return [
        {"code": e.code, "name": e.name, "name_en": e.name_en, "level": LEVELS[len(e.code)]}
        for _, _, e in ranked[: max(1, limit)]
    ]


def _rank(entry: _Entry, words: list[str], exact: str | None) -> tuple[int, int] | None:
    """How well the query's words match a code (lower is better), or None when one does not."""
    class_last = 0 if len(entry.code) == 5 else 1
    if not words:
        return (3, class_last)
    if entry.code == exact:
        return (0, 0)
    own = True
    for word in words:
        upper, start = word.upper(), " " + word.lower()  # a word's start: after a space
        if entry.code.startswith(upper) or entry.code[1:].startswith(upper):
            continue
        if upper in entry.label or start in entry.own_words:
            continue
        if start in entry.words:
            own = False
            continue
        return None
    by_code = all(entry.code.startswith(w.upper()) or entry.code[1:].startswith(w.upper()) for w in words)
    return (1, class_last) if by_code else (2 if own else 3, class_last)


def normalise(code: str | int | None, *, what: str = "industry code") -> str:
    """Return the canonical form (section letter + digits) of a GB/T 4754 code.

    Parameters
    ----------
    code : str or int
        A code with or without its section letter, e.g. ``"C2614"``,
        ``"2614"``, ``"c26"`` or ``"C"``.
    what : str
        How to name the value in an error message (e.g. the option or rule).

    Returns
    -------
    str
        The code as listed in the standard, e.g. ``"C2614"``.

    Raises
    ------
    IndustryCodeError
        If the code is not in GB/T 4754-2017; the message suggests the
        nearest valid codes.

    Examples
    --------
    >>> normalise("2614")
    'C2614'
    """
    text = str(code).strip().upper().replace(" ", "") if code is not None else ""
    canonical = _canonical(text)
    if canonical is not None:
        return canonical
    raise IndustryCodeError(f"{what} {code!r} is not a GB/T 4754-2017 code{_suggest(text)}")


def _canonical(text: str) -> str | None:
    """The listed code that upper-case ``text`` names (with or without its section letter), or None."""
    names, sections = _table()
    match = _CODE_RE.match(text)
    canonical = None
    if text and match:
        letter, digits = match.groups()
        if digits is None:
            canonical = letter
        else:
            section = sections.get(digits[:2])
            if section is not None and letter in (None, section):
                canonical = section + digits
    return canonical if canonical in names else None


def from_cell(value: object, *, what: str = "industry code") -> str:
    """Normalise a code read from a table cell, which may have been stored as a number.

    A number is accepted only where no leading zero can have been lost:
    ``2614`` and ``26`` are unambiguous, ``211`` might have been ``0211``.

    Raises
    ------
    IndustryCodeError
        For a number that may have lost a leading zero, or an unknown code.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        digits = str(int(value)) if float(value).is_integer() else ""
        # Divisions 01-09 and their groups and classes start with 0: as numbers they lose it.
        if len(digits) not in (2, 4):
            raise IndustryCodeError(
                f"{what} {value!r} is a number that may have lost a leading zero; "
                "store the column as text (e.g. '0211')"
            )
        value = digits
    return normalise(value, what=what)


def _suggest(text: str) -> str:
    """Return a '; did you mean ...' clause naming the nearest valid codes.

    The nearest codes are those under the longest valid prefix of the input
    (``C2699`` -> codes under ``C269``), else the closest by spelling.
    """
    names, sections = _table()
    digits = text.lstrip("ABCDEFGHIJKLMNOPQRST")
    guess = (sections.get(digits[:2], "") + digits) if digits else text
    near: list[str] = []
    for cut in range(len(guess) - 1, 0, -1):
        if guess[:cut] in names:
            children = [c for c in names if c.startswith(guess[:cut]) and len(c) == len(guess)]
            near = [guess[:cut], *children][:4]
            break
    if len(near) < 2:
        import difflib  # only for a code that is wrong

        near = difflib.get_close_matches(guess, names.keys(), n=3, cutoff=0.6)
    if not near:
        return "; a code is a section letter A-T and 2-4 digits, e.g. C2614"
    return "; did you mean " + ", ".join(f"{c} {names[c]}" for c in near) + "?"


def name(code: str) -> str | None:
    """Return the Chinese name of a canonical code, or None if unknown."""
    return _table()[0].get(code)


def matches(code: str | None, prefixes: tuple[str, ...]) -> bool:
    """Tell whether a canonical code falls under any of the canonical prefixes.

    Examples
    --------
    >>> matches("C2614", ("C26",))
    True
    """
    return code is not None and any(code.startswith(p) for p in prefixes)
