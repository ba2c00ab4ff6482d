"""Chunk sizes: large while much of an input is left, smaller towards its end; the same results whatever they are."""

from __future__ import annotations

import json

import pytest

from threelines.batch import chunking
from threelines.batch.chunking import chunk_sizer, split
from threelines.batch.local import run_batch
from threelines.batch.workers import Screener
from threelines.input.footprint import read_projects_in_pieces


def sizes(n: int, chunk_size: int | None, jobs: int) -> list[int]:
    return [len(chunk) for chunk in split(list(range(n)), chunk_sizer(chunk_size, jobs))]


def test_automatic_chunks_shrink_as_the_input_runs_out():
    assert sizes(10_000, None, 2) == [2500, 1875, 1407, 1055, 791, 593, 500, 500, 500, 279]
    assert sizes(10_000, None, 4) == [1250, 1094, 957, 838, 733, 641, 561, 500, 500, 500, 500, 500, 500, 500, 426]


def test_one_process_takes_the_largest_chunks_and_a_small_input_is_one_chunk():
    assert sizes(6_000, None, 1) == [2500, 2500, 1000]
    assert sizes(300, None, 2) == [300]


def test_a_chunk_size_given_is_kept():
    assert sizes(10, 3, 2) == [3, 3, 3, 1]
    assert sizes(10_000, 500, 2) == [500] * 20


def parts_of(path, manifest, part) -> list[int]:
    """The sizes of the parts read_projects_in_pieces yields, 5 features read at a time, in the file's order."""
    in_file_order = lambda boxes: range(len(boxes))  # noqa: E731
    parts = read_projects_in_pieces(path, manifest.working_crs, piece=5, order=in_file_order, part=part)
    return [len(p) + len(p.problems) for p in parts]


def test_parts_are_sized_by_what_is_left_of_the_whole_input(sample_dir, manifest):
    """13 features read 5 at a time: the first part knows 13 are left, not the 5 of its piece."""
    assert parts_of(sample_dir / "projects.gpkg", manifest, lambda left: 3 if left > 10 else 1) == [3] + [1] * 10


def test_a_piece_ends_with_a_larger_part_not_a_sliver(sample_dir, manifest):
    """Parts of 2 in pieces of 5: each piece but the last ends with a part of 3; the input's last part is what is left."""
    assert parts_of(sample_dir / "projects.gpkg", manifest, lambda left: 2) == [2, 3, 2, 3, 2, 1]


def test_a_fixed_part_size_is_kept_to_the_end_of_each_piece(sample_dir, manifest):
    assert parts_of(sample_dir / "projects.gpkg", manifest, 2) == [2, 2, 1, 2, 2, 1, 2, 1]


def batch_events(monkeypatch) -> list:
    """Record, in order, the size of every chunk a batch hands to its screener and each start of worker processes."""
    events = []
    screen, start = Screener.map, Screener.start

    def recording_map(self, tasks):
        return screen(self, (events.append(len(task[0])) or task for task in tasks))

    def recording_start(self):
        if self.pool is None:
            events.append("start")
        return start(self)

    monkeypatch.setattr(Screener, "map", recording_map)
    monkeypatch.setattr(Screener, "start", recording_start)
    return events


def test_a_batch_chunks_what_it_reads_whole_and_in_pieces(tmp_path, sample_dir, manifest, ruleset, monkeypatch):
    """Sizes from 2 to 5, two workers: a folder read whole is cut by what is left; a file in pieces, piece by piece.

    Several chunks coming, the workers are started before the first is handed on (they read the layers meanwhile).
    """
    monkeypatch.setattr(chunking, "CHUNK_MIN", 2)
    monkeypatch.setattr(chunking, "CHUNK_MAX", 5)
    events = batch_events(monkeypatch)
    run_batch([str(sample_dir / "projects")], tmp_path / "folder", manifest, ruleset, jobs=2)
    assert events == ["start", 4, 3, 2, 2, 2]
    events.clear()
    run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "pieces", manifest, ruleset, jobs=2, piece_size=5)
    assert events == ["start", 5, 2, 3, 2, 1]


def test_one_chunk_starts_no_worker_process(tmp_path, sample_dir, manifest, ruleset, monkeypatch):
    events = batch_events(monkeypatch)
    run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "one", manifest, ruleset, jobs=2)
    assert events == [13]


def test_a_chunk_size_below_one_is_refused(tmp_path, sample_dir, manifest, ruleset):
    with pytest.raises(ValueError, match="at least one project, not 0"):
        run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "none", manifest, ruleset, chunk_size=0)
    assert not (tmp_path / "none").exists()


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
