"""The cache folder's memo of files' sha256: used while a file keeps its identity, never once it changed."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from threelines.batch.local import run_batch
from threelines.report import provenance
from threelines.report.provenance import HASH_MEMO, HashMemo, dataset_sha256


@pytest.fixture
def settled_at_once(monkeypatch):
    """Remember files however recently they were written (the tests' files are all new)."""
    monkeypatch.setattr(provenance, "SETTLED_NS", 0)


@pytest.fixture
def counted(monkeypatch):
    """How many times files are read to be hashed."""
    reads = []
    real = provenance.sha256_files

    def counting(paths):
        reads.append(list(paths))
        return real(paths)

    monkeypatch.setattr(provenance, "sha256_files", counting)
    return reads


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_file_that_keeps_its_identity_is_not_read_again(tmp_path, settled_at_once, counted):
    layer = tmp_path / "layer.gpkg"
    layer.write_bytes(b"red lines")
    memo = HashMemo(tmp_path / "cache")
    assert memo.sha256([layer]) == sha256(b"red lines")
    memo.save()
    again = HashMemo(tmp_path / "cache")
    assert again.sha256([layer]) == sha256(b"red lines")
    assert len(counted) == 1


def test_a_file_rewritten_with_its_size_and_modification_time_is_hashed_again(tmp_path, settled_at_once, counted):
    layer = tmp_path / "layer.gpkg"
    layer.write_bytes(b"red lines")
    before = layer.stat()
    memo = HashMemo(tmp_path / "cache")
    memo.sha256([layer])
    memo.save()
    deadline = time.monotonic() + 5
    while layer.stat().st_ctime_ns == before.st_ctime_ns and time.monotonic() < deadline:
        time.sleep(0.01)  # the next tick of the file system's clock
        layer.write_bytes(b"RED LINES")
        os.utime(layer, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -d` or `cp -p` would
    after = layer.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns
    assert HashMemo(tmp_path / "cache").sha256([layer]) == sha256(b"RED LINES")
    assert len(counted) == 2


def test_a_file_written_just_now_is_not_remembered(tmp_path, counted):
    layer = tmp_path / "layer.gpkg"
    layer.write_bytes(b"red lines")
    memo = HashMemo(tmp_path / "cache")
    memo.sha256([layer])
    memo.save()
    assert HashMemo(tmp_path / "cache").sha256([layer]) == sha256(b"red lines")
    assert len(counted) == 2


def remembered(tmp_path: Path) -> tuple[Path, Path]:
    """A layer file whose hash the cache folder's memo holds, and the memo's path."""
    layer = tmp_path / "layer.gpkg"
    layer.write_bytes(b"red lines")
    memo = HashMemo(tmp_path / "cache")
    memo.sha256([layer])
    memo.save()
    return layer, tmp_path / "cache" / HASH_MEMO


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b'{"threelines sha256 memo 1": {',  # cut short
        b"\xff\xfe not JSON",
        b"[1, 2, 3]",
        b'{"another program": {}}',
        "forged",  # an entry of the file's identity whose hash is not a sha256
    ],
)
def test_a_damaged_or_foreign_memo_means_hashing_again(tmp_path, settled_at_once, counted, damage):
    layer, path = remembered(tmp_path)
    if damage == "forged":
        text = json.loads(path.read_text())
        (entry,) = text[provenance.HASH_MEMO_FORMAT].values()
        entry["sha256"] = "not a hash"
        damage = json.dumps(text).encode()
    path.write_bytes(damage)
    memo = HashMemo(tmp_path / "cache")
    assert memo.sha256([layer]) == sha256(b"red lines")
    assert len(counted) == 2
    memo.save()  # the memo is whole again
    assert HashMemo(tmp_path / "cache").sha256([layer]) == sha256(b"red lines")
    assert len(counted) == 2


@pytest.mark.parametrize("kind", ["pipe", "link", "too large"])
def test_a_memo_that_is_no_small_regular_file_is_not_read(tmp_path, settled_at_once, counted, monkeypatch, kind):
    """A pipe would block the read, a link could lead to a device that never ends: the files are hashed again."""
    layer, path = remembered(tmp_path)
    if kind == "pipe":
        path.unlink()
        os.mkfifo(path)
    elif kind == "link":
        path.rename(tmp_path / "elsewhere.json")
        path.symlink_to(tmp_path / "elsewhere.json")
    else:
        monkeypatch.setattr(provenance, "MAX_HASH_MEMO_BYTES", path.stat().st_size - 1)
    assert HashMemo(tmp_path / "cache").sha256([layer]) == sha256(b"red lines")
    assert len(counted) == 2


def test_the_memo_keeps_the_most_recently_used(tmp_path, settled_at_once, counted, monkeypatch):
    monkeypatch.setattr(provenance, "MAX_HASH_MEMO", 2)
    files = [tmp_path / f"layer{i}.gpkg" for i in range(3)]
    for i, path in enumerate(files):
        path.write_bytes(b"layer %d" % i)
    memo = HashMemo(tmp_path / "cache")
    for path in (*files, files[0]):  # the first used again: the second is the oldest
        memo.sha256([path])
    memo.save()
    assert len(counted) == 3
    kept = HashMemo(tmp_path / "cache")
    assert [kept.sha256([path]) for path in files] == [sha256(b"layer %d" % i) for i in range(3)]
    assert counted[3:] == [[files[1]]]


def test_a_shapefile_is_remembered_with_its_sidecars(tmp_path, settled_at_once, counted):
    shp = tmp_path / "units.shp"
    for suffix in (".shp", ".shx", ".dbf"):
        shp.with_suffix(suffix).write_bytes(suffix.encode())
    memo = HashMemo(tmp_path / "cache")
    assert dataset_sha256(shp, memo) == dataset_sha256(shp) == sha256(b".shp.shx.dbf")
    memo.save()
    time.sleep(0.01)
    shp.with_suffix(".prj").write_bytes(b"GEOGCS")  # a sidecar more: another dataset
    assert dataset_sha256(shp, HashMemo(tmp_path / "cache")) == sha256(b".shp.shx.dbfGEOGCS")


def test_a_batch_records_the_same_hashes_from_its_memo(tmp_path, sample_dir, manifest, ruleset, settled_at_once,
                                                       layer_cache_dir, counted):  # fmt: skip
    projects = sample_dir / "projects.gpkg"
    first = run_batch([str(projects)], tmp_path / "first", manifest, ruleset)
    assert (layer_cache_dir / HASH_MEMO).exists()
    setup = [paths for paths in counted if paths != [projects]]
    second = run_batch([str(projects)], tmp_path / "second", manifest, ruleset)
    assert [paths for paths in counted if paths != [projects]] == setup  # layer, rule and manifest files remembered
    assert first.verdicts == second.verdicts

    def recorded(out):
        block = json.loads((out / "provenance.json").read_text("utf-8"))
        return [block[k] for k in ("manifest", "layers", "rules", "inputs")]

    assert recorded(tmp_path / "first") == recorded(tmp_path / "second")
    assert recorded(tmp_path / "first")[1] == [
        {"name": name, "path": str(Path(spec.path).resolve()), "sha256": dataset_sha256(spec.path)}
        for name, spec in manifest.layers.items()
    ]


def test_without_the_cache_every_file_is_hashed(tmp_path, sample_dir, manifest, ruleset, settled_at_once,
                                                layer_cache_dir, counted):  # fmt: skip
    run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "out", manifest, ruleset, cache=False)
    run_batch([str(sample_dir / "projects.gpkg")], tmp_path / "out", manifest, ruleset, cache=False, overwrite=True)
    assert not (layer_cache_dir / HASH_MEMO).exists()
    assert counted.count([Path(manifest.path)]) == 2


def test_a_second_one_off_screening_hashes_only_its_input(tmp_path, sample_dir, run, settled_at_once, counted,
                                                          layer_cache_dir):  # fmt: skip
    project = sample_dir / "projects" / "P04.geojson"
    first = run("screen", project, "--format", "json")
    assert [Path(sample_dir / "layers.yaml")] in counted  # hashed the first time: the test would see a memo unused
    before = len(counted)
    second = run("screen", project, "--format", "json")
    assert (layer_cache_dir / HASH_MEMO).exists()
    assert counted[before:] == [[project]]  # the manifest's, layers' and rule files' hashes remembered

    def block(result):
        doc = json.loads(result.stdout)["provenance"]
        doc.pop("screened_at")
        return doc

    assert block(first) == block(second)
    assert block(first)["layers"][0]["sha256"] == dataset_sha256(sample_dir / "layers" / "redline.gpkg")
