"""Conditions decided over columns give CEL's answer wherever they decide a row (rules/columns.py)."""

from __future__ import annotations

import math

import cel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threelines.rules.columns import EXACT_INT, decide_columns
from threelines.rules.expr import Expr, bind, compile_expr
from threelines.rules.templates import ABSENT

NAMES = ("x", "y", "project")


SPECIAL = [
    0.0, -0.0, math.inf, -math.inf, math.nan, 1e308, 5e-324, 35.0, float(EXACT_INT), 1.0, 0.1,
    0, 1, -1, 35, EXACT_INT, EXACT_INT + 1, -EXACT_INT - 1, 2**63, 2**64,
    "", "coal", "groundwater", "地下水", "é", "e\u0301", "\ud800", "\U0001f600",
    True, False, None, [1.0], {"a": 1.0},
]  # fmt: skip
LITERALS = [
    "0.0", "-0.0", "1.0", "35.0", "0.1", "1e308", "2.5e-320", "9007199254740992.0", "-1.5",
    "0", "-1", "2", "35", str(EXACT_INT), str(EXACT_INT + 1), "1u",
    '""', '"coal"', '"groundwater"', '"地下水"', '"e\u0301"', "'a'", 'r"\\d"', '"\\U0001f600"',
    "true", "false", "null", 'b"x"',
]  # fmt: skip
NAMES_READ = ["x", "y", "project.a", 'project["b"]', "project.c"]
OUTSIDE = ["size(x)", "x % 2", "int(y) > 1", "[x]", "project", "x.a"]
OPERATORS = ["&&", "||", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/"]


def _expression(rand, depth: int = 0) -> str:
    """A random expression of the translated subset, now and then with a part beyond it."""
    pick = rand.random()
    if depth >= 3 or pick < 0.3:
        leaf = rand.random()
        if leaf < 0.45:
            return rand.choice(NAMES_READ)
        if leaf < 0.55:
            return f"has({rand.choice(['project.a', 'project.c'])})"
        if leaf < 0.95:
            return rand.choice(LITERALS)
        return rand.choice(OUTSIDE)
    if pick < 0.4:
        return f"{rand.choice('!-')}({_expression(rand, depth + 1)})"
    if pick < 0.5:
        return f"({_expression(rand, depth + 1)} ? {_expression(rand, depth + 1)} : {_expression(rand, depth + 1)})"
    if pick < 0.6:
        items = ", ".join(rand.choice(LITERALS) for _ in range(rand.randrange(4)))
        return f"({_expression(rand, depth + 1)} in [{items}])"
    return f"({_expression(rand, depth + 1)} {rand.choice(OPERATORS)} {_expression(rand, depth + 1)})"


def _value(rand, absent: bool = True):
    """A random value: a special one, an ordinary number or text, or (``absent``) none."""
    pick = rand.random()
    if pick < 0.1 and absent:
        return ABSENT
    if pick < 0.7:
        return rand.choice(SPECIAL)
    if pick < 0.8:
        return rand.uniform(-100, 100)
    if pick < 0.9:
        return rand.randint(-(2**60), 2**60)
    return "".join(rand.choice("ab地é\u0301") for _ in range(rand.randrange(3)))


def _row(rand) -> dict:
    if rand.random() < 0.1:
        project = rand.choice([ABSENT, None, 1.0, "project"])
    else:
        project = {key: _value(rand, absent=False) for key in "abc" if rand.random() < 0.7}
    return {"x": _value(rand), "y": _value(rand), "project": project}


def _compiled(source: str) -> Expr | None:
    try:
        return Expr(source=source, program=cel.compile(source))
    except ValueError:
        return None


def _cel(expr: Expr, row: dict) -> object:
    """CEL's result for a row, or the exception it raises (converting what it reads, as rules do, or running)."""
    variables = {name: value for name, value in row.items() if value is not ABSENT}
    try:
        return expr.evaluate(bind(expr.reads.slim(variables)))
    except Exception as exc:  # any failure: the row must be left to CEL
        return exc


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_columns_agree_with_cel(rand):
    """Random expressions and values: every row decided over the columns is decided so by CEL."""
    source = _expression(rand)
    table = [_row(rand) for _ in range(rand.randrange(1, 12))]
    expr = _compiled(source)
    if expr is None:
        return
    found = decide_columns(expr, lambda name: [row[name] for row in table], len(table))
    if found is None:
        return
    for i, row in enumerate(table):
        if found.known[i]:
            assert _cel(expr, row) is bool(found.holds[i]), (source, row)
        elif found.missing[i]:
            assert isinstance(_cel(expr, row), KeyError), (source, row)


def _column(rows):
    return lambda name: [row.get(name, ABSENT) for row in rows]


@pytest.mark.parametrize(
    ("source", "row", "expected"),
    [
        ("project.emit_pm > 0.0 || project.emit_so2 > 0.0", {"project": {"emit_so2": 1.5}}, True),
        ("project.emit_pm > 0.0 || project.emit_so2 > 0.0", {"project": {"emit_so2": 0.0}}, None),  # pm not given
        ("project.emit_pm > 0.0 && project.emit_so2 > 0.0", {"project": {"emit_so2": 0.0}}, False),
        ('project.fuel in ["coal", "heavy_oil"]', {"project": {"fuel": "coal"}}, True),
        ('project.fuel in ["coal", "heavy_oil"]', {"project": {"fuel": 1.0}}, False),  # another type: unequal
        ('project["fuel"] == "煤"', {"project": {"fuel": "煤"}}, True),
        ("has(project.fuel)", {"project": {}}, False),
        ("project.x > 1", {"project": {"x": 1.5}}, True),  # int and double compare
        ("project.x > 0.0", {"project": {"x": 2}}, True),
        ("project.x > 0.0", {"project": {"x": 2**60}}, None),  # beyond a double's exact ints
        ("project.x > 0.0", {"project": {"x": math.nan}}, None),  # CEL fails on it
        ("project.x > 0.0", {"project": {"x": True}}, None),
        ("project.x == null", {"project": {"x": None}}, True),
        ("project.x / 0.0 > 1.0", {"project": {"x": 1.0}}, True),  # inf
        ("project.x / 0.0 > 1.0", {"project": {"x": 0.0}}, None),  # NaN
        ("project.x == 'a'", {"project": {"x": "\ud800"}}, None),  # CEL cannot take the string
    ],
)
def test_columns_decide_what_they_can(source, row, expected):
    expr = compile_expr(source, NAMES)
    found = decide_columns(expr, _column([row]), 1)
    assert (bool(found.holds[0]) if found.known[0] else None) == expected
    if expected is not None:
        assert expr.evaluate(row) is expected


@pytest.mark.parametrize(
    "source",
    ["size(project.name) > 2", "industry_in(project.industry, ['C26'])", "project.a % 2 == 0", "x in project.list"],
)
def test_columns_leave_the_rest_to_cel(source):
    assert decide_columns(compile_expr(source, ("project", "x")), _column([{}]), 1) is None
