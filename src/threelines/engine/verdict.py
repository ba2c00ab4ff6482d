"""The screening result of one project: verdict, triggers, units, and how they combine."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache, partial
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, NamedTuple, Protocol

import numpy as np
import orjson

#: Verdicts from best to worst; a project's verdict is the worst triggered outcome.
VERDICTS = ("pass", "conditional", "reject")

#: Decimals kept in the JSON form, by the ending of a measure's name: centimetre-level
#: areas and distances are more than survey data supports.
DECIMALS = {"m2": 2, "_ha": 6, "_mu": 4, "ratio": 6, "distance_m": 2, "share": 6}


@lru_cache(maxsize=256)
def decimals(key: str) -> int | None:
    """The decimals the JSON form keeps for a measure named ``key`` (None: all of them)."""
    return next((d for suffix, d in DECIMALS.items() if key.endswith(suffix)), None)


def json_number(value: Any, places: int | None) -> Any:
    """A float as the JSON form keeps it: rounded to ``places`` (None: as is), None for NaN and infinities.

    Anything but a float is returned as it is.
    """
    if not isinstance(value, float):
        return value
    if not math.isfinite(value):
        return None
    return value if places is None else round(value, places)


def json_changes(values: Sequence[Any], places: int | None) -> list[tuple[int, Any]]:
    """Where :func:`json_number` changes a column of values (one per record): ``(position, new value)`` pairs.

    A column of floats (and None) is rounded in numpy (see :func:`rounded`);
    a short one, or one that also holds other numbers (ints, numpy scalars),
    goes value by value, so that each keeps the type and rounding it had. Records are
    many, and most of their numbers are kept as they are: only the changes
    are written back.
    """
    if places is None:
        try:
            if math.isfinite(sum(filter(None, values))):  # no NaN nor infinity among them: nothing to change
                return []
        except (TypeError, OverflowError):  # text, or an int too large for a float
            pass
    kinds = set(map(type, values))
    if not any(issubclass(kind, float) for kind in kinds):
        return []
    if len(values) < _FEW or not kinds <= {float, type(None)}:
        return [(i, new) for i, value in enumerate(values) if (new := json_number(value, places)) is not value]
    numbers = np.array(values, dtype=float)  # None becomes NaN
    new = numbers if places is None else rounded(numbers, places)
    changed = ~np.isfinite(new) | (new != numbers)
    nones = values.count(None)
    if nones:  # None stays None: its NaN is no change
        nan = np.isnan(numbers)
        changed &= ~nan if nan.sum() == nones else np.not_equal(np.array(values, dtype=object), None)
    where = np.flatnonzero(changed)
    new = new[where]
    return list(zip(where.tolist(), np.where(np.isfinite(new), new, None).tolist(), strict=True))


#: Columns shorter than this (one verdict's) go value by value: numpy's set-up would cost more.
_FEW = 64


def json_column(values: Sequence[Any], places: int | None) -> list[Any]:
    """:func:`json_number` of each value of a column, as a new list.

    A column of floats (and None) to be rounded is rounded in numpy as a
    whole (see :func:`rounded`), where most values change; any other goes
    through :func:`json_changes`.
    """
    if places is None or len(values) < _FEW or not set(map(type, values)) <= {float, type(None)}:
        out = list(values)
        for i, value in json_changes(values, places):  # kept as they are, mostly (None: not rounded)
            out[i] = value
        return out
    numbers = rounded(np.array(values, dtype=float), places)  # None becomes NaN, and NaN None again below
    out = numbers.tolist()
    for i in np.flatnonzero(~np.isfinite(numbers)).tolist():
        out[i] = None
    return out


def rounded(numbers: np.ndarray, places: int) -> np.ndarray:
    """``round(x, places)`` of each number, exactly as Python rounds (the decimal nearest to the binary value).

    ``x * 10**places`` is rounded to a double, which moves it but never
    across a half (halves are doubles below 2**52): unless it lands on one,
    ``rint`` of it is the rint of the exact product, and dividing gives the
    double nearest the rounded decimal, as Python's ``round`` does. The few
    that land on a half, or lie beyond 2**52, are rounded by Python. NaN and
    infinities stay as they are.
    """
    scale = 10.0**places
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = numbers * scale
        nearest = np.rint(scaled)
        sure = (np.abs(scaled - nearest) != 0.5) & (np.abs(scaled) < 2.0**52) | ~np.isfinite(numbers)
    out = nearest / scale
    for i in np.flatnonzero(~sure).tolist():
        out[i] = round(float(numbers[i]), places)
    return out


def json_numbers(
    records: list[dict[str, Any]], columns: dict[str, Sequence[Any]], places: dict[str, int | None]
) -> None:
    """Apply :func:`json_number` in place to the records' values under each key, a column at a time.

    ``columns`` holds, by key, the records' values (in the records' order);
    ``places`` the decimals of each key.
    """
    for key, values in columns.items():
        for i, value in json_changes(values, places[key]):
            records[i][key] = value


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
    """The :class:`TriggerRows` that made this trigger, and which of their rows it is (None: made alone)."""

    @property
    def message(self) -> str:
        """The message in the rule's first language."""
        return self.texts.get()[0]

    @property
    def translations(self) -> dict[str, dict[str, str]] | None:
        """The title and message in each language the rule file gave, or None."""
        return self.texts.get()[1]

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        """The JSON form: measures rounded (see :data:`DECIMALS`), no NaN, title and message in ``lang``."""
        return trigger_records([self], lang)[0]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled, a trigger stands alone: its rows stay behind (its texts travel rendered)."""
        return {**self.__dict__, "row": None}


class RowTexts(Protocol):
    """The messages of rows made together (see :class:`TriggerRows`), each language rendered when first asked for."""

    #: The languages the rule names (none for a single unnamed text); the default is what ``messages(None)`` gives.
    languages: tuple[str, ...]

    def title(self, lang: str) -> str:
        """The rule's title in ``lang``."""

    def messages(self, lang: str | None) -> list[str]:
        """Per row: the message in ``lang``, one of :attr:`languages` (None: the default, or the only text)."""


class TriggerRows:
    """Triggers made together from columns (the rows one rule fired), and their JSON records, made together too.

    A batch writes the record of every trigger: made for all the rows of a
    rule at once, each measure is rounded a column at a time and the fields
    the rule gives every row are set once, rather than trigger by trigger;
    :meth:`fragments` writes them as JSON straight from those columns. Only
    the language a record shows is rendered.

    Parameters
    ----------
    same : dict
        The fields every row has alike (the rule's id, title, ...): text or None.
    columns : dict
        The other fields of :class:`Trigger` (but ``texts``): a list with a value per row.
    texts : RowTexts
        Every row's message, a language at a time.
    """

    def __init__(self, same: dict[str, Any], columns: dict[str, list], texts: RowTexts):
        self.same, self.columns, self.texts = same, columns, texts
        self._texts: list[tuple] | None = None
        self._rounded: dict[str, list] | None = None  # the columns as the JSON form keeps them
        self._records: dict[str | None, tuple] = {}  # per language: the fields alike, and each row's own
        self._fragments: dict[str | None, list[bytes]] = {}

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def text(self, i: int) -> tuple[str, dict[str, dict[str, str]] | None]:
        """Row ``i``'s ``(message, translations)``, every row's in every language rendered on the first call."""
        if self._texts is None:
            self._texts = self._all_texts()
        return self._texts[i]

    def _all_texts(self) -> list[tuple[str, dict[str, dict[str, str]] | None]]:
        texts = self.texts
        if not texts.languages:
            return [(message, None) for message in texts.messages(None)]
        heads = [(lang, texts.title(lang)) for lang in texts.languages]
        out = []
        rows = zip(texts.messages(None), *(texts.messages(lang) for lang in texts.languages), strict=True)
        for default, *messages in rows:
            translations = {
                lang: {"title": title, "message": message}
                for (lang, title), message in zip(heads, messages, strict=True)
            }
            out.append((default, translations))
        return out

    def field(self, name: str) -> list:
        """Per row: the value of one of :class:`Trigger`'s fields (but ``texts``)."""
        return self.columns[name] if name in self.columns else [self.same.get(name)] * len(self)

    def triggers(self) -> list[Trigger]:
        """A trigger per row, each knowing its row (see :meth:`record`)."""
        alike = {name: self.same.get(name) for name in _TRIGGER_FIELDS}  # in the fields' order, each row's set after
        own = [name for name in _TRIGGER_FIELDS if name in self.columns]
        made = []
        for i, values in enumerate(zip(*(self.columns[name] for name in own), strict=True)):
            fields = alike.copy()
            fields.update(zip(own, values, strict=True))
            fields.update(texts=Texts(partial(self.text, i)), row=(self, i))
            # A frozen dataclass's __init__ sets its 22 fields one object.__setattr__ at a time: far slower.
            trigger = object.__new__(Trigger)
            object.__setattr__(trigger, "__dict__", fields)
            made.append(trigger)
        return made

    def record(self, i: int, lang: str | None) -> dict[str, Any]:
        """Row ``i``'s JSON form (as :meth:`Trigger.to_dict`): the fields every row has alike, then its own."""
        if lang not in self._records:
            same, columns = self._json_columns(lang)
            self._records[lang] = same, tuple(columns), list(zip(*columns.values(), strict=True))
        same, names, rows = self._records[lang]
        record = same.copy()
        record.update(zip(names, rows[i], strict=True))
        return record

    def fragments(self, lang: str | None) -> list[bytes]:
        """Every row's JSON form as JSON text, as :data:`JSON_OPTIONS` writes :meth:`record` (keys sorted).

        The fields every row has alike are written once into a pattern of
        the record, and the others a column at a time into it.
        """
        if lang not in self._fragments:
            same, columns = self._json_columns(lang)
            if (
                not columns.keys() <= same.keys()
            ):  # the pattern has the record's keys: a field beyond them would be lost
                raise ValueError(f"trigger fields outside the record's keys: {sorted(columns.keys() - same.keys())}")
            pattern, tokens = [], []
            for key in sorted(same):  # the columns' names are among the fields alike
                head = orjson.dumps(key) + b":"
                if key in columns:
                    values = columns[key]
                    kinds = set(map(type, values))
                    texts = _string_contents(values) if kinds == {str} else None
                    pattern.append(head + (b"%b" if texts is None else b'"%b"'))  # a column of texts: quoted here
                    tokens.append(json_tokens(values, kinds) if texts is None else texts)
                else:
                    pattern.append((head + orjson.dumps(same[key], option=JSON_OPTIONS)).replace(b"%", b"%%"))
            line = b"{" + b",".join(pattern) + b"}"
            self._fragments[lang] = [line % row for row in zip(*tokens, strict=True)]
        return self._fragments[lang]

    def _json_columns(self, lang: str | None) -> tuple[dict[str, Any], dict[str, list]]:
        """The JSON form of every row, in parts: all its fields (those alike set), and the columns of the others.

        Measures are rounded a column at a time; title and message are in ``lang`` where the rule has it.
        """
        if self._rounded is None:
            self._rounded = {
                name: json_column(values, _TRIGGER_PLACES[name]) if name in _TRIGGER_PLACES else values
                for name, values in self.columns.items()
            }
        same = {name: self.same.get(name) for name in _RECORD_KEYS}  # in the record's order, each row's set after
        if lang and lang in self.texts.languages:
            same["title"] = self.texts.title(lang)
            return same, {**self._rounded, "message": self.texts.messages(lang)}
        return same, {**self._rounded, "message": self.texts.messages(None)}


def json_tokens(values: Sequence[Any], kinds: set[type] | None = None) -> list[bytes]:
    """Each value as JSON text, as :data:`JSON_OPTIONS` writes it in a record.

    A column of numbers (and None), or of texts (and None), is written as
    one array and cut at the commas between its values; any other value by
    value. ``kinds`` is the values' types, when known already.
    """
    if not values:
        return []
    if kinds is None:
        kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES:  # no comma in any value's text
        return orjson.dumps(values, option=JSON_OPTIONS)[1:-1].split(b",")
    if kinds <= {str, type(None)}:
        texts = [value for value in values if value is not None]
        contents = _string_contents(texts) if texts else []
        if contents is not None:
            made = iter(contents)
            return [b"null" if value is None else b'"' + next(made) + b'"' for value in values]
    return [orjson.dumps(value, option=JSON_OPTIONS) for value in values]


def _string_contents(texts: list[str]) -> list[bytes] | None:
    """Each text as the inside of a JSON string, cut from one array; None where a cut may be false."""
    array = orjson.dumps(texts)
    # Between two texts stands '","'; within one, a quote is escaped ('\"'): a '","' whose first quote is
    # escaped is the only false cut, and then a backslash comes before it.
    if b'\\","' in array:
        return None
    return array[2:-2].split(b'","')


#: How records are written as JSON (keys sorted; a numpy value as its Python equivalent).
JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
#: Types whose JSON text holds no comma.
_NUMBER_TYPES = {float, int, bool, type(None), np.float64, np.float32, np.int64, np.int32, np.bool_}


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
        return verdict_records([self], lang)[0]


def worst(outcomes: Sequence[str]) -> str:
    """The worst of some outcomes (see :data:`VERDICTS`), ``pass`` for none."""
    return VERDICTS[max(map(VERDICTS.index, outcomes), default=0)]


def verdict_records(verdicts: Sequence[Verdict], lang: str | None = None) -> list[dict[str, Any]]:
    """The JSON form of each verdict (see :meth:`Verdict.to_dict`), made for many at once.

    The triggers, units and projects of all the verdicts are made as
    columns, so that their measures are rounded a column at a time rather
    than value by value: a batch writes every record it screens.
    """
    triggers = trigger_records([t for verdict in verdicts for t in verdict.triggers], lang)
    return _verdict_records(verdicts, triggers, [t["outcome"] for t in triggers], list, _listed)[0]


def batch_records(verdicts: Sequence[Verdict], lang: str | None = None) -> list[dict[str, Any]]:
    """:func:`verdict_records`, each record's triggers (and other lists) already JSON text (:class:`orjson.Fragment`).

    A batch writes its records with :data:`JSON_OPTIONS` and reads none of
    them back: the triggers (most of a record) are written a rule's rows at
    a time (see :meth:`TriggerRows.fragments`), into the text that dumping
    their records would give; the unresolved rules, requirements and
    clauses, shared by many projects, are written once per distinct list.
    """
    return batch_results(verdicts, lang)[0]


def batch_results(
    verdicts: Sequence[Verdict], lang: str | None = None
) -> tuple[list[dict[str, Any]], list[tuple[int, int, int, str]]]:
    """:func:`batch_records`, and each verdict's tally for the batch summary, made from the same columns.

    A tally is ``(reject, conditional, unresolved, rules)``: the verdict's
    triggers of each of those outcomes, its unresolved rules, and the ids of
    the rules that fired (each once, in order, joined by commas).
    """
    fired = [verdict.fired_rows() for verdict in verdicts]  # no trigger made
    fragments, outcomes, rules = _trigger_parts([t for rows in fired for t in rows], lang)
    records, counts = _verdict_records(verdicts, fragments, outcomes, _json_list, _ListTexts())
    ends = np.cumsum([len(rows) for rows in fired]).tolist()
    named = [", ".join(dict.fromkeys(rules[start:end])) for start, end in zip([0, *ends], ends, strict=False)]
    unresolved = [len(verdict.unresolved) for verdict in verdicts]
    return records, list(zip(*counts, unresolved, named, strict=True))


def _json_list(fragments: list[bytes]) -> orjson.Fragment:
    """A JSON array of values already JSON text."""
    return orjson.Fragment(b"[" + b",".join(fragments) + b"]")


def _listed(items: Sequence[Any], form: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's JSON form (``form`` of it), in a new list."""
    return list(map(form, items))  # mostly empty: map costs least then


class _ListTexts:
    """A verdict's unresolved rules, requirements or clauses as JSON text, each distinct list written once.

    The access list's requirements and clauses are the same objects in many
    projects' verdicts (a few hundred for thousands of projects), and so are
    many unresolved notes: a list of the same objects is written once, and
    its text used again. Objects are known by their ids while the verdicts
    hold them, which they do as long as this lives.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[int, ...], orjson.Fragment] = {}

    def __call__(self, items: Sequence[Any], form: Callable[[Any], dict[str, Any]]) -> list | orjson.Fragment:
        if not items:
            return []
        key = (id(form), *map(id, items))  # the same objects may be written by another form
        text = self._made.get(key)
        if text is None:
            text = self._made[key] = orjson.Fragment(orjson.dumps(list(map(form, items)), option=JSON_OPTIONS))
        return text


def _verdict_records(
    verdicts: Sequence[Verdict],
    triggers: list,
    outcomes: list[str],
    listed: Callable[[list], Any],
    lists: Callable[[Sequence[Any], Callable], Any],
) -> tuple[list[dict[str, Any]], tuple[list[int], list[int]]]:
    """Each verdict's record, given all their triggers' forms and outcomes (in order).

    ``listed`` makes a verdict's list of triggers from their forms, ``lists``
    its other lists from their items and the form of each (see
    :func:`_listed`). Also returns each verdict's count of reject and of
    conditional triggers.
    """
    units = unit_records([u for verdict in verdicts for u in verdict.units])
    sizes = [len(verdict.fired_rows()) for verdict in verdicts]  # no trigger made
    # A column at a time: the worst outcome is reject if any is, else conditional if any is.
    ranks = np.fromiter(map(VERDICTS.index, outcomes), dtype=np.int64, count=len(outcomes))  # raises as worst()
    owner = np.repeat(np.arange(len(verdicts)), sizes)  # each trigger's verdict
    rejects = np.bincount(owner[ranks == 2], minlength=len(verdicts))
    conditionals = np.bincount(owner[ranks == 1], minlength=len(verdicts))
    worsts = [VERDICTS[rank] for rank in np.where(rejects > 0, 2, conditionals > 0).tolist()]
    records, t, u = [], 0, 0
    for verdict, project, verdict_worst, size in zip(
        verdicts, project_records([v.project for v in verdicts]), worsts, sizes, strict=True
    ):
        t_end, u_end = t + size, u + len(verdict.units)
        records.append(
            {
                "project": project,
                "verdict": verdict_worst,
                "triggers": listed(triggers[t:t_end]),
                "units": units[u:u_end],
                "unresolved": lists(verdict.unresolved, _to_dict),
                "requirements": lists(verdict.requirements, _fields),
                "warnings": list(verdict.warnings),
                "clauses": lists(verdict.clauses, _to_dict),
                "jurisdiction": verdict.jurisdiction,
            }
        )
        t, u = t_end, u_end
    return records, (rejects.tolist(), conditionals.tolist())


_to_dict = methodcaller("to_dict")


def _fields(item: Any) -> dict[str, Any]:
    """A dataclass's fields as a new dict (plain values: asdict's deep copies are not needed)."""
    return dict(vars(item))


def trigger_records(triggers: Sequence[Trigger], lang: str | None = None) -> list[dict[str, Any]]:
    """The JSON form of each trigger (see :meth:`Trigger.to_dict`).

    A trigger made by :class:`TriggerRows` takes its record from them (made
    for all their rows at once); one made alone is made here.
    """
    records: list[dict[str, Any]] = []
    alone = []
    for trigger in triggers:
        if trigger.row is None:
            alone.append(len(records))
            records.append(_alone_record(trigger, lang))
        else:
            rows, i = trigger.row
            records.append(rows.record(i, lang))
    made_alone = [records[i] for i in alone]
    json_numbers(made_alone, _columns(map(_trigger_numbers, made_alone), _TRIGGER_PLACES), _TRIGGER_PLACES)
    return records


def _trigger_parts(
    triggers: Sequence[Trigger | FiredRow], lang: str | None
) -> tuple[list[bytes], list[str], list[str]]:
    """Each trigger's JSON text, outcome and rule, taken from its rows' columns (those made alone: from it).

    Every :class:`TriggerRows` met writes all its rows at once; the
    triggers made alone are written together as a table of their own. The
    three columns are laid end to end, a table after another, and each
    trigger picks its place in them.
    """
    rows = list(map(_row_of, triggers))
    tables: dict[TriggerRows | None, int] = dict.fromkeys(map(_first, filter(None, rows)))
    fragments: list[bytes] = []
    outcomes: list[str] = []
    rules: list[str] = []
    for table in tables:
        tables[table] = len(fragments)
        fragments += table.fragments(lang)
        outcomes += table.field("outcome")
        rules += table.field("rule")
    if None in rows:  # triggers made alone: the table None, in their order
        alone = [trigger for trigger, row in zip(triggers, rows, strict=True) if row is None]
        tables[None] = len(fragments)
        fragments += [orjson.dumps(record, option=JSON_OPTIONS) for record in trigger_records(alone, lang)]
        outcomes += [trigger.outcome for trigger in alone]
        rules += [trigger.rule for trigger in alone]
        made = iter(range(len(alone)))
        rows = [(None, next(made)) if row is None else row for row in rows]
    places = [tables[table] + i for table, i in rows]
    return (
        list(map(fragments.__getitem__, places)),
        list(map(outcomes.__getitem__, places)),
        list(map(rules.__getitem__, places)),
    )


_row_of = attrgetter("row")
_first = itemgetter(0)


def _alone_record(trigger: Trigger, lang: str | None) -> dict[str, Any]:
    """The JSON form of a trigger made alone, its measures not yet rounded."""
    record = trigger.__dict__.copy()  # plain values: asdict's deep copies are not needed
    record.pop("row", None)  # set only on a trigger made by TriggerRows
    record["message"], translations = record.pop("texts").get()
    if lang and translations and lang in translations:
        record.update(translations[lang])
    return record


def unit_records(units: Sequence[UnitShare]) -> list[dict[str, Any]]:
    """The JSON form of each unit share (see :meth:`UnitShare.to_dict`)."""
    areas = json_column([u.overlap_m2 for u in units], _UNIT_PLACES["overlap_m2"])
    shares = json_column([u.share for u in units], _UNIT_PLACES["share"])
    return [
        {"code": u.code, "name": u.name, "class": u.class_, "overlap_m2": area, "share": share}
        for u, area, share in zip(units, areas, shares, strict=True)
    ]


def project_records(projects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Projects' attributes as the JSON form keeps them: each float rounded by its name (see :func:`decimals`).

    Projects with the same attributes (all of one input, usually) are
    rounded together, a column per attribute.
    """
    records = [dict(project) for project in projects]
    alike: dict[tuple[str, ...], list[int]] = {}
    for i, project in enumerate(projects):
        alike.setdefault(tuple(project), []).append(i)
    for keys, positions in alike.items():
        rows = [records[i] for i in positions]
        json_numbers(rows, _columns(map(dict.values, rows), keys), {key: decimals(key) for key in keys})
    return records


def _columns(rows: Iterable[Iterable[Any]], keys: Iterable[str]) -> dict[str, tuple]:
    """Rows of values (in the order of ``keys``) as a column per key."""
    return dict(zip(keys, zip(*rows, strict=True), strict=False))  # no rows: no columns


#: The number fields of a trigger, with the decimals the JSON form keeps.
_TRIGGER_PLACES = {
    f.name: decimals(f.name) for f in fields(Trigger) if "float" in str(f.type) or f.name == "feature_id"
}
_trigger_numbers = itemgetter(*_TRIGGER_PLACES)
#: The fields a trigger is made of, and those of its JSON form (``message`` for ``texts``), in order.
_TRIGGER_FIELDS = tuple(f.name for f in fields(Trigger) if f.init)
_RECORD_KEYS = (*(name for name in _TRIGGER_FIELDS if name != "texts"), "message")
_UNIT_PLACES = {"overlap_m2": decimals("overlap_m2"), "share": decimals("share")}
