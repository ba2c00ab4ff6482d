"""Step 5 of the flow: each project's verdict, grouped from the rows of the steps before.

A project's triggers are the rules' (in file order) then the access list's;
its unresolved notes likewise; its verdict is the worst outcome among its
triggers (see :class:`~threelines.engine.verdict.Verdict`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from threelines.engine.compile import Plan
from threelines.engine.decisions import Decisions
from threelines.engine.measure import M2_PER_MU
from threelines.engine.pairs import Measured
from threelines.engine.triggers import FiredTriggers
from threelines.engine.verdict import Later, Verdict


def group_verdicts(
    plan: Plan,
    measured: Measured,
    decisions: Decisions,
    triggers: FiredTriggers,
    plane_areas: np.ndarray | None,
    jurisdiction: dict[str, Any] | None,
) -> list[Verdict]:
    """One verdict per project, in the projects' order.

    Parameters
    ----------
    plan : Plan
    measured : Measured
        The control units of each footprint and the warnings for parts outside them.
    decisions : Decisions
        The unresolved notes and the access list's rows.
    triggers : FiredTriggers
        The rows that fired (see :func:`threelines.engine.triggers.build_triggers`): each verdict's triggers
        are made from them when first read.
    plane_areas : numpy.ndarray or None
        Per project its area in the plane of a projected input CRS (NaN otherwise).
    jurisdiction : dict or None
        The manifest's ``jurisdiction``.

    Returns
    -------
    list of Verdict
    """
    n = len(plan.table)
    unresolved: list[list] = [[] for _ in range(n)]
    for notes in decisions.notes:
        for p, note in notes:
            unresolved[p].append(note)
    records = plan.table.records
    if plane_areas is not None:  # a projected input: each area also in that plane, as the site drawing states it
        for record, area in zip(records, plane_areas.tolist(), strict=True):
            if area == area:  # not NaN
                record.update(plane_area_m2=area, plane_area_mu=area / M2_PER_MU)
    clause_rows = decisions.clause_rows or [((), (), ())] * n
    units = measured.units or [[] for _ in range(n)]
    gaps, later = measured.gaps, Verdict.later
    return [
        later(
            records[p],
            Later(triggers, p),
            units[p],
            [*unresolved[p], *undecided],
            list(required),
            [gaps[p]] if p in gaps else [],
            list(table),
            jurisdiction,
        )
        for p, (required, undecided, table) in enumerate(clause_rows)
    ]
