"""Rules as data: the rule-file format, safe conditions, evaluation."""

from threelines.rules.load import Rule, RuleSet, check_rules, load_rules

__all__ = ["Rule", "RuleSet", "check_rules", "load_rules"]
