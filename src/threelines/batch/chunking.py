"""How many projects each chunk of a batch takes.

A chunk is what one worker screens at a time: one spatial query per layer,
one pass of every rule over its columns, one block of results. Each chunk
costs some tens of milliseconds of its own, whatever its size (every step
of the engine is a few thousand calls over the chunk's columns; on the
province benchmark, 20 to 30 ms a chunk), so large chunks are cheaper. But the
last chunks decide when the workers finish: a worker left alone with a
large last chunk leaves the others idle. So, unless ``--chunk-size`` fixes
the size, chunks are large while much of the input is left and shrink as
it runs out (as guided self-scheduling does): each takes a share of what is
left, between :data:`CHUNK_MIN` and :data:`CHUNK_MAX` projects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

#: The smallest chunk of an automatic size (the last one of an input may be smaller: what is left).
CHUNK_MIN = 500

#: The largest chunk of an automatic size: what a worker holds at once stays bounded (on the hard province
#: benchmark, 9,722 projects of 4 ha to 25 km2, a worker's peak memory was 285 MiB, against 252 MiB in
#: chunks of 500).
CHUNK_MAX = 2500

#: An automatic chunk takes this share of what is left per worker: with 2 workers, 10,000 projects go in
#: chunks of 2,500, 1,875, 1,407, 1,055, 791, 593, 500, 500, 500 and 279.
SHARE_PER_JOB = 2


def chunk_sizer(chunk_size: int | None, jobs: int) -> Callable[[int], int]:
    """How many projects the next chunk takes, given how many of the input are left to chunk.

    Parameters
    ----------
    chunk_size : int or None
        A fixed size (``--chunk-size``); None for the automatic one (see the module's description).
    jobs : int
        The processes (or a cluster's threads) screening the chunks; one: the chunks are screened in
        turn, all as large as allowed.

    Returns
    -------
    callable
        ``size(left) -> int``, at least 1.

    Raises
    ------
    ValueError
        If ``chunk_size`` is less than 1.
    """
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"a chunk holds at least one project, not {chunk_size}")
        return lambda left: chunk_size
    if jobs <= 1:
        return lambda left: CHUNK_MAX
    share = SHARE_PER_JOB * jobs
    return lambda left: min(CHUNK_MAX, max(CHUNK_MIN, -(-left // share)))


def split(positions: list[int], size: Callable[[int], int]) -> Iterator[list[int]]:
    """Cut positions into consecutive chunks.

    Parameters
    ----------
    positions : list of int
    size : callable
        A :func:`chunk_sizer`: each chunk's size from how many positions are left.

    Yields
    ------
    list of int
        The chunks, none empty.
    """
    start = 0
    while start < len(positions):
        step = size(len(positions) - start)
        yield positions[start : start + step]
        start += step
