"""Rules as data: the rule-file format, safe conditions, what a rule decides for one project.

The engine (:mod:`threelines.engine`) runs them over columns of projects and pairs.
"""

from threelines.rules.load import Rule, RuleSet, check_rules, load_rules

__all__ = ["Rule", "RuleSet", "check_rules", "load_rules"]
