"""Chunk sizes: large while much of an input is left, smaller towards its end; the same results whatever they are."""

from __future__ import annotations

import json

from threelines.batch import chunking
from threelines.batch.chunking import chunk_sizes, split
from threelines.batch.local import run_batch
from threelines.input.footprint import read_projects_in_pieces


def sizes(n: int, chunk_size: int | None, jobs: int) -> list[int]:
    return [len(chunk) for chunk in split(list(range(n)), chunk_sizes(chunk_size, jobs))]


def test_automatic_chunks_shrink_as_the_input_runs_out():
    assert sizes(10_000, None, 2) == [2500, 1875, 1407, 1055, 791, 593, 500, 500, 500, 279]
    assert sizes(10_000, None, 4) == [1250, 1094, 957, 838, 733, 641, 561, 500, 500, 500, 500, 500, 500, 500, 426]


def test_one_process_takes_the_largest_chunks_and_a_small_input_is_one_chunk():
    assert sizes(6_000, None, 1) == [2500, 2500, 1000]
    assert sizes(300, None, 2) == [300]


def test_a_chunk_size_given_is_kept():
    assert sizes(10, 3, 2) == [3, 3, 3, 1]
    assert sizes(10_000, 500, 2) == [500] * 20


def test_parts_are_sized_by_what_is_left_of_the_whole_input(sample_dir, manifest):
    """13 features read 5 at a time: each part is asked for with the features not yet placed, later pieces too."""
    asked = []

    def part(left: int) -> int:
        asked.append(left)
        return 2

    in_file_order = lambda boxes: range(len(boxes))  # noqa: E731
    parts = list(read_projects_in_pieces(sample_dir / "projects.gpkg", manifest.working_crs, piece=5,
                                         order=in_file_order, part=part))  # fmt: skip
    assert asked == [13, 11, 9, 8, 6, 4, 3, 1]
    assert [len(p) + len(p.problems) for p in parts] == [2, 2, 1, 2, 2, 1, 2, 1]


def test_automatic_chunks_give_the_lines_of_fixed_ones(tmp_path, sample_dir, manifest, ruleset, monkeypatch):
    """Sizes from 2 to 5 (the sample has 13 projects) in two workers: the same records, in the same order."""
    monkeypatch.setattr(chunking, "CHUNK_MIN", 2)
    monkeypatch.setattr(chunking, "CHUNK_MAX", 5)
    texts = []
    for chunk_size in (None, 1):
        out = tmp_path / f"out{chunk_size}"
        result = run_batch([str(sample_dir / "projects.gpkg")], out, manifest, ruleset, jobs=2, chunk_size=chunk_size)
        assert result.screened == 13
        lines = (out / "results.jsonl").read_text("utf-8").splitlines()
        texts.append([{k: v for k, v in json.loads(line).items() if k != "screened_at"} for line in lines])
    assert texts[0] == texts[1]
    assert len(texts[0]) == 13
