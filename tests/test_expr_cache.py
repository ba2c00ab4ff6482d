"""Messages and decisions computed without CEL conversions where they can be give CEL's answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threelines.rules.decide import Decision, decide, decide_cached, forget_decisions
from threelines.rules.expr import bind, compile_expr
from threelines.rules.templates import ABSENT, compile_template

NAMES = ("project", "feature", "overlaps", "overlap_ha", "offset_ratio")
VARIABLES = {
    "project": {"id": "P1", "emit_nox": 2.5},
    "feature": {"name": "红线1", "attainment": False, "ratio": 2.0},
    "overlaps": True,
    "overlap_ha": 1.23456,
    "offset_ratio": None,
}


@pytest.mark.parametrize(
    ("source", "in_cel", "expected"),
    [
        (
            "{feature.name}: {overlap_ha:.2f} ha, {overlaps}, {offset_ratio}",
            "{(feature.name)}: {(overlap_ha):.2f} ha, {(overlaps)}, {(offset_ratio)}",
            "红线1: 1.23 ha, true, -",
        ),
        (
            "{feature.missing} {project.emit_nox} {feature.ratio:.1f}",
            "{(feature.missing)} {(project.emit_nox)} {(feature.ratio):.1f}",
            "<feature.missing?> 2.5 2.0",
        ),
        # a format spec that does not fit the value
        ("{overlap_ha:d} {feature.name:.1f}", "{(overlap_ha):d} {(feature.name):.1f}", "<overlap_ha?> <feature.name?>"),
    ],
)
def test_plain_placeholders_render_as_cel_does(source, in_cel, expected):
    template, through_cel = compile_template(source, NAMES), compile_template(in_cel, NAMES)
    assert not template.needs_cel
    assert through_cel.needs_cel
    assert template.render(VARIABLES) == expected
    assert through_cel.render(VARIABLES) == expected.replace("<", "<(").replace("?>", ")?>")


def test_rows_render_column_by_column_as_row_by_row():
    """A template filled for many rows at once gives each row what rendering it alone gives."""
    template = compile_template(
        "{feature.name}: {overlap_ha:.2f} ha ({overlap_ha}), {overlaps}, {offset_ratio} {feature.ratio:.1f}{{x}}", NAMES
    )
    rows = [
        VARIABLES,
        {**VARIABLES, "feature": {}, "overlap_ha": 12345.678, "overlaps": False, "offset_ratio": 1.5},
        {"project": {}, "feature": {"name": 7, "ratio": "two"}},  # names absent, a value the format does not fit
    ]

    def column(name):
        return [row.get(name, ABSENT) for row in rows]

    assert template.render_rows(column, len(rows)) == [template.render(row) for row in rows]
    assert compile_template("", NAMES).render_rows(column, 2) == ["", ""]
    with pytest.raises(ValueError, match="needs CEL"):
        compile_template("{overlaps ? 'a' : 'b'}", NAMES).render_rows(column, 1)


def test_cel_placeholders_still_run_in_cel():
    template = compile_template('{overlaps ? "in " + feature.name : "near"} {true} {feature}', NAMES)
    assert template.needs_cel
    assert template.render(VARIABLES).startswith("in 红线1 true {")


def test_reads_keep_only_what_is_read_and_tell_types_apart():
    expr = compile_expr("feature.attainment == true && project.emit_nox > 1.0", NAMES)
    assert expr.reads.slim(VARIABLES) == {"feature": {"attainment": False}, "project": {"emit_nox": 2.5}}
    one = expr.reads.key({"feature": {"attainment": 1.0}, "project": {}})
    true = expr.reads.key({"feature": {"attainment": True}, "project": {}})
    assert one != true  # 1.0 == True in Python, not in CEL


def test_cached_decisions_equal_fresh_ones():
    expr = compile_expr("feature.attainment == true && project.emit_nox > 1.0", NAMES)
    cache: dict = {}
    cases = [
        {"feature": {"attainment": True}, "project": {"emit_nox": 2.0}},
        {"feature": {"attainment": True}, "project": {"emit_nox": 0.5}},
        {"feature": {"attainment": 1.0}, "project": {"emit_nox": 2.0}},  # 1.0 is not true in CEL
        {"feature": {}, "project": {"emit_nox": 2.0}},  # not given
        {"feature": {"attainment": True}, "project": {"emit_nox": 2.0}},  # again: from the cache
    ]
    got = [decide_cached(expr, v, cache) for v in cases]
    assert got == [decide(expr, v, bind(v)) for v in cases]
    assert got[0] == Decision(True)
    assert got[1] == Decision(False)
    assert got[3] == Decision(False, "feature attribute 'attainment' is not given")
    assert got[2] == Decision(False)
    assert len(cache) == 4


def test_decisions_are_kept_between_calls():
    expr = compile_expr("project.emit_nox > 1.0", NAMES)
    first = decide_cached(expr, {"project": {"emit_nox": 2.0}})
    assert decide_cached(expr, {"project": {"emit_nox": 2.0}}) is first
    forget_decisions()
    assert decide_cached(expr, {"project": {"emit_nox": 2.0}}) is not first


def test_kept_decisions_are_bounded(monkeypatch):
    from threelines.rules import decide as decide_module

    monkeypatch.setattr(decide_module, "DECISIONS_KEPT", 3)
    forget_decisions()
    expr = compile_expr("project.emit_nox > 1.0", NAMES)
    for value in range(10):
        decide_cached(expr, {"project": {"emit_nox": float(value)}})
        assert len(decide_module._DECIDED) <= 3


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("value > 35.0", ("value", 35.0)),
        (" cells<=-2.5 ", ("cells", -2.5)),
        ("value == 0.0", ("value", 0.0)),
        ("value > 35", None),  # an int literal: CEL does not compare it with a double as Python does
        ("value > 35.0 && cells > 1.0", None),
        ("35.0 < value", None),
        ("project > 1.0", ("project", 1.0)),  # a name the caller must know holds doubles
    ],
)
def test_comparisons_with_a_double_are_decided_over_arrays_as_cel_decides_them(source, parsed):
    import numpy as np

    expr = compile_expr(source, ("project", "value", "cells"))
    found = expr.comparison
    assert (found and (found[0], found[2])) == (parsed or None)
    if found is None or found[0] == "project":
        return
    values = [-1e300, -2.5, -0.0, 0.0, 1.0, 34.999999999, 35.0, 35.000000001, 1e300, float("inf"), float("-inf")]
    expected = [expr.evaluate({"value": 0.0, "cells": 0.0, "project": {}, found[0]: v}) for v in values]
    assert found[1](np.array(values), found[2]).tolist() == expected


cells = st.one_of(
    st.just(ABSENT), st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(), st.text(max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        ["{overlap_ha:.2f}", "{overlap_ha}", "{feature.name}", "{feature.name:>4}", "a{offset_ratio:.0%}b"]
    ),
    st.lists(st.tuples(cells, st.one_of(st.just(ABSENT), st.dictionaries(st.just("name"), cells))), max_size=5),
)
def test_a_column_filled_at_once_is_each_row_filled_alone(source, rows):
    """Whatever the rows hold (absent names, None, texts where numbers are formatted), as row by row."""
    template = compile_template(source, NAMES)
    named = [
        {name: value for name, value in (("overlap_ha", a), ("offset_ratio", a), ("feature", f)) if value is not ABSENT}
        for a, f in rows
    ]

    def column(name):
        return [row.get(name, ABSENT) for row in named]

    assert template.render_rows(column, len(rows)) == [template.render(row) for row in named]
