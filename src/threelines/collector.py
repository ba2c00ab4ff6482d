"""Holding Python's cyclic garbage collector while a step makes many objects that form no cycles.

A screening, a batch's reading and writing, and a one-off command all make
many small objects that live on until their step ends (rows, triggers,
verdicts, records, attributes, keys): each collection meanwhile would walk
them, and the layers, for nothing. Holds nest, in one thread or several:
the collector is off while any is open, and the last to end restores it as
the first found it.

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
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_held(settle: bool = False) -> Iterator[None]:
    """Hold the cyclic garbage collector for the ``with`` block (also a decorator), then restore it.

    The hold is the process's: while any thread holds it the collector
    stays off, and the last hold to end restores it as the first found it.

    Parameters
    ----------
    settle : bool
        When the last hold ends, move every object into the oldest
        generation unwalked (``gc.freeze()`` then ``gc.unfreeze()``) instead
        of letting the next youngest-generation pass walk them all (about a
        sixth of the rule evaluation's time). Only for a process that runs
        nothing else (a batch worker): it moves every thread's objects, so
        cycles among them wait for a full collection, and it would undo a
        host's ``gc.freeze()``.
    """
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
        _depth += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                if settle:
                    gc.freeze()  # every tracked object to the permanent generation, the young ones' count reset ...
                    gc.unfreeze()  # ... and all of them back, into the oldest generation
                gc.enable()


#: How many holds are open (in any thread), whether the collector was working when the first began, and the
#: lock that keeps the two in step with the collector's state.
_depth = 0
_was_enabled = False
_lock = threading.Lock()


def resume_collector() -> None:
    """Let the collector work again while holds are open, if it was working when the first began.

    For what a held step makes without bound (a report's maps, say).
    """
    with _lock:
        if _depth and _was_enabled:
            gc.enable()
