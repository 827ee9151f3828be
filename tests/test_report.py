"""The HTML report: content, self-containment, the CLI that writes it, and a look in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

import genlab
from genlab.cli.app import main
from genlab.cli.tables import metrics_table
from genlab.evaluation import Report, evaluate
from genlab.report.figures import loss_curves_png
from genlab.report.html import RunResult, render_html, write_html_report
from genlab.report.ranking import rank

CHROMIUM = Path("/usr/bin/chromium")
BOOTSTRAP = 10
DATA_PNG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
EXTERNAL = re.compile(r'(?:src|href)="(?!data:|#)')
#: A few Trainer records, as a gradient-trained family leaves in ``history_``.
TRAINER_HISTORY = [{"step": s, "lr": 1e-3, "elapsed": 0.1 * s, "model": 2.0 / s, "model/kl": 0.5 / s}
                   for s in range(1, 40)] + [{"step": 40, "eval/frechet": 0.1}]


@pytest.fixture(scope="module")
def runs(single_thread_module) -> list[RunResult]:
    """A ring8 mixture (given a stand-in latent space and loss history) and a digits Gaussian, evaluated."""
    ring, digits = genlab.datasets.load("ring8"), genlab.datasets.load("digits")
    ring_model = genlab.fit(ring, family="gaussian", n_components=8)
    # Stand-ins so the generic interpolation and loss-curve views have something to draw: the identity
    # decoder makes the 2-D plane a latent space of the ring.
    ring_model.latent_shape = (2,)
    ring_model.decode = lambda z, condition=None: np.asarray(z, dtype=np.float32)
    ring_model.history_ = TRAINER_HISTORY
    digits_model = genlab.fit(digits, family="gaussian", n_components=1, reg_covar=1e-3)
    return [RunResult("ring8-mixture8", ring_model, ring, evaluate(ring_model, ring, n_bootstrap=BOOTSTRAP), 1.5),
            RunResult("digits-gaussian", digits_model, digits, evaluate(digits_model, digits, n_bootstrap=BOOTSTRAP))]


@pytest.fixture(scope="module")
def page(runs) -> str:
    return render_html(runs, title="test report")


def test_page_embeds_every_picture_and_table(page):
    images = DATA_PNG.findall(page)
    # ring8: samples, interpolation, loss curves; digits: samples (EM leaves no per-step losses).
    assert len(images) == 4 and page.count("<img ") == 4
    for data in images:
        picture = Image.open(io.BytesIO(base64.b64decode(data)))
        assert picture.format == "PNG" and picture.width > 50 and picture.height > 20
    assert page.count("<table") == 4  # a ranking per dataset + a metric table per run
    assert "interpolation" in page and "no per-step losses" in page
    assert not EXTERNAL.search(page) and "<link" not in page  # nothing to fetch


def test_page_carries_the_reports_as_json(page, runs):
    found = re.search(r'<script type="application/json" id="genlab-reports">(.*?)</script>', page, re.S)
    embedded = json.loads(found.group(1))
    assert embedded == json.loads(json.dumps({run.name: run.report.to_dict() for run in runs}))


def test_metric_tables_show_intervals_and_floor(page, runs):
    ring = runs[0].report
    low, high = ring.intervals["coverage"]
    assert f"[{low:.4g}, {high:.4g}]" in page and "real floor" in page
    assert f"<td>{ring.floor['precision']:.4g}</td>" in page


def test_a_copying_run_is_flagged_in_the_report(runs):
    ring = runs[0]
    copied = dict(ring.report.metrics, memorised=1.0, exact_copies=1.0)
    copier = RunResult("copier", ring.model, ring.data, type(ring.report)(**{**ring.report.__dict__, "metrics": copied}))
    assert "copies training data" in render_html([copier])
    assert "copies training data" not in render_html([ring])


def test_detection_auc_is_best_at_one_half_in_the_ranking_the_report_and_the_cli_tables(runs):
    def table_report(auc: float) -> Report:
        return Report(metrics={"quality": 0.9, "detection_auc": auc}, n_samples=100, n_real=100, seed=0,
                      dataset="t")

    # |0.55 - 0.5| < |0.2 - 0.5| < |0.9 - 0.5|: a detector at 0.2 separates the rows as well as one at 0.8
    reports = {"below": table_report(0.2), "above": table_report(0.9), "near": table_report(0.55)}
    assert rank(reports) == ["near", "below", "above"]
    ring = runs[0]
    detected = RunResult("detected", ring.model, ring.data,
                         replace(ring.report, metrics={**ring.report.metrics, "detection_auc": 0.7}))
    page = render_html([detected])
    assert "detection_auc (best 0.5)" in page and "detection_auc ↑" not in page
    console = Console(width=200, record=True)
    console.print(metrics_table(reports))
    shown = console.export_text()
    assert "detection_auc (best 0.5)" in shown and "detection_auc ↑" not in shown and "quality ↑" in shown


def test_loss_curves_need_steps():
    assert loss_curves_png(TRAINER_HISTORY)[:8] == b"\x89PNG\r\n\x1a\n"
    assert loss_curves_png([{"class": 0, "mean_log_likelihood": 1.0}]) is None


# --- molecules and chorales ------------------------------------------------------------------------

MOLECULES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "Clc1ccc(Br)cc1", "O=C1CCCN1", "CCN(CC)CC", "CC#N"]
CHORALE = ("| 67 64 60 48 _ _ _ _ 69 65 60 53 _ _ _ _ 71 67 62 55 _ _ _ _ 72 67 64 48 _ _ _ _ "
           "| 72 69 65 53 _ _ _ 50 71 67 62 55 _ _ _ _ 72 64 55 48 _ _ _ _ _ _ _ _ R R R R")
DATA_WAV = re.compile(r'<audio controls[^>]* src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"')
DATA_MIDI = re.compile(r'<a download="sample\.mid" href="data:audio/midi;base64,([A-Za-z0-9+/=]+)"')


def strings(items: list[str]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def scripted_run(name: str, data, records: list[str], monkeypatch) -> RunResult:
    """A tiny transformer fitted on ``data`` (2 steps) whose ``sample`` returns ``records`` (its first ``n``)."""
    from genlab.models.transformer import TransformerModel
    from genlab.train import TrainConfig

    model = TransformerModel(n_layer=1, n_head=2, n_embd=16, block_size=32).fit(
        data, train=TrainConfig(steps=2, batch_size=8, device="cpu"))
    monkeypatch.setattr(model, "sample", lambda n, **options: strings(records[:n]))
    report = Report(metrics={"validity": 0.5}, n_samples=len(records), n_real=len(data.x_test), seed=0,
                    dataset=data.name)
    return RunResult(name, model, data, report)


def test_molecules_are_drawn_with_their_properties_beside_the_test_sets(single_thread_module, monkeypatch):
    from genlab.data.dataset import Dataset
    from genlab.data.smiles import molecule_properties

    data = Dataset(name="toy-smiles", modality="smiles", x_train=strings(MOLECULES * 4), x_test=strings(MOLECULES[:4]))
    run = scripted_run("molecules", data, ["CCO", "C1CC", "c1ccccc1", "C(C"], monkeypatch)
    page = render_html([run])
    (drawing,) = re.findall(r'<img alt="the 2 valid molecules of 12 samples[^"]*" src="data:image/png;base64,'
                            r'([A-Za-z0-9+/=]+)"', page)
    picture = Image.open(io.BytesIO(base64.b64decode(drawing)))
    assert picture.format == "PNG" and picture.width >= 2 * 160          # two valid molecules, side by side
    drawn = molecule_properties(["CCO", "c1ccccc1"])
    for i, smiles in enumerate(["CCO", "c1ccccc1"]):
        cells = "".join(f"<td>{drawn[name][i]:.3g}</td>" for name in ("qed", "logp", "sa", "mw"))
        assert f'<td>#{i + 1}</td><td class="smiles">{smiles}</td>{cells}' in page
    assert "C1CC</td>" not in page                                          # an invalid one is in no row
    test = molecule_properties(MOLECULES[:4])
    means = {"samples": "".join(f"<td>{drawn[name].mean():.3g}</td>" for name in ("qed", "logp", "sa", "mw")),
             "test": "".join(f"<td>{test[name].mean():.3g}</td>" for name in ("qed", "logp", "sa", "mw"))}
    assert f'<td colspan="2">mean of the 2 valid samples</td>{means["samples"]}' in page
    assert f'<td colspan="2">mean of 4 test molecules</td>{means["test"]}' in page


def test_a_chorale_plays_as_wav_and_downloads_as_midi(single_thread_module, monkeypatch):
    import wave

    from music21 import converter

    from genlab.data import music
    from genlab.data.dataset import Dataset

    pieces = strings([music.transpose_chorale(CHORALE, k) for k in range(-3, 4)])
    data = Dataset(name="toy-chorales", modality="music", x_train=pieces, x_test=pieces[:1])
    run = scripted_run("chorales", data, ["| 60 _", CHORALE], monkeypatch)      # the first does not parse
    page = render_html([run])
    assert re.search(r'<img alt="the first sample that parses, as a piano roll" src="data:image/png', page)
    (sound,) = DATA_WAV.findall(page)
    with wave.open(io.BytesIO(base64.b64decode(sound))) as played:
        pcm = np.frombuffer(played.readframes(played.getnframes()), dtype="<i2")
        assert played.getnchannels() == 1 and played.getframerate() == 8000
        assert played.getnframes() / played.getframerate() == pytest.approx(6.0, abs=0.01)  # 16 eighths at 80 bpm
    assert np.abs(pcm).max() > 10_000 and "WAV, 6.0 s, 8 kHz" in page
    (midi,) = DATA_MIDI.findall(page)
    notes = converter.parseData(base64.b64decode(midi), format="midi").flatten().notes
    assert sorted({p.midi for n in notes for p in n.pitches}) == sorted(
        {int(t) for t in CHORALE.split() if t.isdigit()})


# --- CLI -------------------------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def saved_runs(runs, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("runs")
    few = genlab.fit(runs[0].data, family="gaussian", n_components=2)
    return runs[0].model.save_pretrained(folder / "mix8"), few.save_pretrained(folder / "mix2")


def test_eval_writes_an_html_report(saved_runs, tmp_path, capsys):
    out = tmp_path / "report.html"
    status, printed, err = run_cli(capsys, "eval", str(saved_runs[0]), "--real", "ring8", "-n", "500",
                                   "--bootstrap", "5", "--out", str(out))
    assert status == 0, err
    assert "real floor" in printed and "[" in printed
    assert len(DATA_PNG.findall(out.read_text())) >= 1


def test_compare_ranks_runs_in_one_table(saved_runs, tmp_path, capsys):
    out = tmp_path / "compare.html"
    status, printed, err = run_cli(capsys, "compare", str(saved_runs[1]), str(saved_runs[0]), "--real", "ring8",
                                   "-n", "500", "--bootstrap", "5", "--out", str(out))
    assert status == 0, err
    page = out.read_text()
    ranking = page[page.index('class="ranking"'):]
    assert ranking.index("mix8") < ranking.index("mix2")  # 8 modes captured beats 2
    status, _, _ = run_cli(capsys, "compare", *map(str, saved_runs), "--real", "ring8", "-n", "200",
                           "--bootstrap", "2", "--out", str(tmp_path / "compare.json"))
    assert status == 0 and len(json.loads((tmp_path / "compare.json").read_text())) == 2


def test_compare_bad_output_and_repeated_runs(saved_runs, tmp_path, capsys):
    status, _, err = run_cli(capsys, "compare", str(saved_runs[0]), "--real", "ring8", "--out", str(tmp_path / "r.pdf"))
    assert status == 1 and ".html or .json" in err
    status, _, err = run_cli(capsys, "compare", str(saved_runs[0]), str(saved_runs[0]), "--real", "ring8")
    assert status == 1 and "twice" in err


# --- headless Chromium -----------------------------------------------------------------------------


def chromium(tmp_path: Path, url: str, *flags: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``url`` with console messages logged to stderr."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent; install it with: apt-get install -y chromium")
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
               "--window-size=1200,2000", *flags, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def console_errors(stderr: str) -> list[str]:
    """Lines where the page logged to the console or threw (Chromium logs both as ``CONSOLE``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_console_check_catches_a_broken_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>notDefined();</script></body></html>")
    result = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console_errors(result.stderr)), result.stderr[-2000:]


def test_report_renders_in_chromium(runs, tmp_path):
    report = tmp_path / "report.html"
    write_html_report(report, runs, title="browser check")
    dom = chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    assert len(DATA_PNG.findall(dom.stdout)) == 4 and dom.stdout.count("<table") == 4

    shot = tmp_path / "shot.png"
    result = chromium(tmp_path, report.as_uri(), f"--screenshot={shot}")
    assert result.returncode == 0 and console_errors(result.stderr) == [], result.stderr[-2000:]
    picture = np.asarray(Image.open(shot).convert("RGB"))
    assert picture.shape == (2000, 1200, 3)
    # Not a blank page: many distinct colours (text, plots, digit grids) and real contrast.
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 200 and picture.std() > 20
