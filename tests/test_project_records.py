"""Project records and the maps rules see, made together for many projects."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from threelines.engine.measure import M2_PER_MU
from threelines.input.attributes import ATTRIBUTES
from threelines.input.project_records import project_records

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


def test_columns_read_as_the_records(manifest):
    """The columns a reader keeps give the rules what the records give: values and types, after a take and a pickle."""
    import pickle

    import geopandas as gpd
    import shapely

    from threelines.input.footprint import projects_from_frame

    box = shapely.box(116.0, 28.5, 116.01, 28.51)
    line = shapely.LineString([(116.0, 28.5), (116.01, 28.5)])
    frame = gpd.GeoDataFrame(
        {
            "id": ["a", "[b", "c", "d", "e"],  # "[b" is checked alone (it might be a list)
            "industry": ["C2614", "C2614", None, "E4813", "C2614"],
            "name": ["A", "B", ["C"], "D", "E"],  # a list: every row's name is checked alone
            "width": [None, None, -1.0, None, None],  # c is refused
            "emit_so2": [1, 2.5, None, None, 0],
        },
        geometry=[box, box, box, line, shapely.Point(116.0, 28.5)],
        crs=4490,
    )
    projects = projects_from_frame(frame, manifest.working_crs, line_widths={"*": 12.0})
    assert [a["id"] for a in projects.attrs] == ["a", "[b", "d", "e"]
    assert projects.attrs[2]["width"] == 12.0  # filled in when placed
    assert [a["name"] for a in projects.attrs] == ["A", "B", "D", "E"]
    taken = projects.take([3, 1, 2])
    for some in (projects, taken):
        assert some.columns is not None
        _, read = project_records(some.attrs, some.area_m2, some.columns)
        _, made = project_records(some.attrs, some.area_m2)
        for name in FIELDS:
            got, want = read.values(name).tolist(), made.values(name).tolist()
            assert list(zip(map(type, got), got, strict=True)) == list(zip(map(type, want), want, strict=True))
    assert pickle.loads(pickle.dumps(taken)).columns is None  # a worker reads the records
