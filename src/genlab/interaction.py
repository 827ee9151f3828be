"""Working with a model record by record: variations of a chosen record, paths between two, refinement.

These are the verbs behind the playground (``genlab serve``) and ``genlab variations``; each takes raw
records (one record as a batch of one: ``(1, *shape)``, a one-row DataFrame, a ``(1,)`` text array) and
returns raw records as ``sample`` does.

**Variations** of a record at ``strength`` ``s`` in ``[0, 1]`` (0 = the record itself, 1 = unrelated):

- points and images: the family's own :meth:`~genlab.models.base.GenerativeModel.variations`. A latent
  family (``vae``, ``gan``) mixes the record's latent ``z`` (the posterior mean, or the given latent of a
  GAN, which has no encoder) with noise, ``sqrt(1 - s^2) z + s eps``, which keeps a prior-distributed
  latent prior-distributed (``s = 1`` is an independent draw); ``diffusion`` runs SDEdit (Meng et al.
  2022) as ``sample(init=record, strength=s)`` does: the one image-to-image edit genlab has.
- ``transformer`` on text and the other string modalities (SMILES, chorales): keep a prefix (given, or
  the first ``1 - s`` of the record's characters) and sample the rest again.
- tables (every family): keep the ``locked`` columns and draw the others from ``p(rest | locked)``;
  with nothing locked, each variation redraws a random ``s`` share of the columns (at least one).

**Interpolation** between two records (``vae``: encoded first) or two latents (``vae``, ``gan``):
:func:`genlab.sampling.latent.interpolate`.

**Refine**: keep what is fixed (``locked`` table columns, a text ``prefix``, a ``condition``) and
draw the rest again, ``n`` times.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from genlab.data.dataset import STRING_MODALITIES
from genlab.errors import ConfigError, DataError, NotSupportedError
from genlab.models.base import GenerativeModel
from genlab.sampling.latent import check_latents, interpolate



def variations(model: GenerativeModel, record: Any = None, *, n: int = 4, strength: float = 0.3,
               generator: torch.Generator | None = None, latent: Sequence[float] | None = None,
               condition: Any = None, locked: Sequence[str] = (), prefix: str | None = None,
               **options: Any) -> np.ndarray | pd.DataFrame:
    """``n`` variations of one record (module docstring), raw records as ``model.sample`` returns them.

    Args:
        model: a fitted model.
        record: one raw record as a batch of one; ``None`` only for a GAN given ``latent``.
        n: how many variations.
        strength: ``s`` in ``[0, 1]``.
        generator: source of randomness; the same seed gives the same variations.
        latent: ``(latent_dim,)`` the record's latent (``gan``, or a ``vae`` to skip encoding).
        condition: class of a class-conditional model; for tables, extra ``{column: value}`` to keep.
        locked: tables: columns to keep.
        prefix: text: the part to keep (default: the first ``1 - s`` of the record).
        **options: sampling options (text and tables, and ``steps`` for diffusion).
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise ConfigError(f"strength must be a number in [0, 1] (0 = the record, 1 = unrelated), got {strength!r}")
    modality = model.data_.modality
    if modality == "tables":
        return _table_variations(model, _one_row(record), n, strength, generator, condition, locked, options)
    if modality in STRING_MODALITIES:
        _no_prompt(options)
        text = _one_text(record)
        kept = prefix if prefix is not None else text[:int(round((1 - strength) * len(text)))]
        return model.sample(n, prompt=kept, generator=generator, **options)
    return model.variations(None if record is None else _one_array(model, record), n=n, strength=strength,
                            generator=generator, condition=condition,
                            latent=None if latent is None else np.asarray(latent, dtype=np.float32), **options)


def interpolate_records(model: GenerativeModel, a: Any, b: Any, *, steps: int = 8, method: str = "slerp",
                        condition: Any = None) -> np.ndarray:
    """Decode the latent path from ``a`` to ``b``, ``(steps, *shape)`` float32: each end a raw record as a
    batch of one (encoded first; the ``vae``) or a latent ``(latent_dim,)`` (``vae``, ``gan``)."""
    if not hasattr(model, "latent_shape") or model.data_.modality not in ("points", "images"):
        raise NotSupportedError(f"the {model.family} family on {model.data_.modality} has no latent space to "
                                "interpolate in; interpolation works on vae and gan models of points and images")
    ends = [_latent_of(model, None if _is_latent(end) else end, end if _is_latent(end) else None, condition)
            for end in (a, b)]
    return interpolate(model, ends[0], ends[1], steps=steps, method=method, condition=condition, inputs="latents")


def refine(model: GenerativeModel, record: Any = None, *, n: int = 4, generator: torch.Generator | None = None,
           condition: Any = None, locked: Sequence[str] = (), prefix: str | None = None,
           **options: Any) -> np.ndarray | pd.DataFrame:
    """Keep what is fixed and draw the rest again, ``n`` times.

    - tables: the ``locked`` columns of ``record`` (and ``condition``) are kept; the others are drawn
      from ``p(rest | kept)``;
    - text: ``prefix`` (or all of ``record``) is kept and continued;
    - points and images: ``condition`` (a class) is kept and the record drawn again.
    """
    modality = model.data_.modality
    if modality == "tables":
        kept = _kept_values(model, _one_row(record), locked) if record is not None else {}
        if locked and record is None:
            raise DataError("locked columns need the record whose values they keep")
        return model.sample(n, condition={**kept, **(model.table_condition(condition) or {})} or None,
                            generator=generator, **options)
    if modality in STRING_MODALITIES:
        _no_prompt(options)
        kept = prefix if prefix is not None else (_one_text(record) if record is not None else "")
        return model.sample(n, prompt=kept, generator=generator, **options)
    if locked or prefix is not None:
        raise ConfigError(f"locked columns and a prefix are for tables and text; this model makes {modality}: "
                          "keep a condition instead")
    return model.sample(n, condition=condition, generator=generator, **options)


# ---------------------------------------------------------------------------------------- helpers
def _is_latent(end: Any) -> bool:
    return isinstance(end, (list, tuple)) or (isinstance(end, np.ndarray) and end.ndim == 1 and end.dtype != object)


def _latent_of(model: GenerativeModel, record: Any, latent: Any, condition: Any) -> np.ndarray:
    """``(L,)`` the given latent, or the record's posterior mean (a family that encodes records)."""
    if latent is not None:
        return check_latents(np.asarray(latent, dtype=np.float32)[None], model.latent_shape).numpy()[0]
    if record is None:
        raise DataError("give the record, or its latent")
    return model.encode(_one_array(model, record), condition=condition)[0]


def _no_prompt(options: dict[str, Any]) -> None:
    if "prompt" in options:
        raise ConfigError("here the kept prefix is the prompt: pass prefix=, not the prompt option")


def _one_array(model: GenerativeModel, record: Any) -> np.ndarray:
    x = np.asarray(record, dtype=np.float32)
    if x.shape == tuple(model.data_.shape):
        x = x[None]
    if x.shape != (1, *model.data_.shape):
        raise DataError(f"one record of shape {tuple(model.data_.shape)} is needed, got {x.shape}")
    return x


def _one_row(record: Any) -> pd.DataFrame:
    row = pd.DataFrame([record]) if isinstance(record, dict) else record
    if not isinstance(row, pd.DataFrame) or len(row) != 1:
        raise DataError("one table row is needed (a one-row DataFrame or a dict keyed by column)")
    return row


def _one_text(record: Any) -> str:
    text = record if isinstance(record, str) else (record[0] if len(record) == 1 else None)
    if not isinstance(text, str):
        raise DataError("one text record (a string) is needed")
    return text


def _kept_values(model: GenerativeModel, row: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """``{column: value}`` of ``row`` for ``columns``; missing values are not kept (they are drawn)."""
    known = model.codec_.columns
    unknown = [column for column in columns if column not in known]
    if unknown:
        raise DataError(f"unknown column(s) {', '.join(map(repr, unknown))}; columns: {', '.join(known)}")
    return {column: row[column].iloc[0].item() if hasattr(row[column].iloc[0], "item") else row[column].iloc[0]
            for column in columns if not pd.isna(row[column].iloc[0])}


def _table_variations(model: GenerativeModel, row: pd.DataFrame, n: int, strength: float,
                      generator: torch.Generator | None, condition: Any, locked: Sequence[str],
                      options: dict[str, Any]) -> pd.DataFrame:
    extra = model.table_condition(condition) or {}
    if locked:
        return model.sample(n, condition={**_kept_values(model, row, locked), **extra}, generator=generator,
                            **options)
    ids = set(model.codec_.id_columns)
    columns = [column for column in model.codec_.columns if column not in ids and column not in extra]
    redraw = max(1, int(round(strength * len(columns))))
    rows = []
    for _ in range(n):   # a fresh set of redrawn columns per variation
        order = torch.randperm(len(columns), generator=generator).tolist()
        keep = [columns[i] for i in order[redraw:]]
        kept = {**_kept_values(model, row, keep), **extra}
        rows.append(model.sample(1, condition=kept or None, generator=generator, **options))
    return pd.concat(rows, ignore_index=True)
