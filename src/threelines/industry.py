"""GB/T 4754-2017 industry codes: normalise, validate, name and match by prefix.

The standard is hierarchical: section letter (``C``), 2-digit division
(``C26``), 3-digit group (``C261``), 4-digit class (``C2614``). Codes are
often written without the letter (``2614``); the letter follows from the
division number. A rule naming ``C26`` covers every code starting with it.
"""

from __future__ import annotations

import csv
import difflib
import re
from functools import lru_cache
from importlib import resources

from threelines.errors import IndustryCodeError

_CODE_RE = re.compile(r"^([A-T])?(\d{2,4})?$")


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, str], dict[str, str]]:
    """Return ``{code: name}`` and ``{division digits: section letter}``."""
    names: dict[str, str] = {}
    sections: dict[str, str] = {}
    path = resources.files("threelines") / "data" / "gbt4754_2017.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            names[row["code"]] = row["name"].strip()
            if row["level"] == "division":
                sections[row["division"]] = row["section"]
    return names, sections


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
    names, sections = _table()
    text = str(code).strip().upper().replace(" ", "") if code is not None else ""
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
    if canonical in names:
        return canonical
    raise IndustryCodeError(f"{what} {code!r} is not a GB/T 4754-2017 code{_suggest(text)}")


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
