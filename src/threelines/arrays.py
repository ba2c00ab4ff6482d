"""Array operations numpy has, made without what numpy's own would import into a short run.

``np.unique`` without indices (and ``np.setdiff1d`` and the other set
operations built on it) imports ``numpy.ma`` on its first call: 15-45 ms of
a one-project screening, and of each batch worker, for a few hundred values.
``tests/test_startup.py`` pins that a screening does not import it.
"""

from __future__ import annotations

import numpy as np


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of a one-dimensional array, sorted: what ``np.unique(values)`` gives."""
    ordered = np.sort(np.asarray(values))
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first]
