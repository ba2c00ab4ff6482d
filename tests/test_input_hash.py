"""A batch's input hashes stay what earlier versions wrote, so that a resumed run recognises their records."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from threelines.batch.hashes import _key_and_attrs_json, project_hashes
from threelines.input.projects import Projects

#: Cell values as footprint files give them, and the awkward ones: the separator inside text, a % sign,
#: Chinese, control characters, NaN and infinities, big integers, nested values, a numpy number.
cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from([*'ab, %:{}[]"\\', "地", "块", "\x00", "\x7f", "\u2028", "😀"]), max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    st.floats(allow_nan=False, width=32).map(np.float32),
)
names = st.lists(st.text(alphabet="abcz_%", min_size=1, max_size=4), min_size=0, max_size=5, unique=True)
keys = st.tuples(st.sampled_from(["a.gpkg", "/x/地块, 1.shp!b"]), st.none() | st.text(max_size=3), st.integers(0, 99))


@st.composite
def projects(draw):
    shared = draw(names)
    count = draw(st.integers(0, 6))
    attrs = []
    for _ in range(count):
        own = shared if draw(st.booleans()) or not attrs else draw(names)  # now and then, other names
        attrs.append({name: draw(cells) for name in own})
    return [draw(keys) for _ in range(count)], attrs


@settings(max_examples=300, deadline=None)
@given(projects())
def test_the_hashed_text_is_json_dumps_of_each_project(drawn):
    keys, attrs = drawn
    want = [json.dumps([key, a], sort_keys=True, default=str) for key, a in zip(keys, attrs, strict=True)]
    assert _key_and_attrs_json(keys, attrs) == want


def test_an_input_hash_is_the_one_earlier_versions_wrote():
    attrs = [
        {"id": "P1", "name": "厂区, 一期", "industry": "C2511", "kind": "area", "width": None, "emit_so2": 1.5},
        {"id": "P2", "name": None, "industry": None, "kind": "linear", "width": 30.0, "emit_so2": float("nan")},
    ]
    geometry = np.array([shapely.box(0, 0, 10, 10), shapely.box(5, 5, 20, 20)])
    projects = Projects(
        source="in.gpkg", attrs=attrs, geometry=geometry, area_m2=np.array([100.0, 225.0]),
        keys=[("in.gpkg", None, 0), ("in.gpkg", "roads", 7)],
    )  # fmt: skip
    digest = "d" * 64
    want = []
    for key, a, g in zip(projects.keys, attrs, geometry, strict=True):  # how every earlier version hashed a project
        h = hashlib.sha256(digest.encode())
        h.update(json.dumps([key, a], sort_keys=True, default=str).encode())
        h.update(shapely.to_wkb(g))
        want.append(h.hexdigest()[:32])
    assert project_hashes(projects, digest) == want
    assert want == [  # as earlier versions wrote them into results.jsonl
        "0acc24241185532a97a9282e5c234f7c",
        "213f258df062f768fbff4f6a17b2f68b",
    ]


def test_columns_of_numbers_are_written_as_repr_writes_them():
    rng = np.random.default_rng(16)
    anywhere = rng.integers(0, 2**64 - 1, 200_000, dtype=np.uint64, endpoint=True).view(np.float64)
    drawn = rng.random(50_000) * 10.0 ** rng.integers(-12, 22, 50_000)
    edges = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 5e-324, 1.7976931348623157e308, 0.1]
    values = [*anywhere[np.isfinite(anywhere)].tolist(), *drawn.tolist(), *edges, None]
    keys = [("a.gpkg", None, i) for i in range(len(values))]
    attrs = [{"emit_so2": v, "water_m3": None if v is None else -v} for v in values]
    want = [json.dumps([key, a], sort_keys=True, default=str) for key, a in zip(keys, attrs, strict=True)]
    assert _key_and_attrs_json(keys, attrs) == want
    # NaN and infinities are JSON's NaN and Infinity, as before
    odd = [{"x": v} for v in (float("nan"), float("inf"), -float("inf"), 1.5)]
    assert _key_and_attrs_json(keys[:4], odd) == [
        json.dumps([k, a], sort_keys=True) for k, a in zip(keys[:4], odd, strict=True)
    ]
