"""What every project of a batch shares: the provenance of its manifest, layers and rules, hashed once.

The block is hashed in a thread from the start of the run (see
:class:`SharedSetup`), written to the output folder's ``provenance.json``
with the inputs, and its digest goes into every project's input hash (see
:mod:`threelines.batch.hashes`).
"""

from __future__ import annotations

import json
from pathlib import Path

from threelines.batch.folder import PROVENANCE
from threelines.layers.cache import remember_sha256
from threelines.report.provenance import HashMemo, input_path, setup_digest, setup_provenance, with_input


class SharedSetup:
    """The run's shared provenance (every layer and rule file hashed once), hashed in a thread from the start.

    Hashing large layer files takes as long as reading the projects, and
    both mostly wait on the disk or run in C without the GIL: the projects
    are read meanwhile. With a cache folder, the hashes of files that have
    not changed since an earlier run are taken from its memo
    (:class:`~threelines.report.provenance.HashMemo`). The first use writes
    ``provenance.json`` and hands the layers' hashes to the prepared-layer
    cache (before any worker process starts, so that they do not hash the
    files again).
    """

    def __init__(self, out: Path, manifest, rules, options: dict, inputs: list[str], cache_dir: Path | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.out, self.manifest, self.inputs, self._shared = out, manifest, inputs, None
        # The CRS is written here: a thread that has used PROJ frees PROJ's SQLite handles as it ends, holding
        # SQLite's lock, and a worker process forked at that moment would wait for that lock forever.
        wkt = manifest.working_crs.to_wkt()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="threelines-hash")
        self._future = self._pool.submit(_hashed_setup, manifest, rules, options, cache_dir, wkt)

    def shared(self) -> dict:
        """The shared provenance block (waiting for the hashes)."""
        if self._shared is None:
            shared = self._future.result()
            self._pool.shutdown()  # the thread has ended (and freed what it held) before any worker is forked
            for spec, entry in zip(self.manifest.layers.values(), shared["layers"], strict=True):
                remember_sha256(spec, entry["sha256"])
            write_provenance(self.out, shared, self.inputs)
            self._shared = shared
        return self._shared

    def digest(self) -> str:
        """The hash of the manifest, layers and rules that every project's input hash includes."""
        return setup_digest(self.shared())


def _hashed_setup(manifest, rules, options: dict, cache_dir: Path | None, crs_wkt: str) -> dict:
    """The shared provenance block, the files' hashes remembered in the cache folder's memo (when there is one).

    Run in a thread of its own, it uses no PROJ (the working CRS comes as ``crs_wkt``): see :class:`SharedSetup`.
    """
    memo = HashMemo(cache_dir) if cache_dir is not None else None
    shared = setup_provenance(manifest, rules, options, memo=memo, crs_wkt=crs_wkt)
    if memo is not None:
        memo.save()
    return shared


def recorded(source: str) -> str:
    """An input's path as provenance.json records it (resolved)."""
    return source if source == "-" else str(input_path(source).resolve())


def write_provenance(out: Path, shared: dict, inputs: list[str]) -> None:
    """``provenance.json``: what this run's verdicts were computed from (the inputs with their sha256)."""
    from threelines.report import write_output

    block = {**shared, "inputs": [with_input(shared, s)["input"] for s in inputs]}
    write_output(json.dumps(block, ensure_ascii=False, indent=1) + "\n", out / PROVENANCE, overwrite=True)
