"""How features reach a model from above: sample processors and run extensions.

A feature (rules, watermarks, compression, audit remedies) never edits the model contract and the
contract imports no feature. Instead every family offers two small typed interfaces:

- **Sample processors** wrap a model's draw. ``model.sample(n, processors=[p, ...])`` composes each
  processor around the family's own draw; a processor receives ``draw(k, request) -> records`` (the
  inner chain) and the :class:`SampleRequest`, and returns ``n`` records. It may redraw (rules), thin
  and draw more (a table watermark), or change the options of the inner draw (a logits processor for a
  text watermark, the initial noise of a Tree-Ring mark). Processors of one :attr:`~SampleProcessor.slot`
  replace each other: a model keeps its own in ``model.processors_`` (a run's saved rules), and one
  passed to ``sample`` replaces the model's of the same slot. Larger :attr:`~SampleProcessor.order`
  runs outside: rules (100) see the rows a watermark (50) kept, so a watermarked sample breaks no rule.
- **Run extensions** own a key of ``config.json`` and files of a run directory. A feature registers
  one with :func:`register_extension`; ``save_pretrained`` asks each for its record and files,
  ``from_pretrained`` hands each its record before the weights load (:meth:`RunExtension.prepare`, e.g.
  to rebuild int8 layers) and after (:meth:`RunExtension.restore`, e.g. to re-attach saved rules). A
  run whose ``config.json`` holds a key no registered extension owns is refused with the key's name,
  rather than loaded without it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class SampleRequest:
    """One call of ``model.sample``, as the processors see it.

    Attributes:
        model: the fitted model being sampled.
        condition: the parsed condition: a class index, a checked table dict ``{column: value}``, or None.
        generator: the call's source of randomness (processors draw from it too, so seeds reproduce).
        options: the family's sampling options of this call (``model.sample_options`` names them).
    """

    model: Any
    condition: int | dict[str, Any] | None
    generator: torch.Generator | None
    options: dict[str, Any] = field(default_factory=dict)

    def with_options(self, **options: Any) -> "SampleRequest":
        """The same request with ``options`` added or replaced."""
        return SampleRequest(self.model, self.condition, self.generator, {**self.options, **options})

    def with_condition(self, condition: int | dict[str, Any] | None) -> "SampleRequest":
        """The same request under another parsed condition."""
        return SampleRequest(self.model, condition, self.generator, self.options)


#: ``draw(k, request) -> k raw records``: the inner chain a processor wraps.
Draw = Callable[[int, SampleRequest], Any]


class SampleProcessor(ABC):
    """Wraps a model's draw (module doc). Subclasses set :attr:`slot` and :attr:`order`."""

    #: Processors of the same slot replace each other (a call's rules replace the run's own).
    slot: ClassVar[str]
    #: Larger runs outside smaller: rules (100) outside watermarks (50).
    order: ClassVar[int] = 0

    def check(self, model: Any) -> None:
        """Raise a :class:`~genlab.errors.GenlabError` naming what is supported when ``model``'s records
        cannot carry this processor; called before any drawing."""

    @abstractmethod
    def __call__(self, draw: Draw, n: int, request: SampleRequest) -> Any:
        """``n`` raw records, drawn through ``draw``."""


def compose(draw: Draw, processors: list[SampleProcessor]) -> Draw:
    """``draw`` wrapped by ``processors``, the largest :attr:`~SampleProcessor.order` outermost."""
    for processor in sorted(processors, key=lambda p: p.order):
        draw = _wrapped(processor, draw)
    return draw


def _wrapped(processor: SampleProcessor, inner: Draw) -> Draw:
    def draw(n: int, request: SampleRequest) -> Any:
        return processor(inner, n, request)

    return draw


class RunExtension(ABC):
    """A feature's share of a run directory (module doc). ``key`` names its record in ``config.json``."""

    key: ClassVar[str]

    def record(self, model: Any, directory: Path) -> Any:
        """The JSON record to store under ``config.json[key]`` (None stores nothing); may write files into
        ``directory`` (and must remove its stale ones when it has nothing to keep)."""
        return None

    def prepare(self, network: nn.Module, record: Any) -> None:
        """Before the weights load: reshape ``network`` as the record describes (e.g. int8 layers)."""

    def restore(self, model: Any, directory: Path, record: Any) -> None:
        """After the weights load: give ``model`` back what the feature keeps (e.g. its rules)."""


_EXTENSIONS: dict[str, RunExtension] = {}


def register_extension(extension: RunExtension) -> None:
    """Make ``extension`` part of every ``save_pretrained``/``from_pretrained`` (idempotent by key)."""
    _EXTENSIONS[extension.key] = extension


def extensions() -> list[RunExtension]:
    """The registered run extensions, in registration order."""
    return list(_EXTENSIONS.values())
