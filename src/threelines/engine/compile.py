"""Step 1 of the flow: the rules compiled against the projects, as columns.

Each project becomes a row of a :class:`Table` (its record, the map rules
see, its kind and industry), the values rules read held as columns; each rule's kind, industry and ``when`` filters
become two columns over the projects: whether the rule concerns the project,
and why that cannot be told (or None). The kind and industry filters run once
per distinct kind, industry code and operation; the ``when`` condition runs
over the columns of what it reads (:mod:`threelines.rules.columns`), and
through CEL only for the projects those cannot decide, once per group of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from threelines.input.project_records import ProjectMaps, project_records
from threelines.input.projects import Projects
from threelines.layers.spec import Manifest
from threelines.rules import RuleSet
from threelines.rules.access_list import Clause, clause_index, level_of_adcode
from threelines.rules.columns import decide_columns
from threelines.rules.decide import OPERATION_ATTRIBUTES, QUIET_KINDS, Decision, decide_cached, filtered
from threelines.rules.expr import Expr
from threelines.rules.load import Rule
from threelines.rules.templates import ABSENT


@dataclass
class Table:
    """The projects as columns: records (as results show them), the maps rules see, and the columns rules test."""

    records: list[dict[str, Any]]
    contexts: ProjectMaps
    areas: np.ndarray
    kinds: np.ndarray
    industries: np.ndarray
    quiet: np.ndarray  # lines and points that declare no operation (see declares_no_operation)
    base: np.ndarray  # an integer per distinct (kind, industry, quiet): what the kind and industry filters read
    _numbers: dict[str, np.ndarray] = field(default_factory=dict)
    _codes: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def number(self, attribute: str) -> np.ndarray:
        """Per project: a declared quantity (a checked number), 0 when not given."""
        if attribute not in self._numbers:
            values, given = self.contexts.values(attribute), self.contexts.given(attribute)
            numbers = np.zeros(len(values))
            numbers[given] = values[given].astype(float)
            numbers[numbers == 0] = 0.0  # -0.0 too, as ``value or 0.0`` gives it
            self._numbers[attribute] = numbers
        return self._numbers[attribute]

    def codes(self, reads) -> np.ndarray | None:
        """Per project: an integer standing for the values of the ``project`` map that ``reads`` reads.

        Whether the project declares no operation is part of it (an attribute
        it does not give then makes a rule not apply, rather than undecided).
        None when the whole map is read (no cheap stand-in): each project is
        then its own value.
        """
        if id(reads) not in self._codes:
            self._codes[id(reads)] = (reads, self.row_codes(reads, None))  # the reads kept: their id stays theirs
        return self._codes[id(reads)][1]

    def row_codes(self, reads, rows: np.ndarray | None) -> np.ndarray | None:
        """:meth:`codes` for the projects ``rows`` only (None: all), made afresh."""
        maps = self.contexts if rows is None else self.contexts.take(rows)
        names = reads.keys.get("project")
        if "project" not in reads.names:
            return np.zeros(len(maps), dtype=np.intp)
        if names is None:
            return None  # the whole map is read
        # what Reads.key holds of the project: each value with its type (CEL tells 1.0 from true)
        values = [maps.column(n, ABSENT) for n in names]
        quiet = self.quiet if rows is None else self.quiet[rows]
        typed = (zip(map(type, v), v, strict=True) for v in values)
        keys = list(zip(quiet.tolist(), *typed, strict=True))  # a column at a time, then rows
        try:
            return _codes(keys)
        except TypeError:  # a value that cannot be hashed: no cheap stand-in
            return None

    @cached_property
    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct values of :attr:`base` (see :func:`distinct_rows`): what the kind and industry filters read."""
        return distinct_rows(self.base)


@dataclass(frozen=True)
class CompiledRule:
    """A rule and, per project, whether it concerns the project (``holds``) or cannot tell why (``missing``)."""

    rule: Rule
    holds: np.ndarray
    missing: np.ndarray

    @cached_property
    def relevant(self) -> np.ndarray:
        """Per project: the rule applies, or might if the missing information were given."""
        return self.holds | (self.missing != None)  # noqa: E711


@dataclass(frozen=True)
class Plan:
    """What the rest of the flow runs on: the project table, the compiled rules and the access list."""

    table: Table
    rules: list[CompiledRule]
    clauses: tuple[Clause, ...]
    clause_index: dict[str, list[tuple[int, Clause]]]
    whole_level: str
    unit_layer: str | None
    vector_layers: list[str]
    reach: dict[str, float]


def compile_rules(rules: RuleSet, manifest: Manifest, projects: Projects) -> Plan:
    """Compile the rules into columns over the projects.

    Parameters
    ----------
    rules : RuleSet
    manifest : Manifest
    projects : Projects
        In the working CRS.

    Returns
    -------
    Plan
    """
    fixed = _fixed(rules, manifest)
    table = _table(projects)
    return Plan(table=table, rules=[_compile(rule, table) for rule in rules.rules], **fixed)


#: What a plan takes from the rules and the manifest alone, by their ids (kept with them, so the ids stay theirs).
_FIXED: dict[tuple[int, int], tuple[RuleSet, Manifest, dict[str, Any]]] = {}


def _fixed(rules: RuleSet, manifest: Manifest) -> dict[str, Any]:
    """The parts of a plan that depend only on the rules and the manifest, made once per pair of them."""
    key = (id(rules), id(manifest))
    kept = _FIXED.get(key)
    if kept is None or kept[0] is not rules or kept[1] is not manifest:
        unit_layer = manifest.unit_layer.name if manifest.unit_layer else None
        names = dict.fromkeys([*rules.layers(), *([unit_layer] if unit_layer else [])])
        fixed = {
            "clauses": rules.clauses,
            "clause_index": clause_index(rules.clauses),
            "whole_level": level_of_adcode((manifest.jurisdiction or {}).get("adcode")),
            "unit_layer": unit_layer,
            "vector_layers": [n for n in names if manifest.layers[n].role != "raster"],
            "reach": {name: rules.reach_m(name) for name in names},
        }
        if len(_FIXED) >= _FIXED_KEPT:  # a process that loads many rule sets (tests) keeps only the latest
            _FIXED.clear()
        kept = _FIXED[key] = (rules, manifest, fixed)
    return kept[2]


#: How many (rules, manifest) pairs :func:`_fixed` keeps.
_FIXED_KEPT = 8


def _table(projects: Projects) -> Table:
    """The project table: each record made once, the maps rules see made when read (their values read as columns)."""
    records, contexts = project_records(projects.attrs, projects.area_m2, projects.columns)
    kinds, industries = contexts.column("kind", None), contexts.column("industry", None)
    kind_column = np.array(kinds, dtype=object)
    # Lines and points that give none of the operation attributes (see declares_no_operation).
    operation = np.logical_or.reduce([contexts.given(name) for name in sorted(OPERATION_ATTRIBUTES)])
    quiet = np.isin(kind_column, QUIET_KINDS) & ~operation
    return Table(
        records=records,
        contexts=contexts,
        areas=np.asarray(projects.area_m2, dtype=float),
        kinds=kind_column,
        industries=np.array(industries, dtype=object),
        quiet=quiet,
        base=_codes(list(zip(kinds, industries, quiet.tolist(), strict=True))),
    )


def _compile(rule: Rule, table: Table) -> CompiledRule:
    """The rule's kind, industry and ``when`` filters as two columns over the projects.

    The kind and industry filters run once per distinct kind, industry and
    operation (:func:`~threelines.rules.decide.filtered`); ``when`` runs on
    the projects they keep, over the columns of what it reads (:func:`_when`).
    """
    if not len(table):
        return CompiledRule(rule, np.zeros(0, dtype=bool), np.full(0, None, dtype=object))
    first, inverse = table.groups
    decided = [filtered(rule, table.contexts[p]) for p in first.tolist()]
    found = broadcast([Decision(True) if d is None else d for d in decided], inverse)
    if rule.when is None:
        return CompiledRule(rule, found.holds, found.missing)
    kept = np.flatnonzero(np.array([d is None for d in decided], dtype=bool)[inverse])
    when = _when(rule.when, table, kept)
    found.holds[kept], found.missing[kept] = when.holds, when.missing
    return CompiledRule(rule, found.holds, found.missing)


def _when(expr: Expr, table: Table, rows: np.ndarray) -> Decided:
    """A ``when`` condition for the projects ``rows``.

    It is decided over the columns of what it reads where that is certain to
    give CEL's answer (:func:`~threelines.rules.columns.decide_columns`). The
    other projects are decided by CEL, once per group that must get the same
    answer (:func:`~threelines.rules.decide.decide_cached`), and the answer
    is spread back to the group: for a project that fails for want of an
    attribute, the group of those that lack the same attributes and are as
    quiet (what the answer says); for the rest, the group of those that give
    the same values to what it reads.
    """
    maps = table.contexts.take(rows)
    found = decide_columns(expr, lambda name: maps if name == "project" else [ABSENT] * len(rows), len(rows))
    holds, missing = np.zeros(len(rows), dtype=bool), np.full(len(rows), None, dtype=object)
    if found is None:
        groups = [(np.arange(len(rows)), table.row_codes(expr.reads, rows))]
    else:
        holds[:] = found.holds
        lacking, rest = np.flatnonzero(found.missing), np.flatnonzero(~found.known & ~found.missing)
        groups = [
            (lacking, _absences(table, expr.reads, rows[lacking])),
            (rest, table.row_codes(expr.reads, rows[rest])),
        ]
    for group, codes in groups:
        if len(group):
            first, inverse = distinct_rows(np.arange(len(group)) if codes is None else codes)
            decided = broadcast([decide_cached(expr, {"project": maps[i]}) for i in group[first].tolist()], inverse)
            holds[group], missing[group] = decided.holds, decided.missing
    return Decided(holds, missing)


def _absences(table: Table, reads, rows: np.ndarray) -> np.ndarray | None:
    """Per project of ``rows``: an integer for the ``project`` attributes ``reads`` reads that it does not give.

    Whether the project is quiet is part of it (see
    :func:`~threelines.rules.decide.not_applicable`). None if the attributes
    are too many to stand for in one integer.
    """
    names = reads.keys.get("project", ())
    if len(names) > 60:  # the integer would overflow
        return None
    maps = table.contexts.take(rows)
    codes = table.quiet[rows].astype(np.int64)
    for name in names:
        codes = codes * 2 + maps.given(name)
    return codes


@dataclass(frozen=True)
class Decided:
    """Decisions as columns: whether each holds, and why it is undecided (or None)."""

    holds: np.ndarray
    missing: np.ndarray


def broadcast(decided: list[Decision], inverse: np.ndarray) -> Decided:
    """Decisions made once per distinct value, spread back to the rows (``inverse``)."""
    holds = np.array([d.holds for d in decided] + [False], dtype=bool)[:-1][inverse]
    missing = np.array([d.missing for d in decided] + [None], dtype=object)[:-1][inverse]
    return Decided(holds, missing)


#: Up to this many rows, :func:`distinct_rows` groups them in a dict: numpy's sort costs more on so few.
FEW_ROWS = 64


def distinct_rows(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows (or values) of an integer array: the position of each one's first row, and each row's one.

    Parameters
    ----------
    codes : numpy.ndarray of int
        One or two dimensions.

    Returns
    -------
    first, inverse : numpy.ndarray of int
        ``codes[first][inverse]`` equals ``codes``. The distinct rows come in
        an order of their own (sorted, or by first row for a few rows).
    """
    if len(codes) > FEW_ROWS:
        if codes.ndim > 1:  # a few rows group as tuples: folding them costs more than it saves
            codes = _fold(codes)
        axis = 0 if codes.ndim > 1 else None  # unique by rows sorts them as bytes: slower
        _, first, inverse = np.unique(codes, axis=axis, return_index=True, return_inverse=True)
        return first, inverse.ravel()
    seen: dict = {}
    first: list[int] = []
    inverse = np.empty(len(codes), dtype=np.intp)
    for i, row in enumerate(codes.tolist()):
        group = seen.setdefault(tuple(row) if isinstance(row, list) else row, len(seen))
        if group == len(first):  # a row not seen before
            first.append(i)
        inverse[i] = group
    return np.array(first, dtype=np.intp), inverse


def _fold(codes: np.ndarray) -> np.ndarray:
    """Rows of integers as one integer each (the columns as digits of a mixed radix), when that fits in 63 bits.

    Equal rows give equal integers and distinct rows distinct ones; rows too
    wide to fold come back as they are.
    """
    low, high = codes.min(axis=0), codes.max(axis=0)
    spans = (high - low + 1).tolist()
    if float(np.prod(spans, dtype=float)) >= 2.0**63:
        return codes
    folded = np.zeros(len(codes), dtype=np.int64)
    for column, span in enumerate(spans):
        folded = folded * span + (codes[:, column] - low[column])
    return folded


def value_codes(values: np.ndarray) -> np.ndarray:
    """An integer per value of an array: equal values, equal integers (see :func:`distinct_rows`)."""
    return distinct_rows(values)[1]


def _codes(keys: list) -> np.ndarray:
    """An integer per row standing for its key: equal keys, equal integers (numbered in order of first row)."""
    number = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    return np.fromiter(map(number.__getitem__, keys), dtype=np.intp, count=len(keys))
