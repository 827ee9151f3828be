"""Compression: int8 layers within their rounding bounds and stored as integer tensors, pruning that zeroes
(or removes) what it says, compressed runs that load, sample and record their parent, and bad input that
gives one error line and writes nothing."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
from torch import nn

import genlab
from genlab.cli.app import main
from genlab.compress import prune as pruning
from genlab.compress.layout import compression_of
from genlab.compress.quantize import Int8Linear
from genlab.compress.run import compress

TRAIN = {"steps": 2, "batch_size": 8, "device": "cpu"}


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, single_thread_module):
    model = genlab.fit("digits", family="transformer", train=TRAIN, n_layer=2, n_head=2, n_embd=32, block_size=72)
    return model.save_pretrained(tmp_path_factory.mktemp("compress") / "gpt")


def test_int8_weight_and_product_within_their_rounding_bounds():
    """Per row, ``|W - s Q| <= s / 2`` (rounding to the nearest code); the int8 product differs from
    ``x (s Q)^T`` only by rounding the activations to 7-bit steps ``h = (max x - min x) / 127``, so by at
    most ``sum_i |s Q_oi| h / 2`` per output (plus float32 accumulation, far smaller)."""
    torch.manual_seed(0)
    linear = nn.Linear(48, 24)
    layer = Int8Linear.from_linear(linear)
    scale = layer.weight_scale[:, None]
    assert ((linear.weight - layer.dequantized()).abs() <= scale / 2 + 1e-7).all()
    x = torch.randn(5, 48)
    with torch.no_grad():
        got, dequantized = layer(x), nn.functional.linear(x, layer.dequantized(), layer.bias)
        exact = linear(x)
    step = (x.max().clamp(min=0) - x.min().clamp(max=0)) / 127
    bound = layer.dequantized().abs().sum(1) * step / 2 + 1e-5
    assert ((got - dequantized).abs() <= bound).all()
    assert not torch.equal(got, exact)   # it is an approximation, not a float copy


def test_quantized_run_stores_integers_and_records_its_parent(gpt_run, tmp_path):
    out = compress(gpt_run, tmp_path / "int8", quantize="int8")
    config = json.loads((out / "config.json").read_text())
    parent = json.loads((gpt_run / "config.json").read_text())
    assert config["compression"]["parent"]["weights_sha256"] == parent["weights_sha256"]
    (transform,) = config["compression"]["transforms"]
    assert transform["method"] == "quantize" and "h.0.attn.qkv" in transform["modules"]
    tensors = safetensors.torch.load_file(str(out / "model.safetensors"))
    assert tensors["h.0.attn.qkv.weight_int8"].dtype == torch.int8
    assert tensors["h.0.attn.qkv.weight_scale"].dtype == torch.float32
    assert tensors["h.0.attn.qkv.weight_zero_point"].dtype == torch.int32
    assert "h.0.attn.qkv.weight" not in tensors
    model, original = genlab.load(out), genlab.load(gpt_run)
    tokens = torch.randint(0, 18, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        q, f = model.network_(tokens).log_softmax(-1), original.network_(tokens).log_softmax(-1)
    # int8 rounding moves each log-probability by a small share of its spread, not by O(1)
    assert 0 < (q - f).abs().max() < 0.1 * f.std()
    assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)
    again = model.save_pretrained(tmp_path / "again")   # re-saving keeps the layout record
    assert compression_of(genlab.load(again)) == compression_of(model)


def test_unstructured_pruning_keeps_zeros_through_fine_tuning(gpt_run, tmp_path):
    out = compress(gpt_run, tmp_path / "pruned", prune=0.5, steps=3, data="digits")
    record = compression_of(genlab.load(out))["transforms"][0]
    assert record["method"] == "prune" and abs(record["sparsity"] - 0.5) < 1e-3
    tensors = safetensors.torch.load_file(str(out / "model.safetensors"))
    weights = [tensors[f"h.{i}.{name}.weight"] for i in range(2) for name in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros > 0.3   # the masks stayed on during the 3 fine-tuning steps (dense training would refill them)


def test_structured_pruning_shrinks_the_matrices(gpt_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as status:
        main(["compress", str(gpt_run), "--out", str(tmp_path / "small"), "--prune", "0.5", "--structured",
              "--steps", "2", "--data", "digits", "--quantize", "int8"])
    assert status.value.code == 0, capsys.readouterr().err
    model = genlab.load(tmp_path / "small")
    assert model.network_.h[0].mlp.fc.out_features == 64 and model.network_.h[1].mlp.proj.in_features == 64
    assert isinstance(model.network_.h[0].mlp.fc, Int8Linear)
    parameters = compression_of(model)["transforms"][0]["parameters"]
    assert parameters[1] < parameters[0]
    with pytest.raises(SystemExit) as status:
        main(["sample", str(tmp_path / "small"), "-n", "2", "--out", str(tmp_path / "s.npy")])
    assert status.value.code == 0 and (tmp_path / "s.npy").is_file()


def test_hidden_pairs_of_a_plain_mlp():
    from genlab.nn.mlp import MLP

    network = MLP(3, 2, hidden=10, depth=2)
    assert pruning.hidden_pairs(network) == [("0", "2"), ("2", "4")]
    x = torch.randn(4, 3)
    shapes = pruning.structured(network, 0.3)
    assert shapes == {"0": [3, 7], "2": [7, 7], "4": [7, 2]} and network(x).shape == (4, 2)


@pytest.mark.parametrize("argv, match", [
    (["--prune", "1.5"], "strictly between 0 and 1"),
    (["--prune", "0"], "strictly between 0 and 1"),
    (["--quantize", "int3"], "unknown quantisation dtype 'int3'"),
    ([], "nothing to do"),
    (["--prune", "0.5", "--steps", "3"], "needs the training data"),
])
def test_bad_options_give_one_line_and_write_nothing(gpt_run, tmp_path, capsys, argv, match):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as status:
        main(["compress", str(gpt_run), "--out", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status.value.code == 1 and len(err) == 1 and err[0].startswith("genlab: error:") and match in err[0]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unsupported_family_and_bad_checksum(tmp_path, capsys):
    gaussian = genlab.fit("ring8", family="gaussian", n_components=2).save_pretrained(tmp_path / "gaussian")
    with pytest.raises(genlab.GenlabError, match="gaussian family cannot be compressed"):
        compress(gaussian, tmp_path / "out", quantize="int8")
    gan = genlab.fit("ring8", family="gan", train=TRAIN, hidden=16).save_pretrained(tmp_path / "gan")
    weights = gan / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + bytes(4))
    with pytest.raises(genlab.GenlabError, match="checksum"):
        compress(gan, tmp_path / "out", quantize="int8")
    assert not (tmp_path / "out").exists()


def test_distilled_student_is_an_ordinary_smaller_run(gpt_run, tmp_path, capsys):
    """Half the layers, copied from the teacher's first and last block; KD loss is zero at equal logits."""
    from genlab.compress.distill import kd_loss, student_layers

    logits = torch.randn(6, 5)
    total, soft, hard = kd_loss(logits, logits, torch.zeros(6, dtype=torch.long), temperature=2.0, alpha=1.0)
    assert abs(float(soft)) < 1e-6 and float(total) == pytest.approx(float(soft))
    assert student_layers(4, 2) == [0, 3] and student_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    with pytest.raises(SystemExit) as status:
        main(["compress", str(gpt_run), "--out", str(tmp_path / "student"), "--distill", "--set", "n_layer=1",
              "--steps", "2", "--data", "digits"])
    assert status.value.code == 0, capsys.readouterr().err
    student = genlab.load(tmp_path / "student")
    assert student.config.n_layer == 1 and compression_of(student)["transforms"][0]["copied_layers"] == [1]
    assert student.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)
    with pytest.raises(SystemExit) as status:
        main(["compress", str(gpt_run), "--out", str(tmp_path / "big"), "--distill", "--set", "n_layer=3",
              "--set", "n_embd=64", "--steps", "2", "--data", "digits"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status.value.code == 1 and len(err) == 1 and "must be smaller than its teacher" in err[0]
    assert not (tmp_path / "big").exists()
