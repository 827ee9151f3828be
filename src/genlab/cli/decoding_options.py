"""The text-decoding flags of ``genlab sample``, with Hugging Face ``generate``'s names and meanings.

``--max-new-tokens``, ``--temperature`` (0 = greedy), ``--top-k``, ``--top-p``, ``--num-beams``,
``--repetition-penalty`` and ``--stop`` (repeatable) are the fields of
:class:`~genlab.sampling.decoding.GenerationConfig` of the same names; ``--stream`` prints each piece of
text to stdout as it is generated (:meth:`genlab.models.transformer.TransformerModel.stream`).

Every flag of ``genlab sample`` is passed as the sampling option of its name, so ``--temperature`` is
also a VAE's prior temperature. A value out of range, a flag the run's family does not take, or a
text-only flag on a model that does not make text is a usage error: typer's ``BadParameter``, one
``genlab: error:`` line naming the flag, exit status 2, checked before anything is drawn or written.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Callable

import torch
import typer

PANEL = "Text decoding (Hugging Face generate's names)"
#: Flags that only mean something for a model that makes text.
TEXT_ONLY = ("--prompt", "--stop", "--stream")
#: Flags for every model of token sequences of any length (text, molecules, chorales), and those modalities.
SEQUENCE_ONLY = ("--max-new-tokens",)
SEQUENCES = ("text", "smiles", "music")


def _in_range(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[Any], Any]:
    """A typer callback that accepts ``None`` or a finite number in ``[low, high]`` (``(low, high]`` when
    ``low_open``), naming the value when it is not; click's FloatRange lets NaN through, and typer has no
    open bound."""
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]" if high < math.inf else \
        f"{'>' if low_open else '>='} {low:g}"

    def check(value: Any) -> Any:
        if value is None:
            return None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise typer.BadParameter(f"{value:g} is not {'in ' if high < math.inf else ''}{bounds}")
        return value

    return check


def _nonempty_stops(values: list[str] | None) -> list[str] | None:
    if values and any(not value for value in values):
        raise typer.BadParameter("a stop string must not be empty")
    return values


MaxNewTokens = Annotated[int | None, typer.Option(
    "--max-new-tokens", callback=_in_range(1), rich_help_panel=PANEL,
    help="Tokens to generate after the prompt, at most.")]
Temperature = Annotated[float | None, typer.Option(
    "--temperature", callback=_in_range(0.0), rich_help_panel=PANEL,
    help="Softmax temperature of text models, 0 = greedy (the prior temperature of a VAE).")]
TopK = Annotated[int | None, typer.Option(
    "--top-k", callback=_in_range(1), rich_help_panel=PANEL, help="Sample among the k most likely tokens only.")]
TopP = Annotated[float | None, typer.Option(
    "--top-p", callback=_in_range(0.0, 1.0, low_open=True), rich_help_panel=PANEL,
    help="Nucleus sampling: the smallest set of tokens whose probability reaches p, in (0, 1].")]
NumBeams = Annotated[int | None, typer.Option(
    "--num-beams", callback=_in_range(1), rich_help_panel=PANEL, help="Beam search width; 1 = no beam search.")]
RepetitionPenalty = Annotated[float | None, typer.Option(
    "--repetition-penalty", callback=_in_range(1.0), rich_help_panel=PANEL,
    help="Divide the scores of tokens already present by this (>= 1; 1 = off).")]
Stop = Annotated[list[str] | None, typer.Option(
    "--stop", callback=_nonempty_stops, rich_help_panel=PANEL,
    help="End a sample before this string (repeatable).")]
Stream = Annotated[bool, typer.Option(
    "--stream", rich_help_panel=PANEL,
    help="Print each piece of text to stdout as it is generated; with -n > 1 the samples are drawn one after "
         "another (with temperature > 0 unlike the batched draw of the same seed).")]


#: The decoding flags and the sampling options they set.
DECODING_FLAGS = {"--max-new-tokens": "max_new_tokens", "--temperature": "temperature", "--top-k": "top_k",
                  "--top-p": "top_p", "--num-beams": "num_beams", "--repetition-penalty": "repetition_penalty",
                  "--stop": "stop"}


def decoding_flags(*, max_new_tokens: int | None, temperature: float | None, top_k: int | None,
                   top_p: float | None, num_beams: int | None, repetition_penalty: float | None,
                   stop: list[str] | None) -> dict[str, Any]:
    """``{flag: value}`` of the decoding flags given on the command line (``None`` and no ``--stop`` left out)."""
    values = (max_new_tokens, temperature, top_k, top_p, num_beams, repetition_penalty, stop or None)
    return {flag: value for flag, value in zip(DECODING_FLAGS, values) if value is not None}


def check_combinations(options: dict[str, Any], stream: bool, verify: str | None) -> None:
    """Refuse beam search with sampling flags (it is deterministic), ``--stream`` with beam search (its
    best beam is known only at the end) or with ``--verify`` (which keeps only the samples that pass,
    after they are drawn). ``options`` are the sampling options given."""
    num_beams = options.get("num_beams")
    beams = isinstance(num_beams, int) and num_beams > 1
    if beams:
        sampling = [flag for flag, option in DECODING_FLAGS.items()
                    if option in ("top_k", "top_p", "stop") and options.get(option)]
        if options.get("temperature") not in (None, 0, 1):
            sampling.append("--temperature")
        if sampling:
            raise typer.BadParameter(f"beam search is deterministic: it takes no sampling flags (--top-k, --top-p, "
                                     f"--stop, a --temperature other than 0 or 1); got {', '.join(sampling)}",
                                     param_hint="'--num-beams'")
    if stream and beams:
        raise typer.BadParameter(f"beam search knows its best beam only at the end; use --num-beams 1 "
                                 f"to stream, got {num_beams}", param_hint="'--stream'")
    if stream and verify is not None:
        raise typer.BadParameter("--verify keeps only the samples that pass once they are drawn; "
                                 "stream or verify, not both", param_hint="'--stream'")


def check_flags_fit(family: str, modality: str, sample_options: frozenset[str], used: dict[str, str],
                    flags: dict[str, str], stream: bool) -> None:
    """Refuse a text-only flag on a model that does not make text (``--max-new-tokens``: token sequences of any
    length), then a flag whose sampling option the family does not take, listing the family's own options
    (as flags where there is one).

    Args:
        family: the run's family name.
        modality: what the run's model makes.
        sample_options: the family's sampling options (:attr:`GenerativeModel.sample_options`).
        used: ``{flag: sampling option}`` given on the command line (``--set NAME`` for ``--set NAME=...``).
        flags: ``{flag: sampling option}`` of every flag of the command.
        stream: whether ``--stream`` was given.
    """
    for flag in TEXT_ONLY:
        if modality != "text" and (flag in used or (flag == "--stream" and stream)):
            raise typer.BadParameter(f"for text models only; this {family} model makes {modality}",
                                     param_hint=f"'{flag}'")
    for flag in SEQUENCE_ONLY:
        if modality not in SEQUENCES and flag in used:
            raise typer.BadParameter(f"for models of text, molecules or chorales; this {family} model makes "
                                     f"{modality}", param_hint=f"'{flag}'")
    flag_of = {option: flag for flag, option in flags.items()}
    for flag, option in used.items():
        if option not in sample_options:
            listed = ", ".join(sorted(flag_of.get(o, o) for o in sample_options)) or "none"
            others = " (those without a flag as --set NAME=VALUE)" if set(sample_options) - set(flag_of) else ""
            raise typer.BadParameter(f"the {family} family has no sampling option {option}; "
                                     f"its options: {listed}{others}", param_hint=f"'{flag}'")


def stream_samples(model: Any, n: int, generator: torch.Generator, options: dict[str, Any],
                   separator: str) -> list[str]:
    """Draw ``n`` texts one after another, printing each to stdout piece by piece as it is generated,
    followed by a ``separator`` line between samples; return the texts (prompt included).

    Each text is the prompt plus :meth:`stream`'s pieces, so with one sample (or greedy decoding) it is
    what ``model.sample`` returns for the same seed; sampled texts after the first differ from a batched
    draw, whose random numbers are consumed row by row at every step.
    """
    options = dict(options)
    prompt = options.pop("prompt", "")
    if not isinstance(prompt, str):
        raise typer.BadParameter(f"streaming continues one prompt string, got {prompt!r}", param_hint="'--prompt'")
    texts = []
    for i in range(n):
        if i:
            print(separator, flush=True)
        pieces = [prompt]
        print(prompt, end="", flush=True)
        for piece in model.stream(prompt, generator=generator, **options):
            pieces.append(piece)
            print(piece, end="", flush=True)
        print(flush=True)
        texts.append("".join(pieces))
    return texts
