"""Project records and the maps rules see, made together for many projects."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from threelines.input.attributes import ATTRIBUTES, M2_PER_MU, project_records

FIELDS = [*ATTRIBUTES, "industry_name", "area_m2", "area_ha", "area_mu"]
values = st.one_of(st.none(), st.floats(allow_nan=False), st.text(max_size=3), st.sampled_from(["C2614", "A0311", ""]))
projects = st.fixed_dictionaries({}, optional={name: values for name in ATTRIBUTES})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(projects, st.floats(0, 1e9)), max_size=5))
def test_records_and_maps(rows):
    """Every field in order (None where not given); the map rules see holds the given ones, in the same order."""
    attrs, areas = [a for a, _ in rows], [area for _, area in rows]
    records, maps = project_records(attrs, areas)
    for project, area, record, given_values in zip(attrs, areas, records, maps, strict=True):
        assert list(record) == FIELDS
        assert [record[name] for name in ATTRIBUTES] == [project.get(name) for name in ATTRIBUTES]
        assert (record["area_m2"], record["area_ha"], record["area_mu"]) == (area, area / 1e4, area / M2_PER_MU)
        assert list(given_values.items()) == [(k, v) for k, v in record.items() if v is not None]


def test_industry_name():
    (known, unknown), (known_given, unknown_given) = project_records(
        [{"industry": "C2614"}, {"industry": "Z99"}], [1, 2]
    )
    assert known["industry_name"] == known_given["industry_name"]
    assert known["industry_name"]
    assert unknown["industry_name"] is None
    assert "industry_name" not in unknown_given
