"""Fast sampling (genlab.sampling.cuda_graphs): the static-shape decoding step gives the tokens of the
dynamic cache (checked on CPU, where it runs eagerly), its CUDA graph replays them (GPU only), and the
diffusion speed options leave default sampling alone and keep its samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.errors import ConfigError
from genlab.nn.attention import KVCache
from genlab.sampling.cuda_graphs import _GRAPHS, Denoiser, StaticDecodeStep, denoiser
from genlab.sampling.decoding import GenerationConfig, generate

from gpt_support import random_gpt

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")

PROMPTS = [[3, 5, 7, 9, 11], [1], [30, 4]]        # different lengths: left padding and masks


# ---------------------------------------------------------------------- the static cache
def test_a_slot_tensor_writes_in_place_and_returns_every_slot():
    cache = KVCache([torch.zeros(2, 1, 6, 3)], [torch.zeros(2, 1, 6, 3)], length=2, slot=torch.tensor([2]))
    k, v = torch.ones(2, 1, 1, 3), 2 * torch.ones(2, 1, 1, 3)
    keys, values = cache.update(0, k, v)
    assert keys.shape == (2, 1, 6, 3) and keys.data_ptr() == cache.keys[0].data_ptr()
    assert (keys[:, :, 2] == 1).all() and (values[:, :, 2] == 2).all()
    assert (keys[:, :, :2] == 0).all() and (keys[:, :, 3:] == 0).all()


def test_reorder_keeps_the_buffers_in_place():
    keys = torch.arange(3.0)[:, None, None, None].expand(3, 1, 4, 2).contiguous()
    cache = KVCache([keys], [keys.clone()])
    address = cache.keys[0].data_ptr()
    cache.reorder(torch.tensor([2, 2, 0]))
    assert cache.keys[0].data_ptr() == address
    assert cache.keys[0][:, 0, 0, 0].tolist() == [2.0, 2.0, 0.0]


def test_static_step_logits_equal_the_dynamic_cache():
    network = random_gpt()
    tokens = torch.tensor([[3, 5, 7, 9, 11, 2, 8]])
    step = StaticDecodeStep(network, 1, 20, graph=False)
    dynamic = network.new_cache(1, 20)
    with torch.no_grad():
        for cache in (step.cache, dynamic):
            network(tokens[:, :4], cache=cache)
            cache.advance(4)
        for position in range(4, 7):
            token = tokens[:, position]
            ours = step(token, torch.tensor([position]), None)
            theirs = network(token[:, None], cache=dynamic)[:, -1]
            step.cache.advance(1)
            dynamic.advance(1)
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options", [
    {"max_new_tokens": 70, "temperature": 0},                  # past block_size 48: the window slides
    {"max_new_tokens": 12, "temperature": 0, "num_beams": 4},  # beams reorder the cache in place
])
def test_static_decoding_gives_the_same_tokens(options):
    network = random_gpt()
    dynamic, static = GenerationConfig(**options), GenerationConfig(**options, cuda_graphs=True)
    assert generate(network, PROMPTS, static) == generate(network, PROMPTS, dynamic)
    for prompt in PROMPTS:                                        # unpadded, one row
        assert generate(network, [prompt], static) == generate(network, [prompt], dynamic)


def test_static_decoding_matches_hugging_face_generate():
    pytest.importorskip("transformers")
    from genlab.models.transformer import gpt_to_hf

    network = random_gpt()
    hf = gpt_to_hf(network)
    config = GenerationConfig(max_new_tokens=20, temperature=0, cuda_graphs=True)
    for prompt in PROMPTS:
        with torch.no_grad():
            out = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                              do_sample=False, max_new_tokens=20, pad_token_id=0, eos_token_id=None)
        assert generate(network, [prompt], config)[0] == out[0, len(prompt):].tolist()


def test_cuda_graphs_needs_the_cache():
    with pytest.raises(ValueError, match="use_cache"):
        GenerationConfig(cuda_graphs=True, use_cache=False)


def test_table_rows_are_the_same_with_the_static_step():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.choice(["x", "y", "z"], 300), "b": rng.normal(size=300),
                          "c": rng.integers(0, 4, 300)})
    model = genlab.fit(table, family="transformer", n_layer=1, n_head=2, n_embd=16, bins=8,
                       train={"steps": 3, "batch_size": 32})
    rows = [model.sample(20, temperature=0, cuda_graphs=flag, condition={"a": "y"},
                         generator=torch.Generator().manual_seed(0)) for flag in (False, True)]
    pd.testing.assert_frame_equal(rows[0], rows[1])


@cuda
def test_cuda_graph_replays_the_static_step():
    network = random_gpt(device="cuda")
    for options in ({"max_new_tokens": 70, "temperature": 0}, {"max_new_tokens": 12, "temperature": 0, "num_beams": 4}):
        assert (generate(network, PROMPTS, GenerationConfig(**options, cuda_graphs=True))
                == generate(network, PROMPTS, GenerationConfig(**options)))
    step = StaticDecodeStep(network, 1, 16)
    assert step.graph
    with torch.no_grad():
        network(torch.tensor([[3, 5]], device="cuda"), cache=step.cache)
        step.cache.advance(2)
        first = step(torch.tensor([7], device="cuda"), torch.tensor([2], device="cuda"), None)
        assert step.capture_seconds > 0
        eager = StaticDecodeStep(network, 1, 16, graph=False)
        network(torch.tensor([[3, 5]], device="cuda"), cache=eager.cache)
        eager.cache.advance(2)
        torch.testing.assert_close(first, eager(torch.tensor([7], device="cuda"), torch.tensor([2], device="cuda"),
                                                None))


# ---------------------------------------------------------------------- diffusion
@pytest.fixture(scope="module")
def image_model():
    images = np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32)
    return genlab.fit(images, family="diffusion", channels=(8, 16), timesteps=50,
                      train={"steps": 2, "batch_size": 8})


def test_default_sampling_calls_the_network_itself(image_model):
    network = image_model.network_
    assert denoiser(network) is network
    assert denoiser(network, cuda_graphs=False, compile=False, bf16=False, steps=5) is network
    with pytest.raises(ConfigError, match="bf16 must be True or False"):
        denoiser(network, bf16="yes")


def test_speed_options_wrap_the_network(image_model):
    network = image_model.network_
    wrapped = denoiser(network, bf16=True, cuda_graphs=True)
    assert isinstance(wrapped, Denoiser) and wrapped.bf16 and wrapped.cuda_graphs and not wrapped.compile
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 40])
    with torch.no_grad():
        out = wrapped(x, t)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, network(x, t), atol=0.05, rtol=0.05)


def test_cuda_graphs_are_ignored_on_cpu_and_bf16_stays_close(image_model):
    def draw(**options):
        return image_model.sample(6, steps=5, sampler="ddim", generator=torch.Generator().manual_seed(3), **options)

    plain = draw()
    np.testing.assert_array_equal(draw(cuda_graphs=True), plain)
    half = draw(bf16=True)
    assert half.dtype == plain.dtype and half.shape == plain.shape
    assert np.abs(half - plain).max() < 0.1                 # images in [0, 1]; bf16 keeps ~3 digits


def test_speed_options_are_refused_for_tables():
    table = pd.DataFrame({"a": np.random.default_rng(0).normal(size=200), "b": ["x", "y"] * 100})
    model = genlab.fit(table, family="diffusion", hidden=8, depth=1, timesteps=20,
                       train={"steps": 2, "batch_size": 16})
    with pytest.raises(ConfigError, match="not tables"):
        model.sample(4, bf16=True)


@cuda
@pytest.mark.parametrize("options", [{"cuda_graphs": True}, {"cuda_graphs": True, "bf16": True}])
def test_cuda_graph_denoiser_gives_the_eager_samples(options):
    images = np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32)
    model = genlab.fit(images, family="diffusion", channels=(8, 16), timesteps=50,
                       train={"steps": 2, "batch_size": 8, "device": "cuda"})

    def draw(**flags):
        return model.sample(16, steps=5, sampler="ddim", generator=torch.Generator("cuda").manual_seed(3), **flags)

    eager = draw(bf16=options.get("bf16", False))
    np.testing.assert_allclose(draw(**options), eager, atol=1e-5)
    np.testing.assert_allclose(draw(**options), eager, atol=1e-5)   # the second call replays the kept graph
    assert len(_GRAPHS[model.network_][1]) == 1
