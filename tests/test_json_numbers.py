"""The JSON form rounds measures where records are made, and has no NaN."""

from __future__ import annotations

import json
import math

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
