"""The KGW text watermark against Hugging Face's: identical green lists, processed scores, watermarked
greedy generations and detector z-scores on the same token ids; then the model, detect and CLI paths."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import genlab
from genlab.data.dataset import Dataset
from genlab.data.text import string_array
from genlab.errors import ConfigError
from genlab.models.transformer import gpt_to_hf
from genlab.provenance import Watermark
from genlab.provenance.detect import detect, detect_tokens
from genlab.provenance.text_watermark import TextWatermark
from genlab.sampling.decoding import GenerationConfig, generate

from gpt_support import random_gpt

transformers = pytest.importorskip("transformers")
from transformers.generation import WatermarkDetector, WatermarkingConfig, WatermarkLogitsProcessor  # noqa: E402

V = 64          # at least Hugging Face's 40 selfhash candidates
SETTINGS = [("lefthash", 1, 15485863), ("lefthash", 3, 7), ("selfhash", 1, 15485863), ("selfhash", 3, 2**62 + 11)]


@pytest.fixture(scope="module")
def pair():
    network = random_gpt(vocab=V, block=48)
    return network, gpt_to_hf(network)


def hf_config(scheme, width, key, gamma=0.25, bias=2.0):
    return WatermarkingConfig(greenlist_ratio=gamma, bias=bias, hashing_key=key, seeding_scheme=scheme,
                              context_width=width)


@pytest.mark.parametrize("scheme,width,key", SETTINGS)
def test_green_lists_and_processed_scores_equal_hugging_face(scheme, width, key):
    ours = TextWatermark(Watermark(key=key, seeding_scheme=scheme, context_width=width), V)
    theirs = WatermarkLogitsProcessor(V, "cpu", 0.25, 2.0, key, scheme, width)
    windows = torch.randint(0, V, (6, 5), generator=torch.Generator().manual_seed(0))
    for window in windows:
        expected = torch.zeros(V, dtype=torch.bool)
        expected[theirs._get_greenlist_ids(window)] = True
        assert torch.equal(ours.green_mask(window.tolist()), expected)
        assert int(expected.sum()) == int(V * 0.25)
    scores = torch.randn(6, V, generator=torch.Generator().manual_seed(1))
    # the same float additions in the same order: the processed scores are bit-identical
    assert torch.equal(ours(windows, scores.clone()), theirs(windows, scores.clone()))


@pytest.mark.parametrize("scheme,width,key", SETTINGS[1:])
def test_watermarked_greedy_generation_equals_hugging_face_generate(pair, scheme, width, key):
    network, hf = pair
    prompt = [3, 5, 7]
    marker = TextWatermark(Watermark(key=key, strength=5.0, seeding_scheme=scheme, context_width=width), V)
    config = GenerationConfig(max_new_tokens=16, temperature=0, logits_processors=(marker,))
    with torch.no_grad():
        ours = generate(network, [prompt], config)[0]
        out = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, 3, dtype=torch.long),
                          do_sample=False, max_new_tokens=16, pad_token_id=0, eos_token_id=None,
                          watermarking_config=hf_config(scheme, width, key, bias=5.0))
    assert ours == out[0, 3:].tolist()
    plain = generate(network, [prompt], GenerationConfig(max_new_tokens=16, temperature=0))[0]
    assert plain != ours     # a bias of 5 changes the greedy path of this random network


@pytest.mark.parametrize("scheme,width,key,ignore", [s + (i % 2 == 1,) for i, s in enumerate(SETTINGS)])
def test_z_scores_equal_hugging_face_detector(pair, scheme, width, key, ignore):
    network, hf = pair
    marker = TextWatermark(Watermark(key=key, seeding_scheme=scheme, context_width=width), V)
    prompts = [[1], [2], [9], [4, 4, 4]]   # left padding in the batch of genlab's decoding
    with torch.no_grad():
        ours = generate(network, prompts, GenerationConfig(max_new_tokens=40, logits_processors=(marker,)),
                        generator=torch.Generator().manual_seed(0))
        theirs = hf.generate(torch.tensor([[5, 6]] * 2), attention_mask=torch.ones(2, 2, dtype=torch.long),
                             do_sample=True, top_k=0, max_new_tokens=40, pad_token_id=0, eos_token_id=None,
                             watermarking_config=hf_config(scheme, width, key))
    sequences = [p + row for p, row in zip(prompts, ours)] + theirs.tolist()
    config = copy.deepcopy(hf.config)
    config.bos_token_id = V - 1    # no sequence starts with it: Hugging Face strips a leading BOS, genlab scores it
    detector = WatermarkDetector(config, "cpu", hf_config(scheme, width, key), ignore_repeated_ngrams=ignore)
    expected = np.concatenate([detector(torch.tensor([s]), return_dict=True).z_score for s in sequences])
    report = detect_tokens(sequences, key=key, vocab_size=V, seeding_scheme=scheme, context_width=width,
                           ignore_repeated_ngrams=ignore)
    got = np.array([item.score for item in report.items])
    # both are (g - gamma N) / sqrt(N gamma (1 - gamma)) of the same integers, in float64
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the mark is there (z of 6 texts: mean ~ N(0, 1/6) without it); another key sees none of it
    assert got.mean() > 2
    wrong = detect_tokens(sequences, key=key + 1, vocab_size=V, seeding_scheme=scheme, context_width=width)
    assert abs(np.mean([item.score for item in wrong.items])) < 2
    assert not any(item.watermarked for item in wrong.items)


# ----------------------------------------------------------------------------------- the model path
CODE = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(40)]


@pytest.fixture(scope="module")
def text_model():
    data = Dataset("code", "text", string_array(CODE[:32]), string_array(CODE[32:]))
    return genlab.fit(data, family="transformer", n_layer=1, n_head=2, n_embd=16, block_size=32,
                      train={"steps": 30, "batch_size": 16, "lr": 3e-3, "device": "cpu"})


def test_sampling_greedy_beam_and_streaming_keep_the_mark(text_model):
    mark = Watermark(key="genlab secret")
    g = torch.Generator().manual_seed(0)
    marked = text_model.sample(4, processors=[mark], max_new_tokens=60, generator=g)
    plain = text_model.sample(4, max_new_tokens=60, generator=torch.Generator().manual_seed(0))
    beams = text_model.sample(2, processors=[mark], max_new_tokens=60, num_beams=3, temperature=0)
    streamed = "".join(text_model.stream("", max_new_tokens=60, generator=torch.Generator().manual_seed(1),
                                         logits_processors=(text_model_marker(text_model, mark),)))
    for texts in (marked, beams, np.array([streamed], dtype=object)):
        report = detect(texts, key="genlab secret", model=text_model)
        assert report.combined.watermarked and report.combined.p_value < 1e-4
    assert not detect(plain, key="genlab secret", model=text_model).combined.watermarked
    wrong = detect(marked, key="another key", model=text_model)
    assert not wrong.combined.watermarked and abs(wrong.combined.score) < 4


def text_model_marker(model, mark):
    from genlab.provenance.embed import text_watermark_for
    return text_watermark_for(model, mark)


def test_bad_input_is_one_clear_error_or_not_enough_evidence(text_model):
    report = detect(np.array(["de"], dtype=object), key=1, model=text_model)
    item = report.items[0]
    assert not item.watermarked and math.isnan(item.score)
    assert item.note == "too short to test: 2 tokens, need 7"   # 0.25 ** 7 < 1e-4 < 0.25 ** 6
    assert report.to_dict()["items"][0]["p_value"] is None
    for key in ("", "   ", 0, -3, None):
        with pytest.raises(ConfigError):
            detect(np.array(["def f(x): return x"], dtype=object), key=key, model=text_model)
    with pytest.raises(ConfigError, match="needs the model"):
        detect(np.array(["def f(x): return x"], dtype=object), key=1)
    with pytest.raises(genlab.GenlabError, match="text"):
        detect(np.zeros((3, 2), dtype=np.float32), key=1, model=text_model)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from genlab.cli.app import main
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_detect_writes_detect_json_and_refuses_bad_input(text_model, tmp_path, capsys):
    import json

    run = tmp_path / "run"
    text_model.save_pretrained(run)
    assert "secret" not in "".join(p.read_text(errors="ignore") for p in run.rglob("*.json"))
    status, _, err = run_cli(capsys, "sample", str(run), "-n", "3", "--max-new-tokens", "60", "--watermark-key",
                             "secret", "--out", str(tmp_path / "marked.txt"))
    assert status == 0, err
    assert "secret" not in "".join(p.read_text(errors="ignore") for p in run.rglob("*") if p.is_file())
    status, _, err = run_cli(capsys, "detect", str(tmp_path / "marked.txt"), "--key", "secret", "--run", str(run),
                             "--out", str(tmp_path / "detect.json"))
    assert status == 0 and "kgw-lefthash at FPR 0.0001" in err and "watermarked" in err
    report = json.loads((tmp_path / "detect.json").read_text())
    assert set(report) == {"items", "combined", "fpr", "method", "options"} and len(report["items"]) == 3
    assert report["combined"]["watermarked"] and all({"score", "p_value", "watermarked"} <= set(i) for i in report["items"])
    for argv, match in [(("--key", "", "--run", str(run)), "empty"),
                        (("--key", "secret"), "needs the model"),
                        (("--key", "secret", "--run", str(run), "--seeding-scheme", "middlehash"), "lefthash, selfhash")]:
        status, _, err = run_cli(capsys, "detect", str(tmp_path / "marked.txt"), *argv)
        assert status == 1 and err.count("genlab: error:") == 1 and match in err, err
    np.save(tmp_path / "points.npy", np.zeros((4, 2), dtype=np.float32))
    status, _, err = run_cli(capsys, "detect", str(tmp_path / "points.npy"), "--key", "1", "--run", str(run))
    assert status == 1 and "the model makes text" in err
