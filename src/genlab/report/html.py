"""One self-contained HTML report of evaluated runs: pictures, sound and MIDI embedded as base64, inline CSS,
no script.

For each run: a grid of samples (images; for a model that draws images from captions, one per test
caption, the captions listed), a scatter over the real test points (points) or a few generated texts in
``<pre>`` blocks (text; for code each marked ✓ or ✗ by whether ``ast.parse`` accepts it, drawn as the
text evaluation draws them: :func:`genlab.evaluation.text.sampling_options`; SMILES marked by whether
RDKit parses them, the valid ones drawn with a table of their QED, logP, SA and MW and the means of those
beside the test molecules'; chorales marked by whether they parse, the first drawn as a piano roll with an
``<audio>`` player of its WAV and a link that downloads its MIDI file), the
training-loss curves from ``model.history_``, an interpolation strip where the family has a latent
space (``latent_shape`` and ``decode``: a slerp path between two prior draws, decoded), and the metric
table with bootstrap intervals and the real-vs-real floor. A ranking table per dataset comes first. The page needs no network: open it from disk or mail it. The
metric values are also embedded as JSON (``<script type="application/json" id="genlab-reports">``)
for programs that read the report.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genlab.data import music
from genlab.data.dataset import Dataset
from genlab.data.smiles import molecule_properties
from genlab.errors import GenlabError
from genlab.evaluation import Report, branch
from genlab.evaluation import molecules as molecule_evaluation
from genlab.evaluation import music as music_evaluation
from genlab.evaluation.text import sampling_options
from genlab.io import atomic_path
from genlab.metrics import copies_training_data
from genlab.metrics.molecules import canonical
from genlab.metrics.text import parses
from genlab.models.base import GenerativeModel
from genlab.report.figures import (column_distributions_png, image_grid_png, loss_curves_png, molecule_grid_png,
                                   piano_roll_png, scatter_png)
from genlab.report.ranking import by_dataset, direction, metric_names
from genlab.sampling.latent import interpolate

#: Images in a sample grid and points in a scatter plot.
GRID_IMAGES = 64
SCATTER_POINTS = 2500
#: Rows sampled for a table's column plots, and the most columns drawn.
TABLE_ROWS = 5000
TABLE_COLUMNS = 24
#: Width in pixels that a picture of images is enlarged towards (nearest-neighbour, whole factors).
GRID_WIDTH = 480
#: Generated texts shown per text run (and molecules and chorales).
TEXT_SAMPLES_SHOWN = 6
#: Molecules drawn per SMILES run, and captions (one image each) per run of images from captions.
MOLECULES_DRAWN = 12
CAPTIONS_SHOWN = 8
#: Test molecules at most whose mean properties stand beside the samples'; the properties a molecule run shows.
PROPERTY_REFERENCE = 1000
PROPERTY_LABELS = {"qed": "QED", "logp": "logP", "sa": "SA", "mw": "MW"}
#: Sample rate (Hz), the most seconds and the tempo (quarter notes a minute) of the one chorale a report
#: embeds as WAV (it stays well under 1 MB).
AUDIO_RATE = 8000
AUDIO_SECONDS = 30.0
AUDIO_TEMPO = 80.0
#: Frames of an interpolation strip, end points included.
INTERPOLATION_STEPS = 8
#: Metrics shown in the ranking table, in this order, where the runs have them.
RANKING_METRICS = ("modes_captured", "high_quality", "frechet", "kid", "precision", "recall", "coverage",
                   "memorised", "nll", "validity", "distinct_2", "copied_ngrams", "nll_per_token", "quality",
                   "detection_auc", "uniqueness", "novelty", "intdiv1", "frechet_descriptors", "parse_rate",
                   "pitch_class_distance", "fifths_per_100_beats", "binding_accuracy")


@dataclass(frozen=True)
class RunResult:
    """One evaluated run: what the report shows about it.

    Attributes:
        name: the run's label (e.g. its directory name).
        model: the fitted model (sampled again for the pictures, with ``report.seed``).
        data: the real data it was evaluated on.
        report: the evaluation.
        fit_seconds: training time, when known.
        budget: the training budget as the report states it (e.g. ``"400 steps"``), when known.
    """

    name: str
    model: GenerativeModel
    data: Dataset
    report: Report
    fit_seconds: float | None = None
    budget: str | None = None


def write_html_report(path: str | Path, runs: list[RunResult], *, title: str = "genlab report") -> None:
    """Write :func:`render_html` of ``runs`` to ``path`` atomically (UTF-8)."""
    page = render_html(runs, title=title)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")


def render_html(runs: list[RunResult], *, title: str = "genlab report") -> str:
    """The report page of ``runs`` as one HTML string (module docstring)."""
    reports = {run.name: run.report for run in runs}
    parts = [f"<h1>{_e(title)}</h1>", _summary_line(runs)]
    for dataset, ranked in by_dataset(reports).items():
        parts.append(f"<h2>Ranking on {_e(dataset)}</h2>")
        parts.append(_ranking_table({name: reports[name] for name in ranked}))
    parts.extend(_run_section(run) for run in runs)
    data = json.dumps({run.name: run.report.to_dict() for run in runs}, sort_keys=True).replace("</", "<\\/")
    parts.append(f'<script type="application/json" id="genlab-reports">{data}</script>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
            f'<body><main>{"".join(parts)}</main></body></html>\n')


def _summary_line(runs: list[RunResult]) -> str:
    seeds = sorted({run.report.seed for run in runs})
    boots = sorted({run.report.n_bootstrap for run in runs})
    return (f'<p class="lede">{len(runs)} run(s). Every metric is shown with a bootstrap '
            f"95&nbsp;% interval ({', '.join(map(str, boots))} resamples) and the <em>real floor</em>: "
            f"the same metric for held-out real data against real data, what a perfect model scores at "
            f"this sample size. Seed {', '.join(map(str, seeds))}. ↑ higher is better, ↓ lower is better, "
            f"(best 0.5) best at 0.5 (a detection AUC of 0.5: the detector cannot tell real from generated), "
            f"(≈ floor) best at the real floor's value.</p>")


def _ranking_table(reports: dict[str, Report]) -> str:
    """Runs of one dataset, best first, with the headline metrics."""
    names = [name for name in RANKING_METRICS if any(name in r.metrics for r in reports.values())]
    head = "".join(f"<th>{_e(name)} {_e(direction(name))}</th>" for name in names)
    rows = []
    for place, (run, report) in enumerate(reports.items(), start=1):
        cells = "".join(f"<td>{_fmt(report.metrics[name]) if name in report.metrics else '–'}</td>"
                        for name in names)
        rows.append(f'<tr><td>{place}</td><td class="name"><a href="#{_anchor(run)}">{_e(run)}</a>'
                    f"{_memorisation_flag(report)}</td>{cells}</tr>")
    return (f'<div class="scroll"><table class="ranking"><thead><tr><th>#</th><th>run</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _run_section(run: RunResult) -> str:
    """Pictures and metric table of one run."""
    report = run.report
    fitted = "" if run.budget is None else f", trained {_e(run.budget)}"
    fitted += "" if run.fit_seconds is None else f" in {run.fit_seconds:.1f} s"
    figures = [_samples_figure(run), _interpolation_figure(run), _loss_figure(run)]
    return (f'<section id="{_anchor(run.name)}"><h2>{_e(run.name)}{_memorisation_flag(report)}</h2>'
            f'<p class="meta">{_e(run.model.family)} on {_e(report.dataset)}: {report.n_samples} samples vs '
            f"{report.n_real} real test records, seed {report.seed}{fitted}</p>"
            f'<div class="figures">{"".join(figures)}</div>{_metric_table(report)}</section>')


def _samples_figure(run: RunResult) -> str:
    """The samples as the run's evaluation branch shows them (module docstring)."""
    kind = branch(run.model, run.data)
    render = _SAMPLE_VIEWS.get(kind)
    if render is None:
        return _figure_note("samples", f"no picture for {kind} records yet")
    return render(run)


def _image_samples(run: RunResult) -> str:
    images = run.model.sample(GRID_IMAGES, generator=torch.Generator().manual_seed(run.report.seed))
    return _figure(_grid_png(images, columns=8), f"{GRID_IMAGES} samples")


def _point_samples(run: RunResult) -> str:
    points = run.model.sample(SCATTER_POINTS, generator=torch.Generator().manual_seed(run.report.seed))
    png = scatter_png(points, real=run.data.x_test, title=f"{SCATTER_POINTS} samples over real test points")
    return _figure(png, "samples (blue) over real data (grey)")


def _text_samples(run: RunResult) -> str:
    """A few generated texts, escaped, each with a validity mark when the run was scored as code."""
    code = "validity" in run.report.metrics
    language = "python" if code else None
    texts = [str(t) for t in run.model.sample(TEXT_SAMPLES_SHOWN, generator=torch.Generator().manual_seed(
        run.report.seed), **sampling_options(language))]
    if not code:
        return _strings_figure(texts, None, f"{TEXT_SAMPLES_SHOWN} samples")
    return _strings_figure(texts, [parses(t) for t in texts], f"{TEXT_SAMPLES_SHOWN} samples: ✓ parses as Python, "
                           f"✗ does not", ok="parses as Python", bad="does not parse as Python")


def _molecule_samples(run: RunResult) -> str:
    """A few generated SMILES marked by whether RDKit parses them, RDKit's drawing of the valid ones among
    :data:`MOLECULES_DRAWN` samples (numbered), and a table of each drawn molecule's properties with their
    means beside those of the test molecules."""
    smiles = [str(s) for s in run.model.sample(MOLECULES_DRAWN, generator=torch.Generator().manual_seed(
        run.report.seed), **molecule_evaluation.sampling_options(run.model))]
    valid = [canonical(s) is not None for s in smiles]
    shown = _strings_figure(smiles[:TEXT_SAMPLES_SHOWN], valid[:TEXT_SAMPLES_SHOWN],
                            f"{TEXT_SAMPLES_SHOWN} samples: ✓ a valid molecule (RDKit parses it), ✗ not a molecule",
                            ok="a valid molecule", bad="RDKit cannot parse it")
    drawn = [s for s, ok in zip(smiles, valid) if ok]
    if not drawn:
        return shown + _figure_note("molecules", f"no valid molecule among {MOLECULES_DRAWN} samples to draw")
    picture = _figure(molecule_grid_png(drawn, legends=[f"#{i}" for i in range(1, len(drawn) + 1)]),
                      f"the {len(drawn)} valid molecules of {MOLECULES_DRAWN} samples, numbered as in the table")
    return shown + picture + _property_table(drawn, [str(s) for s in run.data.x_test[:PROPERTY_REFERENCE]])


def _property_table(drawn: list[str], reference: list[str]) -> str:
    """QED, logP, SA and MW of each drawn molecule, then their means and those of the ``reference`` (test)
    molecules that RDKit parses."""
    values = molecule_properties(drawn)
    real = molecule_properties(reference)
    head = "".join(f"<th>{_e(label)}</th>" for label in PROPERTY_LABELS.values())
    rows = [f'<tr><td>#{i + 1}</td><td class="smiles">{_e(s)}</td>'
            + "".join(f"<td>{values[name][i]:.3g}</td>" for name in PROPERTY_LABELS) + "</tr>"
            for i, s in enumerate(drawn)]
    parsed = int((~np.isnan(real["qed"])).sum())
    for label, table in ((f"mean of the {len(drawn)} valid samples", values),
                         (f"mean of {parsed} test molecules", real)):
        cells = "".join(f"<td>{_fmt_mean(table[name])}</td>" for name in PROPERTY_LABELS)
        rows.append(f'<tr class="mean"><td colspan="2">{_e(label)}</td>{cells}</tr>')
    return (f'<figure class="text"><div class="scroll"><table class="properties"><thead><tr><th>#</th>'
            f"<th>SMILES</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div><figcaption>RDKit "
            f"properties of the drawn molecules: QED drug-likeness (0..1), Crippen logP, synthetic accessibility "
            f"(1 easy .. 10 hard), molecular weight (g/mol); the test set's means over its first "
            f"{PROPERTY_REFERENCE} molecules at most</figcaption></figure>")


def _fmt_mean(values: np.ndarray) -> str:
    known = values[~np.isnan(values)]
    return f"{known.mean():.3g}" if len(known) else "–"


def _chorale_samples(run: RunResult) -> str:
    """A few generated excerpts marked by whether they parse as chorales, and the first that does as a
    piano roll, with an audio player of its WAV (at most :data:`AUDIO_SECONDS`) and its MIDI file to download."""
    texts = [music.whole_steps(str(t)) for t in run.model.sample(
        TEXT_SAMPLES_SHOWN, generator=torch.Generator().manual_seed(run.report.seed),
        **music_evaluation.sampling_options(run.model))]
    ok = [music.parses(t) for t in texts]
    shown = _strings_figure(texts, ok, f"{TEXT_SAMPLES_SHOWN} samples in the time grid: ✓ parses as a chorale, "
                            f"✗ does not", ok="parses as a chorale", bad="does not parse as a chorale")
    if not any(ok):
        return shown + _figure_note("piano roll", "no sample parses")
    first = texts[ok.index(True)]
    return shown + _figure(piano_roll_png(first), "the first sample that parses, as a piano roll") + _sound(first)


def _sound(chorale: str) -> str:
    """An ``<audio>`` player of ``chorale``'s WAV and a link that downloads its MIDI file, both embedded."""
    wav = music.wav_bytes(chorale, sample_rate=AUDIO_RATE, tempo=AUDIO_TEMPO, max_seconds=AUDIO_SECONDS)
    length = music.wav_seconds(wav)
    whole = music.parse_chorale(chorale).n_steps * music.STEP * 60 / AUDIO_TEMPO
    cut = "" if whole <= AUDIO_SECONDS else f" (the first {length:.1f} s of {whole:.1f} s)"
    sound, midi = base64.b64encode(wav).decode("ascii"), base64.b64encode(music.midi_bytes(chorale)).decode("ascii")
    return (f'<figure class="sound"><audio controls preload="none" src="data:audio/wav;base64,{sound}"></audio>'
            f'<a download="sample.mid" href="data:audio/midi;base64,{midi}">Download MIDI (sample.mid)</a>'
            f"<figcaption>the same sample: WAV, {length:.1f} s{cut}, {AUDIO_RATE // 1000} kHz mono by additive "
            f"synthesis, at {AUDIO_TEMPO:g} quarter notes a minute; the MIDI file holds all of it</figcaption>"
            "</figure>")


def _caption_samples(run: RunResult) -> str:
    """One image for each of the first :data:`CAPTIONS_SHOWN` test captions, the captions numbered below."""
    captions = [str(c) for c in run.data.captions_test[:CAPTIONS_SHOWN]]
    images = run.model.sample(len(captions), prompt=captions, generator=torch.Generator().manual_seed(run.report.seed))
    listed = "".join(f"<li>{_e(c)}</li>" for c in captions)
    data = base64.b64encode(_grid_png(images, columns=len(captions))).decode("ascii")
    return (f'<figure><img alt="samples for test captions" src="data:image/png;base64,{data}">'
            f"<figcaption>one sample per test caption, left to right:<ol>{listed}</ol></figcaption></figure>")


def _captioner_samples(run: RunResult) -> str:
    """The first :data:`CAPTIONS_SHOWN` test images with the captions the model writes of them, numbered below."""
    images = run.data.x_test[:CAPTIONS_SHOWN]
    captions = run.model.sample(len(images), image=images, generator=torch.Generator().manual_seed(run.report.seed))
    listed = "".join(f"<li>{_e(str(c))}</li>" for c in captions)
    data = base64.b64encode(_grid_png(images, columns=len(images))).decode("ascii")
    return (f'<figure><img alt="test images" src="data:image/png;base64,{data}">'
            f"<figcaption>the model's caption of each test image, left to right:<ol>{listed}</ol></figcaption>"
            "</figure>")


def _strings_figure(texts: list[str], marks: list[bool] | None, caption: str, *, ok: str = "", bad: str = "") -> str:
    """Texts in ``<pre>`` blocks, each after a ✓ (titled ``ok``) or ✗ (titled ``bad``) when ``marks`` are given."""
    items = []
    for i, text in enumerate(texts):
        mark = ""
        if marks is not None:
            mark = (f'<span class="mark ok" title="{_e(ok)}">✓</span>' if marks[i] else
                    f'<span class="mark bad" title="{_e(bad)}">✗</span>')
        items.append(f'<div class="sample">{mark}<pre>{_e(text)}</pre></div>')
    return f'<figure class="text">{"".join(items)}<figcaption>{_e(caption)}</figcaption></figure>'


def _table_samples(run: RunResult) -> str:
    """Per-column distributions of sampled rows against the real test rows (at most :data:`TABLE_COLUMNS`)."""
    rows = min(TABLE_ROWS, len(run.data.x_test))
    fake = run.model.sample(rows, generator=torch.Generator().manual_seed(run.report.seed))
    columns = list(run.data.x_test.columns)[:TABLE_COLUMNS]
    png = column_distributions_png(run.data.x_test, fake, columns=columns)
    shown = "" if len(columns) == run.data.x_test.shape[1] else f" (first {len(columns)} columns)"
    return _figure(png, f"{rows} generated rows (blue) against the real test rows (grey){shown}")


#: How each evaluation branch (:func:`genlab.evaluation.branch`) shows its samples.
_SAMPLE_VIEWS: dict[str, Callable[[RunResult], str]] = {
    "images": _image_samples, "points": _point_samples, "text": _text_samples, "tables": _table_samples,
    "smiles": _molecule_samples, "music": _chorale_samples, "captioned_images": _caption_samples,
    "image_captions": _captioner_samples}


def _interpolation_figure(run: RunResult) -> str:
    """Decoded slerp path between two latents drawn from the prior, for families with a latent space."""
    latent_shape = getattr(run.model, "latent_shape", None)
    if latent_shape is None:
        return ""  # no latent space (e.g. the Gaussian mixture): nothing to walk through
    generator = torch.Generator().manual_seed(run.report.seed)
    ends = torch.randn(2, *latent_shape, generator=generator).numpy()
    try:
        path = interpolate(run.model, ends[0], ends[1], steps=INTERPOLATION_STEPS, method="slerp", inputs="latents")
    except GenlabError as error:  # e.g. a class-conditional model that needs a condition
        return _figure_note("interpolation", str(error))
    caption = f"interpolation: {INTERPOLATION_STEPS} decoded points on a slerp path between two prior latents"
    if run.data.modality == "images":
        return _figure(_grid_png(path, columns=INTERPOLATION_STEPS), caption)
    points = run.model.sample(SCATTER_POINTS // 5, generator=generator)
    return _figure(scatter_png(points, real=run.data.x_test, path=path.reshape(len(path), -1)), caption)


def _grid_png(images, *, columns: int) -> bytes:
    """Images ``(n, C, H, W)`` tiled ``columns`` wide, enlarged by the whole factor nearest :data:`GRID_WIDTH`."""
    width = columns * (images.shape[-1] + 1) + 1  # image_grid's 1-pixel padding
    return image_grid_png(images, columns=columns, scale=max(1, GRID_WIDTH // width))


def _loss_figure(run: RunResult) -> str:
    png = loss_curves_png(run.model.history_)
    if png is None:
        return _figure_note("training loss", "no per-step losses (fitted in closed form or by EM)")
    return _figure(png, "training losses")


def _metric_table(report: Report) -> str:
    """Metric, value, interval, floor and note of one report."""
    rows = []
    for name in metric_names([report]):
        low, high = report.intervals.get(name, (None, None))
        interval = "–" if low is None else f"[{_fmt(low)}, {_fmt(high)}]"
        floor = _fmt(report.floor[name]) if name in report.floor else "–"
        rows.append(f"<tr><td>{_e(name)} {_e(direction(name))}</td><td>{_fmt(report.metrics[name])}</td>"
                    f"<td>{interval}</td><td>{floor}</td><td class=\"note\">{_e(report.notes.get(name, ''))}</td></tr>")
    return ('<div class="scroll"><table class="metrics"><thead><tr><th>metric</th><th>value</th>'
            f"<th>{round(report.level * 100)}% interval</th><th>real floor</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _memorisation_flag(report: Report) -> str:
    """A visible mark when the run copies its training data (see :class:`genlab.metrics.Memorisation`)."""
    memorised, copies = report.metrics.get("memorised"), report.metrics.get("exact_copies")
    if report.metrics.get("copied_texts", 0.0) > 0.01:   # text: over 1 % of samples are training text verbatim
        return ' <span class="flag" title="samples occur verbatim in the training text">copies training data</span>'
    if memorised is None or copies is None:
        return ""
    if copies_training_data(memorised=memorised, exact_copies=copies):
        return ' <span class="flag" title="samples sit on training records">copies training data</span>'
    return ""


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _figure_note(title: str, text: str) -> str:
    return f'<figure class="empty"><figcaption>{_e(title)}: {_e(text)}</figcaption></figure>'


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _anchor(name: str) -> str:
    return "run-" + "".join(c if c.isalnum() else "-" for c in name)


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


_CSS = """
:root{--ink:#1d2430;--muted:#5b6575;--line:#dde2ea;--bg:#f6f7fb;--card:#fff;--accent:#2f6feb;--bad:#c62828}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:32px 20px 64px}h1{font-size:28px;margin:0 0 8px}
h2{font-size:20px;margin:32px 0 12px}.lede,.meta{color:var(--muted)}.meta{margin-top:-6px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:4px 20px 16px;margin:20px 0}
table{border-collapse:collapse;width:100%;background:var(--card);font-variant-numeric:tabular-nums;margin:8px 0}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.name,th:nth-child(2){text-align:left}
th{font-weight:600;color:var(--muted);font-size:13px;white-space:normal}.scroll{overflow-x:auto}
table.ranking tbody tr:first-child td{font-weight:600}
td.note{color:var(--muted);font-size:13px;text-align:left;white-space:normal}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.figures{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0;padding:8px;border:1px solid var(--line);border-radius:8px;background:#fff}
figure img{display:block;max-width:100%;height:auto;image-rendering:pixelated}
figure.empty{color:var(--muted);font-size:13px;padding:16px}figcaption{font-size:12px;color:var(--muted);margin-top:4px}
figure.text{flex:1 1 100%;min-width:0}.sample{display:flex;gap:8px;align-items:flex-start;margin:0 0 8px}
.sample pre{flex:1;margin:0;padding:6px 8px;background:var(--bg);border-radius:6px;font-size:12px;line-height:1.35;
max-height:16em;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere}
.mark{font-weight:700;font-size:16px;width:1.2em;text-align:center}.mark.ok{color:#2e7d32}.mark.bad{color:var(--bad)}
table.properties{width:auto}td.smiles{text-align:left;font-family:ui-monospace,monospace;font-size:12px;
white-space:normal;overflow-wrap:anywhere}tr.mean td{font-weight:600;border-top:2px solid var(--line)}
figure.sound{display:flex;flex-direction:column;gap:8px;min-width:300px}figure.sound audio{width:100%}
.flag{display:inline-block;font-size:12px;font-weight:600;color:#fff;background:var(--bad);border-radius:4px;
padding:1px 6px;vertical-align:middle}
"""
