"""Step 3 of the flow: what each rule decides for each project, as rows.

Per rule, over the pairs of its layer: the spatial test is a mask, the
``condition`` is decided once per distinct value of what it reads and
broadcast back, and what fires or is left unresolved becomes rows: the
rule's :class:`Fired` table, a row per trigger held as columns (the
project, the pair that is its evidence, and for a capacity charge the load
and what it meets), and a note per project that cannot be decided.

One module per kind of rule, read in this order:

- :mod:`.rows`: the rows (:class:`Fired`, :class:`Decisions`, ...);
- :mod:`.layer`: what the rules on a layer share (the pair columns their
  conditions read, notes, rows);
- :mod:`.spatial`: ``overlaps``, ``within_distance``, ``inside``, ``outside``;
- :mod:`.capacity`: ``capacity``, a group-by over (project, zone);
- :mod:`.zonal`: ``zonal``, a footprint's raster statistic;
- :mod:`.clauses`: the access list, decided per distinct (industry
  standing, units) of the projects.

Nothing here writes a text: messages are rendered for the fired rows only,
by :mod:`threelines.engine.triggers` with :mod:`threelines.engine.trigger_texts`.
"""

from __future__ import annotations

import numpy as np

from threelines.engine.compile import Plan
from threelines.engine.decisions.capacity import Capacity
from threelines.engine.decisions.clauses import clauses, forget_joins
from threelines.engine.decisions.layer import overlapping
from threelines.engine.decisions.rows import Charge, ClauseFired, Decisions, Fired
from threelines.engine.decisions.spatial import Spatial
from threelines.engine.decisions.zonal import zonal
from threelines.engine.pairs import Measured

__all__ = ["Charge", "ClauseFired", "Decisions", "Fired", "decide_rules", "forget_joins"]


def decide_rules(plan: Plan, measured: Measured, footprints: np.ndarray) -> Decisions:
    """Decide every rule and every access-list clause for every project.

    Parameters
    ----------
    plan : Plan
    measured : Measured
    footprints : numpy.ndarray of shapely geometries
        In the working CRS (``inside`` and ``outside`` may need the union of features).

    Returns
    -------
    Decisions
    """
    out = Decisions(contexts=plan.table.contexts)
    overlaps: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # per layer: what its rules share
    for compiled in plan.rules:
        rule = compiled.rule
        if rule.test == "zonal":
            fired, notes = zonal(plan, compiled, measured.zonal[(rule.layer, rule.stat, rule.classes)])
        else:
            pairs = measured.pairs[rule.layer]
            if rule.layer not in overlaps:
                overlaps[rule.layer] = overlapping(plan.table.areas, pairs)
            kind = Capacity if rule.test == "capacity" else Spatial
            on = kind(plan, compiled, measured.layers[rule.layer], pairs, overlaps[rule.layer])
            fired, notes = on.decide(footprints)
        out.fired.append(fired)
        out.notes.append(notes)
    if plan.unit_layer and plan.clauses:
        out.clause_fired, out.clause_rows = clauses(plan, measured.units)
    return out
