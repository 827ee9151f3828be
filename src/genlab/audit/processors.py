"""The remedies as sampling options: a debiased synthetic table from ``model.sample`` or ``genlab sample``.

``model.sample(n, processors=[Parity("income", "sex")])`` (``genlab sample RUN --parity income:sex``)
returns ``n`` rows remedied as :mod:`genlab.audit.remedies` describes:

- :class:`Balance` ``(column)``: the groups of ``column`` in equal shares (:func:`~genlab.audit.remedies.balanced`);
- :class:`Parity` ``(target, column)``: every group of ``column`` with the model's overall
  ``P(target = positive)`` (:func:`~genlab.audit.remedies.parity`; a family that conditions jointly);
- :class:`Fair` ``(target, column)``: the target redrawn blind to the group and its proxies, at equal
  rates (:func:`~genlab.audit.remedies.fair_target`; a binary target).

Each is a sample processor (:mod:`genlab.models.hooks`) that runs its remedy on the inner chain: every
draw the remedy makes (a free draw, a draw given a group and a target value) goes through ``draw``
under the call's own condition, so a watermark inside (order 50) marks every row and the rules outside
(order 100) check the rows the remedy returns; no processor runs twice. The remedies share one slot,
``"remedy"``: a call takes one of them. ``genlab audit`` samples through the same processors.

- **positive**: ``positive=None`` takes the target's rarer value in the training rows (the codec's
  shares), the rule ``genlab audit`` applies to its real rows (:func:`default_positive`).
- **conditions**: the remedy works within the call's condition (``condition={"city": "x"}`` equalises
  the rates among rows of city x). A condition that fixes the remedy's own columns
  (:attr:`Remedy.columns`) leaves nothing to equalise: those rows are drawn as the model draws them.
  Rules redraw broken rows given such values; ``genlab sample`` refuses the combination outright.
- **small draws**: a rule's redraw of a few rows goes through the remedy too; the remedies estimate
  from enough rows and round at random (:data:`~genlab.audit.remedies.RATE_ROWS`,
  :data:`~genlab.audit.remedies.FIT_ROWS`, :func:`~genlab.audit.remedies.balanced`), so those rows are
  remedied as well, in expectation.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import Any, ClassVar

import pandas as pd
import torch

from genlab.audit import remedies
from genlab.audit.remedies import categories, require_joint_conditioning
from genlab.errors import ConfigError
from genlab.models.hooks import Draw, SampleProcessor, SampleRequest

#: The processor slot the remedies share: one remedy per call.
SLOT = "remedy"


def default_positive(model: Any, target: str) -> Any:
    """The target's rarer value in ``model``'s training rows (the first of the rarest on a tie), as
    :func:`genlab.audit.audit` takes the rarer value in its real rows."""
    spec = model.codec_.spec(target)
    shares = spec["frequencies"][:len(spec["categories"])]   # then the share of missing values
    return min(zip(spec["categories"], shares), key=lambda pair: pair[1])[0]


class _Through:
    """``request.model`` as a remedy function sees it: ``sample`` draws through the inner chain ``draw``
    under the call's condition joined with the remedy's own (parsed as ``model.sample`` parses it)."""

    def __init__(self, draw: Draw, request: SampleRequest) -> None:
        self.draw, self.request = draw, request
        self.family = request.model.family
        self.conditions_tables_jointly = request.model.conditions_tables_jointly

    def sample(self, k: int, *, condition: dict[str, Any] | None = None,
               generator: torch.Generator | None = None) -> pd.DataFrame:
        own = self.request.model.table_condition(condition) or {}
        fixed = self.request.condition or {}
        assert all(fixed.get(column, value) == value for column, value in own.items()), (fixed, own)
        return self.draw(k, replace(self.request, condition={**fixed, **own} or None, generator=generator))


class Remedy(SampleProcessor):
    """A remedy of :mod:`genlab.audit.remedies` as a sample processor (module doc)."""

    slot = SLOT
    #: Inside the rules (100), so they check the remedied rows; outside a watermark (50), so it marks them.
    order = 75
    #: The ``genlab sample``/``genlab audit`` flag and :func:`genlab.audit.audit`'s ``remedy`` name.
    name: ClassVar[str]

    @property
    @abstractmethod
    def columns(self) -> tuple[str, ...]:
        """The columns the remedy decides; a condition that fixes one leaves nothing to remedy."""

    def __call__(self, draw: Draw, n: int, request: SampleRequest) -> pd.DataFrame:
        fixed = request.condition or {}
        if any(column in fixed for column in self.columns):
            return draw(n, request)
        return self.remedy(_Through(draw, request), n, request)

    @abstractmethod
    def remedy(self, model: _Through, n: int, request: SampleRequest) -> pd.DataFrame:
        """``n`` remedied rows drawn from ``model`` (the inner chain)."""


class Balance(Remedy):
    """``model.sample(n, processors=[Balance("sex")])``: the groups of ``column`` in equal shares, each
    group's rows drawn given the group (:func:`~genlab.audit.remedies.balanced`).

    Args:
        column: a categorical (or boolean) column of the model's table.
    """

    name = "balance"

    def __init__(self, column: str) -> None:
        self.column = column

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def check(self, model: Any) -> None:
        categories(model, self.column, "sensitive")

    def remedy(self, model: _Through, n: int, request: SampleRequest) -> pd.DataFrame:
        groups = categories(request.model, self.column, "sensitive")
        return remedies.balanced(model, n, self.column, groups, generator=request.generator)


class _TargetRemedy(Remedy):
    """A remedy of a target's rate between the groups of a column (parity, fair)."""

    def __init__(self, target: str, column: str, *, positive: Any = None) -> None:
        self.target, self.column, self.positive = target, column, positive

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.target, self.column)

    def check(self, model: Any) -> None:
        self.values(model)

    def values(self, model: Any) -> tuple[Any, list]:
        """The positive value (cast to the target's type, or :func:`default_positive`) and the others.

        Raises:
            NotSupportedError / DataError / ConfigError: a model without tables, a bad column or value.
        """
        categories(model, self.column, "sensitive")
        values = categories(model, self.target, "target")
        if self.target == self.column:
            raise ConfigError(f"the {self.name} remedy takes a target and a group of two different columns, "
                              f"got {self.target!r} twice")
        positive = default_positive(model, self.target) if self.positive is None else \
            model.table_condition({self.target: self.positive})[self.target]
        return positive, [value for value in values if value != positive]


class Parity(_TargetRemedy):
    """``model.sample(n, processors=[Parity("income", "sex")])``: every group of ``column`` gets the
    model's overall ``P(target = positive)``, its rows drawn given the group and the target value
    (:func:`~genlab.audit.remedies.parity`).

    Args:
        target: a categorical column.
        column: the categorical column whose groups get equal rates.
        positive: the target value whose rate is equalised; ``None`` takes :func:`default_positive`.

    Raises (on sampling, before any draw):
        NotSupportedError: a family that cannot condition on two columns jointly (the GAN), naming those
            that can; a model that does not make tables.
    """

    name = "parity"

    def check(self, model: Any) -> None:
        super().check(model)
        require_joint_conditioning(model, self.name, f"the group ({self.column}) and the target ({self.target})")

    def remedy(self, model: _Through, n: int, request: SampleRequest) -> pd.DataFrame:
        positive, negatives = self.values(request.model)
        return remedies.parity(model, n, self.column, self.target, positive, negatives,
                               generator=request.generator)


class Fair(_TargetRemedy):
    """``model.sample(n, processors=[Fair("income", "sex")])``: the model's rows with the target redrawn
    from a classifier blind to ``column`` and its proxies, at equal rates across the groups
    (:func:`~genlab.audit.remedies.fair_target`); every family.

    Args:
        target: a binary categorical column.
        column: the categorical column whose groups get equal rates.
        positive: as :class:`Parity`'s.
    """

    name = "fair"

    def values(self, model: Any) -> tuple[Any, list]:
        positive, negatives = super().values(model)
        if len(negatives) != 1:
            raise ConfigError(f"the fair remedy redraws a binary target; {self.target!r} has "
                              f"{len(negatives) + 1} values")
        return positive, negatives

    def remedy(self, model: _Through, n: int, request: SampleRequest) -> pd.DataFrame:
        positive, negatives = self.values(request.model)
        rows, _ = remedies.fair_target(model, n, self.column, self.target, positive, negatives,
                                       request.model.codec_.column_kinds, generator=request.generator)
        return rows


#: Each remedy by its name (``genlab audit``'s ``remedy``, the flags of ``genlab sample``).
REMEDIES: dict[str, type[Remedy]] = {remedy.name: remedy for remedy in (Balance, Parity, Fair)}


def remedy_from_flags(*, balance: str | None = None, parity: str | None = None,
                      fair: str | None = None) -> Remedy | None:
    """The remedy that ``--balance COL``, ``--parity TARGET:COL`` or ``--fair TARGET:COL`` names (``None``
    without one); its columns are checked against a model by :meth:`Remedy.check`.

    Raises:
        ConfigError: more than one remedy, or ``TARGET:COL`` without a target, a colon or a column.
    """
    given = {name: value for name, value in (("balance", balance), ("parity", parity), ("fair", fair))
             if value is not None}
    if len(given) > 1:
        raise ConfigError(f"choose one remedy, not {' and '.join('--' + name for name in given)}")
    if not given:
        return None
    (name, value), = given.items()
    if name == "balance":
        return Balance(value)
    target, colon, column = value.partition(":")
    if not (target and colon and column):
        raise ConfigError(f"--{name} takes TARGET:COL (e.g. income:sex), got {value!r}")
    return REMEDIES[name](target, column)
