"""The JSON form rounds measures where records are made, and has no NaN."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from threelines.engine.json_values import json_changes, json_number
from threelines.engine.verdict import Texts, Trigger, UnitShare, Unresolved, Verdict
from threelines.report.json import verdict_json


def trigger(**kwargs) -> Trigger:
    base = dict(
        rule="r",
        title="t",
        outcome="conditional",
        dimension="quality",
        layer="q",
        feature_id="Z1",
        feature_name="zone",
        overlap_m2=1234.56789,
        overlap_ha=0.123456789,
        overlap_mu=1.851851851,
        overlap_ratio=0.3333333333,
        distance_m=12.3456,
        texts=Texts.given("m"),
        basis=None,
    )
    return Trigger(**{**base, **kwargs})


def test_measures_are_rounded_by_their_names():
    verdict = Verdict(
        project={
            "id": "P",
            "area_m2": 10000.123456,
            "area_ha": 1.0000123456,
            "area_mu": 15.00018518,
            "emit_nox": 1.23456789,
        },
        triggers=[trigger(offset_ratio=2.123456789, required_offset=0.123456789, project_load=math.nan)],
        units=[UnitShare(code="U", name=None, class_="key", overlap_m2=9999.999, share=0.99999999)],
        unresolved=[Unresolved(rule="r", reason="x", feature_id=math.inf)],
    )
    doc = json.loads(verdict_json(verdict))
    assert doc["project"] == {
        "id": "P",
        "area_m2": 10000.12,
        "area_ha": 1.000012,
        "area_mu": 15.0002,
        "emit_nox": 1.23456789,
    }
    (t,) = doc["triggers"]
    assert (t["overlap_m2"], t["overlap_ha"], t["overlap_mu"], t["overlap_ratio"], t["distance_m"]) == (
        1234.57,
        0.123457,
        1.8519,
        0.333333,
        12.35,
    )
    assert (t["offset_ratio"], t["required_offset"], t["project_load"]) == (2.123457, 0.123456789, None)
    assert doc["units"] == [{"code": "U", "name": None, "class": "key", "overlap_m2": 10000.0, "share": 1.0}]
    assert doc["unresolved"] == [{"rule": "r", "reason": "x", "feature_id": None}]
    # the verdict's own records keep full precision
    assert verdict.triggers[0].overlap_m2 == 1234.56789


def column_as_python_rounds(values: list, places: int | None) -> list:
    """The column after json_changes, compared by repr (so that -0.0 and 0.0 differ)."""
    out = list(values)
    for i, value in json_changes(values, places):
        out[i] = value
    return [repr(v) for v in out]


halves = st.builds(lambda n, k: (n + 0.5) / 10**k, st.integers(-(10**12), 10**12), st.integers(0, 9))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.floats(), halves, st.none()), max_size=40),
    st.sampled_from([None, 0, 2, 4, 6, 9]),
)
def test_a_column_is_rounded_as_python_rounds_each_number(values, places):
    assert column_as_python_rounds(values, places) == [repr(json_number(v, places)) for v in values]


def test_a_column_of_other_numbers_keeps_their_types():
    values = [np.float64(2.675), 3, 1.005, None, "x", math.nan]
    assert column_as_python_rounds(values, 2) == [repr(json_number(v, 2)) for v in values]
