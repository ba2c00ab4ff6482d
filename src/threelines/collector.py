"""Holding Python's cyclic garbage collector while a step makes many objects that form no cycles.

A screening, a batch's reading and writing, and a one-off command all make
many small objects that live on until their step ends (rows, triggers,
verdicts, records, attributes, keys): each collection meanwhile would walk
them, and the layers, for nothing. Holds nest: each restores the collector
as it found it, so an inner one never turns it back on inside an outer one.

A one-off command (``threelines screen``) holds it over its reading and
screening, imports included: it keeps nearly all it makes until it ends
(modules, classes, layers, rules, verdicts), and the collector, walking all
of it again each time enough new objects have been made, frees almost
nothing and cost a one-project screening about 4% of its instructions.
What a screening makes is bounded by its input; a report's maps are not
held (:func:`resume_collector`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_held(settle: bool = False) -> Iterator[None]:
    """Hold the cyclic garbage collector for the ``with`` block (also a decorator), then restore it.

    Parameters
    ----------
    settle : bool
        When the block is done, move every object into the oldest generation
        unwalked (``gc.freeze()`` then ``gc.unfreeze()``) instead of letting
        the next youngest-generation pass walk them all (about a sixth of the
        rule evaluation's time). Only for a process that runs nothing else (a
        batch worker): it moves every thread's objects, so cycles among them
        wait for a full collection, and it would undo a host's ``gc.freeze()``.
    """
    _held.append(gc.isenabled())
    gc.disable()
    try:
        yield
    finally:
        if _held.pop():
            if settle:
                gc.freeze()  # every tracked object to the permanent generation, the young ones' count reset ...
                gc.unfreeze()  # ... and all of them back, into the oldest generation
            gc.enable()


#: Whether the collector was working when each hold still open began.
_held: list[bool] = []


def resume_collector() -> None:
    """Let the collector work again inside :func:`collector_held`, if it was working when the hold began.

    For what a held step makes without bound (a report's maps, say).
    """
    if _held and _held[-1]:
        gc.enable()
