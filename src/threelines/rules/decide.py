"""Whether a rule concerns a project, and whether a condition holds, or cannot be told.

A :class:`Decision` is true, false, or undecided for want of information
(an attribute not given, an industry code too coarse), with the reason; the
evaluation of rules is built on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threelines import industry
from threelines.footprint import project_record
from threelines.rules.expr import Expr, attribute_refs, bind
from threelines.rules.load import Rule


class ProjectMap(dict):
    """The ``project`` map rules see, which converts itself for CEL once for all rules."""

    __slots__ = ("_bound",)

    def bound(self):
        """The map bound as ``project`` (see :func:`threelines.rules.expr.bind`), made on first use."""
        try:
            return self._bound
        except AttributeError:
            self._bound = bind({"project": self})
            return self._bound


def project_context(attrs: dict[str, Any], area_m2: float) -> ProjectMap:
    """The ``project`` map rules see: the given attributes only, plus derived values."""
    return ProjectMap((k, v) for k, v in project_record(attrs, area_m2).items() if v is not None)


@dataclass(frozen=True)
class Decision:
    """The outcome of a condition: true, false, or undecided for want of information."""

    holds: bool
    missing: str | None = None


def applies(rule: Rule, project: dict[str, Any]) -> Decision:
    """Decide whether a rule concerns a project, before any geometry."""
    if rule.kinds and project.get("kind") not in rule.kinds:
        return Decision(False)
    if rule.industry or rule.industry_exclude:
        decision = industry_decision(project.get("industry"), rule.industry, rule.industry_exclude)
        if not decision.holds:
            return decision
    if rule.when is not None:
        bound = project.bound() if isinstance(project, ProjectMap) else None
        return decide(rule.when, {"project": project}, bound)
    return Decision(True)


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

    ``bound`` is ``variables`` already converted for CEL, when the caller has it.
    """
    try:
        return Decision(bool(expr.evaluate(bound if bound is not None else variables)))
    except KeyError:
        missing = [(v, n) for v, n in sorted(attribute_refs(expr.source)) if v in variables and n not in variables[v]]
        return Decision(False, not_given_pairs(missing) if missing else "an attribute is not given")
    except (LookupError, ArithmeticError, TypeError, RuntimeError, ValueError) as exc:
        return Decision(False, f"cannot evaluate {expr.source!r}: {str(exc).splitlines()[0]}")
