"""Static checks of a CEL expression at load: nesting, cost, result type, constant parts.

The ``cel`` binding compiles and runs expressions but offers neither a type
checker nor a way to stop an evaluation. A rule file comes from outside, so
what can be told from the text is told here, before any project is screened:

* comprehensions (``all``, ``exists``, ``exists_one``, ``map``, ``filter``)
  nested too deep, or iterating more than a stated bound (from the sizes of
  literal lists and maps), are refused, which bounds every evaluation's
  time and memory;
* the type of the result, where the text decides it (a literal, a
  comparison, arithmetic, both branches of a ternary), so that a condition
  that can give a string or a number is refused;
* every constant part (``1/0``, ``int("x")``, an invalid ``matches`` pattern)
  is evaluated once, so that it fails at load, not on every project.

The parser follows the CEL grammar; it only reads what ``cel.compile`` has
accepted (or is about to), and it never decides whether an expression is
valid CEL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from threelines.limits import (
    COMPREHENSION_UNKNOWN_SIZE,
    MAX_COMPREHENSION_COST,
    MAX_COMPREHENSION_DEPTH,
    MAX_EXPRESSION_NESTING,
)

#: Macros that iterate over a list or map.
COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})

#: Result types of CEL's standard functions and threelines' own (``dyn``: unknown).
RESULT_TYPES = {
    "size": "int", "contains": "bool", "startsWith": "bool", "endsWith": "bool", "matches": "bool",
    "int": "int", "uint": "uint", "double": "double", "string": "string", "bytes": "bytes", "bool": "bool",
    "timestamp": "timestamp", "duration": "duration", "type": "type", "dyn": "dyn", "industry_in": "bool",
    "has": "bool", "all": "bool", "exists": "bool", "exists_one": "bool", "map": "list", "filter": "list",
}  # fmt: skip

#: Functions whose calls on constants are evaluated at load (pure, and known to the bare ``cel`` runtime).
PURE = frozenset(RESULT_TYPES) - {"industry_in", "has", *COMPREHENSIONS}

_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
    |(?P<string>[rRbB]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:[0-9]+\.[0-9]+|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|[0-9]+[uU]?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>==|!=|<=|>=|&&|\|\||[-<>+*/%!?:.,()\[\]{}])""",
    re.VERBOSE,
)


class CheckError(ValueError):
    """A static check failed; the message is one line and may name a column of the expression."""


@dataclass(frozen=True)
class Token:
    """A token and its span in the source."""

    kind: str
    text: str
    start: int
    end: int


@dataclass
class Node:
    """A node of the expression's syntax tree, with its span in the source."""

    kind: str  # lit, ident, list, map, select, index, call, unary, binary, cond, other
    start: int
    end: int
    value: str = ""  # literal type, name, operator or function
    children: list[Node] = field(default_factory=list)
    target: bool = False  # a call written as a method (x.f(...)): children[0] is the receiver


def tokenize(source: str, lenient: bool = False) -> list[Token]:
    """Split an expression into tokens (no whitespace or comments).

    ``lenient`` skips a character no token starts with (``cel.compile``
    reports it better, with its own wording).

    Raises
    ------
    CheckError
        For a character no CEL token starts with (``cel.compile`` says more).
    """
    out, position = [], 0
    while position < len(source):
        found = _TOKEN.match(source, position)
        if found is None and lenient:
            position += 1
            continue
        if found is None:
            raise CheckError(f"unexpected character {source[position]!r} (column {position + 1} of the expression)")
        kind = found.lastgroup or ""
        if kind != "space":
            out.append(Token(kind, found.group(), found.start(), found.end()))
        position = found.end()
    return out


def check_nesting(tokens: list[Token]) -> None:
    """Refuse brackets or comprehensions nested past the limits, before anything recurses over them.

    Raises
    ------
    CheckError
    """
    stack: list[bool] = []  # per open bracket: whether it opens a comprehension's arguments
    for i, token in enumerate(tokens):
        if token.text in "([{" and token.kind == "op":
            macro = token.text == "(" and i >= 2 and tokens[i - 1].text in COMPREHENSIONS and tokens[i - 2].text == "."
            stack.append(macro)
            if len(stack) > MAX_EXPRESSION_NESTING:
                raise CheckError(
                    f"brackets are nested more than {MAX_EXPRESSION_NESTING} deep (the limit; column "
                    f"{token.start + 1} of the expression)"
                )
            if sum(stack) > MAX_COMPREHENSION_DEPTH:
                raise CheckError(
                    f"comprehensions (all, exists, map, filter) are nested more than {MAX_COMPREHENSION_DEPTH} "
                    f"deep (the limit; .{tokens[i - 1].text}() at column {tokens[i - 1].start + 1} of the expression)"
                )
        elif token.text in ")]}" and token.kind == "op" and stack:
            stack.pop()


class _Parser:
    """Recursive descent over CEL's grammar, building :class:`Node` trees."""

    RELATIONS = frozenset({"<", "<=", ">=", ">", "==", "!=", "in"})

    def __init__(self, tokens: list[Token]):
        self.tokens, self.i = tokens, 0

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.tokens[j].text if j < len(self.tokens) else ""

    def take(self, text: str | None = None) -> Token:
        if self.i >= len(self.tokens):
            raise CheckError("unexpected end of the expression")
        token = self.tokens[self.i]
        if text is not None and token.text != text:
            raise CheckError(f"expected {text!r} at column {token.start + 1} of the expression")
        self.i += 1
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.i != len(self.tokens):
            raise CheckError(f"unexpected {self.peek()!r} at column {self.tokens[self.i].start + 1} of the expression")
        return node

    def expr(self) -> Node:
        node = self.binary_level(0)
        if self.peek() == "?":
            self.take()
            yes = self.binary_level(0)
            self.take(":")
            no = self.expr()
            return Node("cond", node.start, no.end, "?", [node, yes, no])
        return node

    LEVELS = (("||",), ("&&",), tuple(RELATIONS), ("+", "-"), ("*", "/", "%"))

    def binary_level(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        node = self.binary_level(level + 1)
        while self.peek() in self.LEVELS[level] and self.tokens[self.i].kind in ("op", "ident"):
            op = self.take().text
            right = self.binary_level(level + 1)
            node = Node("binary", node.start, right.end, op, [node, right])
        return node

    def unary(self) -> Node:
        ops = []
        while self.peek() in ("!", "-"):
            ops.append(self.take())
        node = self.member()
        for op in reversed(ops):
            if op.text == "-" and node.kind == "lit" and node.start == op.end:
                node = Node("lit", op.start, node.end, node.value)  # a negative literal
            else:
                node = Node("unary", op.start, node.end, op.text, [node])
        return node

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.peek() == "." and self.peek(1) != "":
                self.take()
                name = self.take()
                if self.peek() == "(":
                    args, end = self.arguments()
                    node = Node("call", node.start, end, name.text, [node, *args], target=True)
                else:
                    node = Node("select", node.start, name.end, name.text, [node])
            elif self.peek() == "[":
                self.take()
                index = self.expr()
                end = self.take("]").end
                node = Node("index", node.start, end, "[]", [node, index])
            elif self.peek() == "{" and node.kind in ("ident", "select"):
                node = self.struct(node)
            else:
                return node

    def arguments(self) -> tuple[list[Node], int]:
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.expr())
            if self.peek() == ",":
                self.take()
        return args, self.take(")").end

    def struct(self, name: Node) -> Node:
        self.take("{")
        children = []
        while self.peek() != "}":
            self.take()  # the field name
            self.take(":")
            children.append(self.expr())
            if self.peek() == ",":
                self.take()
        return Node("other", name.start, self.take("}").end, "struct", children)

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "string":
            prefix = token.text[: len(token.text) - len(token.text.lstrip("rRbB"))].lower()
            return Node("lit", token.start, token.end, "bytes" if "b" in prefix else "string")
        if token.kind == "number":
            text = token.text.lower()
            floating = ("." in text or "e" in text) and "x" not in text
            kind = "uint" if text.endswith("u") else "double" if floating else "int"
            return Node("lit", token.start, token.end, kind)
        if token.kind == "ident":
            if token.text in ("true", "false"):
                return Node("lit", token.start, token.end, "bool")
            if token.text == "null":
                return Node("lit", token.start, token.end, "null")
            if self.peek() == "(":
                args, end = self.arguments()
                return Node("call", token.start, end, token.text, args)
            return Node("ident", token.start, token.end, token.text)
        if token.text == ".":  # a leading dot: the root scope
            return self.primary()
        if token.text == "(":
            node = self.expr()
            self.take(")")
            return Node(node.kind, token.start, self.tokens[self.i - 1].end, node.value, node.children, node.target)
        if token.text == "[":
            items = []
            while self.peek() != "]":
                items.append(self.expr())
                if self.peek() == ",":
                    self.take()
            return Node("list", token.start, self.take("]").end, "list", items)
        if token.text == "{":
            items = []
            while self.peek() != "}":
                items.append(self.expr())
                self.take(":")
                items.append(self.expr())
                if self.peek() == ",":
                    self.take()
            return Node("map", token.start, self.take("}").end, "map", items)
        raise CheckError(f"unexpected {token.text!r} at column {token.start + 1} of the expression")


def parse(source: str) -> Node:
    """Parse an expression into a syntax tree (after :func:`check_nesting`).

    Raises
    ------
    CheckError
    """
    tokens = tokenize(source)
    check_nesting(tokens)
    try:
        return _Parser(tokens).parse()
    except RecursionError:
        raise CheckError(f"is nested too deeply to check (the limit is {MAX_EXPRESSION_NESTING} levels)") from None


def _is_comprehension(node: Node) -> bool:
    return node.kind == "call" and node.target and node.value in COMPREHENSIONS and len(node.children) >= 3


def _range_size(node: Node) -> int:
    """How many elements a comprehension's range has, if the text says; else the stated assumption."""
    if node.kind == "list":
        return len(node.children)
    if node.kind == "map":
        return len(node.children) // 2
    if _is_comprehension(node) and node.value in ("map", "filter"):
        return _range_size(node.children[0])
    return COMPREHENSION_UNKNOWN_SIZE


def cost(node: Node) -> int:
    """An upper bound on the iterations of an expression's comprehensions."""
    if _is_comprehension(node):
        size = _range_size(node.children[0])
        inner = sum(cost(child) for child in node.children[2:])
        return cost(node.children[0]) + size * (1 + inner)
    return sum(cost(child) for child in node.children)


def check_cost(node: Node) -> None:
    """Refuse an expression whose comprehensions could iterate past :data:`MAX_COMPREHENSION_COST`.

    Raises
    ------
    CheckError
    """
    total = cost(node)
    if total > MAX_COMPREHENSION_COST:
        raise CheckError(
            f"its comprehensions may iterate {total:,} times, more than the limit of {MAX_COMPREHENSION_COST:,} "
            f"(a list or map from the data counts as {COMPREHENSION_UNKNOWN_SIZE})"
        )


def types(node: Node, names: dict[str, str]) -> frozenset[str]:
    """The types an expression can give, as far as the text decides (``dyn``: unknown).

    ``names`` gives the type of variables (``double``, ``bool``, ``map``, ...).
    """
    kind = node.kind
    if kind == "lit":
        return frozenset({node.value})
    if kind == "ident":
        return frozenset({names.get(node.value, "dyn")})
    if kind in ("list", "map"):
        return frozenset({kind})
    if kind == "cond":
        return types(node.children[1], names) | types(node.children[2], names)
    if kind == "unary":
        return frozenset({"bool"}) if node.value == "!" else types(node.children[0], names)
    if kind == "binary":
        if node.value in ("&&", "||") or node.value in _Parser.RELATIONS:
            return frozenset({"bool"})
        known = (types(node.children[0], names) | types(node.children[1], names)) - {"dyn"}
        return known if len(known) == 1 else frozenset({"dyn"})
    if kind == "call":
        return frozenset({RESULT_TYPES.get(node.value, "dyn")})
    return frozenset({"dyn"})


def non_bool(node: Node, names: dict[str, str]) -> Node | None:
    """The part of an expression that gives something other than true or false, when the text says so."""
    if node.kind == "cond":
        return non_bool(node.children[1], names) or non_bool(node.children[2], names)
    return node if types(node, names) - {"bool", "dyn"} else None


def _constant(node: Node) -> bool:
    """Whether a node reads no variable and calls only pure functions."""
    if node.kind == "ident":
        return False
    if node.kind == "call" and node.value not in PURE:
        return False
    if node.kind == "other":
        return False
    return all(_constant(child) for child in node.children)


def constant_parts(node: Node) -> list[Node]:
    """The parts worth evaluating at load: operations and calls on constants, innermost first."""
    out: list[Node] = []

    def visit(n: Node) -> bool:
        constant = all([visit(child) for child in n.children])  # every child visited, for the list
        constant = constant and n.kind not in ("ident", "other") and not (n.kind == "call" and n.value not in PURE)
        if constant and n.kind not in ("lit", "list", "map"):
            out.append(n)
        return constant

    visit(node)
    return out


def regex_patterns(node: Node) -> list[Node]:
    """The constant pattern arguments of ``matches`` calls."""
    out = []
    if node.kind == "call" and node.value == "matches" and node.children:
        pattern = node.children[-1]
        if _constant(pattern):
            out.append(pattern)
    for child in node.children:
        out += regex_patterns(child)
    return out
