"""Message templates: rule text with ``{expression}`` or ``{expression:format}`` placeholders, in one or more languages.

Placeholders are CEL expressions (see :mod:`threelines.rules.expr`); one
that is a bare name or attribute (``{feature.name}``, ``{overlap_ha:.2f}``)
is read without CEL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from operator import itemgetter
from typing import Any

import cel

from threelines.limits import MAX_FORMAT_PRECISION, MAX_FORMAT_WIDTH
from threelines.rules.expr import Expr, ExpressionError, Reads, bind, compile_expr

# Message templates: text with {expression} or {expression:format} placeholders.
# The format spec follows the last colon and has no spaces (".1f", ",.0f", ".1%"),
# which keeps CEL's "a ? b : c" usable inside a placeholder.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]+)\}")
_FORMAT_SPEC = re.compile(r"^[<>^=+\- #0]?[0-9]*[,_]?(\.[0-9]+)?[bcdeEfFgGnosxX%]?$")

#: Stands for a name a row does not have, in the columns :meth:`Template.render_rows` reads.
ABSENT = object()

#: What a placeholder that cannot be evaluated gives (its text then shows as ``<expr?>``).
_FAILURES = (LookupError, ArithmeticError, TypeError, RuntimeError, ValueError)


@dataclass(frozen=True)
class Template:
    """A message template: literal text and compiled placeholders."""

    source: str
    parts: tuple[str | tuple[Expr, str], ...]

    def render(self, variables: dict[str, Any], bound: cel.Context | None = None) -> str:
        """Fill in the placeholders; one that cannot be evaluated shows as ``<expr?>``.

        ``bound`` is the same variables already converted for CEL (see
        :func:`bind`); it is made here only if a placeholder needs CEL.
        """
        out = []
        for part, lookup in zip(self.parts, self._lookups, strict=True):
            if isinstance(part, str):
                out.append(part)
                continue
            expr, spec = part
            try:
                if lookup is None:
                    bound = bound or bind(variables)
                    value = expr.evaluate(bound)
                else:  # a bare name or attribute: what CEL would return, without converting anything
                    value = variables[lookup[0]] if lookup[1] is None else variables[lookup[0]][lookup[1]]
                out.append(_format(value, spec))
            except _FAILURES:
                out.append(f"<{expr.source}?>")
        return "".join(out)

    def render_rows(self, column: Callable[[str], list], n: int) -> list[str]:
        """:meth:`render` for ``n`` rows at once, placeholder by placeholder, for a template that needs no CEL.

        ``column(name)`` gives a name's value per row, :data:`ABSENT` where the
        row does not have it; each row's text is what :meth:`render` gives for
        that row's values.
        """
        if self.needs_cel:
            raise ValueError(f"the template {self.source!r} needs CEL: render it row by row")
        parts: list = []
        for part, lookup in zip(self.parts, self._lookups, strict=True):
            if isinstance(part, str):
                parts.append(repeat(part, n))
            else:
                (expr, spec), (name, key) = part, lookup
                parts.append(_column_texts(column(name), key, spec, f"<{expr.source}?>"))
        return list(map("".join, zip(*parts, strict=False))) if parts else [""] * n  # literals repeat

    @cached_property
    def _lookups(self) -> tuple[tuple[str, str | None] | None, ...]:
        """Per part: ``(name, key)`` for a placeholder that only reads a value, else None (CEL runs it)."""
        return tuple(None if isinstance(part, str) else _lookup(part[0]) for part in self.parts)

    @cached_property
    def needs_cel(self) -> bool:
        """Whether a placeholder is more than a bare name or attribute."""
        return any(not isinstance(part, str) and _lookup(part[0]) is None for part in self.parts)

    @cached_property
    def reads(self) -> Reads:
        """The names and attributes the placeholders read."""
        return Reads.of(self.expressions)

    @property
    def expressions(self) -> list[Expr]:
        """The compiled placeholders, for load-time checks."""
        return [part[0] for part in self.parts if not isinstance(part, str)]


@dataclass(frozen=True)
class Message:
    """A rule's message in one or more languages: ``(lang, template)`` pairs, the first the default.

    ``lang`` is empty when the rule file gives a single text without naming its language.
    """

    templates: tuple[tuple[str, Template], ...]

    @property
    def expressions(self) -> list[Expr]:
        """The placeholders of every language, for load-time checks."""
        return [e for _, t in self.templates for e in t.expressions]

    @cached_property
    def languages(self) -> tuple[str, ...]:
        """The languages the rule names (none for a single unnamed text); asked for every trigger."""
        return tuple(lang for lang, _ in self.templates if lang)

    @cached_property
    def reads(self) -> Reads:
        """What the placeholders of every language read, together: one key stands for all the texts of a row."""
        return Reads.of(self.expressions)

    @cached_property
    def needs_cel(self) -> bool:
        """Whether a placeholder of some language is more than a bare name or attribute."""
        return any(template.needs_cel for _, template in self.templates)

    def render(self, variables: dict[str, Any], bound: cel.Context | None = None) -> str:
        """The default language's text."""
        return self.templates[0][1].render(variables, bound)


_BARE = re.compile(r"(?:(project|feature)\s*\.\s*)?([A-Za-z_]\w*)")


def _lookup(expr: Expr) -> tuple[str, str | None] | None:
    """``(name, None)`` for a bare scalar name, ``(project|feature, key)`` for an attribute, else None."""
    found = _BARE.fullmatch(expr.source)
    if not found or found.group(2) in ("true", "false", "null"):
        return None
    var, name = found.groups()
    if var is not None:
        return (var, name) if var in expr.program.variables() else None
    return (name, None) if name not in ("project", "feature") and name in expr.program.variables() else None


def compile_template(source: str, allowed: tuple[str, ...]) -> Template:
    """Compile a message template with ``{expr}`` / ``{expr:spec}`` placeholders.

    ``{{`` and ``}}`` stand for literal braces.

    Raises
    ------
    ExpressionError
        For an unbalanced brace or a placeholder that does not compile.
    """
    parts: list[str | tuple[Expr, str]] = []
    position = 0
    for found in _PLACEHOLDER.finditer(source):
        literal = source[position : found.start()]
        if "{" in literal or "}" in literal:
            raise ExpressionError(
                f"unbalanced brace near column {position + 1}; write {{{{ or }}}} for a literal brace"
            )
        parts.append(literal)
        position = found.end()
        token = found.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
            continue
        body, spec = found.group(1), ""
        if ":" in body:
            head, tail = body.rsplit(":", 1)
            if tail and _FORMAT_SPEC.match(tail):
                body, spec = head, tail
        if spec:
            _check_spec(found.group(1), spec)
        try:
            parts.append((compile_expr(body.strip(), allowed), spec))
        except ExpressionError as exc:
            raise ExpressionError(f"placeholder {{{found.group(1)}}}: {exc}") from None
    tail = source[position:]
    if "{" in tail or "}" in tail:
        raise ExpressionError("unbalanced brace; write {{ or }} for a literal brace")
    parts.append(tail)
    return Template(source=source, parts=tuple(p for p in parts if p != ""))


def _check_spec(placeholder: str, spec: str) -> None:
    """Refuse a format width or precision past the limits: ``{x:>300000000}`` would write 300 MB per message.

    Raises
    ------
    ExpressionError
    """
    head, _, precision = spec.partition(".")
    widths = re.findall(r"[0-9]+", head)
    width = int(widths[-1]) if widths else 0
    digits = int(re.match(r"[0-9]*", precision).group() or 0)
    if width > MAX_FORMAT_WIDTH:
        raise ExpressionError(
            f"placeholder {{{placeholder}}}: format width {width} is over the limit of {MAX_FORMAT_WIDTH}"
        )
    if digits > MAX_FORMAT_PRECISION:
        raise ExpressionError(
            f"placeholder {{{placeholder}}}: format precision {digits} is over the limit of {MAX_FORMAT_PRECISION}"
        )


def _column_texts(values: list, key: str | None, spec: str, failed: str) -> list[str]:
    """A placeholder's text in each row: ``values`` (a map's ``key`` of each, if given) formatted by ``spec``.

    Where every row has a value, and all are formatted alike (a format
    given, or texts as they are), the column is formatted in one pass;
    else value by value, a value that cannot be read or formatted giving
    ``failed``.
    """
    try:
        read = values if key is None else list(map(itemgetter(key), values))  # absent: not subscriptable
        if key is None and ABSENT in values:
            raise LookupError
        kinds = set(map(type, read))
        if spec and type(None) not in kinds:
            return list(map(format, read, repeat(spec)))
        if not spec and kinds == {str}:
            return read
    except _FAILURES:
        pass
    texts = []
    for value in values:
        try:
            if key is not None:
                value = value[key]  # absent: not subscriptable, as a missing key fails
            elif value is ABSENT:
                raise LookupError
            # _format, its common case first
            texts.append(format(value, spec) if spec and value is not None else _format(value, spec))
        except _FAILURES:
            texts.append(failed)
    return texts


def _format(value: Any, spec: str) -> str:
    """Format a placeholder's value; floats default to at most 2 decimals."""
    if value is None:
        return "-"
    if spec:
        return format(value, spec)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value)
