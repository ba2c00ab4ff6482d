"""The access list joined with the projects: by the control units they lie in, then by industry.

The join (:class:`_ClauseJoin`) depends on the list alone, so it is kept
between calls, and so are the rows it gives per distinct (industry
standing, units): a province's chunks, or a service's requests, meet the
same units and industries again and again. The rows keep the units they
cover.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter

import numpy as np

from threelines.engine.compile import Plan
from threelines.engine.decisions.rows import ClauseFired
from threelines.engine.verdict import ClauseFinding, Requirement, Unresolved
from threelines.rules.access_list import Clause
from threelines.rules.decide import industry_decision


def clauses(plan: Plan, units: list[list]) -> tuple[ClauseFired, list[tuple]]:
    """The access list joined with the projects: by the units they lie in, then by industry prefix.

    Each distinct unit (code and class) gets the clauses whose scope covers it
    (:class:`_ClauseJoin`); each distinct industry code the clauses it falls
    under or cannot be told for (codes that stand alike share a standing). The
    projects are grouped by their (standing, units); a group's rows are
    decided once, from its first project, and shared by all of it,
    in this call and later ones (the join keeps up to :data:`ROWS_KEPT` of
    them: a province's chunks meet the same units and industries again and
    again).

    Returns
    -------
    (ClauseFired, list of tuple)
        The 禁止 / 限制 clauses that fire, with the units they cover; per
        project its (requirements, unresolved, clause table), which depend on
        its group alone.
    """
    join = _clause_join(plan)
    decided = join.decided
    if len(decided) >= ROWS_KEPT:  # a service meets new units and industries without end
        decided.clear()
    industries = plan.table.industries.tolist()
    standings = {code: join.industry(code) for code in set(industries)}  # once per distinct code
    groups: dict[tuple, int] = {}
    inverse, firing, rest = [], [], []
    for shares, code in zip(units, industries, strict=True):
        key = (standings[code], *map(_UNIT, shares))
        group = groups.get(key)
        if group is None:
            group = groups[key] = len(rest)
            entry = decided.get(key) if shares else _OUTSIDE
            if entry is None:
                entry = decided[key] = join.rows(key[0], key[1:])
            firing.append(entry[0])
            rest.append(entry[1])
        inverse.append(group)
    counts = np.fromiter(map(len, units), dtype=np.intp, count=len(units))
    shares = list(chain.from_iterable(units))  # every project's units, one project after another
    fired = _fired(plan, shares, np.cumsum(counts) - counts, np.array(inverse, dtype=np.intp), firing)
    return fired, list(map(rest.__getitem__, inverse))


#: The rows of a project outside every unit: nothing fires, no requirement, note or clause row.
_OUTSIDE = ((), ((), (), ()))


def _fired(plan: Plan, shares: list, starts: np.ndarray, inverse: np.ndarray, firing: list[list]) -> ClauseFired:
    """The clauses that fire for each project (its group's, ``firing``), as columns in project then clause order."""
    per_group = np.fromiter(map(len, firing), dtype=np.intp, count=len(firing))
    many = per_group[inverse]  # per project: how many clauses fire
    p = np.repeat(np.arange(len(inverse)), many)
    # Each row's place among its group's firing clauses, all the groups' laid end to end.
    place = np.arange(len(p)) - np.repeat(np.cumsum(many) - many, many) + (np.cumsum(per_group) - per_group)[inverse[p]]
    laid = list(chain.from_iterable(firing))
    clause, covered = zip(*map(laid.__getitem__, place.tolist()), strict=True) if len(p) else ((), ())
    # The units each row covers (positions among its project's units, largest share first), as positions in ``shares``.
    width = np.fromiter(map(len, covered), dtype=np.intp, count=len(p))
    units = np.fromiter(chain.from_iterable(covered), dtype=np.intp, count=int(width.sum()))
    units += np.repeat(starts[p], width)
    return ClauseFired(p, list(clause), width, list(map(shares.__getitem__, units.tolist())), plan.unit_layer)


#: A unit share's (code, class): what the access list reads of it.
_UNIT = attrgetter("code", "class_")


#: How many (industry standing, units) rows a clause join keeps between calls (a few kB each at most).
ROWS_KEPT = 20_000

#: The clause joins kept, by the identity of the clauses and the jurisdiction's level (see :func:`_clause_join`).
_JOINS: dict[tuple[int, str], _ClauseJoin] = {}

#: How many clause joins :func:`_clause_join` keeps.
_JOINS_KEPT = 8


def forget_joins() -> None:
    """Forget the clause joins and the access-list rows they keep (for timing the first evaluation of new projects)."""
    _JOINS.clear()


def _clause_join(plan: Plan) -> _ClauseJoin:
    """The clause join of a plan's access list, kept between calls: what it learns depends on the list alone."""
    key = (id(plan.clauses), plan.whole_level)
    join = _JOINS.get(key)
    if join is None or join.clauses is not plan.clauses:
        if len(_JOINS) >= _JOINS_KEPT:  # a process that loads many rule sets (tests) keeps only the latest
            _JOINS.clear()
        join = _JOINS[key] = _ClauseJoin(plan.clauses, plan.clause_index, plan.whole_level)
    return join


class _ClauseJoin:
    """The clause table, looked up by unit and by industry; the rows it gives are made once and shared."""

    def __init__(self, clauses: tuple[Clause, ...], index: dict[str, list[tuple[int, Clause]]], whole_level: str):
        self.clauses, self.index, self.whole_level = clauses, index, whole_level
        self._by_unit: dict[tuple[str, str], frozenset[int]] = {}
        self._by_industry: dict[str | None, int] = {}
        self._standings: dict[tuple, int] = {}  # each distinct standing: its position in _concerned
        self._concerned: list[tuple[dict[int, str | None], frozenset[int]]] = []
        self._entries: dict[tuple, tuple] = {}
        # Per clause: whether its row or requirement names the project's first covered unit (else they are shared).
        self._by_first = [
            (c.level or whole_level) == "unit" or (c.outcome == "requirement" and c.names_a_unit) for c in clauses
        ]
        self.decided: dict[tuple, tuple] = {}  # rows by (standing, units), kept between calls: see clauses

    def covering(self, unit: tuple[str, str]) -> frozenset[int]:
        """The positions of the clauses whose scope covers a unit (code, class)."""
        found = self._by_unit.get(unit)
        if found is None:
            code, cls = unit
            candidates = {i for key in ("*", cls, code) for i, _ in self.index.get(key, ())}
            found = self._by_unit[unit] = frozenset(i for i in candidates if self.clauses[i].covers(code, cls))
        return found

    def industry(self, code: str | None) -> int:
        """How an industry code stands to the clauses, as a number: codes that stand alike share it.

        A code stands to each clause as falling under it, or as not told
        (with the reason); the other clauses do not concern it (see
        :func:`industry_decision`). Many codes stand alike (those no clause
        names), and their projects share their rows.
        """
        found = self._by_industry.get(code)
        if found is None:
            decisions = [industry_decision(code, c.industry, c.exclude) for c in self.clauses]
            concerned = {i: d.missing for i, d in enumerate(decisions) if d.holds or d.missing}
            standing = tuple(concerned.items())
            found = self._standings.get(standing)
            if found is None:
                found = self._standings[standing] = len(self._concerned)
                self._concerned.append((concerned, frozenset(concerned)))
            self._by_industry[code] = found
        return found

    def rows(self, standing: int, units: tuple[tuple[str, str], ...]) -> tuple:
        """For an industry's standing (:meth:`industry`) in some units (largest share first).

        Returns what fires, and (the requirements, the unresolved notes, the clause table).
        """
        reasons, concerned = self._concerned[standing]
        covering = [self.covering(u) for u in units]
        covers: dict[int, list[int]] | None = None  # per clause hit: the units it covers, in order
        if len(covering) == 1:  # most projects lie in one unit
            hit = concerned & covering[0]
        else:
            hit, covers = concerned.intersection(frozenset().union(*covering)), {}
            for j, found in enumerate(covering):
                for i in found & hit:
                    covers.setdefault(i, []).append(j)
        firing, requirements, unresolved, table = [], [], [], []
        entries, by_first = self._entries, self._by_first
        for i in sorted(hit):
            covered = _FIRST if covers is None else covers[i]
            key = (i, units[covered[0]][0] if by_first[i] else None, reasons[i])
            row, note, requirement = entries.get(key) or self.entry(*key)
            table.append(row)
            if note is not None:
                unresolved.append(note)
            elif requirement is not None:
                requirements.append(requirement)
            else:
                firing.append((self.clauses[i], covered))
        return firing, (tuple(requirements), tuple(unresolved), tuple(table))

    def entry(self, i: int, first: str | None, missing: str | None) -> tuple:
        """Clause ``i`` for a project whose first covered unit is ``first``: its table row, and its note or requirement.

        Neither, for a 禁止 / 限制 clause that fires. Made once and shared by
        the projects it is the same for (``first`` is None for a clause whose
        row and requirement do not name the unit).
        """
        key = (i, first, missing)
        found = self._entries.get(key)
        if found is None:
            clause = self.clauses[i]
            finding = "review" if clause.outcome == "review" or missing else clause.outcome
            level = clause.level or self.whole_level
            row = ClauseFinding(
                id=clause.id, level=level, unit=first if level == "unit" else None, dimension=clause.dimension,
                text=clause.text, basis=clause.basis, finding=finding, source=clause.source, matched=clause.matched,
                reason=missing or (clause.reason or "to be reviewed" if finding == "review" else None),
            )  # fmt: skip
            note = requirement = None
            if missing:
                note = Unresolved(rule=clause.id, reason=missing)
            elif clause.outcome == "review":
                note = Unresolved(clause.id, f"access-list clause for review: {row.reason}")
            elif clause.outcome == "requirement":
                unit = first if clause.names_a_unit else clause.scope
                requirement = Requirement(clause.id, unit, clause.dimension, clause.text, clause.basis)
            found = self._entries[key] = (row, note, requirement)
        return found


#: The units a clause covers when a project lies in one unit: that one.
_FIRST = (0,)
