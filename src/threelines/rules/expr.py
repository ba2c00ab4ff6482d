"""Safe rule expressions (CEL).

Message templates, whose placeholders are these expressions, are in
:mod:`threelines.rules.templates`.

Rule files come from outside, so conditions are written in the Common
Expression Language and run by the ``common-expression-language`` package:
no loops, no side effects, no access to Python. An expression is compiled
once when the rule file is loaded; the names and functions it uses are
checked then, and it is run against a typed sample so that type errors
(``2 * project.emit_nox``: CEL does not mix int and double) fail at load
time, not in the middle of a batch.
"""

from __future__ import annotations

import logging
import operator
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import cel

import threelines.rules.celcheck as celcheck
from threelines import industry
from threelines.errors import IndustryCodeError
from threelines.limits import MAX_EXPRESSION_CHARS

log = logging.getLogger(__name__)

#: CEL's standard functions and macros as the compiled program names them.
CEL_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double",
    "string", "bytes", "bool", "timestamp", "duration", "type", "dyn",
})  # fmt: skip

_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


def industry_in(*args: object) -> bool:
    """CEL function ``industry_in(code, ["C26", "2221"])``: GB/T 4754 prefix match.

    Parameters
    ----------
    code : str
        A project's industry code (canonical, as threelines stores it).
    prefixes : list of str or str
        Codes of any level, with or without the section letter. Literal
        arguments are checked when the rule file loads (:func:`check_industry_calls`);
        a prefix that comes from data and is not a code matches nothing and
        is logged.

    Returns
    -------
    bool
        False, with a logged warning, for arguments of the wrong kind: the
        function must not raise (cel-rust prints a failing Python function
        to stderr itself).
    """
    if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str | list | tuple):
        log.warning("industry_in() takes a code and a list of prefixes; got %r", args)
        return False
    code, prefixes = args
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    return industry.matches(code, _canonical(tuple(str(p) for p in prefixes)))


@lru_cache(maxsize=1024)
def _canonical(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """Normalise prefixes once; a prefix that is not a code is logged and dropped."""
    out = []
    for prefix in prefixes:
        try:
            out.append(industry.normalise(prefix, what="industry_in() prefix"))
        except IndustryCodeError as exc:
            log.warning("%s; it matches nothing", exc)
    return tuple(out)


#: Functions threelines adds to CEL (they must never raise: cel-rust prints
#: a failing Python function to stderr itself).
FUNCTIONS = {"industry_in": industry_in}


def _call_arguments(source: str, name: str) -> list[list[str]]:
    """Return the top-level argument texts of every call of ``name`` in an expression."""
    calls = []
    for start in (m.end() for m in re.finditer(rf"\b{name}\s*\(", source)):
        args, depth, quote, begin, end = [], 1, "", start, start
        while end < len(source) and depth:
            char = source[end]
            if quote:
                quote = "" if char == quote and source[end - 1] != "\\" else quote
            elif char in "\"'":
                quote = char
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
            elif char == "," and depth == 1:
                args.append(source[begin:end].strip())
                begin = end + 1
            end += 1
        args.append(source[begin : end - 1].strip())
        calls.append([a for a in args if a])
    return calls


#: A condition that compares a name with a double literal: ``value > 35.0`` (an int literal is another type in CEL).
_COMPARISON = re.compile(r"\s*([A-Za-z_]\w*)\s*(<=|>=|<|>|==|!=)\s*(-?[0-9]+\.[0-9]+)\s*")
_OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_STRING = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'")


def check_industry_calls(source: str) -> None:
    """Check every ``industry_in`` call: two arguments, literal prefixes that are codes.

    Raises
    ------
    ExpressionError
    """
    for args in _call_arguments(source, "industry_in"):
        if len(args) != 2:
            raise ExpressionError(f"industry_in takes 2 arguments (a code and a list of prefixes), not {len(args)}")
        prefixes = args[1]
        if re.fullmatch(r"[-+]?[\d.]+", prefixes):
            raise ExpressionError(f'industry_in: {prefixes!r} is a number; write prefixes as strings, e.g. ["C26"]')
        for a, b in _STRING.findall(prefixes):
            try:
                industry.normalise(a or b, what="industry_in() prefix")
            except IndustryCodeError as exc:
                raise ExpressionError(str(exc)) from None


def attribute_refs(source: str) -> set[tuple[str, str]]:
    """Return the ``(project|feature, name)`` attributes an expression reads.

    ``feature.x`` and ``feature["x"]`` are found; text inside string
    literals is not mistaken for a reference.
    """
    found = {(var, key) for var, key in re.findall(r"\b(project|feature)\s*\[\s*[\"']([^\"']+)[\"']\s*\]", source)}
    bare = _STRING.sub('""', source)
    found |= set(re.findall(r"\b(project|feature)\s*\.\s*([A-Za-z_]\w*)", bare))
    return found


def bind(variables: dict[str, Any]) -> cel.Context:
    """Convert variables for CEL once, to evaluate several expressions on them.

    Converting the maps is most of the cost of an evaluation (about 25 us
    against 0.2 us for running a compiled expression on a bound context).
    """
    return cel.Context(variables=variables, functions=FUNCTIONS)


class ExpressionError(ValueError):
    """An expression does not compile or check; the message is one line."""


#: Stands for a name or attribute that is not there, in the keys of :class:`Reads`.
_ABSENT = object()


@dataclass(frozen=True)
class Reads:
    """What some expressions read: names, and which keys of the ``project`` and ``feature`` maps.

    Converting variables for CEL costs far more than running an expression
    on them, and the ``project`` map above all; binding only what is read,
    and deciding once per distinct value of it, keeps that cost down.
    """

    names: tuple[str, ...]
    keys: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, exprs: list[Expr]) -> Reads:
        """The reads of several expressions together."""
        names = set().union(*(e.program.variables() for e in exprs)) if exprs else set()
        refs = set().union(*(attribute_refs(e.source) for e in exprs)) if exprs else set()
        keys = {var: tuple(sorted(n for v, n in refs if v == var)) for var in ("project", "feature")}
        return cls(tuple(sorted(names)), {var: ks for var, ks in keys.items() if ks})

    def slim(self, variables: dict[str, Any]) -> dict[str, Any]:
        """Only the names (and map keys) read; absent keys stay absent, for ``has()``."""
        out = {}
        for name in self.names:
            if name in variables:
                value = variables[name]
                if name in self.keys and isinstance(value, dict):
                    value = {k: value[k] for k in self.keys[name] if k in value}
                out[name] = value
        return out

    def key(self, variables: dict[str, Any]) -> tuple | None:
        """A hashable stand-in for :meth:`slim` (types included: CEL tells 1.0 from true), or None."""
        out = []
        for name in self.names:
            value = variables.get(name, _ABSENT)
            if isinstance(value, dict):
                if name not in self.keys:
                    return None  # the whole map is read: no cheap key
                out.append(tuple(_typed(value.get(k, _ABSENT)) for k in self.keys[name]))
            else:
                out.append(_typed(value))
        try:
            hash(out := tuple(out))
        except TypeError:
            return None
        return out


def _typed(value: Any) -> tuple[type, Any]:
    return (value.__class__, value)


@dataclass(frozen=True)
class Expr:
    """A compiled CEL expression."""

    source: str
    program: Any

    @cached_property
    def reads(self) -> Reads:
        """The names and attributes this expression reads."""
        return Reads.of([self])

    @cached_property
    def comparison(self) -> tuple[str, Any, float] | None:
        """``(name, operator, number)`` when the expression only compares a name with a double literal, else None.

        Such a condition (``value > 35.0``) on doubles is decided for a whole
        array at once with the operator, as CEL decides each double (IEEE
        comparison); only for names known to hold doubles.
        """
        found = _COMPARISON.fullmatch(self.source)
        if found is None or found[1] not in self.program.variables():
            return None
        return found[1], _OPERATORS[found[2]], float(found[3])

    def evaluate(self, variables: dict[str, Any] | cel.Context) -> Any:
        """Run the expression.

        Raises
        ------
        KeyError
            A map key the expression reads is absent (an attribute not given).
        TypeError, RuntimeError, ValueError, ArithmeticError, IndexError
            CEL evaluation errors (no overload, division by zero, overflow, ...).
        """
        return self.program.execute(variables if isinstance(variables, cel.Context) else bind(variables))


def compile_expr(source: str, allowed: tuple[str, ...]) -> Expr:
    """Compile and check a CEL expression.

    Parameters
    ----------
    source : str
        The expression text.
    allowed : tuple of str
        The variable names it may use.

    Returns
    -------
    Expr

    Raises
    ------
    ExpressionError
        For a syntax error (with its line and column in the expression), an
        expression over :data:`MAX_EXPRESSION_CHARS`, an unknown variable or
        function, an ``industry_in`` prefix that is not a GB/T 4754 code,
        brackets or comprehensions nested past the limits, comprehensions
        that may iterate too often (see :mod:`threelines.rules.celcheck`),
        or a constant part that fails (``1/0``, an invalid ``matches`` pattern).

    Notes
    -----
    Compiled once per text and names, then kept: a rule file repeats its
    placeholders (``{feature.name}``, ``{overlap_ha:.2f}``) over rules and
    languages, and an :class:`Expr` never changes.
    """
    return _compiled(source, tuple(allowed))


@lru_cache(maxsize=1024)  # at most MAX_EXPRESSION_CHARS each
def _compiled(source: str, allowed: tuple[str, ...]) -> Expr:
    """:func:`compile_expr`, each text and names compiled and checked once."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"is {len(source)} characters long; the limit is {MAX_EXPRESSION_CHARS}")
    try:
        celcheck.check_nesting(celcheck.tokenize(source, lenient=True))  # before anything recurses over the text
    except celcheck.CheckError as exc:
        raise ExpressionError(str(exc)) from None
    try:
        program = cel.compile(source)
    except ValueError as exc:
        found = _POSITION.search(str(exc))
        if found:
            line, column, problem = found.groups()
            raise ExpressionError(f"{problem} (line {line}, column {column} of the expression)") from None
        raise ExpressionError(str(exc).splitlines()[0]) from None
    unknown = sorted(set(program.variables()) - set(allowed))
    if unknown:
        raise ExpressionError(f"unknown name {unknown[0]!r}; the names here are {', '.join(allowed)}")
    for name in program.functions():
        if name[0] not in "_!@-" and name not in CEL_FUNCTIONS and name not in FUNCTIONS:
            raise ExpressionError(f"unknown function {name!r}; use CEL's standard functions or {', '.join(FUNCTIONS)}")
    check_industry_calls(source)
    try:
        tree = celcheck.parse(source)
        celcheck.check_cost(tree)
    except celcheck.CheckError as exc:
        raise ExpressionError(str(exc)) from None
    check_constants(source, tree)
    return Expr(source=source, program=program)


def check_constants(source: str, tree: celcheck.Node) -> None:
    """Evaluate every constant part once (``1/0``, ``int("x")``), and every constant ``matches`` pattern.

    Raises
    ------
    ExpressionError
        Naming the part, its column and CEL's error.
    """
    for node in celcheck.constant_parts(tree):
        text = source[node.start : node.end]
        _run_constant(text, text, node.start)
    for node in celcheck.regex_patterns(tree):
        pattern = source[node.start : node.end]
        _run_constant(f'"".matches({pattern})', f"the regular expression {pattern}", node.start)


def _run_constant(text: str, shown: str, start: int) -> None:
    """Evaluate a constant part; an error is the rule file's, at load."""
    try:
        cel.evaluate(text)
    except Exception as exc:  # whatever CEL raises, the constant part is broken
        problem = " ".join(str(exc).split()).split(". Check function arguments")[0]
        raise ExpressionError(f"{shown} fails: {problem} (column {start + 1} of the expression)") from None


def check_boolean(expr: Expr, sample: dict[str, Any]) -> None:
    """Refuse a condition whose text decides that it can give something other than true or false.

    ``distance_m > 1.0 ? 'false' : false`` gives a string on some projects:
    read as truthy, it would fire the rule wherever the distance is over 1 m.

    Raises
    ------
    ExpressionError
    """
    names = {name: _cel_type(value) for name, value in sample.items()}
    node = celcheck.non_bool(celcheck.parse(expr.source), names)
    if node is not None:
        kinds = " or ".join(sorted(celcheck.types(node, names) - {"bool", "dyn"}))
        text = expr.source[node.start : node.end]
        raise ExpressionError(
            f"must give true or false, but can give {kinds} ({text} at column {node.start + 1} of the expression)"
        )


def _cel_type(value: Any) -> str:
    """The CEL type name of a sample value."""
    if isinstance(value, bool):
        return "bool"
    return {float: "double", int: "int", str: "string", dict: "map", list: "list"}.get(type(value), "dyn")


def check_against(expr: Expr, sample: dict[str, Any], *, want_bool: bool, bound: cel.Context | None = None) -> None:
    """Run an expression on a sample with every attribute set, to catch type errors.

    ``bound`` is the sample already converted for CEL (see :func:`bind`), for
    checking several expressions on it.

    Raises
    ------
    ExpressionError
        If CEL finds no overload for an operation (mixing int and double,
        comparing a string with a number), or a condition does not give
        true or false.
    """
    if want_bool:
        check_boolean(expr, sample)
    try:
        result = expr.evaluate(sample if bound is None else bound)
    except TypeError as exc:
        hint = "; numbers are doubles, so write 2.0 rather than 2" if "int" in str(exc).lower() else ""
        raise ExpressionError(f"type error: {str(exc).split('.')[0]}{hint}") from None
    except (LookupError, ArithmeticError, RuntimeError, ValueError):
        return  # a value-dependent failure (int(""), 1.0 / 0.0) cannot be judged on a sample
    if want_bool and not isinstance(result, bool):
        raise ExpressionError(f"must give true or false, but gives {_cel_type(result)} on a sample project")
