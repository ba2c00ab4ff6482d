"""A footprint file placed a part at a time, in any order, gives each feature the project it gets read whole."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest

from test_plain_geojson import PLAIN, assert_same, outcome
from threelines.batch.local import _along_curve, run_batch
from threelines.errors import FootprintError
from threelines.input.footprint import read_projects_in_pieces
from threelines.input.projects import Projects


def in_parts(path, working_crs, part, order=lambda boxes: np.arange(len(boxes))[::-1], **options):
    """The parts read_projects_in_pieces yields (or its refusal)."""
    try:
        return list(read_projects_in_pieces(path, working_crs, piece=100, order=order, part=part, **options))
    except FootprintError as exc:
        return str(exc)


def in_file_order(parts: list[Projects]) -> Projects:
    """The parts' projects and problems put back in the order of the file's features."""
    keys = [k for p in parts for k in p.keys]
    by_key = np.argsort([k[2] for k in keys], kind="stable")
    problems = sorted((m for p in parts for m in p.problems), key=lambda m: (m.feature is None, m.feature or 0))
    return Projects(
        source=parts[0].source,
        attrs=[[a for p in parts for a in p.attrs][i] for i in by_key],
        geometry=np.concatenate([p.geometry for p in parts])[by_key],
        area_m2=np.concatenate([p.area_m2 for p in parts])[by_key],
        problems=problems,
        crs=parts[0].crs,
        keys=[keys[i] for i in by_key],
        plane_area_m2=np.concatenate([p.plane_area_m2 for p in parts])[by_key],
    )


@pytest.mark.parametrize("name", list(PLAIN))
def test_parts_in_any_order_give_the_projects_of_the_whole(tmp_path, manifest, caplog, name):
    path = tmp_path / "site.geojson"
    path.write_text(json.dumps(PLAIN[name], ensure_ascii=False), encoding="utf-8")
    caplog.clear()
    whole = outcome(path, manifest.working_crs)
    said = sorted(caplog.text.splitlines())
    caplog.clear()
    parts = in_parts(path, manifest.working_crs, part=2)
    assert sorted(caplog.text.splitlines()) == said
    if isinstance(whole, str):
        assert parts == whole
        return
    assert all(len(p.keys) + len(p.problems) <= 2 for p in parts)
    assert_same(in_file_order(parts), whole)


def test_the_crs_is_decided_over_the_whole_file(tmp_path, manifest):
    """One feature far off and the others where the file's CRS puts them: the whole file decides, not each part."""
    (tmp_path / "site.geojson").write_text(json.dumps(PLAIN["one feature far off"]), encoding="utf-8")
    frame = pyogrio.read_dataframe(tmp_path / "site.geojson")
    path = tmp_path / "site.gpkg"
    pyogrio.write_dataframe(frame, path)
    whole = outcome(path, manifest.working_crs)
    parts = in_parts(path, manifest.working_crs, part=1, order=lambda boxes: np.arange(len(boxes)))
    assert len(parts) == len(frame)
    assert [m for p in parts for m in p.problems] == whole.problems != []
    assert_same(in_file_order(parts), whole)


def test_parts_follow_the_curve_through_the_boxes():
    boxes = np.array([[10.0, 10, 11, 11], [0, 0, 1, 1], [np.nan] * 4, [0, 10, 1, 11], [10, 0, 11, 1]])
    # Missing coordinates first, then the Hilbert curve from the lower left corner: up, right, down.
    assert _along_curve(boxes).tolist() == [2, 1, 3, 0, 4]


def test_a_batch_writes_the_same_lines_in_the_same_order_whatever_the_jobs(tmp_path, sample_dir, manifest, ruleset):
    source = str(sample_dir / "projects.gpkg")
    texts = []
    for jobs in (1, 2, 1):
        run_batch([source], tmp_path / f"out{len(texts)}", manifest, ruleset, jobs=jobs, chunk_size=3)
        lines = (tmp_path / f"out{len(texts)}" / "results.jsonl").read_text("utf-8").splitlines()
        texts.append([{k: v for k, v in json.loads(line).items() if k != "screened_at"} for line in lines])
    assert texts[0] == texts[1] == texts[2]
    run_batch([source], tmp_path / "whole", manifest, ruleset, chunk_size=1000)
    whole = [json.loads(line) for line in (tmp_path / "whole" / "results.jsonl").read_text("utf-8").splitlines()]
    key = lambda r: (r["source"], r["layer"], r["feature"])  # noqa: E731
    assert sorted(texts[0], key=key) == sorted(({k: v for k, v in r.items() if k != "screened_at"} for r in whole),
                                               key=key)  # fmt: skip


def test_an_input_read_whole_is_ordered_whatever_the_chunk_size(tmp_path, sample_dir, manifest, ruleset):
    """A folder of files comes back as one set of projects, not placed a part at a time: ordered all the same."""
    orders = []
    for chunk_size in (2, 1000):
        out = tmp_path / f"out{chunk_size}"
        run_batch([str(sample_dir / "projects")], out, manifest, ruleset, jobs=1, chunk_size=chunk_size)
        lines = (out / "results.jsonl").read_text("utf-8").splitlines()
        orders.append([json.loads(line)["source"] for line in lines])
    assert len(orders[0]) == 13
    assert orders[0] == orders[1]
    assert orders[0] != sorted(orders[0])  # along the curve, not in the files' order
