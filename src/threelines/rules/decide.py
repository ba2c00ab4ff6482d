"""Whether a rule concerns a project, and whether a condition holds, or cannot be told.

A :class:`Decision` is true, false, or undecided for want of information
(an attribute not given, an industry code too coarse), with the reason; the
evaluation of rules is built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from threelines import industry
from threelines.input.attributes import QUANTITIES
from threelines.input.project_records import project_record
from threelines.rules.expr import Expr, attribute_refs, bind
from threelines.rules.load import Rule


def project_context(attrs: dict[str, Any], area_m2: float) -> dict[str, Any]:
    """The ``project`` map rules see: the given attributes only, plus derived values."""
    return {k: v for k, v in project_record(attrs, area_m2).items() if v is not None}


class Failure(str):
    """A reason for an undecided rule that is an evaluation failure (a rule's fault), not missing information.

    It travels wherever a reason does (in arrays of reasons too), so that the
    :class:`~threelines.engine.verdict.Unresolved` it ends in is marked ``failed``.
    """

    __slots__ = ()


@dataclass(frozen=True)
class Decision:
    """The outcome of a condition: true, false, or undecided for want of information.

    ``absent`` lists the ``(owner, attribute)`` pairs that were not given, when that is why.
    """

    holds: bool
    missing: str | None = None
    absent: tuple[tuple[str, str], ...] = field(default=(), compare=False)


#: What a project declares about its operation: emissions, water and fuel.
OPERATION_ATTRIBUTES = frozenset({*QUANTITIES, "water_source", "fuel"})

#: Project kinds that declare their operation only when they have one: roads, lines and pipelines,
#: towers and wells emit nothing and draw no water unless their attributes say so.
QUIET_KINDS = ("linear", "point")


def declares_no_operation(project: dict[str, Any] | None) -> bool:
    """Whether a project is a line or point that gives none of :data:`OPERATION_ATTRIBUTES`.

    A rule that needs such an attribute cannot apply to it (a water-capacity
    rule to a road or a cell tower): it is silent, not "information missing".
    """
    return (
        isinstance(project, dict)
        and project.get("kind") in QUIET_KINDS
        and not any(name in project for name in OPERATION_ATTRIBUTES)
    )


def not_applicable(decision: Decision, project: dict[str, Any] | None) -> bool:
    """Whether an undecided decision only lacks operation attributes a line or point project does not have."""
    return (
        bool(decision.absent)
        and all(owner == "project" and name in OPERATION_ATTRIBUTES for owner, name in decision.absent)
        and declares_no_operation(project)
    )


def applies(rule: Rule, project: dict[str, Any], cache: dict | None = None) -> Decision:
    """Decide whether a rule concerns a project, before any geometry.

    Projects that give the same values to what ``when`` reads share one
    evaluation (see :func:`decide_cached`; ``cache`` as there).
    """
    decision = filtered(rule, project)
    if decision is not None:
        return decision
    if rule.when is not None:
        return decide_cached(rule.when, {"project": project}, cache)
    return Decision(True)


def filtered(rule: Rule, project: dict[str, Any]) -> Decision | None:
    """The rule's kind and industry filters: their decision when they leave the project out (or cannot tell), else None.

    None means that the filters keep the project: ``when``, if the rule has one, decides.
    """
    if rule.kinds and project.get("kind") not in rule.kinds:
        return Decision(False)
    if rule.industry or rule.industry_exclude:
        decision = industry_decision(project.get("industry"), rule.industry, rule.industry_exclude)
        if not decision.holds:
            return decision
    return None


def industry_decision(code: str | None, include: tuple[str, ...], exclude: tuple[str, ...]) -> Decision:
    """Decide whether an industry code falls under ``include`` (all if empty) and not ``exclude``.

    A code coarser than a prefix (``C26`` against ``C2614``) may or may not
    fall under it: that is undecided, as is a code not given.
    """
    if not include and not exclude:
        return Decision(True)
    if code is None:
        return Decision(False, "the project's industry code is not given")
    if industry.matches(code, exclude):
        return Decision(False)
    if include and not industry.matches(code, include):
        finer = _finer(code, include)
        return Decision(False, _too_coarse(code, finer[0]) if finer else None)
    finer = _finer(code, exclude)
    if finer:
        return Decision(False, _too_coarse(code, finer[0]))
    return Decision(True)


def not_given(owner: str, names: list[str]) -> str:
    """``project attribute 'a', project attribute 'b' are not given``."""
    return not_given_pairs([(owner, n) for n in names])


def not_given_pairs(missing: list[tuple[str, str]]) -> str:
    """``project attribute 'a', feature attribute 'b' are not given``."""
    listed = ", ".join(f"{owner} attribute {name!r}" for owner, name in missing)
    return f"{listed} {'is' if len(missing) == 1 else 'are'} not given"


def _finer(code: str, prefixes: tuple[str, ...]) -> list[str]:
    return [p for p in prefixes if p != code and p.startswith(code)]


def _too_coarse(code: str, prefix: str) -> str:
    return f"the project's industry code {code} is coarser than the rule's {prefix}; give its class code"


def decide(expr: Expr, variables: dict[str, Any], bound=None) -> Decision:
    """Evaluate a condition; an attribute that is not given leaves it undecided.

    An evaluation error, or a result that is not true or false, leaves it
    undecided too, with a :class:`Failure` as the reason.

    ``bound`` is ``variables`` already converted for CEL, when the caller has it.
    """
    try:
        result = expr.evaluate(bound if bound is not None else variables)
    except KeyError:
        missing = [(v, n) for v, n in sorted(attribute_refs(expr.source)) if v in variables and n not in variables[v]]
        return Decision(False, not_given_pairs(missing) if missing else "an attribute is not given", tuple(missing))
    except (LookupError, ArithmeticError, TypeError, RuntimeError, ValueError) as exc:
        return Decision(False, Failure(f"cannot evaluate {expr.source!r}: {str(exc).splitlines()[0]}"))
    if not isinstance(result, bool):  # never read as truthy: a string 'false' would fire the rule
        shown = repr(result) if len(repr(result)) <= 40 else f"a {type(result).__name__}"
        return Decision(False, Failure(f"{expr.source!r} gives {shown}, not true or false"))
    return Decision(result)


#: Decisions kept between calls, by expression and the values it reads (see :func:`decide_cached`).
_DECIDED: dict[tuple[int, tuple], tuple[Expr, Decision]] = {}

#: How many decisions :data:`_DECIDED` holds before it forgets them all (a service sees new values without end).
DECISIONS_KEPT = 20_000  # about 0.5 kB each: a service stays within a few MB


def decide_cached(expr: Expr, variables: dict[str, Any], cache: dict | None = None) -> Decision:
    """:func:`decide` on only what ``expr`` reads, once per distinct value of that.

    Converting the values for CEL costs far more than deciding; a decision
    depends only on the expression and the values it reads (types included),
    so it is kept and shared by every project, pair and call that gives them.

    Parameters
    ----------
    expr : Expr
    variables : dict
        Every name; only those the expression reads are converted for CEL.
    cache : dict, optional
        Where decisions are kept, by expression and the values it reads;
        by default the process keeps them (up to :data:`DECISIONS_KEPT`).
    """
    reads = expr.reads
    key = reads.key(variables)
    kept = _DECIDED if cache is None else cache
    found = kept.get((id(expr), key)) if key is not None else None
    if found is not None and found[0] is expr:  # the expression kept with its decisions: its id stays its own
        decision = found[1]
    else:
        decision = decide(expr, variables, bind(reads.slim(variables)))
        if key is not None:
            if kept is _DECIDED and len(_DECIDED) >= DECISIONS_KEPT:
                _DECIDED.clear()
            kept[(id(expr), key)] = (expr, decision)
    # After the cache: whether the rule can apply depends on the project's kind, which the key may not hold.
    if decision.absent and not_applicable(decision, variables.get("project")):
        return Decision(False)
    return decision


def forget_decisions() -> None:
    """Forget the decisions kept between calls (for timing the first evaluation of new projects)."""
    _DECIDED.clear()
