"""A bias audit of a table model (:func:`audit`) and its self-contained HTML page (:func:`render_html`).

The audit draws ``n`` rows from the model (or through a remedy's sample processor,
:mod:`genlab.audit.processors`, the one ``genlab sample --parity`` uses) and
measures them against real rows (:mod:`genlab.audit.measures`): representation, amplification of the
target's rate gap, Column Shapes per group and downstream fairness of classifiers trained on the
samples, each beside the same classifier trained on real rows. Downstream scores follow DECAF's
protocol (van Breugel et al. 2021): ``test_rows`` real test rows, each classifier trained ``runs``
times (seeds ``0..runs-1``), means and standard deviations reported.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import torch

from genlab.audit import measures, processors, remedies
from genlab.audit.processors import Balance, Fair, Parity
from genlab.errors import ConfigError, DataError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

#: Remedies :func:`audit` can sample through (the processors of :mod:`genlab.audit.processors`).
REMEDIES = tuple(processors.REMEDIES)


@dataclass(frozen=True)
class Audit:
    """Everything the audit measured (module doc); ``downstream[source][classifier]`` holds
    ``{"auroc": (mean, std), ...}`` for ``source`` ``"real"`` and ``"synthetic"``."""

    sensitive: str
    target: str | None
    positive: Any
    groups: list[str]
    remedy: str | None
    proxies: list[str]
    rows: int
    representation: dict[str, dict[str, measures.Share]]
    rates: dict[str, dict[str, float]]
    gaps: dict[str, float]
    group_shapes: dict[str, float]
    downstream: dict[str, dict[str, dict[str, tuple[float, float]]]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["positive"] = str(self.positive)
        return out


def check_columns(model: Any, sensitive: str, target: str | None) -> tuple[list, list]:
    """The sensitive column's groups and the target's two values (``[]`` without a target).

    Raises:
        NotSupportedError: a model that does not make tables.
        DataError / ConfigError: an unknown column, or a column that is not categorical (naming those that are).
    """
    groups = remedies.categories(model, sensitive, "sensitive")
    if target is None:
        return groups, []
    values = remedies.categories(model, target, "target")
    if len(values) != 2:
        raise ConfigError(f"the target {target!r} has {len(values)} values; demographic parity and equalized odds "
                          f"need a binary target")
    return groups, values


def audit(model: Any, real: pd.DataFrame, *, sensitive: str, target: str | None = None,
          train: pd.DataFrame | None = None, n: int = 10_000, remedy: str | None = None,
          classifiers: tuple[str, ...] = ("boosting",), runs: int = 1, test_rows: int = 2000,
          generator: torch.Generator | None = None) -> Audit:
    """Audit ``model`` against ``real`` rows (module doc).

    Args:
        model: a fitted table model.
        real: real rows the model did not train on; ``test_rows`` of them score downstream classifiers
            (at most half of them when ``train`` is not given: the rest train the real reference classifier).
        sensitive: a categorical column defining the groups.
        target: a binary categorical column (its rarer value is the positive one), or ``None``.
        train: the model's training rows (for the training shares and the reference classifier).
        n: rows to draw.
        remedy: ``None``, ``"balance"``, ``"parity"`` or ``"fair"`` (the last two need ``target``; parity
            needs a family that conditions on two columns jointly, see :mod:`genlab.audit.remedies`).
        classifiers: downstream classifiers among :data:`~genlab.audit.measures.CLASSIFIERS`.
        runs: seeds per classifier.
    """
    groups, values = check_columns(model, sensitive, target)
    if remedy not in (None,) + REMEDIES:
        raise ConfigError(f"unknown remedy {remedy!r}; choose one of: {', '.join(REMEDIES)}")
    if remedy in ("parity", "fair") and target is None:
        raise ConfigError(f"the {remedy} remedy acts on the target's rate between groups: give a target")
    unknown = sorted(set(classifiers) - set(measures.CLASSIFIERS))
    if unknown:
        raise ConfigError(f"unknown classifier {unknown[0]!r}; choose one of: {', '.join(measures.CLASSIFIERS)}")
    missing = sorted(set(model.codec_.columns) - set(real.columns))
    if missing:
        raise DataError(f"the real rows lack the model's columns {', '.join(missing)}")
    real = real[model.codec_.columns]
    positive = min(values, key=lambda v: int((real[target] == v).sum())) if target is not None else None
    kinds = model.codec_.column_kinds
    if remedy is None:
        synthetic = model.sample(n, generator=generator)
    else:   # through the processor genlab sample uses: one code path for remedied rows
        if remedy == "balance":
            processor = Balance(sensitive)
        elif remedy == "parity":
            processor = Parity(target, sensitive, positive=positive)
        else:
            processor = Fair(target, sensitive, positive=positive)
        synthetic = model.sample(n, generator=generator, processors=[processor])
    # the fair remedy redraws the target only, so the proxies of its rows are those its classifier left out
    blind = remedies.proxies(synthetic, sensitive, target, kinds) if remedy == "fair" else []
    sources = {"samples": synthetic, "test": real, **({} if train is None else {"train": train})}
    representation = {name: measures.shares(rows[sensitive], groups) for name, rows in sources.items()}
    rates, gaps, downstream = {}, {}, {}
    if target is not None:
        for name, rows in sources.items():
            rates[name], gaps[name] = measures.target_rates(rows, sensitive, target, positive)
        order = np.random.default_rng(0).permutation(len(real))
        cut = test_rows if train is not None else min(test_rows, len(real) // 2)   # keep rows to train on
        test, rest = real.iloc[order[:cut]], real.iloc[order[cut:]]
        reference = train if train is not None else rest
        for source, rows in (("real", reference), ("synthetic", synthetic)):
            downstream[source] = {}
            for classifier in classifiers:
                scores = [measures.downstream(rows, test, sensitive, target, positive, kinds, classifier=classifier,
                                              seed=seed) for seed in range(runs)]
                downstream[source][classifier] = {
                    field: (float(np.mean([getattr(s, field) for s in scores])),
                            float(np.std([getattr(s, field) for s in scores])))
                    for field in ("auroc", "demographic_parity", "equalized_odds", "ftu")}
    return Audit(sensitive=sensitive, target=target, positive=positive, groups=[str(g) for g in groups],
                 remedy=remedy, proxies=blind, rows=len(synthetic), representation=representation, rates=rates, gaps=gaps,
                 group_shapes=measures.group_shapes(real, synthetic, sensitive, groups, kinds),
                 downstream=downstream)


def render_html(result: Audit, *, title: str = "genlab bias audit") -> str:
    """A self-contained page: the group shares and target rates as pictures, then every table."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}</style></head><body>",
             f"<h1>{_e(title)}</h1><p>sensitive column <b>{_e(result.sensitive)}</b>"
             + (f", target <b>{_e(result.target)}</b> = {_e(str(result.positive))}" if result.target else "")
             + f"; {result.rows} samples" + (f" through the <b>{_e(result.remedy)}</b> remedy" if result.remedy else "")
             + (f" (target drawn without {_e(', '.join(result.proxies))})" if result.proxies else "")
             + "</p>", "<h2>Representation</h2>", _png(_shares_figure(result)),
             _table(["group"] + [f"{s} share (95% interval)" for s in result.representation],
                    [[g] + [f"{v[g].share:.3f} [{v[g].low:.3f}, {v[g].high:.3f}]" for v in result.representation.values()]
                     for g in result.groups]),
             "<h2>Fidelity per group</h2>",
             _table(["group", "Column Shapes (samples vs real)"], [[g, f"{result.group_shapes[g]:.3f}"] for g in result.groups])]
    if result.target:
        parts += ["<h2>Amplification</h2>", _png(_rates_figure(result)),
                  _table(["group"] + [f"P({result.target}={result.positive} | group), {s}" for s in result.rates],
                         [[g] + [f"{r.get(g, float('nan')):.3f}" for r in result.rates.values()] for g in result.groups]
                         + [["gap"] + [f"{result.gaps[s]:.3f}" for s in result.rates]]),
                  "<h2>Downstream fairness</h2><p>a classifier trained on each source, tested on real test rows "
                  "(mean &plusmn; std over seeds); demographic parity and equalized odds differences from fairlearn; "
                  "FTU: share of predictions changed by flipping the sensitive attribute</p>",
                  _table(["trained on", "classifier", "AUROC", "DP difference", "EO difference", "FTU"],
                         [[source, name] + [f"{m:.3f} &plusmn; {s:.3f}" for m, s in scores.values()]
                          for source, by_name in result.downstream.items() for name, scores in by_name.items()])]
    parts += [f"<script type='application/json' id='genlab-audit'>{_e(json.dumps(result.to_dict()))}</script>",
              "</body></html>"]
    return "\n".join(parts)


def _shares_figure(result: Audit) -> bytes:
    figure, axis = plt.subplots(figsize=(6, 3))
    width = 0.8 / len(result.representation)
    for i, (source, values) in enumerate(result.representation.items()):
        x = np.arange(len(result.groups)) + i * width
        share = np.array([values[g].share for g in result.groups])
        error = np.array([[values[g].share - values[g].low, values[g].high - values[g].share] for g in result.groups]).T
        axis.bar(x, share, width, yerr=error, label=source)
    axis.set_xticks(np.arange(len(result.groups)) + 0.4 - width / 2, result.groups)
    axis.set_ylabel("share of rows")
    axis.legend()
    return _figure_bytes(figure)


def _rates_figure(result: Audit) -> bytes:
    figure, axis = plt.subplots(figsize=(6, 3))
    width = 0.8 / len(result.rates)
    for i, (source, rates) in enumerate(result.rates.items()):
        axis.bar(np.arange(len(result.groups)) + i * width, [rates.get(g, np.nan) for g in result.groups], width,
                 label=f"{source} (gap {result.gaps[source]:.3f})")
    axis.set_xticks(np.arange(len(result.groups)) + 0.4 - width / 2, result.groups)
    axis.set_ylabel(f"P({result.target}={result.positive} | group)")
    axis.legend()
    return _figure_bytes(figure)


def _figure_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _png(data: bytes) -> str:
    return f"<img alt='figure' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h if '&' in h else _e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if '&plusmn;' in str(c) else _e(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
