"""Array operations made without numpy's own (which import numpy.ma): the same answers as numpy's."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from threelines.arrays import sorted_distinct


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_sorted_distinct_is_what_np_unique_gives(values):
    array = np.array(values, dtype=np.int64)
    got = sorted_distinct(array)
    assert got.dtype == np.int64
    assert got.tolist() == np.unique(array).tolist()


def test_sorted_distinct_of_nothing_is_nothing():
    assert sorted_distinct(np.zeros(0, dtype=np.intp)).tolist() == []
