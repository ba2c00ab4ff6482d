"""MkDocs hook: field tables of the JSON Schemas the package ships, rendered into the pages at build time.

A line ``<!-- schema-table: rules.schema.json /properties/rules/items -->`` in a page becomes a table of the
properties of that node of ``src/threelines/schemas/rules.schema.json``: name, type, whether it is required,
its description and its allowed values or bounds. The tables come from the schemas the loader validates
against, so the documentation cannot drift from what is accepted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MARKER = re.compile(r"^<!-- schema-table: (?P<file>[\w.-]+\.json) (?P<pointer>/[\w/]*) -->$", re.M)
SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "threelines" / "schemas"


def _type(node: dict[str, Any]) -> str:
    """The JSON type of a schema node in words."""
    if "const" in node:
        return type(node["const"]).__name__.replace("str", "string").replace("int", "integer")
    if "enum" in node:
        return "string"
    if "oneOf" in node and "type" not in node:
        return " or ".join(dict.fromkeys(_type(alt) for alt in node["oneOf"]))
    kind = node.get("type", "object" if "properties" in node else "any")
    if isinstance(kind, list):
        return " or ".join(k for k in kind if k != "null") + (" or null" if "null" in kind else "")
    if kind == "array" and "items" in node:
        return f"list of {_type(node['items'])}"
    if kind == "object" and "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        return f"mapping to {_type(node['additionalProperties'])}"
    return kind


def _values(node: dict[str, Any]) -> str:
    """The values or bounds a schema node allows, as code spans."""
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    for source in (node, node.get("items") or {}, node.get("additionalProperties") or {}):
        if isinstance(source, dict) and "enum" in source:
            return ", ".join(f"`{v}`" for v in source["enum"])
    parts = []
    for key, word in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("minItems", "items >="),
        ("minLength", "length >="),
    ):
        if key in node and not (key in ("minLength", "minItems") and node[key] <= 1):
            parts.append(f"{word} {node[key]}")
    pattern = node.get("pattern") or (node.get("items") or {}).get("pattern")
    if pattern:
        parts.append(f"`{pattern}`")
    if "default" in node:
        parts.append(f"default `{json.dumps(node['default'])}`")
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Text made safe for one cell of a Markdown table."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("*", "\\*"), ("|", "\\|"), ("\n", " ")):
        text = text.replace(char, entity)
    return text


def schema_table(file: str, pointer: str) -> str:
    """The Markdown table of the properties at ``pointer`` of the schema ``file``.

    Parameters
    ----------
    file : str
        A file name under ``src/threelines/schemas/``.
    pointer : str
        A JSON pointer to an object node with ``properties`` (``/`` for the root).

    Returns
    -------
    str
        The table, a header row and one row per property in the schema's order.

    Raises
    ------
    KeyError
        When the pointer names no node, or the node has no properties (a broken marker fails the build).
    """
    node = json.loads((SCHEMAS / file).read_text("utf-8"))
    for key in filter(None, pointer.split("/")):
        node = node[key]
    required = set(node.get("required", ()))
    rows = ["| field | type | required | description | values |", "| --- | --- | --- | --- | --- |"]
    for name, prop in node["properties"].items():
        rows.append(
            f"| `{name}` | {_cell(_type(prop))} | {'yes' if name in required else ''} "
            f"| {_cell(prop.get('description', ''))} | {_cell(_values(prop))} |"
        )
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace every schema-table marker of a page by its table."""
    return MARKER.sub(lambda m: schema_table(m["file"], m["pointer"]), markdown)
