"""``genlab attribute RUN FILE --real DATA [--k 3] [--out attr.json]``: the training records nearest to
each generated record, and which records sit closer than unseen real ones do (memorised).

DATA is the dataset the run was trained on (a built-in name or a path, as for ``genlab fit`` and
``genlab eval``): its training split is searched, its test split sets the threshold. FILE is any file
``genlab sample`` writes. Prints the flag rate beside the real test records' own (about 5 %), and writes
``attr.json`` (``--out``; stdout without it): ``{"items": [{"neighbours": [{"index", "distance"}],
"memorised"}], "threshold", "flag_rate", "real_flag_rate", "percentile", "space"}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console

from genlab.api import load
from genlab.cli.detect_command import read_records
from genlab.cli.options import DataDir, Overwrite, RealData, refuse_existing
from genlab.data.registry import load as load_dataset
from genlab.io import write_json
from genlab.provenance.attribution import attribute as attribute_records


def attribute(
    run: Annotated[Path, typer.Argument(help="Run directory written by `genlab fit`.")],
    file: Annotated[Path, typer.Argument(help="A file genlab sample wrote (.txt, .jsonl, .csv, .npy).")],
    real: RealData,
    k: Annotated[int, typer.Option("--k", min=1, help="Nearest training records per sample.")] = 3,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write attr.json here (default: stdout).")] = None,
    data_dir: DataDir = None,
    overwrite: Overwrite = False,
) -> None:
    """Find the K training records nearest to each record in FILE and flag the memorised ones."""
    if out is not None:
        refuse_existing(out, overwrite)
    model = load(run)
    modality = model.data_.modality
    if modality == "tables":
        data = load_dataset(real, data_dir=data_dir, modality="tables", target=model.data_.target)
    else:
        data = load_dataset(real, data_dir=data_dir)
    records = read_records(file)
    if modality == "points" and isinstance(records, pd.DataFrame):
        records = records.to_numpy(np.float32)
    result = attribute_records(model, records, data=data, k=k)
    Console(stderr=True).print(f"{result.flag_rate:.1%} of {len(result.memorised)} samples sit nearer a training "
                               f"record than {100 - result.to_dict()['percentile']:.0f}% of real test records "
                               f"do (real test records: {result.real_flag_rate:.1%}; space: {result.space})")
    if out is None:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        write_json(out, result.to_dict())
