"""Rule files: every malformed rule fails at load with file, line, rule id and what is wrong."""

from __future__ import annotations

import textwrap

import pytest

from threelines.errors import RuleError
from threelines.rules import check_rules, load_rules
from threelines.rules.expr import MAX_EXPRESSION_CHARS

GOOD = """\
version: 1
rules:
  - id: r1
    title: test rule
    dimension: redline
    outcome: reject
    layer: redline
    test: overlaps
    message: "overlaps {feature.name}"
    basis: test basis
"""


def rule_file(tmp_path, **changes) -> str:
    """The GOOD rule file with some keys replaced (None removes a key)."""
    lines = GOOD.splitlines()
    for key, value in changes.items():
        prefix = f"    {key}:"
        lines = [line for line in lines if not line.startswith(prefix)]
        if value is not None:
            lines.append(f"{prefix} {value}")
    path = tmp_path / "rules.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_error(path, manifest) -> str:
    with pytest.raises(RuleError) as info:
        load_rules(path, manifest)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_rule_loads(tmp_path, manifest):
    rules = load_rules(rule_file(tmp_path), manifest)
    assert [r.id for r in rules.rules] == ["r1"]


def test_sample_rules_load(ruleset):
    assert len(ruleset.rules) == 12
    assert len(ruleset.clauses) == 33
    assert {c.dimension for c in ruleset.clauses} == {
        "spatial_layout",
        "emission_control",
        "risk_prevention",
        "resource_efficiency",
    }
    assert ruleset.layers() == ["redline", "units", "quality", "pm25", "caps"]
    assert ruleset.reach_m("redline") == 500
    assert ruleset.reach_m("units") == 10000


CASES = [
    ("syntax error", {"condition": "'feature.name == \"a\" &&& true'"},
     "rules.yaml:11: rule 'r1': condition: Syntax error: token recognition error at: '& ' (line 1, column 23 of the expression)"),
    ("unknown name", {"condition": "prj.kind == 'area'"},
     "rules.yaml:11: rule 'r1': condition: unknown name 'prj'; the names here are project, feature, overlaps, overlap_m2"),
    ("unknown function", {"condition": "lower(feature.name) == 'a'"},
     "rules.yaml:11: rule 'r1': condition: unknown function 'lower'; use CEL's standard functions or industry_in"),
    ("python is not cel", {"condition": "__import__('os').system('touch /tmp/x') == 0"},
     "rules.yaml:11: rule 'r1': condition: unknown function"),
    ("unknown field", {"condition": "feature.nmae == 'a'"},
     "rules.yaml:11: rule 'r1': condition: layer 'redline' has no field 'nmae'; its fields are id, name, type, area_ha"),
    ("unknown project attribute", {"when": "project.emit_nx > 0.0"},
     "rules.yaml:11: rule 'r1': when: project has no attribute 'emit_nx'; it has id, name, industry"),
    ("int and double", {"message": "'{project.emit_nox * 2} t/a'"},
     "rules.yaml:10: rule 'r1': message: type error: Unsupported operation: float * int; numbers are doubles, so write 2.0 rather than 2"),
    ("not a boolean", {"condition": "feature.name"},
     "rules.yaml:11: rule 'r1': condition: must give true or false, but gives string on a sample project"),
    ("unknown layer", {"layer": "redlines"},
     "rules.yaml:10: rule 'r1': layer: no layer 'redlines' in"),
    ("bad industry code", {"industry": "[C26, X9999]"},
     "rules.yaml:11: rule 'r1': industry: code 'X9999' is not a GB/T 4754-2017 code"),
    ("bad industry_in prefix", {"when": "industry_in(project.industry, ['C2699'])"},
     "rules.yaml:11: rule 'r1': when: industry_in() prefix 'C2699' is not a GB/T 4754-2017 code; did you mean C26 化学原料和化学制品制造业"),
    ("distance missing", {"test": "within_distance"},
     "rules.yaml:10: rule 'r1': test: within_distance needs distance_m (metres)"),
    ("distance not allowed", {"distance_m": "100"},
     "rules.yaml:11: rule 'r1': distance_m: only within_distance and outside rules take a distance, not overlaps"),
    ("bad outcome", {"outcome": "deny"},
     "rules.yaml:10: rules[0].outcome: 'deny' is not one of ['reject', 'conditional']"),
    ("bad dimension", {"dimension": "water"},
     "rules.yaml:10: rules[0].dimension: 'water' is not one of ['redline', 'quality', 'cap'"),
    ("missing basis", {"basis": None},
     "rules.yaml:3: rules[0]: 'basis' is a required property"),
    ("unknown key", {"conditon": "true"},
     "rules.yaml:3: rules[0]: Additional properties are not allowed ('conditon' was unexpected)"),
    ("unbalanced brace", {"message": "'overlaps {feature.name'"},
     "rules.yaml:10: rule 'r1': message: unbalanced brace; write {{ or }} for a literal brace"),
    ("integer code", {"industry": "[0211]"},
     "rules.yaml:11: rules[0].industry[0]: 137 is not of type 'string'"),
    ("infinite distance", {"test": "within_distance", "distance_m": ".inf"},
     "rules.yaml:11: rule 'r1': distance_m: inf is not a finite number up to 1,000,000"),
    ("industry_in arity", {"when": "industry_in(project.industry)"},
     "rules.yaml:11: rule 'r1': when: industry_in takes 2 arguments (a code and a list of prefixes), not 1"),
    ("industry_in number", {"when": "industry_in(project.industry, 26.0)"},
     "rules.yaml:11: rule 'r1': when: industry_in: '26.0' is a number; write prefixes as strings"),
    ("capacity without pollutants", {"test": "capacity"},
     "rules.yaml:3: rule 'r1': pollutants: a capacity rule needs pollutants, and only a capacity rule takes them"),
    ("pollutants on an overlap rule", {"pollutants": "[nox]"},
     "rules.yaml:11: rule 'r1': pollutants: a capacity rule needs pollutants, and only a capacity rule takes them"),
    ("capacity layer without loads", {"test": "capacity", "pollutants": "[nox]"},
     "rules.yaml:11: rule 'r1': pollutants: layer 'redline' has no field for the remaining nox load or its offset ratio (remaining_nox, rem_nox, offset_ratio_nox, off_nox, offset_ratio, off_ratio)"),
    ("zonal on a vector layer", {"test": "zonal", "stat": "mean"},
     "rules.yaml:10: rule 'r1': test: zonal rules need a raster layer; 'redline' is a redline layer"),
    ("share without classes", {"layer": "pm25", "test": "zonal", "stat": "share", "condition": "value > 0.5", "message": "x"},
     "rules.yaml:3: rule 'r1': classes: stat share needs classes"),
    ("vector test on a raster", {"layer": "pm25", "message": "x"},
     "rules.yaml:7: rule 'r1': test: overlaps rules need a vector layer; 'pm25' is a raster layer"),
    ("too long", {"condition": "'" + " || ".join(["feature.name == \"a\""] * 60) + "'"},
     f"rules.yaml:11: rule 'r1': condition: is 1376 characters long; the limit is {MAX_EXPRESSION_CHARS}"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "changes", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_rule(tmp_path, manifest, label, changes, message):
    path = rule_file(tmp_path, **changes)
    assert load_error(path, manifest).startswith(f"{tmp_path}/{message}")


def test_duplicate_ids_and_all_problems_listed(tmp_path, manifest):
    text = (
        GOOD
        + textwrap.indent(GOOD.split("rules:\n", 1)[1], "")
        + GOOD.split("rules:\n", 1)[1].replace("layer: redline", "layer: nope").replace("id: r1", "id: r2")
    )
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    rules, problems = check_rules(path, manifest)
    assert [r.id for r in rules.rules] == ["r1"]
    assert problems[0] == f"{path}:11: rule 'r1': id is used twice (first at line 3)"
    assert problems[1].startswith(f"{path}:23: rule 'r2': layer: no layer 'nope'")
    assert load_error(path, manifest).endswith("(and 1 more problem)")


def test_names_inside_string_literals_are_not_references(tmp_path, manifest):
    path = rule_file(tmp_path, condition='\'feature.name != "project.owner" && feature["type"] != "x"\'')
    assert load_rules(path, manifest).rules[0].condition is not None


def test_yaml_aliases_are_refused(tmp_path, manifest):
    path = tmp_path / "rules.yaml"
    path.write_text('a: &a ["x", "x"]\nb: [*a, *a]\nrules: []\n', encoding="utf-8")
    assert load_error(path, manifest) == f"{path}:2: aliases (*a) are not allowed; write the value out"


def test_rule_file_that_tries_to_run_code_runs_nothing(tmp_path, manifest):
    marker = tmp_path / "pwned"
    path = rule_file(tmp_path, condition=f"\"__import__('os').system('touch {marker}') == 0\"")
    load_error(path, manifest)
    path = rule_file(tmp_path, message=f"\"{{__import__('os').system('touch {marker}')}}\"")
    load_error(path, manifest)
    assert not marker.exists()


def test_python_yaml_tags_are_refused(tmp_path, manifest):
    path = tmp_path / "rules.yaml"
    path.write_text("rules: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    message = load_error(path, manifest)
    assert message == f"{path}:1: tag !!python/object/apply:os.system is not allowed; only plain YAML data is read"


def test_cli_reports_a_bad_rule_in_one_line(run, tmp_path, sample_dir):
    path = rule_file(tmp_path, outcome="deny")
    result = run("screen", sample_dir / "projects" / "P01.geojson", "--rules", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:10: rules[0].outcome: 'deny' is not one of ['reject', 'conditional']\n"
