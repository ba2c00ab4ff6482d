"""Rule examples as tests: projects that must and must not trigger a rule.

A rule may carry ``examples``, each a footprint (a file relative to the rule
file, or WKT with its CRS) with project attributes and what the rule must do
with it: ``trigger``, ``no_trigger`` or ``unresolved``. ``threelines rules
test`` screens each example against its rule alone, like a linter's rule
tests with annotated code that must and must not match.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from threelines.errors import ThreelinesError
from threelines.layers.spec import Manifest
from threelines.rules.load import RuleSet


@dataclass(frozen=True)
class ExampleResult:
    """The outcome of one example: where it is, what was expected and what happened."""

    rule: str
    where: str
    expect: str
    got: str
    detail: str

    @property
    def ok(self) -> bool:
        """Whether the rule did what the example expects."""
        return self.expect == self.got


def run_examples(rules: RuleSet, manifest: Manifest) -> list[ExampleResult]:
    """Screen every rule's examples against that rule alone.

    Parameters
    ----------
    rules : RuleSet
    manifest : Manifest

    Returns
    -------
    list of ExampleResult
        One per example, in file order; an example whose footprint cannot be
        read is a failure that says why.
    """
    from threelines.engine.screen import screen_projects

    results = []
    for rule in rules.rules:
        alone = replace(rules, rules=(rule,), clauses=())
        for i, example in enumerate(rule.examples):
            where = example.get("_where", f"{rules.path}")
            try:
                projects = _example_projects(example, rules.path.parent, manifest)
                if projects.problems:
                    raise ThreelinesError(projects.problems[0])
                if len(projects) != 1:
                    raise ThreelinesError(
                        f"the example's footprint holds {len(projects)} features; an example is one project"
                    )
                (verdict,) = screen_projects(projects, manifest, alone)
                if manifest.unit_layer is not None and not verdict.units:
                    raise ThreelinesError("the example lies outside every control unit; screen would refuse it")
            except ThreelinesError as exc:
                results.append(ExampleResult(rule.id, where, example["expect"], "error", str(exc)))
                continue
            fired = [t for t in verdict.triggers if t.rule == rule.id]
            unsure = [n for n in verdict.unresolved if n.rule == rule.id]
            got = "trigger" if fired else "unresolved" if unsure else "no_trigger"
            detail = fired[0].message if fired else unsure[0].reason if unsure else f"verdict {verdict.verdict}"
            results.append(ExampleResult(rule.id, where, example["expect"], got, f"example {i + 1}: {detail}"))
    return results


def _example_projects(example: dict[str, Any], base: Path, manifest: Manifest):
    """Read an example's footprint with its attributes into projects."""
    from threelines.input.footprint import projects_from_frame, read_projects

    overrides = dict(example.get("project", {}))
    if "footprint" in example:
        path = Path(example["footprint"])
        path = path if path.is_absolute() else base / path
        return read_projects(path, manifest.working_crs, crs=example.get("crs"), overrides=overrides)
    import geopandas as gpd
    import shapely

    try:
        geom = shapely.from_wkt(example["wkt"])
    except shapely.errors.ShapelyError as exc:
        raise ThreelinesError(f"the example's WKT does not parse ({exc})") from None
    frame = gpd.GeoDataFrame({"id": ["example"]}, geometry=[geom], crs=None)
    return projects_from_frame(
        frame, manifest.working_crs, label="example", crs=example.get("crs", 4490), overrides=overrides
    )
