"""The screening result of one project: verdict, triggers, units, and how they combine.

A screening (:func:`~threelines.engine.screen.screen_projects`) ends in a
:class:`Verdict` per project; their JSON form is written by
:mod:`threelines.engine.records`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from threelines.engine.json_values import json_number

if TYPE_CHECKING:
    from threelines.engine.records import TriggerRows

#: Verdicts from best to worst; a project's verdict is the worst triggered outcome.
VERDICTS = ("pass", "conditional", "reject")


class Texts:
    """A trigger's message (in the rule's first language) and its translations, rendered when first read.

    Every fired row becomes a trigger, but a batch that counts verdicts, or a
    report in one language, reads few of the texts: each is rendered by
    ``render`` (giving ``(message, translations)``) on first use, once.
    Pickled, texts travel rendered.
    """

    __slots__ = ("_render", "_rendered")

    def __init__(self, render: Callable[[], tuple[str, dict[str, dict[str, str]] | None]] | None):
        self._render = render
        self._rendered: tuple[str, dict[str, dict[str, str]] | None] | None = None

    @classmethod
    def given(cls, message: str, translations: dict[str, dict[str, str]] | None = None) -> Texts:
        """Texts already written."""
        texts = cls(None)
        texts._rendered = (message, translations)
        return texts

    def get(self) -> tuple[str, dict[str, dict[str, str]] | None]:
        """``(message, translations)``, rendered now if not yet."""
        if self._rendered is None:
            self._rendered, self._render = self._render(), None
        return self._rendered

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Texts) and self.get() == other.get()

    def __hash__(self) -> int:
        return hash(self.get()[0])

    def __repr__(self) -> str:
        return f"Texts({self.get()[0]!r})"

    def __reduce__(self):
        return (Texts.given, self.get())


@dataclass(frozen=True)
class Trigger:
    """One rule that fired for a project, with the evidence.

    ``feature_*`` describe the matched feature (for an ``outside`` rule, the
    nearest qualifying feature within reach, or None). Areas are in m2, ha
    and mu (亩) from the equal-area working CRS; distances in metres, 0 when
    overlapping; ``overlap_ratio`` is the overlap's share of the footprint.
    A capacity trigger also carries the ``pollutant``, the ``project_load``
    charged to the zone (by area share), the zone's ``remaining_load`` and,
    when an offset is required, the ``offset_ratio`` and ``required_offset``
    (in the unit of the load: t/a, or m3/a for water). A zonal trigger
    carries the ``statistic`` (``mean``, ``max``, ``min``, ``share``) and its
    ``value`` over the footprint. ``translations`` holds the title and
    message in each language the rule file gave (``{"zh": {"title": ...,
    "message": ...}, "en": {...}}``); ``title`` and ``message`` are the
    rule's first language. Both come from ``texts`` (:class:`Texts`), which
    renders them when first read.
    """

    rule: str
    title: str
    outcome: str
    dimension: str
    layer: str
    feature_id: str | int | float | None
    feature_name: str | None
    overlap_m2: float | None
    overlap_ha: float | None
    overlap_mu: float | None
    overlap_ratio: float | None
    distance_m: float | None
    texts: Texts
    basis: str | None
    pollutant: str | None = None
    project_load: float | None = None
    remaining_load: float | None = None
    offset_ratio: float | None = None
    required_offset: float | None = None
    statistic: str | None = None
    value: float | None = None
    row: tuple[TriggerRows, int] | None = field(default=None, init=False, repr=False, compare=False)
    """The :class:`~threelines.engine.records.TriggerRows` that made this trigger, and which of their rows it is.

    None: made alone.
    """

    @property
    def message(self) -> str:
        """The message in the rule's first language."""
        return self.texts.get()[0]

    @property
    def translations(self) -> dict[str, dict[str, str]] | None:
        """The title and message in each language the rule file gave, or None."""
        return self.texts.get()[1]

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        """The JSON form: measures rounded (see :data:`~threelines.engine.json_values.DECIMALS`), no NaN.

        Title and message are in ``lang``.
        """
        from threelines.engine.records import trigger_records  # the records are made of these classes

        return trigger_records([self], lang)[0]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled, a trigger stands alone: its rows stay behind (its texts travel rendered)."""
        return {**self.__dict__, "row": None}


@dataclass(frozen=True)
class UnitShare:
    """A control unit the footprint lies in, and how much of it."""

    code: str
    name: str | None
    class_: str
    overlap_m2: float
    share: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``class`` is a Python keyword, hence ``class_`` here)."""
        from threelines.engine.records import unit_records  # the records are made of these classes

        return unit_records([self])[0]


@dataclass(frozen=True)
class Requirement:
    """An access-list clause that states a requirement the project must address (要求)."""

    clause: str
    unit: str
    dimension: str
    text: str
    basis: str | None


@dataclass(frozen=True)
class ClauseFinding:
    """One row of the clause table (生态环境准入清单符合性分析表): an access-list clause that applies.

    ``finding`` is what the clause means for the project: ``reject`` (禁止),
    ``conditional`` (限制), ``requirement`` (要求) or ``review`` (the tool
    cannot decide it: the consultant must). ``unit`` is the unit code for a
    unit-level clause, None for a province, city or county one.
    """

    id: str
    level: str
    unit: str | None
    dimension: str
    text: str
    basis: str | None
    finding: str
    source: str = "table"
    matched: tuple[str, ...] = ()
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``matched`` as a list)."""
        out = dict(vars(self))
        out["matched"] = list(self.matched)
        return out


@dataclass(frozen=True)
class Unresolved:
    """A rule that could not be decided for a project, and why.

    ``failed`` tells a rule that could not be evaluated (an error in the rule,
    e.g. ``int(feature.name)`` on a name that is not a number, or a condition
    that gives no true or false) from information the project did not give.
    """

    rule: str
    reason: str
    feature_id: str | int | float | None = None
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``failed`` only when true)."""
        out = {"rule": self.rule, "reason": str(self.reason), "feature_id": self.feature_id}
        if self.failed:
            out["failed"] = True
        out["feature_id"] = json_number(self.feature_id, None)
        return out


class Later(NamedTuple):
    """A project's triggers not made yet: project ``p``'s among the rows of ``fired``.

    ``fired`` is a :class:`~threelines.engine.triggers.FiredTriggers`, whose
    ``triggers()`` makes every project's on the first call.
    """

    fired: Any
    p: int


class FiredRow(NamedTuple):
    """A trigger not made into an object: the rows that make it and which row (its ``row``), its rule and outcome.

    What a batch reads of a trigger (see :meth:`Verdict.fired_rows`): the
    record is written from the rows, the summary reads the rule and outcome.
    """

    row: tuple[TriggerRows, int]
    rule: str
    outcome: str


class _Triggers:
    """The :attr:`Verdict.triggers` field: a list, or a :class:`Later` that makes it when first read."""

    def __get__(self, verdict: Verdict | None, owner: type | None = None) -> list[Trigger] | tuple:
        if verdict is None:
            return ()  # the field's default: none (each verdict gets a list of its own, see __set__)
        triggers = verdict._triggers
        if type(triggers) is Later:
            triggers = verdict._triggers = triggers.fired.triggers()[triggers.p]
        return triggers

    def __set__(self, verdict: Verdict, triggers: list[Trigger] | Later) -> None:
        verdict._triggers = [] if triggers == () else triggers


@dataclass
class Verdict:
    """The result of screening one project.

    Attributes
    ----------
    project : dict
        ``id``, ``name``, ``industry``, ``industry_name``, ``kind``,
        ``area_m2`` / ``area_ha`` / ``area_mu`` and the declared attributes.
    verdict : str
        ``pass``, ``conditional`` or ``reject``: the worst triggered outcome.
    triggers : list of Trigger
        Made when first read, for a verdict of :func:`~threelines.engine.screen.screen_projects`
        (given a :class:`Later`): a batch writes them from the rows that fired.
    units : list of UnitShare
    unresolved : list of Unresolved
        Rules that need information the project did not give.
    requirements : list of Requirement
        Access-list requirements that apply, whatever the verdict.
    warnings : list of str
        Things the reader must know that are not rule outcomes, e.g. a
        footprint that lies partly outside the jurisdiction.
    clauses : list of ClauseFinding
        Every access-list clause that applies to the project's units and
        levels, with its finding (the clause table).
    jurisdiction : dict or None
        The manifest's ``jurisdiction`` (name, adcode, version, published).
    """

    project: dict[str, Any]
    triggers: list[Trigger] = _Triggers()  # type: ignore[assignment]
    units: list[UnitShare] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    requirements: list[Requirement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    clauses: list[ClauseFinding] = field(default_factory=list)
    jurisdiction: dict[str, Any] | None = None

    @classmethod
    def later(cls, project: dict[str, Any], triggers: Later, units, unresolved, requirements, warnings, clauses,
              jurisdiction) -> Verdict:  # fmt: skip
        """``Verdict(...)`` whose triggers are made when first read: the fields set at once, not one at a time.

        The fields come in order and by position: a screening makes one per
        project (see :func:`~threelines.engine.verdicts.group_verdicts`), and
        keywords cost more to pass than positions.
        """
        verdict = object.__new__(cls)
        verdict.project, verdict._triggers, verdict.units, verdict.unresolved = project, triggers, units, unresolved
        verdict.requirements, verdict.warnings, verdict.clauses = requirements, warnings, clauses
        verdict.jurisdiction = jurisdiction
        return verdict

    def __getstate__(self) -> dict[str, Any]:
        """Pickled, a verdict's triggers travel made, without the rows of the projects screened with it."""
        return {**self.__dict__, "_triggers": self.triggers}

    def pending(self) -> Later | list[Trigger]:
        """Where the triggers are: a :class:`Later` if they are not made yet (nothing is made), else the triggers."""
        return self._triggers

    def fired_rows(self) -> list[Trigger] | list[FiredRow]:
        """The triggers, or (not made yet) each as a :class:`FiredRow`: its ``row``, ``rule`` and ``outcome``."""
        triggers = self._triggers
        if type(triggers) is Later:
            return triggers.fired.rows()[triggers.p]
        return triggers

    @property
    def verdict(self) -> str:
        """The worst outcome among the triggers, ``pass`` when none fired."""
        return worst([t.outcome for t in self.triggers])

    def reaches(self, level: str) -> bool:
        """Tell whether the verdict is at least as bad as ``level``."""
        return VERDICTS.index(self.verdict) >= VERDICTS.index(level)

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        """The JSON form (the contract's keys, and more), measures rounded, rule texts in ``lang`` where given."""
        from threelines.engine.records import verdict_records  # the records are made of these classes

        return verdict_records([self], lang)[0]


def worst(outcomes: Sequence[str]) -> str:
    """The worst of some outcomes (see :data:`VERDICTS`), ``pass`` for none."""
    return VERDICTS[max(map(VERDICTS.index, outcomes), default=0)]
