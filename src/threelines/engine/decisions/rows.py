"""The rows decisions are made of: what a rule fired, and all the rules' rows for a set of projects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from threelines.engine.verdict import UnitShare, Unresolved
from threelines.rules.access_list import Clause


@dataclass(frozen=True)
class Charge:
    """A capacity rule's rows: the pollutant charged to the zone, the loads, and whether they exceed.

    ``remaining_load`` is NaN where the zone keeps none; ``offset_ratio`` is
    NaN where the load exceeds (no offset is asked for then).
    """

    pollutant: list[str]
    project_load: np.ndarray
    total: np.ndarray
    remaining_load: np.ndarray
    exceeds: np.ndarray
    offset_ratio: np.ndarray


@dataclass(frozen=True)
class Fired:
    """What one rule fired, as columns: a row per trigger, in the order of the project's triggers.

    ``p`` is the project; ``k`` the pair that is the evidence and ``f`` its
    feature (-1 for both: no feature); ``overlap_m2``, ``overlap_ratio``,
    ``distance_m`` and ``overlaps`` are the pair's (NaN and false without
    one; for a capacity row the zone's, its features summed). ``charge``
    holds a capacity rule's columns; ``value`` and ``cells`` a zonal rule's
    statistic and cell count per row (as measured).
    """

    p: np.ndarray
    k: np.ndarray
    f: np.ndarray
    overlap_m2: np.ndarray
    overlap_ratio: np.ndarray
    distance_m: np.ndarray
    overlaps: np.ndarray
    charge: Charge | None = None
    value: list[float] | None = None
    cells: list[float] | None = None

    def __len__(self) -> int:
        return len(self.p)


@dataclass(frozen=True)
class ClauseFired:
    """The 禁止 / 限制 clauses that fired, as columns: a row per (project, clause), by project then clause order.

    Row ``i`` is clause ``clause[i]`` firing for project ``p[i]``; it covers
    ``width[i]`` of the project's units (largest share first), laid end to end
    over the rows in ``units``; ``layer`` is the unit layer.
    """

    p: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    clause: list[Clause] = field(default_factory=list)
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    units: list[UnitShare] = field(default_factory=list)
    layer: str | None = None

    def __len__(self) -> int:
        return len(self.p)


@dataclass
class Decisions:
    """Rows: per rule (in file order) what fired and the unresolved notes; per project the access list's rows.

    ``contexts`` are the maps rules see, per project (for the messages of what fired).
    """

    contexts: Sequence[dict[str, Any]] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    notes: list[list[tuple[int, Unresolved]]] = field(default_factory=list)
    clause_fired: ClauseFired = field(default_factory=ClauseFired)
    clause_rows: list[tuple] = field(default_factory=list)  # per project: (requirements, unresolved, table)
