"""genlab.evaluate, genlab eval and the HTML report on molecules, chorales and captioned images: each
modality is scored with its own metrics (MOSES's, voice leading, the shapes judge's binding accuracy),
beside the same metrics of held-out real records, with tiny seeded models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.cli.app import main
from genlab.data import music, shapes
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.evaluation import captions as caption_evaluation
from genlab.metrics.music import compare_chorales
from genlab.metrics.shapes_judge import JudgeTraining, caption_truth
from genlab.models.transformer import TransformerModel
from genlab.train import TrainConfig

MOLECULES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "Clc1ccc(Br)cc1", "C[C@@H](N)C(=O)O", "c1cc[nH]c1",
             "O=C1CCCN1", "CCN(CC)CC", "C1CC2CCC1C2", "COc1ccc2[nH]ccc2c1", "FC(F)(F)c1ccccc1", "CC#N"]
# two bars of 4/4 in eighth-note steps: S A T B per step
CHORALE = ("| 67 64 60 48 _ _ _ _ 69 65 60 53 _ _ _ _ 71 67 62 55 _ _ _ _ 72 67 64 48 _ _ _ _ "
           "| 72 69 65 53 _ _ _ 50 71 67 62 55 _ _ _ _ 72 64 55 48 _ _ _ _ _ _ _ _ R R R R")
TINY_TRANSFORMER = {"n_layer": 1, "n_head": 2, "n_embd": 32}
TINY_TRAIN = TrainConfig(steps=150, batch_size=16, lr=1e-2, device="cpu", seed=0)
MOLECULE_METRICS = ("validity", "uniqueness", "novelty", "intdiv1", "intdiv2", "filters", "qed", "logp", "sa",
                    "frechet_descriptors")
MUSIC_METRICS = ("parse_rate", "pitch_class_distance", "interval_distance", "duration_distance", "out_of_range",
                 "crossings_per_100_beats", "fifths_per_100_beats", "octaves_per_100_beats")


def strings(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def fixed_samples(model, monkeypatch, records):
    """Make ``model.sample`` return ``records`` (first ``n``), so the metrics can be checked by hand."""
    monkeypatch.setattr(model, "sample", lambda n, **options: records[:n])


@pytest.fixture(scope="module")
def molecules():
    torch.set_num_threads(1)
    data = Dataset(name="toy-smiles", modality="smiles", x_train=strings(MOLECULES * 4), x_test=strings(MOLECULES[:6]))
    return data, TransformerModel(**TINY_TRANSFORMER, block_size=32).fit(data, train=TINY_TRAIN)


@pytest.fixture(scope="module")
def chorales():
    torch.set_num_threads(1)
    pieces = [music.transpose_chorale(CHORALE, k) for k in range(-3, 4)]
    data = Dataset(name="toy-chorales", modality="music", x_train=strings(pieces), x_test=strings(pieces[:2]))
    return data, TransformerModel(**TINY_TRANSFORMER, block_size=64).fit(data, train=TINY_TRAIN)


# ---------------------------------------------------------------------------------------- molecules
def test_molecules_get_mosess_metrics_and_a_floor_of_held_out_molecules(molecules):
    data, model = molecules
    report = genlab.evaluate(model, data, n=32, n_bootstrap=10)
    assert set(MOLECULE_METRICS) <= set(report.metrics), report.metrics
    assert 0 < report.metrics["validity"] < 1 and report.n_samples == 32
    assert report.floor["validity"] == 1.0 and report.floor["novelty"] < 1    # test molecules repeat training ones
    low, high = report.intervals["validity"]
    assert low <= report.metrics["validity"] <= high
    assert "not FCD" in report.notes["frechet_descriptors"]


def test_molecule_metrics_follow_their_definitions(molecules, monkeypatch):
    data, model = molecules
    # 4 of 6 parse (an open ring and a stray bracket do not); 3 distinct of 4 valid; CCCCO is new
    fixed_samples(model, monkeypatch, strings(["CCO", "OCC", "c1ccccc1", "CCCCO", "C1CC", "C(C"]))
    report = genlab.evaluate(model, data, n=6, n_bootstrap=10)
    assert report.metrics["validity"] == pytest.approx(4 / 6)
    assert report.metrics["uniqueness"] == pytest.approx(3 / 4)
    assert report.metrics["novelty"] == pytest.approx(1 / 3)
    assert 0 < report.metrics["intdiv1"] < 1 and report.metrics["filters"] == 1.0


# ---------------------------------------------------------------------------------------- chorales
def test_chorales_get_parse_rate_and_voice_leading_against_held_out_pieces(chorales):
    data, model = chorales
    report = genlab.evaluate(model, data, n=16, n_bootstrap=10)
    assert "parse_rate" in report.metrics and 0 <= report.metrics["parse_rate"] <= 1
    assert set(MUSIC_METRICS) <= set(report.floor)            # real excerpts against the held-out pieces
    assert report.floor["parse_rate"] == 1.0


def test_chorale_metrics_are_those_of_the_parsed_samples(chorales, monkeypatch):
    data, model = chorales
    parsed = [CHORALE, music.transpose_chorale(CHORALE, 2)]
    # a sample cut mid-step keeps its whole steps; text outside the grammar counts against the parse rate
    fixed_samples(model, monkeypatch, strings([parsed[0] + " 67 64", parsed[1], "| 67 X 60"]))
    report = genlab.evaluate(model, data, n=3, n_bootstrap=10)
    assert report.metrics["parse_rate"] == pytest.approx(2 / 3)
    expected = compare_chorales(parsed, list(data.x_test))
    for name in MUSIC_METRICS[1:]:
        assert report.metrics[name] == pytest.approx(getattr(expected, name)), name


# ---------------------------------------------------------------------------------------- captions
def test_captions_of_every_template_read_back_as_the_scene(monkeypatch):
    scenes = shapes.scenes(60, seed=3, split="test")
    objects, relation = caption_truth(scenes.captions)
    assert np.array_equal(relation, scenes.relation)
    assert np.array_equal(objects[:, :, :3], scenes.objects[:, :, :3])
    single = scenes.relation < 0
    assert np.array_equal(objects[single, 0, 3], scenes.objects[single, 0, 3])   # a pair's caption names no cells
    with pytest.raises(DataError, match="shapes caption"):
        caption_truth(strings(["a photo of a cat"]))


@pytest.fixture(scope="module")
def captioned():
    torch.set_num_threads(1)
    from genlab.models.diffusion import DiffusionModel

    data = shapes.shapes(0, n_train=48, n_test=12)
    model = DiffusionModel(channels=(8, 16), patch=2, caption_width=16, caption_layers=1, timesteps=50,
                           sampler="dpm++", sample_steps=3).fit(data, train=TrainConfig(steps=3, batch_size=8,
                                                                                        ema_decay=None))
    return data, model


@pytest.fixture
def tiny_judge(monkeypatch, tmp_path):
    monkeypatch.setattr(caption_evaluation, "JUDGE_TRAINING", JudgeTraining(n_images=64, steps=3, batch_size=16))
    return tmp_path / "cache"


def test_captioned_images_get_binding_accuracy_from_the_judge(captioned, tiny_judge, monkeypatch):
    data, model = captioned
    report = genlab.evaluate(model, data, n=8, n_bootstrap=10, feature_cache=tiny_judge)
    assert {"binding_accuracy", "binding_accuracy_one", "binding_accuracy_two", "frechet"} <= set(report.metrics)
    assert "binding_accuracy" in report.floor and report.n_samples == 8
    assert list(tiny_judge.glob("shapes-judge-*.safetensors"))         # trained once, then read back
    # a model that draws the real render of each caption scores what the real renders score
    by_caption = {str(c): x for c, x in zip(data.captions_test, data.x_test)}
    monkeypatch.setattr(model, "sample", lambda n, prompt, **options: np.stack([by_caption[p] for p in prompt]))
    copied = genlab.evaluate(model, data, n=8, n_bootstrap=10, feature_cache=tiny_judge)
    assert copied.metrics["binding_accuracy"] == copied.floor["binding_accuracy"]


def test_a_captioned_model_needs_captioned_data_and_modalities_must_match(captioned, molecules):
    data, model = captioned
    bare = Dataset(name="bare", modality="images", x_train=data.x_train, x_test=data.x_test)
    with pytest.raises(ConfigError, match="captions"):
        genlab.evaluate(model, bare, n=4)
    with pytest.raises(DataError, match="makes smiles.*images"):
        genlab.evaluate(molecules[1], data, n=4)


# ---------------------------------------------------------------------------------------- CLI and report
def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_cli_eval_prints_molecule_metrics_and_writes_the_report(tmp_path, capsys):
    torch.set_num_threads(1)
    path = tmp_path / "molecules.csv"
    path.write_text("smiles\n" + "\n".join(MOLECULES * 4) + "\n")
    data = genlab.datasets.load(str(path), modality="smiles")
    TransformerModel(**TINY_TRANSFORMER, block_size=32).fit(data, train=TINY_TRAIN).save_pretrained(tmp_path / "run")
    code, out = run_cli(capsys, "eval", str(tmp_path / "run"), "--real", str(path), "-n", "32", "--bootstrap", "10")
    assert code == 0, out
    for name in ("validity", "uniqueness", "novelty", "intdiv1", "filters", "qed"):
        assert name in out, (name, out)
    code, out = run_cli(capsys, "eval", str(tmp_path / "run"), "--real", str(path), "-n", "32", "--bootstrap", "10",
                        "--out", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert code == 0 and "novelty" in page and "valid molecule" in page, out


def test_cli_eval_prints_chorale_metrics(tmp_path, capsys):
    torch.set_num_threads(1)
    folder = tmp_path / "chorales"
    folder.mkdir()
    for k in range(-3, 4):
        music.write_midi(music.transpose_chorale(CHORALE, k), folder / f"piece{k + 3}.mid")
    data = genlab.datasets.load(str(folder), modality="music")
    TransformerModel(**TINY_TRANSFORMER, block_size=64).fit(data, train=TINY_TRAIN).save_pretrained(tmp_path / "run")
    code, out = run_cli(capsys, "eval", str(tmp_path / "run"), "--real", str(folder), "-n", "16", "--bootstrap", "10")
    assert code == 0, out
    for name in ("parse_rate", "pitch_class_distance", "fifths_per_100_beats", "octaves_per_100_beats"):
        assert name in out, (name, out)


def test_the_report_shows_chorales_and_images_drawn_from_captions(chorales, captioned, tiny_judge):
    from genlab.report.html import RunResult, render_html

    runs = []
    for name, (data, model) in (("bach", chorales), ("shapes", captioned)):
        report = genlab.evaluate(model, data, n=8, n_bootstrap=10, feature_cache=tiny_judge)
        runs.append(RunResult(name, model, data, report))
    page = render_html(runs)
    assert "parses as a chorale" in page and "parse_rate" in page and "fifths_per_100_beats ↓" in page
    assert "one sample per test caption" in page and str(captioned[0].captions_test[0]) in page
    assert "binding_accuracy" in page
