"""``threelines rules check`` and ``threelines rules test``: tools for rule authors."""

from __future__ import annotations

import click

from threelines.cli import options


@click.group(short_help="Check rule files and run their examples.")
def rules() -> None:
    """Check rule files and run the examples they carry."""


@rules.command(short_help="List every problem in a rule file.")
@click.argument("rules_file", metavar="[RULES]", required=False, type=click.Path(dir_okay=False))
@options.layers_opt
def check(rules_file, layers) -> None:
    """Check RULES (default: the bundled sample) against the manifest.

    Lists every problem, one per line with file, line and rule id: the
    schema, expressions (syntax, names, functions, types), layer and field
    names, industry codes, duplicate ids, the access list's rows and unit
    codes, example footprints. Exit 0 when there is none, 2 otherwise.
    """
    from threelines import sample
    from threelines.errors import ThreelinesError
    from threelines.layers.manifest import load_manifest
    from threelines.rules import check_rules

    try:
        manifest = load_manifest(sample.resolve_layers(layers))
        path = sample.resolve_rules(rules_file, manifest.rules)
        ruleset, problems = check_rules(path, manifest)
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    options.report_problems(problems, str(path))
    for line in review_lines(ruleset.clauses):
        click.echo(line)
    click.echo(f"{path}: {len(ruleset.rules)} rules and {len(ruleset.clauses)} access-list clauses, no problems")


def review_lines(clauses) -> list[str]:
    """One line per clause a person must review: read from prose, or left for review."""
    lines = []
    for c in clauses:
        if c.outcome == "review":
            why = c.reason or "marked for review"
            lines.append(f"{c.where}: clause {c.id!r}: review (not decided: {why}): {c.text}")
        elif c.source == "prose":
            codes = " ".join(c.industry) or "every industry"
            words = "、".join(c.matched) or "no industry word"
            lines.append(f"{c.where}: clause {c.id!r}: read from prose as {c.outcome} for {codes} ({words}): {c.text}")
    if lines:
        lines.append(f"{len(lines)} clause{'s' * (len(lines) != 1)} read from prose or left for review: check them")
    return lines


@rules.command(short_help="Run the examples that rules carry.")
@click.argument("rules_file", metavar="[RULES]", required=False, type=click.Path(dir_okay=False))
@options.layers_opt
def test(rules_file, layers) -> None:
    """Screen each rule's examples against that rule alone and report each failure.

    Exit 0 when every example does what it expects (trigger, no_trigger,
    unresolved), 1 when one does not, 2 for a rule file that does not load
    or an example that cannot be screened.
    """
    from threelines import sample
    from threelines.errors import ThreelinesError
    from threelines.layers.manifest import load_manifest
    from threelines.rules import load_rules
    from threelines.rules.examples import run_examples

    try:
        manifest = load_manifest(sample.resolve_layers(layers))
        path = sample.resolve_rules(rules_file, manifest.rules)
        ruleset = load_rules(path, manifest)
        results = run_examples(ruleset, manifest)
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    failed = [r for r in results if not r.ok]
    for r in failed:
        click.echo(f"{r.where}: rule {r.rule!r}: expected {r.expect}, got {r.got} ({r.detail})")
    missing = [r.id for r in ruleset.rules if not r.examples]
    click.echo(
        f"{len(results)} examples, {len(results) - len(failed)} passed, {len(failed)} failed"
        + (f"; rules without examples: {', '.join(missing)}" if missing else "")
    )
    if any(r.got == "error" for r in failed):
        raise SystemExit(2)  # an example that cannot be screened is bad input, not a failing rule
    if failed:
        raise SystemExit(1)
