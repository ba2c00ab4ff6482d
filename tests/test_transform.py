"""The raster transform of the kept grids gives affine's numbers to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from threelines.layers.grids import Transform


def bits(value) -> bytes:
    """The exact bits of a number or array of floats (telling -0.0 from 0.0, unlike ==)."""
    return np.asarray(value, dtype=np.float64).tobytes()


def transforms(seed: int, n: int = 200) -> list[tuple[float, ...]]:
    """Random transforms: north-up grids (metres and degrees, odd origins) and rotated or sheared ones."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        size = 10.0 ** rng.uniform(-4, 4)
        a, e = size * rng.uniform(0.5, 2), -size * rng.uniform(0.5, 2)
        b, d = (0.0, 0.0) if i % 2 else tuple(rng.normal(0, size, 2))
        c, f = rng.uniform(-1e7, 1e7, 2) if i % 3 else rng.uniform(-180, 180, 2)
        out.append(tuple(float(v) for v in (a, b, c, d, e, f)))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_points_arrays_and_inverses_match_affine_bit_for_bit(seed):
    rng = np.random.default_rng(100 + seed)
    for numbers in transforms(seed):
        ours, theirs = Transform(*numbers), Affine(*numbers)
        cols, rows = rng.integers(-50, 5000, 300), rng.integers(-50, 5000, 300)  # integer cells, as the grids use
        for xy in [(cols, rows), (cols + 0.5, rows + 0.5), (float(cols[0]), float(rows[0])), (np.float64(1.25), 3)]:
            assert bits(ours @ xy) == bits(theirs @ xy)
        inverse = ~ours
        assert bits(inverse) == bits((~theirs)[:6])
        xs, ys = theirs @ (rng.uniform(-10, 6000, 300), rng.uniform(-10, 6000, 300))
        assert bits(inverse @ (xs, ys)) == bits(~theirs @ (xs, ys))
        assert bits(~inverse) == bits((~~theirs)[:6])


def test_converted_from_and_to_affine_unchanged():
    for numbers in transforms(9, 20):
        theirs = Affine(*numbers)
        ours = Transform.of(theirs)
        assert ours == numbers
        assert all(type(v) is float for v in ours)
        assert Affine(*ours) == theirs
        assert Transform.of(np.array(numbers)) == ours  # as a kept grid holds them


def test_a_degenerate_transform_has_no_inverse():
    with pytest.raises(ValueError, match="degenerate"):
        ~Transform(1.0, 2.0, 0.0, 2.0, 4.0, 0.0)
