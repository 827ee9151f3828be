"""Rules files: JSON that adds rules to a run and removes inferred ones.

A rules file is a JSON object::

    {"rules": [{"kind": "inequality", "low": "start", "high": "end"},
               {"kind": "range", "column": "age", "low": 18, "high": 99}],
     "remove": ["native-country -> race (Italy->White)"]}

``rules`` lists rules in the form :meth:`Rule.state` writes (kinds in :data:`~genlab.rules.kinds.KINDS`);
``remove`` lists descriptions (:meth:`Rule.describe`, as ``genlab fit --infer-rules`` prints them) of
inferred rules to drop, or of columns: a bare column name drops every inferred rule that reads it. A
bare JSON list is the ``rules`` of such an object. A run keeps its rules in ``rules.json`` as
``{"rules": [...]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from genlab.io import write_json
from genlab.rules.inference import infer_rules
from genlab.rules.kinds import Rule, RuleError, rule_from_state

#: Where a run directory keeps its rules.
RULES_FILE = "rules.json"


def read_rules_file(path: str | Path) -> tuple[list[Rule], list[str]]:
    """The rules a file adds and the descriptions or columns it removes.

    Raises:
        RuleError: a missing file, bad JSON, an unknown key or a malformed rule (naming it).
    """
    path = Path(path)
    if not path.is_file():
        raise RuleError(f"rules file {path} does not exist")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RuleError(f"rules file {path} is not valid JSON ({error})") from None
    return parse_rules(content, str(path))


def parse_rules(content: Any, where: str = "rules") -> tuple[list[Rule], list[str]]:
    """:func:`read_rules_file` on already-parsed JSON."""
    if isinstance(content, list):
        content = {"rules": content}
    if not isinstance(content, dict):
        raise RuleError(f"{where} must hold a JSON object with \"rules\" and \"remove\", or a list of rules")
    unknown = sorted(set(content) - {"rules", "remove"})
    if unknown:
        raise RuleError(f"{where}: unknown key {', '.join(map(repr, unknown))}; the keys are: remove, rules")
    rules, remove = content.get("rules", []), content.get("remove", [])
    if not isinstance(rules, list) or not isinstance(remove, list) or not all(isinstance(r, str) for r in remove):
        raise RuleError(f"{where}: \"rules\" must be a list of rule objects and \"remove\" a list of strings")
    return [rule_from_state(state) for state in rules], list(remove)


def combine(inferred: Sequence[Rule], added: Sequence[Rule], removed: Sequence[str]) -> list[Rule]:
    """``inferred`` without the ``removed`` ones (by description or column), then ``added``.

    Raises:
        RuleError: a removal that matches no inferred rule (naming the inferred ones).
    """
    kept = list(inferred)
    for name in removed:
        matching = [rule for rule in kept if rule.describe() == name or name in rule.columns]
        if not matching:
            listed = "; ".join(rule.describe() for rule in inferred) or "none"
            raise RuleError(f"cannot remove {name!r}: no inferred rule is or reads it; inferred rules: {listed}")
        kept = [rule for rule in kept if rule not in matching]
    seen = {rule.describe() for rule in kept}
    return kept + [rule for rule in added if rule.describe() not in seen]


def save_rules(directory: str | Path, rules: Sequence[Rule]) -> None:
    """Write ``rules.json`` into a run directory, atomically."""
    write_json(Path(directory) / RULES_FILE, {"rules": [rule.state() for rule in rules]})


def load_rules(directory: str | Path) -> list[Rule]:
    """The rules saved in a run directory, ``[]`` when it has no ``rules.json``."""
    path = Path(directory) / RULES_FILE
    if not path.is_file():
        return []
    rules, remove = read_rules_file(path)
    if remove:
        raise RuleError(f"{path} holds a run's rules, so it has no \"remove\" list")
    return rules


@dataclass(frozen=True)
class RulesPlan:
    """What ``genlab fit --rules FILE --infer-rules`` asks for, read and checked before training.

    Attributes:
        added: rules from the file.
        removed: descriptions or columns of inferred rules the file drops.
        infer: whether to infer rules from the training table.
    """

    added: tuple[Rule, ...]
    removed: tuple[str, ...]
    infer: bool

    @classmethod
    def read(cls, path: str | Path | None, infer: bool, columns: Sequence[str], modality: str) -> "RulesPlan":
        """Read the rules file (if any) and check its columns against the training table's.

        Raises:
            RuleError: rules for data that is not a table, a bad file, or an unknown column.
        """
        if (path is not None or infer) and modality != "tables":
            raise RuleError(f"rules constrain table rows; this data is {modality}")
        added, removed = read_rules_file(path) if path is not None else ([], [])
        for rule in added:
            for column in rule.columns:
                if column not in columns:
                    raise RuleError(f"rule {rule.describe()!r} names the unknown column {column!r}; "
                                    f"the table's columns are: {', '.join(map(str, columns))}")
        if removed and not infer:
            raise RuleError(f"the rules file removes {', '.join(map(repr, removed))}, but only inferred rules "
                            "can be removed: add --infer-rules")
        return cls(tuple(added), tuple(removed), infer)

    def apply(self, model: Any, table: Any) -> list[Rule]:
        """The run's rules for a fitted table ``model``: inferred from ``table`` (the training rows) when
        asked, less the removed ones, plus the added ones, all bound to the model's codec."""
        inferred = infer_rules(table, model.codec_.column_kinds) if self.infer else []
        return [rule.bind(model.codec_) for rule in combine(inferred, self.added, self.removed)]
