"""ONNX export: every family's sampling graph passes onnx.checker, onnxruntime equals eager PyTorch within
1e-4 on random inputs of several shapes, and the torch-free runner gives the records of ``model.sample``
for the same noise; ``genlab export`` writes a graph and refuses a corrupted run."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

import genlab
from genlab.cli.app import main
from genlab.export.onnx import export_onnx
from genlab.export.runner import OnnxSampler

#: fp32 graphs run by other kernels than eager PyTorch: sums of ~100 products of O(1) terms differ by a few
#: float32 ulps (~1e-7 relative) per operation; 1e-4 absolute on O(1) outputs is the issue's parity bar
#: and leaves three orders of magnitude of room without hiding a wrong operation (which is O(1)).
ATOL = 1e-4
TRAIN = {"steps": 2, "batch_size": 8, "device": "cpu"}
OPTIONS = {"gan": {"latent_dim": 8, "channels": 8}, "vae": {"latent_dim": 4, "channels": 8, "hidden": 16},
           "diffusion": {"channels": (8, 16)}, "transformer": {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 72}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, single_thread_module):
    """A tiny conditional model of each family on digits and its exported graph."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for family, options in OPTIONS.items():
        model = genlab.fit("digits", family=family, train=TRAIN, **options)
        out[family] = (model, export_onnx(model, folder / f"{family}.onnx"))
    return out


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_image_graphs_equal_eager(exported, batch):
    g = torch.Generator().manual_seed(batch)
    y = torch.randint(0, 10, (batch,), generator=g)
    gan, path = exported["gan"]
    z = torch.randn(batch, 8, generator=g)
    with torch.no_grad():
        expected = gan.network_.generator(z, y).numpy()
    np.testing.assert_allclose(session(path).run(None, {"z": z.numpy(), "y": y.numpy()})[0], expected, atol=ATOL)

    vae, path = exported["vae"]
    z = torch.randn(batch, 4, generator=g)
    with torch.no_grad():
        expected = vae.network_.mean(vae.network_.decode(z, y)).numpy()
    np.testing.assert_allclose(session(path).run(None, {"z": z.numpy(), "y": y.numpy()})[0], expected, atol=ATOL)

    diffusion, path = exported["diffusion"]
    x, t = torch.randn(batch, 1, 8, 8, generator=g), torch.randint(0, 1000, (batch,), generator=g)
    with torch.no_grad():
        expected = diffusion.network_(x, t, y).numpy()
    got = session(path).run(None, {"x": x.numpy(), "t": t.numpy(), "y": y.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=ATOL)


@pytest.mark.parametrize("batch, past, new", [(1, 0, 1), (2, 0, 5), (3, 4, 1), (2, 6, 3)])
def test_transformer_graph_carries_the_cache(exported, batch, past, new):
    """Logits and the grown cache equal genlab's own KVCache decoding; an empty past is the first step."""
    model, path = exported["transformer"]
    gpt = model.network_
    ids = torch.randint(0, gpt.wte.weight.shape[0], (batch, past + new), generator=torch.Generator().manual_seed(past))
    cache = gpt.new_cache(batch, past + new)
    with torch.no_grad():
        if past:
            gpt(ids[:, :past], cache=cache)
            cache.advance(past)
        expected = gpt(ids[:, past:], cache=cache)
    keys = np.stack([k[:, :, :past].numpy() for k in cache.keys])
    values = np.stack([v[:, :, :past].numpy() for v in cache.values])
    logits, present_keys, present_values = session(path).run(
        None, {"input_ids": ids[:, past:].numpy(), "past_keys": keys, "past_values": values})
    np.testing.assert_allclose(logits, expected.numpy(), atol=ATOL)
    assert present_keys.shape == (2, batch, 2, past + new, 8)
    np.testing.assert_allclose(present_keys, np.stack([k[:, :, :past + new].numpy() for k in cache.keys]), atol=ATOL)
    np.testing.assert_allclose(present_values, np.stack([v[:, :, :past + new].numpy() for v in cache.values]),
                               atol=ATOL)


@pytest.mark.parametrize("guidance, condition", [(1.0, None), (2.0, 3)])
def test_runner_gives_the_records_of_sample(exported, guidance, condition):
    """DDIM in NumPy over the graph: the same records as ``sample`` for the same x_T (the 4 steps amplify
    per-call differences ~1e-6 at most by the step coefficients, O(1))."""
    model, path = exported["diffusion"]
    expected = model.sample(5, steps=4, sampler="ddim", guidance=guidance, condition=condition,
                            generator=torch.Generator().manual_seed(0))
    noise = torch.randn((5, 1, 8, 8), generator=torch.Generator().manual_seed(0)).numpy()
    got = OnnxSampler(path).sample(5, noise=noise, steps=4, guidance=guidance, condition=condition)
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_runner_generator_decoder_and_tokens(exported):
    gan, path = exported["gan"]
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(OnnxSampler(path).sample(4, noise=z, condition=2),
                               gan.sample(4, condition=2, generator=torch.Generator().manual_seed(0)), atol=ATOL)
    vae, path = exported["vae"]
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(OnnxSampler(path).sample(4, noise=z, condition=2, mean=True, prior="standard"),
                               vae.sample(4, condition=2, mean=True, prior="standard",
                                          generator=torch.Generator().manual_seed(0)), atol=ATOL)
    # the image VAE's default ex-post mixture travels in the graph's metadata: with one component per class
    # its draws are m_y + C_y eps, decoded as genlab decodes them
    mixture = vae.network_.fitted_prior
    one = OnnxSampler(path)
    one.meta["prior"] = {"log_weights": [[0.0] + [-np.inf] * (mixture.means.shape[1] - 1)] * mixture.means.shape[0],
                         "means": mixture.means.tolist(), "scale_tril": mixture.scale_tril.tolist()}
    latents = mixture.means[2, 0] + (mixture.scale_tril[2, 0] @ torch.from_numpy(z).T).T
    np.testing.assert_allclose(one.sample(4, noise=z, condition=2, mean=True), vae.decode(latents.numpy(), condition=2),
                               atol=ATOL)
    model, path = exported["transformer"]
    greedy = model.sample(3, condition=1, temperature=0)
    tokens = OnnxSampler(path).sample(3, condition=1, temperature=0)
    np.testing.assert_array_equal(tokens, model.codec_.encode(greedy)[:, 1:].numpy())


def test_runner_refuses_bad_input(exported):
    _, path = exported["diffusion"]
    with pytest.raises(genlab.GenlabError, match="steps must be an integer in 1..1000"):
        OnnxSampler(path).sample(2, steps=0)
    with pytest.raises(genlab.GenlabError, match="class index 0..9"):
        OnnxSampler(path).sample(2, condition=10)


def test_cli_export_and_bad_checksum(exported, tmp_path, capsys):
    model, _ = exported["gan"]
    run = model.save_pretrained(tmp_path / "run")
    with pytest.raises(SystemExit) as status:
        main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "g.onnx")])
    assert status.value.code == 0 and (tmp_path / "g.onnx").is_file()
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    with pytest.raises(SystemExit) as status:
        main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "bad.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status.value.code == 1 and err[-1].startswith("genlab: error:") and "checksum" in err[-1]
    assert not (tmp_path / "bad.onnx").exists()
    with pytest.raises(SystemExit) as status:
        main(["export", str(run), "--format", "tflite", "--out", str(tmp_path / "m.onnx")])
    assert status.value.code == 1 and "unknown export format 'tflite'" in capsys.readouterr().err
