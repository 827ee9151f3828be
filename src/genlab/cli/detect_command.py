"""``genlab detect FILE --key KEY [--run RUN] [--out detect.json]``: test a sample file for a watermark.

FILE is any file ``genlab sample`` writes: ``.txt`` (text, ``<|endoftext|>``-separated), ``.jsonl``
(text objects, table rows, or record lists), ``.csv`` (a table, or points), ``.npy`` (images; points
carry no mark). A ``.png`` grid is refused: its pixels are rounded and tiled, so sample images to
``.npy``. Text needs ``--run`` (its tokenizer and vocabulary), images too (Tree-Ring inverts the
diffusion model); tables do not. Prints one summary line on stderr and writes ``detect.json`` (``--out``; to
stdout without it): ``{"items": [{"score", "p_value", "watermarked", ...}], "combined": {...}, "fpr",
"method", "options"}``. The key is read from the command line only and written nowhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console

from genlab.api import load
from genlab.cli.options import Overwrite, refuse_existing
from genlab.cli.sample_command import TEXT_SEPARATOR
from genlab.errors import DataError, NotSupportedError
from genlab.io import write_json
from genlab.provenance.detect import detect as detect_records

READABLE = (".txt", ".jsonl", ".csv", ".npy", ".png")


def read_records(path: Path) -> Any:
    """The records of a sample file (module doc): object array of strings, DataFrame, or float array."""
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    suffix = path.suffix
    if suffix == ".txt":
        text = path.read_text(encoding="utf-8")
        parts = text.split(f"\n{TEXT_SEPARATOR}\n")
        return np.array(parts[:-1] if parts and parts[-1] == "" else parts, dtype=object)
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not rows:
            raise DataError(f"{path.name} holds no records")
        if all(isinstance(r, dict) and "text" in r for r in rows):
            return np.array([str(r["text"]) for r in rows], dtype=object)
        if all(isinstance(r, dict) for r in rows):
            return pd.DataFrame(rows)
        return np.asarray(rows, dtype=np.float32)
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as error:
            raise DataError(f"{path.name} is not a plain numeric .npy file: {error}") from error
    if suffix == ".png":
        raise NotSupportedError("a .png grid cannot be split back into exact records: sample images to .npy "
                                "(genlab sample RUN --out samples.npy) to test them")
    raise DataError(f"cannot read records from {path.name!r}; use one of: {', '.join(READABLE)}")


def detect(
    file: Annotated[Path, typer.Argument(help="A file genlab sample wrote (.txt, .jsonl, .csv, .npy).")],
    key: Annotated[str, typer.Option("--key", help="The watermark key (an integer or a string).")],
    run: Annotated[Path | None, typer.Option("--run", help="Run directory of the model (needed for text).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write detect.json here (default: stdout).")] = None,
    fpr: Annotated[float | None, typer.Option(
        "--fpr", help="False-positive rate (default 1e-4 for text and tables, 1e-2 for images).")] = None,
    gamma: Annotated[float, typer.Option("--gamma", help="Green share the records were marked with.")] = 0.25,
    seeding_scheme: Annotated[str, typer.Option("--seeding-scheme", help="Text: lefthash or selfhash.")] = "lefthash",
    context_width: Annotated[int, typer.Option("--context-width", help="Text: tokens in the seeding window.")] = 1,
    ignore_repeated_ngrams: Annotated[bool, typer.Option(
        "--ignore-repeated-ngrams", help="Text: count each distinct token window once.")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Test the records in FILE for the watermark of KEY at a stated false-positive rate."""
    if out is not None:
        refuse_existing(out, overwrite)
    records = read_records(file)
    model = load(run) if run is not None else None
    if model is not None and model.data_.modality == "points" and isinstance(records, pd.DataFrame):
        records = records.to_numpy(np.float32)
    report = detect_records(records, key=key, model=model, fpr=fpr, gamma=gamma, seeding_scheme=seeding_scheme,
                            context_width=context_width, ignore_repeated_ngrams=ignore_repeated_ngrams)
    combined = report.combined
    flagged = sum(item.watermarked for item in report.items)
    verdict = combined.note or (f"z = {combined.score:.2f}, p = {combined.p_value:.3g}: "
                                f"{'watermarked' if combined.watermarked else 'no watermark found'}")
    Console(stderr=True).print(f"{report.method} at FPR {report.fpr:g}: {verdict} "
                               f"({flagged} of {len(report.items)} records flagged)")
    if out is None:
        typer.echo(json.dumps(report.to_dict(), indent=1))
    else:
        write_json(out, report.to_dict())
