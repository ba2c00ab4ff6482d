"""Numbers and values written as JSON the way the records keep them.

The records a screening writes (see :mod:`threelines.engine.records`) round
each measure by the ending of its name (:data:`DECIMALS`), write NaN and
infinities as null, and are dumped with :data:`JSON_OPTIONS`. Here are those
rules, for a value, a column of values (rounded in numpy, exactly as Python
rounds) and columns cut into each value's JSON text (what a batch writes
its chunk's records of: :mod:`threelines.engine.chunk_records`); the triggers' quantities
(:mod:`threelines.engine.trigger_texts`) round with :func:`rounded` too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

#: Decimals kept in the JSON form, by the ending of a measure's name: centimetre-level
#: areas and distances are more than survey data supports.
DECIMALS = {"m2": 2, "_ha": 6, "_mu": 4, "ratio": 6, "distance_m": 2, "share": 6}


@lru_cache(maxsize=256)
def decimals(key: str) -> int | None:
    """The decimals the JSON form keeps for a measure named ``key`` (None: all of them)."""
    return next((d for suffix, d in DECIMALS.items() if key.endswith(suffix)), None)


def json_number(value: Any, places: int | None) -> Any:
    """A float as the JSON form keeps it: rounded to ``places`` (None: as is), None for NaN and infinities.

    Anything but a float is returned as it is.
    """
    if not isinstance(value, float):
        return value
    if not math.isfinite(value):
        return None
    return value if places is None else round(value, places)


def json_changes(values: Sequence[Any], places: int | None) -> list[tuple[int, Any]]:
    """Where :func:`json_number` changes a column of values (one per record): ``(position, new value)`` pairs.

    A column of floats (and None) is rounded in numpy (see :func:`rounded`);
    a short one, or one that also holds other numbers (ints, numpy scalars),
    goes value by value, so that each keeps the type and rounding it had. Records are
    many, and most of their numbers are kept as they are: only the changes
    are written back.
    """
    if places is None:
        try:
            if math.isfinite(sum(filter(None, values))):  # no NaN nor infinity among them: nothing to change
                return []
        except (TypeError, OverflowError):  # text, or an int too large for a float
            pass
    kinds = set(map(type, values))
    if not any(issubclass(kind, float) for kind in kinds):
        return []
    if len(values) < _FEW or not kinds <= {float, type(None)}:
        return [(i, new) for i, value in enumerate(values) if (new := json_number(value, places)) is not value]
    numbers = np.array(values, dtype=float)  # None becomes NaN
    new = numbers if places is None else rounded(numbers, places)
    changed = ~np.isfinite(new) | (new != numbers)
    nones = values.count(None)
    if nones:  # None stays None: its NaN is no change
        nan = np.isnan(numbers)
        changed &= ~nan if nan.sum() == nones else np.not_equal(np.array(values, dtype=object), None)
    where = np.flatnonzero(changed)
    new = new[where]
    return list(zip(where.tolist(), np.where(np.isfinite(new), new, None).tolist(), strict=True))


#: Columns shorter than this (one verdict's) go value by value: numpy's set-up would cost more.
_FEW = 64


def json_column(values: Sequence[Any], places: int | None) -> list[Any]:
    """:func:`json_number` of each value of a column, as a new list.

    A column of floats (and None) to be rounded is rounded in numpy as a
    whole (see :func:`rounded`), where most values change; any other goes
    through :func:`json_changes`.
    """
    if places is None or len(values) < _FEW or not set(map(type, values)) <= {float, type(None)}:
        out = list(values)
        for i, value in json_changes(values, places):  # kept as they are, mostly (None: not rounded)
            out[i] = value
        return out
    numbers = rounded(np.array(values, dtype=float), places)  # None becomes NaN, and NaN None again below
    out = numbers.tolist()
    for i in np.flatnonzero(~np.isfinite(numbers)).tolist():
        out[i] = None
    return out


def rounded(numbers: np.ndarray, places: int) -> np.ndarray:
    """``round(x, places)`` of each number, exactly as Python rounds (the decimal nearest to the binary value).

    ``x * 10**places`` is rounded to a double, which moves it but never
    across a half (halves are doubles below 2**52): unless it lands on one,
    ``rint`` of it is the rint of the exact product, and dividing gives the
    double nearest the rounded decimal, as Python's ``round`` does. The few
    that land on a half, or lie beyond 2**52, are rounded by Python. NaN and
    infinities stay as they are.
    """
    scale = 10.0**places
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = numbers * scale
        nearest = np.rint(scaled)
        sure = (np.abs(scaled - nearest) != 0.5) & (np.abs(scaled) < 2.0**52) | ~np.isfinite(numbers)
    out = nearest / scale
    for i in np.flatnonzero(~sure).tolist():
        out[i] = round(float(numbers[i]), places)
    return out


def json_numbers(
    records: list[dict[str, Any]], columns: dict[str, Sequence[Any]], places: dict[str, int | None]
) -> None:
    """Apply :func:`json_number` in place to the records' values under each key, a column at a time.

    ``columns`` holds, by key, the records' values (in the records' order);
    ``places`` the decimals of each key.
    """
    for key, values in columns.items():
        for i, value in json_changes(values, places[key]):
            records[i][key] = value


def json_tokens(values: Sequence[Any], kinds: set[type] | None = None) -> list[bytes]:
    """Each value as JSON text, as :data:`JSON_OPTIONS` writes it in a record.

    A column of numbers (and None), or of texts (and None), is written as
    one array and cut at the commas between its values; any other value by
    value. ``kinds`` is the values' types, when known already.
    """
    if not values:
        return []
    if kinds is None:
        kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES:  # no comma in any value's text
        return orjson.dumps(values, option=JSON_OPTIONS)[1:-1].split(b",")
    if kinds <= {str, type(None)}:
        texts = [value for value in values if value is not None]
        contents = string_contents(texts) if texts else []
        if contents is not None:
            made = iter(contents)
            return [b"null" if value is None else b'"' + next(made) + b'"' for value in values]
    return [orjson.dumps(value, option=JSON_OPTIONS) for value in values]


def column_texts(values: Sequence[Any], places: int | None = None) -> tuple[list[bytes], bool]:
    """Each value of a column as :func:`json_number` makes it and :data:`JSON_OPTIONS` writes it, in a record.

    A column of texts alone is written as the insides of its strings (see
    :func:`string_contents`): the second value returned is then True, and
    the quotes are the caller's to write. Any other is written as one
    array (a column of floats and None rounded in numpy first: orjson
    writes a float of an array as it writes a Python float, and NaN and
    infinities as null) and cut at its commas, when it holds no more
    commas than those between its values; else it goes through
    :func:`json_column` and :func:`json_tokens`.
    """
    if not values:
        return [], False
    kinds = set(map(type, values))
    if kinds == {str}:
        contents = string_contents(values)
        if contents is not None:
            return contents, True
    if kinds <= {float, type(None)}:
        numbers = np.array(values, dtype=float)  # None becomes NaN, written as null
        text = orjson.dumps(numbers if places is None else rounded(numbers, places), option=JSON_OPTIONS)
    elif places is None or not any(issubclass(kind, float) for kind in kinds):  # nothing json_number changes
        text = orjson.dumps(values, option=JSON_OPTIONS)  # NaN and infinities as null, as json_number has them
    else:
        return json_tokens(json_column(values, places)), False
    if text.count(b",") == len(values) - 1:
        return text[1:-1].split(b","), False
    return json_tokens(values, kinds), False


def string_contents(texts: list[str]) -> list[bytes] | None:
    """Each text as the inside of a JSON string, cut from one array; None where a cut may be false."""
    array = orjson.dumps(texts)
    # Between two texts stands '","'; within one, a quote is escaped ('\"'): a '","' whose first quote is
    # escaped is the only false cut, and then a backslash comes before it.
    if b'\\","' in array:
        return None
    return array[2:-2].split(b'","')


#: How records are written as JSON (keys sorted; a numpy value as its Python equivalent).
JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
#: Types whose JSON text holds no comma.
_NUMBER_TYPES = {float, int, bool, type(None), np.float64, np.float32, np.int64, np.int32, np.bool_}
