"""Rule files: parse, validate against the schema and the manifest, compile.

A rule file is YAML (see docs/rules.md for the format). Everything that can be
wrong with a rule is found when the file is loaded, with the file, line and
rule id: the schema, the expressions (syntax, names, functions, types), the
layer and field names, the industry codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threelines import industry, yamlio
from threelines.engine.measure import OVERLAP_FLOOR_M2
from threelines.errors import CRSError, IndustryCodeError, RuleError
from threelines.input.attributes import ATTRIBUTES, KINDS
from threelines.input.crs import parse_crs
from threelines.layers.spec import LayerSpec, Manifest
from threelines.limits import MAX_DISTANCE_M
from threelines.rules.access_list import Clause
from threelines.rules.access_list_load import load_access_list
from threelines.rules.expr import Expr, ExpressionError, attribute_refs, bind, check_against, compile_expr
from threelines.rules.templates import Message, compile_template

#: Spatial tests a rule can make between the footprint and a layer's features.
TESTS = ("overlaps", "within_distance", "inside", "outside", "capacity", "zonal")

#: Pollutants a capacity rule can charge: the project attribute of each load and its unit.
POLLUTANTS = {
    "so2": ("emit_so2", "t/a", "SO2"), "nox": ("emit_nox", "t/a", "NOx"), "vocs": ("emit_vocs", "t/a", "VOCs"),
    "pm": ("emit_pm", "t/a", "PM"), "cod": ("emit_cod", "t/a", "COD"), "nh3n": ("emit_nh3n", "t/a", "NH3-N"),
    "water": ("water_m3", "m3/a", "water"),
}  # fmt: skip

#: Names a zonal rule's condition and message use: the statistic's value and the cells behind it.
ZONAL_NAMES = ("project", "value", "cells")


def remaining_fields(pollutant: str) -> tuple[str, ...]:
    """Field names that may hold a zone's remaining capacity; ``rem_`` fits a shapefile's 10 characters."""
    return (f"remaining_{pollutant}", f"rem_{pollutant}")


def offset_fields(pollutant: str) -> tuple[str, ...]:
    """Field names that may hold a zone's offset ratio for a pollutant, most specific first."""
    return (f"offset_ratio_{pollutant}", f"off_{pollutant}", "offset_ratio", "off_ratio")


#: Extra names a capacity rule's message may use.
CAPACITY_NAMES = ("pollutant", "project_load", "remaining_load", "offset_ratio", "required_offset", "exceeds")

#: How far an ``outside`` rule looks for the nearest qualifying feature by default (m).
OUTSIDE_SEARCH_M = 5000.0

#: What a rule's ``project`` map holds: the attributes plus derived values.
PROJECT_KEYS = (*ATTRIBUTES, "industry_name", "area_m2", "area_ha", "area_mu")

#: Names a ``when`` expression may use, and a ``condition`` or ``message``.
WHEN_NAMES = ("project",)
PAIR_NAMES = (
    "project", "feature", "overlaps", "overlap_m2", "overlap_ha", "overlap_mu", "overlap_ratio", "distance_m",
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One compiled rule. See docs/rules.md for the meaning of each field."""

    id: str
    title: str
    dimension: str
    outcome: str
    layer: str
    test: str
    message: Message
    basis: str | None
    distance_m: float | None = None
    min_overlap_m2: float = OVERLAP_FLOOR_M2
    industry: tuple[str, ...] = ()
    industry_exclude: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    when: Expr | None = None
    condition: Expr | None = None
    pollutants: tuple[str, ...] = ()
    attains: Expr | None = None
    stat: str | None = None
    classes: tuple[float, ...] = ()
    examples: tuple[dict[str, Any], ...] = ()
    titles: tuple[tuple[str, str], ...] = ()

    @property
    def reach_m(self) -> float:
        """How far from a footprint this rule needs the layer's features."""
        if self.test == "within_distance":
            return float(self.distance_m or 0.0)
        if self.test == "outside":
            return float(self.distance_m or OUTSIDE_SEARCH_M)
        return 0.0


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, in file order, and the access-list clauses it names."""

    path: Path
    rules: tuple[Rule, ...]
    clauses: tuple[Clause, ...] = ()
    clause_layer: str | None = None

    def layers(self) -> list[str]:
        """The manifest layers the rules use, in first-use order."""
        return list(dict.fromkeys(r.layer for r in self.rules))

    def reach_m(self, layer: str) -> float:
        """The largest distance any rule looks around a footprint on a layer."""
        return max((r.reach_m for r in self.rules if r.layer == layer), default=0.0)


def load_rules(path: str | Path, manifest: Manifest) -> RuleSet:
    """Load and check a rule file against a manifest.

    Parameters
    ----------
    path : str or Path
        The rule YAML file.
    manifest : Manifest
        The layers the rules refer to.

    Returns
    -------
    RuleSet

    Raises
    ------
    RuleError
        For the first problem found, as ``file:line: rule 'id': what is wrong``.
    """
    rules, problems = check_rules(path, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' * (len(problems) > 2)})" if len(problems) > 1 else ""
        raise RuleError(problems[0] + more)
    return rules


def check_rules(path: str | Path, manifest: Manifest) -> tuple[RuleSet, list[str]]:
    """Load a rule file and list every problem in it.

    Returns
    -------
    (RuleSet, list of str)
        The rules and clauses that are sound, and one ``file:line: ...``
        message per problem.
    """
    path = Path(path)
    doc, problems = yamlio.load_checked(path, "rules.schema.json", RuleError, "rule file (--rules)")
    if problems:
        return RuleSet(path=path, rules=()), problems
    rules, seen = [], {}
    clauses, clause_layer = load_access_list(doc, manifest, problems)
    for clause in clauses:
        seen[clause.id] = clause.where
    for i, entry in enumerate(doc.data["rules"]):
        if entry["id"] in seen:
            problems.append(
                f"{doc.where('rules', i, 'id')}: rule {entry['id']!r}: id is used twice (first at {seen[entry['id']]})"
            )
            continue
        seen[entry["id"]] = f"line {doc.line('rules', i)}"
        try:
            rules.append(_compile_rule(entry, doc, i, manifest))
        except RuleError as exc:
            problems.append(str(exc))
    ruleset = RuleSet(path=path, rules=tuple(rules), clauses=tuple(clauses), clause_layer=clause_layer)
    return ruleset, problems


def _examples(entry: dict[str, Any], doc: yamlio.Located, i: int) -> list[dict[str, Any]]:
    """A rule's examples, each with its ``file:line``; a footprint file must exist."""
    import shapely

    out = []
    for j, example in enumerate(entry.get("examples", ())):
        where = doc.where("rules", i, "examples", j)

        def fail(message: str, where: str = where, j: int = j) -> RuleError:
            return RuleError(f"{where}: rule {entry['id']!r}: examples[{j}]: {message}")

        if "footprint" in example and not (doc.path.parent / example["footprint"]).exists():
            raise fail(f"footprint {example['footprint']} not found (paths are relative to the rule file)")
        footprint = doc.path.parent / example.get("footprint", ".")
        if "footprint" in example and not (footprint.is_file() or footprint.is_dir()):
            raise fail(f"footprint {example['footprint']} is not a regular file (a pipe, device or socket)")
        if "wkt" in example:
            try:
                geom = shapely.from_wkt(example["wkt"])
            except shapely.errors.ShapelyError as exc:
                raise fail(f"the WKT does not parse ({str(exc).splitlines()[0]})") from None
            if geom is None or geom.is_empty:
                raise fail("the WKT geometry is empty")
        if "crs" in example:
            try:
                parse_crs(example["crs"], what="crs")
            except CRSError as exc:
                raise fail(str(exc)) from None
        unknown = sorted(set(example.get("project", {})) - set(ATTRIBUTES))
        if unknown:
            raise fail(f"project has no attribute {unknown[0]!r}; it has {', '.join(ATTRIBUTES)}")
        out.append({**example, "_where": where})
    return out


def _compile_rule(entry: dict[str, Any], doc: yamlio.Located, i: int, manifest: Manifest) -> Rule:
    """Check one rule entry and compile its expressions."""
    rule_id = entry["id"]

    def fail(key: str, message: str) -> RuleError:
        return RuleError(f"{doc.where('rules', i, key)}: rule {rule_id!r}: {key}: {message}")

    spec = manifest.layers.get(entry["layer"])
    if spec is None:
        raise fail("layer", f"no layer {entry['layer']!r} in {manifest.path}; layers: {', '.join(manifest.layers)}")
    test = entry["test"]
    if (test == "zonal") != (spec.role == "raster"):
        needed = "raster" if test == "zonal" else "vector"
        raise fail("test", f"{test} rules need a {needed} layer; {spec.name!r} is a {spec.role} layer")
    if test == "zonal":
        if "stat" not in entry or "condition" not in entry:
            raise fail("test", "a zonal rule needs stat (mean, max, min, share) and a condition on value")
        if (entry["stat"] == "share") != ("classes" in entry):
            raise fail("classes", "stat share needs classes (the cell values it counts), and only share takes them")
    elif "stat" in entry or "classes" in entry:
        raise fail("stat", "only zonal rules take stat and classes")
    if test == "within_distance" and "distance_m" not in entry:
        raise fail("test", "within_distance needs distance_m (metres)")
    if test in ("overlaps", "inside") and "distance_m" in entry:
        raise fail("distance_m", f"only within_distance and outside rules take a distance, not {test}")
    if (test == "capacity") != ("pollutants" in entry):
        raise fail("pollutants", "a capacity rule needs pollutants, and only a capacity rule takes them")
    if "attains" in entry and test != "capacity":
        raise fail("attains", "only capacity rules take attains")
    if test == "capacity":
        fields = _feature_fields(spec)
        for name in {f for p in entry["pollutants"] for f in (*remaining_fields(p), *offset_fields(p))} & set(fields):
            if not str(spec.fields.get(name, "float")).startswith(("int", "uint", "float")):
                raise fail(
                    "pollutants", f"field {name!r} of layer {spec.name!r} is text; loads and ratios must be numbers"
                )
        for pollutant in entry["pollutants"]:
            if not {*remaining_fields(pollutant), *offset_fields(pollutant)} & set(fields):
                raise fail(
                    "pollutants",
                    f"layer {spec.name!r} has no field for the remaining {pollutant} load or its offset ratio "
                    f"({', '.join((*remaining_fields(pollutant), *offset_fields(pollutant)))})",
                )
    if "min_overlap_m2" in entry and test != "overlaps":
        raise fail("min_overlap_m2", "only overlaps rules take min_overlap_m2")
    for key in ("distance_m", "min_overlap_m2"):
        if key in entry and not (math.isfinite(entry[key]) and entry[key] <= MAX_DISTANCE_M):
            raise fail(key, f"{entry[key]} is not a finite number up to {MAX_DISTANCE_M:,.0f}")
    codes = {}
    for key in ("industry", "industry_exclude"):
        try:
            codes[key] = tuple(industry.normalise(c, what="code") for c in entry.get(key, ()))
        except IndustryCodeError as exc:
            raise fail(key, str(exc)) from None
    samples = _samples(spec)
    bound, checked = bind(samples), set()  # converted for CEL once; a placeholder the languages share, checked once
    compiled: dict[str, Any] = {}
    pair_names = ZONAL_NAMES if test == "zonal" else PAIR_NAMES
    message_names = pair_names + (CAPACITY_NAMES if test == "capacity" else ())
    for key, names in (
        ("when", WHEN_NAMES),
        ("condition", pair_names),
        ("attains", pair_names),
        ("message", message_names),
    ):
        if key not in entry:
            continue
        source = entry[key]
        try:
            if key == "message":
                texts = source.items() if isinstance(source, dict) else [("", source)]
                compiled[key] = Message(tuple((lang, compile_template(text, names)) for lang, text in texts))
            else:
                compiled[key] = compile_expr(source, names)
            exprs = compiled[key].expressions if key == "message" else [compiled[key]]
            for expr in exprs:
                if (expr.source, key == "message") in checked:
                    continue
                checked.add((expr.source, key == "message"))
                _check_fields(expr.source, spec)
                check_against(expr, samples, want_bool=key != "message", bound=bound)
        except ExpressionError as exc:
            raise fail(key, str(exc)) from None
    titles = entry["title"] if isinstance(entry["title"], dict) else {}
    return Rule(
        id=rule_id,
        title=next(iter(titles.values())) if titles else entry["title"],
        titles=tuple(titles.items()),
        dimension=entry["dimension"],
        outcome=entry["outcome"],
        layer=entry["layer"],
        test=test,
        message=compiled["message"],
        basis=entry.get("basis"),
        distance_m=float(entry["distance_m"]) if "distance_m" in entry else None,
        min_overlap_m2=float(entry.get("min_overlap_m2", OVERLAP_FLOOR_M2)),
        industry=codes["industry"],
        industry_exclude=codes["industry_exclude"],
        kinds=tuple(entry.get("kinds", ())),
        when=compiled.get("when"),
        condition=compiled.get("condition"),
        pollutants=tuple(entry.get("pollutants", ())),
        attains=compiled.get("attains"),
        stat=entry.get("stat"),
        classes=tuple(float(c) for c in entry.get("classes", ())),
        examples=tuple(_examples(entry, doc, i)),
    )


def _check_fields(source: str, spec: LayerSpec) -> None:
    """Check that ``project.x`` and ``feature.x`` name attributes that exist.

    CEL short-circuits, so a misspelt name behind a false ``&&`` would never
    fail on a sample; reading the names from the text catches it.
    """
    feature_fields = _feature_fields(spec)
    for var, name in sorted(attribute_refs(source)):
        if var == "project" and name not in PROJECT_KEYS:
            raise ExpressionError(f"project has no attribute {name!r}; it has {', '.join(PROJECT_KEYS)}")
        if var == "feature" and name not in feature_fields:
            raise ExpressionError(
                f"layer {spec.name!r} has no field {name!r}; its fields are {', '.join(feature_fields) or '(none)'}"
            )


def _feature_fields(spec: LayerSpec) -> list[str]:
    return [*spec.fields, *(["class"] if spec.role == "unit" and "class" not in spec.fields else [])]


def _samples(spec: LayerSpec) -> dict[str, Any]:
    """A project and a feature with every attribute set, typed as at run time."""
    project: dict[str, Any] = {key: 1.0 for key in PROJECT_KEYS}
    project.update(id="sample", name="sample", industry="C2614", industry_name="", kind=KINDS[0])
    project.update(fuel="coal", water_source="groundwater")
    feature: dict[str, Any] = {}
    for name, dtype in spec.fields.items():
        dtype = str(dtype)
        if dtype == "bool":
            feature[name] = True
        elif dtype.startswith(("int", "uint", "float")):
            feature[name] = 1.0
        elif dtype.startswith("datetime"):
            feature[name] = "2020-01-01"
        else:
            feature[name] = ""
    if spec.role == "unit":
        feature["class"] = "key"
    names = (*PAIR_NAMES, *CAPACITY_NAMES, *ZONAL_NAMES)
    measures = {name: 1.0 for name in names if name not in ("project", "feature")}
    measures.update(overlaps=True, exceeds=True, pollutant="nox")
    return {"project": project, "feature": feature, **measures}
