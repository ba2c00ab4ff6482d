"""The footprints outside the layers' extent: those whose bounds lie in its box are not asked of GEOS."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from threelines.engine.screen import _outside_extent, extent_box


class _Footprints:
    """As much of :class:`~threelines.input.projects.Projects` as the extent check reads."""

    def __init__(self, geometry: np.ndarray):
        self.geometry = geometry

    def __len__(self) -> int:
        return len(self.geometry)


#: A position across the box (0 and 1: its edges), a little beyond it either side.
_across = st.one_of(st.sampled_from([-0.5, 0.0, 1.0, 1.5]), st.floats(-0.2, 1.2))


@st.composite
def _shapes(draw, box):
    x0, y0, x1, y1 = shapely.bounds(box)
    xs = sorted(x0 + (x1 - x0) * draw(_across) for _ in range(2))
    ys = sorted(y0 + (y1 - y0) * draw(_across) for _ in range(2))
    kind = draw(st.sampled_from(["box", "point", "line", "empty"]))
    if kind == "box":
        return shapely.box(xs[0], ys[0], xs[1], ys[1])
    if kind == "point":
        return shapely.Point(xs[0], ys[0])
    if kind == "line":
        return shapely.LineString([(xs[0], ys[1]), (xs[1], ys[0])])
    return shapely.Polygon()


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_outside_extent_is_the_plain_intersection_test(manifest, data):
    box = extent_box(manifest)
    geometry = np.array(data.draw(st.lists(_shapes(box), min_size=1, max_size=12)), dtype=object)
    plain = set(np.flatnonzero(~shapely.intersects(geometry, box)).tolist())
    assert _outside_extent(_Footprints(geometry), manifest) == plain


def test_outside_extent_of_no_footprints(manifest):
    assert _outside_extent(_Footprints(np.empty(0, dtype=object)), manifest) == set()
