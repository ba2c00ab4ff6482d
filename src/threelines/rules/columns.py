"""CEL conditions decided for whole columns of values at once, where numpy is sure to give CEL's answer.

A rule's ``when`` runs on every project, and through CEL that is one
conversion of the values and one evaluation per distinct value of what it
reads (a province's emissions are nearly all distinct). The conditions rules
use are mostly simple (``project.emit_pm > 0.0 || project.emit_so2 > 0.0``,
``project.fuel in ["coal", "heavy_oil"]``, ``has(project.radius)``): such an
expression is translated once into numpy operations, which decide every row
at once, with :func:`decide_columns`.

The CEL covered:

* literals: doubles, strings, ``true``, ``false``, ``null``, ints within
  :data:`EXACT_INT` of zero, and lists of these;
* a name, ``m.key`` or ``m["key"]`` of a map name, and ``has(m.key)``;
* ``!``, ``&&``, ``||`` (either side false, or true, decides, whatever the
  other side gives: CEL's logic absorbs errors), ``c ? a : b``;
* ``==``, ``!=`` and ``in`` a list literal between any of the values above
  (different types are unequal, ints equal doubles of the same value),
  ``<``, ``<=``, ``>``, ``>=`` between numbers and between strings;
* unary ``-`` on numbers, ``+``, ``-``, ``*``, ``/`` between doubles (IEEE
  double arithmetic, as CEL's).

Anything else (functions, macros, ``%``, int arithmetic, whose overflow CEL
reports) is not translated: :func:`decide_columns` returns None and the caller
asks CEL. Within a translated expression a row is decided only where every
value it needs has a type the translation knows exactly: a bool, a double
that is not NaN (CEL refuses to order a NaN), an int within :data:`EXACT_INT`
(beyond, CEL compares it as a rounded double), a string (that converts to
CEL's: no lone surrogate), a null. Every other row (an absent attribute, a
value of another type, a NaN, an error) is left undecided and goes to CEL,
so what CEL reports for it (a missing attribute, a type error) stays CEL's.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, NamedTuple

import cel
import numpy as np

from threelines.input.project_records import ProjectMaps
from threelines.rules import celcheck
from threelines.rules.expr import Expr

#: Ints whose magnitude is at most this are doubles exactly, and compare as CEL compares them.
EXACT_INT = 2**53

# A value's type, per row: what the translation knows exactly; MISSING: CEL fails for want of an attribute;
# UNKNOWN: anything else (a value of another type, another failure), for CEL to tell.
UNKNOWN, MISSING, BOOL, DOUBLE, INT, STRING, NULL = range(7)
_TYPES = {bool: BOOL, float: DOUBLE, int: INT, str: STRING, type(None): NULL}  # and _NoKey: MISSING (below)

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


class Values(NamedTuple):
    """An expression's value per row: its type (``kind``), and its number or its text where it has one.

    ``number`` holds doubles, ints and bools (as 0 and 1); ``text`` holds strings.
    """

    kind: np.ndarray
    number: np.ndarray
    text: np.ndarray


class _Outside(Exception):
    """The expression uses CEL beyond what is translated."""


class Decided(NamedTuple):
    """A condition over columns: per row, whether it is decided, and how.

    ``known``: it gives true or false (``holds``: which); ``missing``: it
    fails for want of an attribute a map does not have (CEL raises KeyError).
    """

    holds: np.ndarray
    known: np.ndarray
    missing: np.ndarray


def decide_columns(expr: Expr, column: Callable[[str], Sequence], rows: int) -> Decided | None:
    """Decide a condition for ``rows`` rows at once, where CEL's answer is certain.

    Parameters
    ----------
    expr : Expr
    column : callable
        ``column(name)`` gives a name's value per row (a dict for a map),
        :data:`~threelines.rules.templates.ABSENT` where a row does not have it.
    rows : int

    Returns
    -------
    Decided or None
        None when the expression is beyond what is translated. A row
        neither known nor missing is one for CEL to decide.
    """
    tree = _translated(expr)
    if tree is None:
        return None
    read: dict = {}
    found = _evaluate(tree, column, rows, read)
    # CEL converts every value read before it runs: a row with one of a type not known here is left to it
    typed = np.logical_and.reduce([values.kind != UNKNOWN for values in read.values()] + [np.ones(rows, dtype=bool)])
    known = (found.kind == BOOL) & typed
    return Decided(known & (found.number != 0), known, (found.kind == MISSING) & typed)


#: Translations by expression id, kept with the expression (so the id stays its own).
_TRANSLATED: dict[int, tuple[Expr, tuple | None]] = {}


def _translated(expr: Expr) -> tuple | None:
    """The expression as a tree of tuples :func:`_evaluate` runs, made once; None if it is beyond the subset."""
    kept = _TRANSLATED.get(id(expr))
    if kept is None or kept[0] is not expr:
        try:
            tree = _translate(celcheck.parse(expr.source), expr.source)
        except (_Outside, celcheck.CheckError):
            tree = None
        if len(_TRANSLATED) >= 1024:  # a process that loads many rule sets (tests) keeps only the latest
            _TRANSLATED.clear()
        kept = _TRANSLATED[id(expr)] = (expr, tree)
    return kept[1]


def _translate(node: celcheck.Node, source: str) -> tuple:
    """A syntax tree node as ``(operation, ...)``; raises :class:`_Outside` for CEL beyond the subset."""
    kind, op, children = node.kind, node.value, node.children
    if kind == "lit":
        return ("literal", _literal(node, source))
    if kind == "ident":
        return ("name", op)
    if kind in ("select", "index"):
        return ("attribute", *_attribute(node, source))
    if kind == "call" and op == "has" and not node.target and len(children) == 1 and children[0].kind == "select":
        return ("has", *_attribute(children[0], source))
    if kind == "unary" and op in ("!", "-"):
        return ("not" if op == "!" else "negative", _translate(children[0], source))
    if kind == "cond":
        return ("?", *(_translate(child, source) for child in children))
    if kind == "binary" and op == "in":
        items = children[1]
        if items.kind != "list" or any(item.kind != "lit" for item in items.children):
            raise _Outside(op)  # ``in`` a list from the data, or a map
        return (op, _translate(children[0], source), [_literal(item, source) for item in items.children])
    if kind == "binary" and op in ("&&", "||", "==", "!=", *_ORDER, *_ARITHMETIC):
        return (op, *(_translate(child, source) for child in children))
    raise _Outside(kind)


def _literal(node: celcheck.Node, source: str) -> Any:
    """A literal's value, as CEL reads it (escapes, raw strings, exponents)."""
    try:
        value = cel.evaluate(source[node.start : node.end])
    except Exception:  # a constant CEL fails on (load refuses it): left to CEL
        raise _Outside("literal") from None
    if type(value) is not _LITERALS.get(node.value) or (type(value) is int and abs(value) > EXACT_INT):
        raise _Outside(node.value)  # bytes, uints, ints beyond a double's
    return value


#: The Python type of each kind of literal translated.
_LITERALS = {"double": float, "int": int, "string": str, "bool": bool, "null": type(None)}


def _attribute(node: celcheck.Node, source: str) -> tuple[str, str]:
    """``(map name, key)`` of ``m.key`` or ``m["key"]``."""
    owner, *rest = node.children
    if owner.kind != "ident":
        raise _Outside("select")
    if node.kind == "select":
        return owner.value, node.value
    key = rest[0]
    if key.kind != "lit" or key.value != "string":
        raise _Outside("index")
    return owner.value, _literal(key, source)


def _evaluate(tree: tuple, column: Callable[[str], Sequence], n: int, read: dict) -> Values:
    """The value of a translated expression per row (``read`` keeps the columns read, by name and key, typed)."""
    op = tree[0]
    if op == "literal":
        return _constant(tree[1], n)
    if op in ("name", "attribute", "has"):
        if tree[1:] not in read:
            read[tree[1:]] = _typed(column(tree[1])) if op == "name" else _attribute_values(column(tree[1]), tree[2])
        found = read[tree[1:]]
        if op == "has":  # a row whose map is no map is left to CEL (see decide_columns)
            return Values(np.full(n, BOOL, dtype=np.int8), (found.kind != MISSING).astype(float), _no_text(n))
        return found
    if op == "not":
        found = _evaluate(tree[1], column, n, read)
        return Values(_strict(_kind(found.kind == BOOL, BOOL), found), (found.number == 0).astype(float), found.text)
    if op == "negative":
        found = _evaluate(tree[1], column, n, read)
        kind = np.where(_number(found.kind), found.kind, UNKNOWN).astype(np.int8)
        return Values(_strict(kind, found), -found.number, found.text)
    if op == "?":
        test, yes, no = (_evaluate(part, column, n, read) for part in tree[1:])
        chosen = test.number != 0
        kind = np.where(test.kind == BOOL, np.where(chosen, yes.kind, no.kind), UNKNOWN).astype(np.int8)
        kind[test.kind == MISSING] = MISSING
        return Values(kind, np.where(chosen, yes.number, no.number), np.where(chosen, yes.text, no.text))
    left = _evaluate(tree[1], column, n, read)
    if op == "in":
        found = _in(left, tree[2], n)
    else:
        right = _evaluate(tree[2], column, n, read)
        if op in ("&&", "||"):
            return _logic(op, left, right)
        if op in ("==", "!="):
            equal, known = _equal(left, right)
            found = Values(_kind(known, BOOL), (equal if op == "==" else ~equal).astype(float), _no_text(n))
        elif op in _ORDER:
            found = _order(_ORDER[op], left, right)
        else:
            found = _arithmetic(_ARITHMETIC[op], left, right)
    return Values(_strict(found.kind, left, *([] if op == "in" else [right])), found.number, found.text)


def _strict(kind: np.ndarray, *operands: Values) -> np.ndarray:
    """An operation's kind, MISSING where it fails for an absent attribute.

    CEL evaluates the operands in turn and fails with the first failure: an
    operation fails for want of an attribute where an operand does, after
    operands that gave values (one that may have failed otherwise leaves
    the row unknown).
    """
    missing, before = np.zeros(len(kind), dtype=bool), np.ones(len(kind), dtype=bool)
    for operand in operands:
        missing |= before & (operand.kind == MISSING)
        before &= operand.kind >= BOOL
    return np.where(missing, MISSING, kind).astype(np.int8)


#: Stands for the attribute of a value that is not a map (CEL fails on it).
_NOT_A_MAP = object()


class _NoKey:
    """The type of :data:`_NO_KEY`: its values are MISSING."""


#: Stands for a key a map does not have.
_NO_KEY = _NoKey()
_TYPES[_NoKey] = MISSING


def _attribute_values(maps: Sequence, key: str) -> Values:
    """Per row, a map's value for ``key``: MISSING where the map has none, UNKNOWN where it is no map."""
    if isinstance(maps, ProjectMaps):  # the projects' values held as columns
        return _typed(maps.column(key, _NO_KEY))
    if set(map(type, maps)) <= {dict}:
        return _typed([m.get(key, _NO_KEY) for m in maps])
    return _typed([m.get(key, _NO_KEY) if type(m) is dict else _NOT_A_MAP for m in maps])


def _typed(values: Sequence) -> Values:
    """A column of Python values as :class:`Values`: each value's type, where it is one known exactly."""
    n = len(values)
    kind = np.fromiter(map(_TYPES.get, map(type, values), repeat(UNKNOWN)), dtype=np.int8, count=n)
    cells = np.fromiter(values, dtype=object, count=n)
    number = np.zeros(n)
    numbers = np.flatnonzero((kind == BOOL) | (kind == DOUBLE))
    if len(numbers):
        number[numbers] = cells[numbers].astype(float)
    ints = np.flatnonzero(kind == INT)
    if len(ints):
        exact = np.fromiter((abs(v) <= EXACT_INT for v in cells[ints]), dtype=bool, count=len(ints))
        number[ints[exact]] = cells[ints[exact]].astype(float)
        kind[ints[~exact]] = UNKNOWN
    kind[np.isnan(number)] = UNKNOWN  # CEL does not order a NaN
    strings = np.flatnonzero(kind == STRING)
    if len(strings):
        foreign = {s for s in set(cells[strings].tolist()) if not _converts(s)}
        if foreign:
            kind[strings[[s in foreign for s in cells[strings].tolist()]]] = UNKNOWN
    return Values(kind, number, cells)


def _constant(value: Any, n: int) -> Values:
    """A literal's value on every row (:func:`_literal` keeps only values of the types known here)."""
    number = float(value) if isinstance(value, bool | int | float) else 0.0
    text = np.empty(n, dtype=object)
    text[:] = [value] * n
    return Values(np.full(n, _TYPES[type(value)], dtype=np.int8), np.full(n, number), text)


def _converts(text: str) -> bool:
    """Whether a string converts to CEL's (UTF-8: no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _number(kind: np.ndarray) -> np.ndarray:
    """Where a value is a double or an int."""
    return (kind == DOUBLE) | (kind == INT)


def _kind(known: np.ndarray, kind: int) -> np.ndarray:
    return np.where(known, kind, UNKNOWN).astype(np.int8)


def _no_text(n: int) -> np.ndarray:
    return np.full(n, None, dtype=object)


def _logic(op: str, left: Values, right: Values) -> Values:
    """``&&`` and ``||``: either side false (true) decides, whatever the other gives, as in CEL.

    Undecided, they fail for want of an attribute where a side does and the other gives true or false or
    fails so too.
    """
    deciding = 0.0 if op == "&&" else 1.0
    decides = [(side.kind == BOOL) & (side.number == deciding) for side in (left, right)]
    both = (left.kind == BOOL) & (right.kind == BOOL)
    result = np.where(decides[0] | decides[1], deciding, left.number)  # both known and neither deciding: alike
    kind = _kind(decides[0] | decides[1] | both, BOOL)
    either = (left.kind <= BOOL) & (left.kind >= MISSING) & (right.kind <= BOOL) & (right.kind >= MISSING)
    kind[either & ~decides[0] & ~decides[1] & ~both] = MISSING
    return Values(kind, result, left.text)


def _equal(left: Values, right: Values) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether the values are equal (values of different types are not), and where that is known."""
    known = (left.kind >= BOOL) & (right.kind >= BOOL)
    numeric = _number(left.kind) & _number(right.kind)
    equal = ((left.kind == right.kind) | numeric) & (left.number == right.number)
    strings = np.flatnonzero((left.kind == STRING) & (right.kind == STRING))
    if len(strings):
        equal[strings] = (left.text[strings] == right.text[strings]).astype(bool)
    return equal, known


def _in(left: Values, items: list, n: int) -> Values:
    """``x in [literals]``: equal to any of them."""
    found = np.zeros(n, dtype=bool)
    for item in items:
        found |= _equal(left, _constant(item, n))[0]
    return Values(_kind(left.kind >= BOOL, BOOL), found.astype(float), _no_text(n))


def _order(compare: Callable, left: Values, right: Values) -> Values:
    """``<``, ``<=``, ``>``, ``>=`` between numbers, and between strings (by code point, as UTF-8 bytes order)."""
    numeric = _number(left.kind) & _number(right.kind)
    strings = np.flatnonzero((left.kind == STRING) & (right.kind == STRING))
    result = compare(left.number, right.number) & numeric
    if len(strings):
        result[strings] = compare(left.text[strings], right.text[strings]).astype(bool)
    known = numeric
    known[strings] = True
    return Values(_kind(known, BOOL), result.astype(float), left.text)


def _arithmetic(apply: Callable, left: Values, right: Values) -> Values:
    """``+``, ``-``, ``*``, ``/`` between doubles; a NaN result is left to CEL."""
    with np.errstate(all="ignore"):
        number = apply(left.number, right.number)
    known = (left.kind == DOUBLE) & (right.kind == DOUBLE) & ~np.isnan(number)
    return Values(_kind(known, DOUBLE), number, left.text)
