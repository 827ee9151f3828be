"""The captioner (a transformer fitted on captioned images) with tiny configs: the prefix-LM network, a fit that
memorises its captions, seeded sampling, save/load, the evaluation's reading of captions, the CLI's
``--image``, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genlab
from genlab.cli.app import main
from genlab.data import shapes
from genlab.data.captions import CaptionedImageCodec
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.evaluation import branch
from genlab.evaluation.captioning import caption_hits
from genlab.models.transformer import TransformerModel
from genlab.models.transformer.caption_network import CaptionNetwork
from genlab.train import Batch, TrainConfig

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 32}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, single_thread_module):
    """A captioner trained until it has memorised the captions of four scenes (without caption noise, which
    slows memorising: the noise has its own test)."""
    data = shapes.shapes(0, n_train=4, n_test=4)
    model = TransformerModel(**TINY, caption_noise=0.0).fit(data, train=TrainConfig(steps=150, batch_size=4, lr=3e-3, warmup_steps=0,
                                                                 ema_decay=None))
    run = tmp_path_factory.mktemp("captioner-run")
    model.save_pretrained(run)
    return model, data, run


def test_captions_round_trip_through_the_codec_tokens():
    captions = list(shapes.scenes(40, seed=3).captions)
    codec = CaptionedImageCodec.from_captions((3, 32, 32), captions)
    assert list(codec.captions(codec.tokens(captions))) == captions
    assert any("," in c or ":" in c for c in captions)   # the punctuation words are spaced back


def test_each_word_sees_the_whole_image_and_only_the_words_before_it():
    torch.manual_seed(0)
    network = CaptionNetwork(3, vocab_size=20, length=8, **TINY).eval()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    tokens = torch.randint(2, 20, (1, 8)).expand(2, -1).clone()
    tokens[1, 5:] = torch.randint(2, 20, (3,))                                  # differ only after word 4
    with torch.no_grad():
        logits = network(images[:1].expand(2, -1, -1, -1), tokens)
        other_image = network(images, tokens[:1].expand(2, -1))
    scale = logits.abs().max()
    # causal over words: the first five positions cannot see words 5..7 (equal up to float rounding)
    torch.testing.assert_close(logits[0, :5], logits[1, :5], atol=1e-5 * float(scale), rtol=0)
    assert not torch.allclose(logits[0, 5:], logits[1, 5:])
    # the very first word already reads the image
    assert not torch.allclose(other_image[0, 0], other_image[1, 0])


def test_a_fitted_captioner_writes_its_training_captions_back(fitted):
    model, data, _ = fitted
    assert isinstance(model.codec_, CaptionedImageCodec) and model.record_modality == "text"
    captions = model.sample(4, image=data.x_train)
    assert captions.dtype == object and list(captions) == list(data.captions_train)


def test_sampling_is_seeded_and_one_image_gives_n_captions(fitted):
    model, data, _ = fitted
    draw = lambda seed: model.sample(6, image=data.x_train[0], temperature=1.5,   # noqa: E731
                                     generator=torch.Generator().manual_seed(seed))
    first = draw(0)
    assert len(first) == 6 and list(first) == list(draw(0))
    assert all(isinstance(c, str) for c in first)


def test_save_and_load_give_the_same_captions(fitted):
    model, data, run = fitted
    loaded = genlab.load(run)
    assert isinstance(loaded.network_, CaptionNetwork)
    assert list(loaded.sample(4, image=data.x_train)) == list(model.sample(4, image=data.x_train))


def test_guidance_zero_is_the_unconditional_model_and_ignores_the_image(fitted):
    model, data, _ = fitted
    blind = model.sample(4, image=data.x_train, guidance=0.0)
    assert len(set(blind)) == 1                              # the null prefix alone: one caption for every image
    assert list(model.sample(4, image=data.x_train, guidance=1.0)) == list(data.captions_train)


def test_a_captioner_declares_the_options_it_takes_greedy_by_default(fitted):
    model, _, _ = fitted
    declared = model.sampling_options()
    assert set(declared) == {"temperature", "top_k", "top_p", "repetition_penalty", "guidance"}
    assert declared["temperature"].default == 0.0 and declared["guidance"].default == 1.0
    model.check_declared_options({"guidance": 2.0, "temperature": 0.5})
    with pytest.raises(ConfigError, match="num_beams"):
        model.check_declared_options({"num_beams": 2})


def test_training_reads_noisy_words_and_predicts_the_true_ones(fitted):
    model, data, _ = fitted
    codec = model.codec_
    tokens = codec.tokens(list(data.captions_train))                           # (4, L)
    seen = []

    class Spy(torch.nn.Module):
        """Reads the words the loss feeds it and answers the true next words with certainty."""

        def prefix(self, images):
            return torch.zeros(len(images), 1, 1)

        def null(self, batch):
            return torch.ones(batch, 1, 1)

        def forward(self, images, inputs, *, prefix):
            seen.append(inputs.clone())
            return F.one_hot(tokens[:, 1:], codec.vocab_size).float() * 1e4

    noisy = TransformerModel(**TINY, caption_noise=0.5).initialise(codec, model.data_, seed=0)
    noisy._train_tokens = tokens
    phase = noisy._caption_phases()[0]
    losses = phase.loss(Spy(), Batch(torch.zeros(4, 3, 32, 32), torch.arange(4)), torch.Generator().manual_seed(0))
    assert float(losses.total) < 1e-3                      # every target is the true word, noise or not
    inputs, clean = seen[0], tokens[:, :-1]
    changed = inputs != clean
    assert changed.any() and not changed[clean < 2].any()  # words were swapped; BOS and padding never are


@pytest.mark.parametrize("options, match", [
    ({}, "give the image to caption"),
    ({"image": np.zeros((3, 16, 16), dtype=np.float32)}, "one picture of shape"),
    ({"image": np.zeros((2, 3, 32, 32), dtype=np.float32)}, "one picture of shape"),
    ({"image": np.zeros((3, 32, 32), dtype=np.float32), "prompt": "a"}, "takes no prompt"),
    ({"image": np.zeros((3, 32, 32), dtype=np.float32), "condition": 1}, "cannot be conditioned"),
])
def test_bad_captioning_calls_are_one_clear_error(fitted, options, match):
    model, _, _ = fitted
    with pytest.raises(ConfigError, match=match):
        model.sample(3, **options)


def test_exporting_a_captioner_is_one_clear_error(fitted, tmp_path, capsys):
    _, _, run = fitted
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run), "--out", str(tmp_path / "captioner.onnx")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code != 0 and lines[-1].startswith("genlab: error:") and "captioner" in lines[-1]
    assert not (tmp_path / "captioner.onnx").exists()


def test_an_image_given_to_a_model_that_does_not_caption_is_refused():
    data = shapes.shapes(0, n_train=8, n_test=4)
    pixels = TransformerModel(**TINY, captions=False, block_size=3072, levels=4).fit(
        data, train=TrainConfig(steps=1, batch_size=2))
    assert pixels.record_modality == "images"
    with pytest.raises(ConfigError, match="image= is for a captioner"):
        pixels.sample(1, image=data.x_test[0])


def test_caption_reading_counts_attributes_mirrors_and_nonsense():
    truth = np.array(["a small red circle at the top left", "a small red circle at the top left",
                      "a large blue square left of a small green star",
                      "a large blue square left of a small green star",
                      "a large blue square left of a small green star"], dtype=object)
    written = np.array(["the top left holds a small red star",                 # shape wrong, the rest right
                        "nothing at all",                                     # not a caption: wrong everywhere
                        "two objects: a large blue square left of a small green star",
                        "a small green star right of a large blue square",    # the mirror says the same
                        "a small green star left of a large blue square"], dtype=object)
    hits = caption_hits(written, truth)
    assert list(hits["all"]) == [0, 0, 1, 1, 0]
    assert [hits[a][0] for a in ("shape", "colour", "size", "position")] == [0, 1, 1, 1]
    assert all(hits[a][1] == 0 for a in ("shape", "colour", "size", "position"))


def test_evaluate_reads_the_captions_of_a_captioner(fitted):
    model, data, _ = fitted
    assert branch(model, data) == "image_captions"
    # tested on its own training scenes, the memorising captioner is right on every count
    seen = Dataset(name="shapes", modality="images", x_train=data.x_train, x_test=data.x_train,
                   captions_train=data.captions_train, captions_test=data.captions_train)
    report = genlab.evaluate(model, seen, n=4, n_bootstrap=20)
    assert set(report.floor.values()) == {1.0}   # the test captions read back as themselves
    assert report.metrics["caption_accuracy_one"] == 1.0 and report.metrics["caption_accuracy_two"] == 1.0


def test_cli_captions_pictures_one_a_line_and_refuses_bad_pictures(fitted, tmp_path, capsys):
    from PIL import Image

    model, data, run = fitted
    for i in range(2):
        Image.fromarray((data.x_train[i].transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "--image", str(tmp_path / "0.png"), "--image", str(tmp_path / "1.png")])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    # 8-bit pictures round the pixels, so compare with the model's captions of the same rounded images
    rounded = np.stack([np.asarray(Image.open(tmp_path / f"{i}.png"), dtype=np.float32).transpose(2, 0, 1) / 255
                        for i in range(2)])
    assert captured.out.splitlines() == list(model.sample(2, image=rounded))
    # a picture of another size is box-filtered to the model's: genlab sample's 4x enlargement comes back exactly
    Image.fromarray((data.x_train[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)).resize(
        (128, 128), Image.Resampling.NEAREST).save(tmp_path / "large.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "--image", str(tmp_path / "large.png")])
    assert capsys.readouterr().out.splitlines() == list(model.sample(1, image=rounded[0]))
    for args, match in ((["--image", str(tmp_path / "notes.png")], "not a picture"), ([], "give the image to caption")):
        with pytest.raises(SystemExit) as exit_info:
            main(["sample", str(run), *args])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code != 0 and lines[-1].startswith("genlab: error:") and match in lines[-1]


def test_the_report_shows_test_images_with_the_captions_written_of_them(fitted):
    from genlab.report.html import CAPTIONS_SHOWN, RunResult, render_html

    model, data, _ = fitted
    report = genlab.evaluate(model, data, n=4, n_bootstrap=20)
    page = render_html([RunResult("captioner", model, data, report)])
    shown = data.x_test[:CAPTIONS_SHOWN]
    for caption in model.sample(len(shown), image=shown):
        assert f"<li>{caption}</li>" in page
    assert "the model's caption of each test image" in page and "caption_accuracy_one" in page
