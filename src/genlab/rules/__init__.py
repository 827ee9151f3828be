"""Rules that synthetic table rows never break: the kinds (:mod:`~genlab.rules.kinds`), rules read off
training data (:mod:`~genlab.rules.inference`), rules files (:mod:`~genlab.rules.files`) and their
enforcement on samples without losing rows (:mod:`~genlab.rules.enforcement`), and the processor and run
extension that put them on a model (:mod:`~genlab.rules.attach`)."""

from genlab.rules.attach import Rules, attach_rules, bind_rules, rules_of
from genlab.rules.enforcement import Enforced, broken_rows, check_rules, count_violations, enforce
from genlab.rules.files import RULES_FILE, RulesPlan, combine, load_rules, parse_rules, read_rules_file, save_rules
from genlab.rules.inference import infer_rules
from genlab.rules.kinds import (KINDS, Dependency, FixedCombinations, Inequality, Negative, Positive, Predicate,
                                Range, Rule, RuleError, Unique, rule_from_state)

__all__ = ["KINDS", "RULES_FILE", "Dependency", "Rules", "attach_rules", "bind_rules", "rules_of", "Enforced", "FixedCombinations", "Inequality", "Negative",
           "Positive", "Predicate", "Range", "Rule", "RuleError", "RulesPlan", "Unique", "broken_rows", "check_rules", "combine",
           "count_violations", "enforce", "infer_rules", "load_rules", "parse_rules", "read_rules_file",
           "rule_from_state", "save_rules"]
