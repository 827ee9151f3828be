"""``genlab sample DIR -n N --out FILE``: draw new records from a saved model.

Text models (text, music) print their samples to stdout, separated by ``<|endoftext|>`` lines,
unless ``--out`` names a ``.txt`` file (the same layout) or a ``.jsonl`` file (one ``{"prompt": ...,
"text": ..., "valid": true|false|null}`` per sample, ``valid`` from ``--verify``); ``--prompt`` starts
every sample, and ``--verify python`` keeps only samples that parse, drawing again until N pass or 10 N
have been drawn, and reports the share that passed. Under ``--constrain python`` a sample ends (end of text
or ``--stop``) only where its text parses, and it ends after its first complete top-level statement: a new line
it starts at column 0 (outside strings and brackets; not ``else``/``elif``/``except``/``finally``) after text that
parses is not part of it (:mod:`genlab.sampling.python_constraint`), so ``--prompt 'def '`` gives one function.
In the last tokens before ``--max-new-tokens`` it also ends at the end of any logical line after which its text
parses; one that meets none in time is cut unfinished, written with ``"valid": false`` and counted on stderr.
The decoding flags have Hugging Face ``generate``'s names and meanings (:mod:`genlab.cli.decoding_options`):
``--max-new-tokens``, ``--temperature`` (0 = greedy), ``--top-k``, ``--top-p``, ``--num-beams``,
``--repetition-penalty``, ``--stop`` (repeatable); ``--stream`` prints each piece of text to stdout as it is generated (and writes
``--out`` only when given).
A captioner (a transformer fitted on captioned images) writes one caption a line of each ``--image`` picture
(repeatable; ``-n N`` with one picture: N captions of it, greedy unless ``--temperature`` is given).
Molecules are one SMILES a line (stdout, ``.smi`` or ``.txt``), or a ``.csv`` of each SMILES, whether RDKit
parses it, and its QED, logP, SA score and molecular weight (columns qed, logp, sa, mw); ``--condition
qed=high`` (repeatable: ``--condition logp=low`` too) draws molecules in those tertiles of the training
molecules' RDKit properties (qed, logp, sa, mw; bins low, mid, high; :mod:`genlab.data.smiles`). SMILES and chorales are sampled inside their
format's grammar (every sample parses; :mod:`genlab.sampling.token_grammar`) unless ``--constrain none``.
Chorales are also written as scores or sound (``.mid``, ``.musicxml``, ``.wav``: one file a sample), and
``--melody FILE|bach:NAME`` harmonises a soprano line: every sample keeps it note for note and draws alto,
tenor and bass under it (:mod:`genlab.cli.score_output`, :mod:`genlab.data.melody`).

Every flag sets the sampling option of its name (``--temperature`` is a VAE's prior temperature too,
``--steps`` a diffusion sampler's); a flag or ``--set`` key the run's family does not take, or a bad
value, is a usage error (exit 2) that lists the family's options, before anything is written. Points
and images write ``.jsonl`` as one JSON list per record, tables as one object per row. A diffusion run
first prints the backend that runs its network (``backend: onnxruntime`` or ``eager``; ``--backend``).

Table models write ``.csv`` (the training columns, names and value formats); ``--condition
column=value`` (repeatable) makes every row satisfy each condition, values read as their column's type.
A remedy of ``genlab audit`` gives a debiased table (:mod:`genlab.audit.processors`): ``--balance COL``
equal shares of COL's groups, ``--parity TARGET:COL`` the same ``P(target = positive)`` in every group
(positive: the target's rarer training value; a family that conditions jointly, not the GAN), ``--fair
TARGET:COL`` the target redrawn blind to COL and its proxies at equal rates. One remedy at a time; it
composes with ``--watermark-key`` (every row marked) and the run's rules (every row kept within them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import torch
import typer
from rich.console import Console

from genlab.api import load
from genlab.audit.processors import remedy_from_flags
from genlab.cli.decoding_options import (DECODING_FLAGS, MaxNewTokens, NumBeams, RepetitionPenalty, Stop, Stream,
                                         Temperature, TopK, TopP, check_combinations, check_flags_fit, decoding_flags,
                                         stream_samples)
from genlab.cli.image_edit_options import Image, Init, Mask, Strength, read_mask, read_picture
from genlab.cli.options import Overwrite, Seed, parse_assignments, parse_conditions, refuse_existing
from genlab.cli.score_output import SCORE_SUFFIXES, check_score_paths, melody_option, write_scores
from genlab.errors import ConfigError
from genlab.io import atomic_path
from genlab.provenance.embed import watermark_options
from genlab.models.base import check_count
from genlab.report.figures import save_image_grid, save_scatter
from genlab.sampling.decoding import VERIFIERS, GenerationConfig, sample_verified
from genlab.sampling.python_constraint import CONSTRAINTS, text_constraint

SUFFIXES = (".npy", ".csv", ".png", ".txt", ".jsonl", ".smi", *SCORE_SUFFIXES)
#: Line written between text samples in a ``.txt`` output.
TEXT_SEPARATOR = "<|endoftext|>"
#: Modalities whose records are strings: printed to stdout when no ``--out`` is given.
TEXT_MODALITIES = ("text", "smiles", "music")
#: Every flag that sets a sampling option, and the option it sets.
FLAG_OPTIONS = {"--steps": "steps", "--sampler": "sampler", "--guidance": "guidance", "--truncation": "truncation",
                "--prompt": "prompt", "--init": "init", "--strength": "strength",
                "--mask": "mask", "--backend": "backend", "--image": "image", **DECODING_FLAGS}


def sample(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    n: Annotated[int | None, typer.Option(
        "-n", "--n", help="How many records to draw (default 64; a captioner: one caption per --image).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file: .npy, .csv (points, tables, molecules), .png, .txt (text), .smi "
                            "(molecules), .mid, .musicxml or .wav (chorales: one file a sample) or .jsonl; default "
                            "samples.png, samples.csv for tables; text is printed to stdout.")] = None,
    condition: Annotated[list[str] | None, typer.Option(
        "--condition", "-c", help="Class index or name; for tables column=value, for molecules property=bin, "
                                  "e.g. qed=high (properties qed, logp, sa, mw; bins low, mid, high; "
                                  "repeatable).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Sampler steps (diffusion).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="Sampler name, e.g. ddpm, ddim (diffusion).")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="Classifier-free guidance scale.")] = None,
    backend: Annotated[str | None, typer.Option(
        "--backend", help="What runs a diffusion network: auto (onnxruntime on CPU where it can and pays, else "
                          "eager), onnxruntime or eager; the first line says which ran.")] = None,
    truncation: Annotated[float | None, typer.Option("--truncation", help="Latent truncation psi (GAN).")] = None,
    prompt: Annotated[str | None, typer.Option(
        "--prompt", help="Text every sample starts with (text models); the caption to draw (image models "
                         "trained on captions, e.g. shapes).")] = None,
    verify: Annotated[str | None, typer.Option("--verify", help=f"Keep only text samples that pass a check: {', '.join(VERIFIERS)}.")] = None,
    constrain: Annotated[str | None, typer.Option(
        "--constrain", help=f"Constrain text decoding: {', '.join(CONSTRAINTS)} (drop each token after which the "
                            "text can no longer become valid Python, and end each sample after its first complete "
                            "top-level statement, or near --max-new-tokens at a line end where it parses); "
                            "smiles and music: grammar (the default: "
                            "every sample parses; chorales without parallel fifths or octaves), syntax (the "
                            "grammar alone) or none.")] = None,
    melody: Annotated[str | None, typer.Option(
        "--melody", help="Chorale models: harmonise this soprano line, a one-part MusicXML or MIDI file on the "
                         "eighth-note grid or bach:NAME (the soprano of a piece of music21's Bach corpus, e.g. "
                         "bach:bwv269); every sample keeps it note for note and is as long.")] = None,
    option: Annotated[list[str] | None, typer.Option("--set", "-s", help="Other sampling option key=value.")] = None,
    init: Init = None,
    strength: Strength = None,
    mask: Mask = None,
    image: Image = None,
    max_new_tokens: MaxNewTokens = None,
    temperature: Temperature = None,
    top_k: TopK = None,
    top_p: TopP = None,
    num_beams: NumBeams = None,
    repetition_penalty: RepetitionPenalty = None,
    stop: Stop = None,
    stream: Stream = False,
    watermark_key: Annotated[str | None, typer.Option(
        "--watermark-key", help="Watermark the samples with this key (text, tables; see genlab detect).")] = None,
    watermark_strength: Annotated[float | None, typer.Option(
        "--watermark-strength", help="Text: the KGW bias delta (2); tables: share of red rows replaced (1).")] = None,
    balance: Annotated[str | None, typer.Option(
        "--balance", help="Tables: equal shares of this categorical column's groups.")] = None,
    parity: Annotated[str | None, typer.Option(
        "--parity", help="Tables, TARGET:COL: every group of COL with the same P(target = its rarer value).")] = None,
    fair: Annotated[str | None, typer.Option(
        "--fair", help="Tables, TARGET:COL: the target redrawn blind to COL and its proxies, at equal rates.")] = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Draw N new records from the model in RUN and write them to OUT."""
    flags = {"--steps": steps, "--sampler": sampler, "--guidance": guidance, "--truncation": truncation,
             "--prompt": prompt, "--init": init, "--strength": strength,
             "--mask": mask, "--backend": backend, "--image": image or None}
    given = {**{flag: value for flag, value in flags.items() if value is not None},
             **decoding_flags(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                              num_beams=num_beams, repetition_penalty=repetition_penalty, stop=stop)}
    extra = parse_assignments(option, "sampling option")
    options = {**{FLAG_OPTIONS[flag]: value for flag, value in given.items()}, **extra}
    check_combinations(options, stream, verify)
    if out is not None and out.suffix not in SUFFIXES:
        raise ConfigError(f"cannot write samples to {out.name!r}; use one of: {', '.join(SUFFIXES)}")
    condition = parse_conditions(condition)
    remedy = remedy_from_flags(balance=balance, parity=parity, fair=fair)
    model = load(run)
    modality = model.record_modality   # what its samples are: a captioner of images writes text
    n = n if n is not None else len(image) if image else 64
    used = {**{flag: FLAG_OPTIONS[flag] for flag in given}, **{f"--set {key}": key for key in extra}}
    captioned = modality == "images" and "prompt" in model.sample_options   # --prompt is a caption there
    check_flags_fit(model.family, modality, model.sample_options,
                    {flag: key for flag, key in used.items() if not (captioned and flag == "--prompt")},
                    FLAG_OPTIONS, stream)
    declared = model.sampling_options()   # types, ranges and choices, declared once by the family
    if constrain is not None and "constrain" in declared:   # the run's own grammar (smiles, music)
        options["constrain"], constrain = constrain, None
    if melody is not None:
        options["melody"] = melody_option(model, melody)
    model.check_declared_options({key: value for key, value in options.items() if key in declared})
    if init is not None:
        options["init"] = read_picture(init, model.data_.shape)
    if image:
        options["image"] = np.concatenate([read_picture(path, model.data_.shape, flag="--image",
                                                               resize=True) for path in image])
    if mask is not None:
        options["mask"] = read_mask(mask, model.data_.shape)
    if watermark_key is not None or watermark_strength is not None:
        options.update(watermark_options(model, watermark_key, watermark_strength))
    if remedy is not None:
        remedy.check(model)
        fixed = [column for column in remedy.columns if isinstance(condition, dict) and column in condition]
        if fixed:
            raise ConfigError(f"--{remedy.name} decides {fixed[0]}: drop --condition {fixed[0]}=..., or the "
                              f"remedy, which would have nothing to equalise")
        options["processors"] = [*options.get("processors", ()), remedy]
    constraint = None if constrain is None else text_constraint(
        model, constrain, stop=options.get("stop") or (),
        max_new_tokens=options.get("max_new_tokens", GenerationConfig.max_new_tokens))
    if constraint is not None:
        options["logits_processors"] = (*options.get("logits_processors", ()), constraint)
    printed = out is None and modality in TEXT_MODALITIES   # text goes to the terminal unless --out says where
    if out is None and not printed:
        out = Path("samples.csv" if modality == "tables" else "samples.png")
    if out is not None:
        if out.suffix in SCORE_SUFFIXES:
            check_score_paths(out, check_count(n), overwrite)
        else:
            refuse_existing(out, overwrite)
        _check_output(out, modality, condition)
    console = Console(stderr=True)
    if "backend" in declared:   # a family whose network can run on several engines says which this call uses
        console.print(f"backend: {model.sampling_backend(check_count(n), condition=condition, **options)}")
    generator = torch.Generator().manual_seed(seed)
    if stream:
        model.condition_index(condition)   # text takes no condition: the same errors as sample's
        records = np.array(stream_samples(model, check_count(n), generator, options, TEXT_SEPARATOR), dtype=object)
    elif verify is not None:
        if modality != "text":
            raise ConfigError(f"--verify checks text; this model makes {modality}")
        if not isinstance(options.get("prompt", ""), str):
            raise ConfigError("--verify draws again until N samples pass: give one prompt string, not a list")
        verified = sample_verified(model, n, verify, condition=condition, generator=generator, **options)
        records = np.array(verified.samples, dtype=object)
        console.print(f"{verified.passed} of {verified.drawn} samples pass {verify} "
                      f"(validity {verified.validity:.1%})")
        for level, count in verified.levels.items():
            console.print(f"  {level}: {count} of {verified.drawn} pass ({count / max(verified.drawn, 1):.1%})")
    else:
        records = model.sample(n, condition=condition, generator=generator, **options)
    if constraint is not None:
        console.print(constraint.summary())
        unfinished = sum(not VERIFIERS[constrain](str(text)) for text in records)
        console.print(f"{unfinished} of {len(records)} samples reached --max-new-tokens before their text parsed "
                      f"(valid: false)")
    lines = "image" in options   # captions: one a line
    if printed and not stream and len(records):   # the layout --stream prints
        print(_separator(modality, lines=lines).join(str(text) for text in records), flush=True)
    if out is not None and out.suffix in SCORE_SUFFIXES:
        paths = write_scores(records, out)
        console.print(f"wrote {len(paths)} samples to [bold]{paths[0]}[/bold]" + (" ..." if len(paths) > 1 else ""))
    elif out is not None:
        write_records(records, out, modality, prompt=options.get("prompt", ""),
                      verify=verify if verify is not None or constraint is None else constrain, lines=lines)
        console.print(f"wrote {len(records)} samples to [bold]{out}[/bold]")


def _check_output(out: Path, modality: str, condition: dict[str, str] | str | None) -> None:
    """Refuse an output suffix or a condition that does not fit what the model makes."""
    if isinstance(condition, dict) and modality not in ("tables", "smiles"):
        raise ConfigError(f"column=value conditions are for tables (and property=bin for molecules); this model "
                          f"makes {modality}: pass one class index or name")
    if modality == "tables" and out.suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"this model makes tables: write them to a .csv or .jsonl file, not {out.name!r}")
    if out.suffix == ".csv" and modality not in ("points", "tables", "smiles"):
        raise ConfigError(f"CSV output holds points; this model makes {modality}: use .npy or .png")
    if out.suffix == ".smi" and modality != "smiles":
        raise ConfigError(f".smi files hold molecules; this model makes {modality}")
    if out.suffix in SCORE_SUFFIXES:
        if modality != "music":
            raise ConfigError(f"{out.suffix} files hold chorales; this model makes {modality}")
        return
    if out.suffix not in (".jsonl", ".csv", ".smi") and (out.suffix == ".txt") != (modality in TEXT_MODALITIES):
        raise ConfigError(f"this model makes {modality}: write text to .txt or .jsonl and other records to "
                          f".npy, .csv, .png or .jsonl")


def write_records(records: np.ndarray | pd.DataFrame, out: Path, modality: str, *,
                  prompt: str | list[str] = "", verify: str | None = None, lines: bool = False) -> None:
    """Write records to ``out`` by its suffix: raw array, CSV of points or of a table, a picture, text (one
    record a line with ``lines``, as molecules always are), or JSON lines (text: ``{"prompt", "text",
    "valid"}``, ``valid`` the ``verify`` check's verdict or ``None``; tables: one object per row; points and
    images: one nested list per record)."""
    if out.suffix == ".jsonl":
        with atomic_path(out) as tmp:
            Path(tmp).write_text(_json_lines(records, modality, prompt, verify), encoding="utf-8")
    elif out.suffix in (".txt", ".smi"):
        with atomic_path(out) as tmp:
            Path(tmp).write_text("".join(f"{text}{_separator(modality, lines=lines)}" for text in records),
                                 encoding="utf-8")
    elif out.suffix == ".npy":
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, records)
    elif modality in ("tables", "smiles"):
        table = records if modality == "tables" else _molecule_table(records)
        with atomic_path(out) as tmp:
            table.to_csv(tmp, index=False)
    elif out.suffix == ".csv":
        columns = [f"x{i}" for i in range(records.shape[1])]
        with atomic_path(out) as tmp:
            pd.DataFrame(records, columns=columns).to_csv(tmp, index=False)
    elif modality == "images":
        save_image_grid(records, out)
    else:
        save_scatter(records, out, title=f"{len(records)} samples")


def _separator(modality: str, *, lines: bool = False) -> str:
    """What ends each sample in a ``.txt`` file, and comes between them on stdout: a newline after a molecule
    (one SMILES a line) or after each record of one-line text (``lines``: captions), a separator line after
    other text."""
    return "\n" if lines or modality == "smiles" else f"\n{TEXT_SEPARATOR}\n"


def _molecule_table(records: np.ndarray) -> pd.DataFrame:
    """One row per SMILES: whether RDKit parses it (MOSES's validity) and, where it does, QED, logP, SA and
    molecular weight under the names ``--condition`` takes (qed, logp, sa, mw; empty otherwise)."""
    from genlab.data.smiles import molecule_properties
    from genlab.metrics import molecules

    smiles = [str(s) for s in records]
    valid = np.array([molecules.canonical(s) is not None for s in smiles], dtype=bool)
    values = molecule_properties([s if ok else "" for s, ok in zip(smiles, valid)])
    return pd.DataFrame({"smiles": smiles, "valid": valid, **values})


def _json_lines(records: np.ndarray | pd.DataFrame, modality: str, prompt: str | list[str],
                verify: str | None) -> str:
    if modality == "tables":
        return records.to_json(orient="records", lines=True, force_ascii=False, double_precision=15).rstrip("\n") + "\n"
    if modality == "text":
        check = VERIFIERS[verify] if verify is not None else None
        prompts = prompt if isinstance(prompt, list) else [prompt] * len(records)   # a list: one per sample
        rows = [{"prompt": p, "text": str(text), "valid": None if check is None else bool(check(str(text)))}
                for p, text in zip(prompts, records)]
    else:
        rows = [np.asarray(record).tolist() for record in records]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
