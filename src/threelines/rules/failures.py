"""Rules that fail to evaluate on many projects: counted over a run and reported once each.

A rule whose condition errors (``int(feature.name)`` on names that are not
numbers) leaves each project it concerns unresolved, marked ``failed``. One
such project is that project's note; a rule failing on more than
:data:`~threelines.limits.RULE_FAILURE_SHARE` of the projects is a broken
rule, and the run says so once, with the rule id, the count and the first
error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from threelines.limits import RULE_FAILURE_MIN, RULE_FAILURE_SHARE

#: How a results line with a failed rule looks (orjson's compact form; a quote inside a value is escaped).
_FAILED = b'"failed":true'


@dataclass
class RuleFailures:
    """Per rule: the projects it failed on, and its first error, over the projects seen."""

    failed: Counter = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)
    projects: int = 0

    def add(self, notes: Iterable[tuple[str, str]], projects: int = 0) -> None:
        """Count one project's failed ``(rule, reason)`` notes (a rule once per project), and ``projects`` seen."""
        self.projects += projects
        for rule, reason in dict(notes).items():
            self.failed[rule] += 1
            self.first.setdefault(rule, reason)

    def add_verdicts(self, verdicts) -> None:
        """Count the failed notes of screened projects (:class:`~threelines.engine.verdict.Verdict`)."""
        for verdict in verdicts:
            self.add(((u.rule, u.reason) for u in verdict.unresolved if u.failed), projects=1)

    def add_lines(self, lines: Iterable[bytes], projects: int) -> None:
        """Count the failed notes in the batch results lines of ``projects`` projects; only lines with one are parsed.

        Only the lines of projects left unresolved can hold a failed note:
        ``lines`` may leave out the others, which are counted all the same.
        """
        self.projects += projects
        for line in lines:
            if _FAILED in line:
                record = orjson.loads(line)
                self.add((u["rule"], u["reason"]) for u in record.get("unresolved", ()) if u.get("failed"))

    def report(self) -> list[str]:
        """One line per rule that failed on more than the stated share of the projects."""
        out = []
        for rule, count in sorted(self.failed.items()):
            if count >= RULE_FAILURE_MIN and count > RULE_FAILURE_SHARE * self.projects:
                out.append(
                    f"Warning: rule {rule!r} could not be evaluated for {count} of {self.projects} projects "
                    f'(first error: {self.first[rule]}); they are unresolved ("failed": true): fix the rule'
                )
        return out
