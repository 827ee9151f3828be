"""Rules on a model: the sample processor that enforces them and the run extension that keeps them.

- ``model.sample(n, processors=[Rules(rules)])`` returns ``n`` rows that break none of ``rules``
  (:func:`~genlab.rules.enforcement.enforce`: broken rows are derived or redrawn, never dropped);
  ``Rules([])`` samples without the run's own rules.
- :func:`attach_rules` makes rules the model's own (every later ``sample`` enforces them) and
  ``save_pretrained`` writes them to ``rules.json``; :func:`rules_of` reads them back.

Rules are the outermost processor (:attr:`Rules.order`), so the rows a watermark keeps are the rows the
rules then check: a watermarked sample breaks no rule either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from genlab.errors import CheckpointError, NotSupportedError
from genlab.models.hooks import Draw, RunExtension, SampleProcessor, SampleRequest, register_extension
from genlab.rules.enforcement import enforce
from genlab.rules.files import RULES_FILE, load_rules, save_rules
from genlab.rules.kinds import Rule, RuleError

#: The processor slot rules take on a model.
SLOT = "rules"


def bind_rules(model: Any, rules: Sequence[Rule]) -> list[Rule]:
    """``rules`` checked against ``model``'s table columns, values cast to their types (``Rule.bind``).

    Raises:
        NotSupportedError: rules for a model that does not make tables.
        RuleError: an unknown column, a wrong kind, or an impossible value (naming it).
    """
    rules = list(rules)
    if rules and model.data_.modality != "tables":
        raise NotSupportedError(f"rules constrain table rows; this model makes {model.data_.modality}")
    return [rule.bind(model.codec_) for rule in rules]


class Rules(SampleProcessor):
    """Every returned table row satisfies :attr:`rules` (module doc)."""

    slot = SLOT
    order = 100

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise RuleError(f"Rules takes genlab.rules rule objects, got {type(rule).__name__}")

    def __call__(self, draw: Draw, n: int, request: SampleRequest) -> pd.DataFrame:
        bound = bind_rules(request.model, self.rules)   # a bad rule is an error before anything is drawn
        records = draw(n, request)
        if not bound:
            return records

        def redraw(k: int, fixed: dict[str, Any] | None) -> pd.DataFrame:
            return draw(k, request.with_condition(fixed))

        condition = request.condition if isinstance(request.condition, dict) else None
        return enforce(redraw, records, bound, condition, request.generator).table


def attach_rules(model: Any, rules: Sequence[Rule]) -> list[Rule]:
    """Bind ``rules`` to ``model`` and make them its own (saved with it); ``[]`` removes them.
    Returns the bound rules."""
    bound = bind_rules(model, rules)
    if bound:
        model.processors_[SLOT] = Rules(bound)
    else:
        model.processors_.pop(SLOT, None)
    return bound


def rules_of(model: Any) -> list[Rule]:
    """The rules ``model`` enforces on every sample (``[]`` when none)."""
    processor = model.processors_.get(SLOT)
    return list(processor.rules) if processor is not None else []


class RulesFile(RunExtension):
    """A run's rules in ``rules.json`` beside its weights (no ``config.json`` record)."""

    key = "rules"

    def record(self, model: Any, directory: Path) -> None:
        rules = rules_of(model)
        if rules:
            save_rules(directory, rules)
        else:
            (directory / RULES_FILE).unlink(missing_ok=True)
        return None

    def restore(self, model: Any, directory: Path, record: Any) -> None:
        try:
            attach_rules(model, load_rules(directory))
        except RuleError as error:
            raise CheckpointError(f"{directory / RULES_FILE}: {error}") from None


register_extension(RulesFile())
