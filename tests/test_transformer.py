"""The transformer family against trusted references: PyTorch's attention, Hugging Face GPT-2 and
``generate``, plus tokenizer round trips, the KV cache, decoding options and verification."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.data.dataset import Dataset
from genlab.data.text import BPECodec, CharCodec, string_array
from genlab.errors import ConfigError, DataError
from genlab.models.transformer import GPT, gpt_from_hf, gpt_to_hf
from genlab.nn.attention import CausalSelfAttention
from genlab.metrics.text import parses
from genlab.sampling.decoding import GenerationConfig, generate, sample_verified

from gpt_support import random_gpt

transformers = pytest.importorskip("transformers")

CODE = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(80)]


def code_data() -> Dataset:
    return Dataset("code", "text", string_array(CODE[:64]), string_array(CODE[64:]))


@pytest.fixture(scope="module")
def pair():
    network = random_gpt()
    return network, gpt_to_hf(network)


def hf_generate(hf, prompt, **kwargs):
    out = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                      do_sample=False, pad_token_id=0, eos_token_id=None, **kwargs)
    return out[0, len(prompt):].tolist()


def test_attention_matches_an_explicit_causal_softmax():
    torch.manual_seed(0)
    attention = CausalSelfAttention(16, 4).eval()
    x = torch.randn(2, 7, 16)
    q, k, v = attention.qkv(x).split(16, dim=2)
    q, k, v = (t.view(2, 7, 4, 4).transpose(1, 2) for t in (q, k, v))
    weights = (q @ k.transpose(-2, -1)) / 2.0
    weights = weights.masked_fill(torch.triu(torch.ones(7, 7, dtype=torch.bool), 1), float("-inf")).softmax(-1)
    expected = attention.proj((weights @ v).transpose(1, 2).reshape(2, 7, 16))
    torch.testing.assert_close(attention(x), expected, atol=1e-6, rtol=1e-5)


def test_logits_match_hugging_face_gpt2(pair):
    network, hf = pair
    tokens = torch.randint(0, 37, (3, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = network(tokens), hf(tokens).logits
    assert (ours - theirs).abs().max() < 1e-4
    back = gpt_from_hf(hf)
    with torch.no_grad():
        assert torch.equal(back(tokens), ours)


def test_bias_free_gpt_converts_to_gpt2_with_zero_biases():
    torch.manual_seed(0)
    network = GPT(37, 48, n_layer=2, n_head=4, n_embd=32, bias=False).eval()
    assert not any(name.endswith("bias") for name, _ in network.named_parameters())
    hf = gpt_to_hf(network)
    assert all(float(t.abs().max()) == 0 for name, t in hf.state_dict().items()
               if name.endswith(".bias") and not name.endswith(".attn.bias"))
    tokens = torch.randint(0, 37, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (network(tokens) - hf(tokens).logits).abs().max() < 1e-4


def test_greedy_and_beam_search_match_hugging_face_generate(pair):
    network, hf = pair
    prompts = [[3, 5, 7], [1, 2, 3], [30, 4, 4]]
    greedy = GenerationConfig(max_new_tokens=20, temperature=0)
    beams = GenerationConfig(max_new_tokens=12, temperature=0, num_beams=4)
    with torch.no_grad():
        assert generate(network, prompts, greedy) == [hf_generate(hf, p, max_new_tokens=20) for p in prompts]
        assert generate(network, prompts, beams) == [hf_generate(hf, p, max_new_tokens=12, num_beams=4)
                                                     for p in prompts]


def test_kv_cache_and_padding_do_not_change_greedy_output(pair):
    network, _ = pair
    prompts = [[3, 5, 7, 9, 11], [1], [30, 4]]       # different lengths: left padding and masks
    cached = GenerationConfig(max_new_tokens=70, temperature=0)   # past block_size 48: the window slides
    uncached = GenerationConfig(max_new_tokens=40, temperature=0, use_cache=False)
    with torch.no_grad():
        together = generate(network, prompts, cached)
        assert together == [generate(network, [p], cached)[0] for p in prompts]
        assert [row[:40] for row in together] == generate(network, prompts, uncached)
        assert all(len(row) == 70 for row in together)


def test_generation_config_rejects_bad_values():
    for bad in ({"temperature": -1}, {"top_p": 0}, {"top_k": 0}, {"num_beams": 2, "top_k": 5},
                {"max_new_tokens": 0}, {"repetition_penalty": 0.5}):
        with pytest.raises(ValueError):
            GenerationConfig(**bad)


def test_top_k_top_p_and_repetition_penalty_restrict_the_choices(pair):
    network, _ = pair
    prompt = [[3, 5, 7]]
    with torch.no_grad():
        logits = network(torch.tensor(prompt))[0, -1]
        top2 = set(torch.topk(logits, 2).indices.tolist())
        for seed in range(10):
            token = generate(network, prompt, GenerationConfig(max_new_tokens=1, top_k=2),
                             generator=torch.Generator().manual_seed(seed))[0][0]
            assert token in top2
        tiny_p = GenerationConfig(max_new_tokens=1, top_p=1e-6)
        assert generate(network, prompt, tiny_p, generator=torch.Generator())[0][0] == int(logits.argmax())


def test_logits_processors_see_the_tokens_and_steer_every_strategy(pair):
    network, _ = pair
    calls = []

    def only_token_11(tokens, scores):
        calls.append(tokens.shape)
        return scores.masked_fill(torch.arange(scores.shape[-1]) != 11, float("-inf"))

    for options in ({"temperature": 0.0}, {"top_p": 0.9}, {"num_beams": 2}):
        config = GenerationConfig(max_new_tokens=3, logits_processors=(only_token_11,), **options)
        assert generate(network, [[3, 5, 7]], config, generator=torch.Generator().manual_seed(0)) == [[11, 11, 11]]
    assert calls[0] == (1, 3) and calls[1] == (1, 4)   # the prompt, then the prompt and the first new token
    with pytest.raises(ValueError):
        GenerationConfig(logits_processors=("not callable",))


def test_logit_processing_matches_hugging_face_processors():
    from transformers import RepetitionPenaltyLogitsProcessor, TopKLogitsWarper, TopPLogitsWarper
    from genlab.sampling.decoding import process_logits

    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0)) * 3
    history = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(1))
    seen = torch.zeros(3, 50, dtype=torch.bool).scatter_(1, history, True)
    config = GenerationConfig(repetition_penalty=1.7, top_k=20, top_p=0.8, temperature=0.7)
    expected = RepetitionPenaltyLogitsProcessor(1.7)(history, logits.clone()) / 0.7
    expected = TopPLogitsWarper(0.8)(history, TopKLogitsWarper(20)(history, expected))
    torch.testing.assert_close(process_logits(logits, seen, config), expected)


def test_char_and_bpe_tokenizers_round_trip_and_save():
    documents = string_array(["héllo wörld\n", "def f(x): return x  # ✓\n", "tabs\tand\nlines"])
    for codec in (CharCodec(context=4).fit(documents), BPECodec(context=4, vocab_size=300).fit(documents)):
        for text in documents:
            assert codec.detokenize(codec.tokenize(text)) == text
        again = type(codec).from_state(codec.state())
        assert again.tokenize("hello") == codec.tokenize("hello") and again.vocab_size == codec.vocab_size
        windows = codec.encode(documents)
        assert windows.shape[1] == 4 and windows[0, 0] == codec.eos
        np.testing.assert_array_equal(codec.decode(torch.tensor([codec.tokenize("wörld") + [codec.eos, 1]])),
                                      ["wörld"])
    assert BPECodec(context=4, vocab_size=300).fit(documents).detokenize(
        BPECodec(context=4, vocab_size=300).fit(documents).tokenize("unseen ☃")) == "unseen ☃"
    with pytest.raises(DataError, match="not in this model's vocabulary"):
        CharCodec(context=4).fit(documents).tokenize("☃")


@pytest.fixture(scope="module")
def code_model():
    return genlab.fit(code_data(), family="transformer", n_layer=2, n_head=2, n_embd=32, block_size=32,
                      train={"steps": 300, "batch_size": 32, "lr": 3e-3, "device": "cpu"})


def test_text_model_learns_saves_and_samples_strings(code_model, tmp_path):
    model = code_model
    assert model.history_[-1]["model"] < 1.2   # nats per character; uniform would be log(vocab) ~ 3.2
    texts = model.sample(4, prompt="def ", max_new_tokens=30, temperature=0.5,
                         generator=torch.Generator().manual_seed(0))
    assert texts.dtype == object and texts.shape == (4,) and all(t.startswith("def ") for t in texts)
    stopped = model.sample(3, prompt=["def f1", "def f2", "def"], stop=["\n"], temperature=0,
                           max_new_tokens=40)
    assert all(t.startswith(p) and "\n" not in t for t, p in zip(stopped, ["def f1", "def f2", "def"]))
    streamed = "".join(model.stream("def ", temperature=0, max_new_tokens=30))
    assert "def " + streamed == model.sample(1, prompt="def ", temperature=0, max_new_tokens=30)[0]
    model.save_pretrained(tmp_path / "run")
    loaded = genlab.load(tmp_path / "run")
    assert list(loaded.sample(2, prompt="def ", temperature=0, max_new_tokens=20)) == \
        list(model.sample(2, prompt="def ", temperature=0, max_new_tokens=20))


def test_verification_keeps_only_parsing_python(code_model):
    assert parses("def f(x):\n    return x\n") and not parses("def f(x:\n")
    result = sample_verified(code_model, 4, "python", generator=torch.Generator().manual_seed(0),
                             prompt="def ", stop=["\n\n"], max_new_tokens=40)
    assert all(parses(t) for t in result.samples)
    assert 0 < result.validity <= 1 and result.drawn >= len(result.samples)
    with pytest.raises(ConfigError, match="python"):
        sample_verified(code_model, 1, "rust")


def test_sampling_options_are_checked(code_model):
    with pytest.raises(ConfigError, match="temperature"):
        code_model.sample(1, temperature=-1.0)
    with pytest.raises(ConfigError, match="prompt must be"):
        code_model.sample(3, prompt=["a", "b"])
    with pytest.raises(ConfigError, match="no sampling option"):
        code_model.sample(1, beams=3)


def test_digits_as_pixel_tokens_fit_and_condition():
    model = genlab.fit("digits", family="transformer", n_layer=2, n_head=2, n_embd=32,
                       train={"steps": 150, "batch_size": 32, "lr": 3e-3, "device": "cpu"})
    x = model.sample(6, condition=0, generator=torch.Generator().manual_seed(0), temperature=0.8)
    assert x.shape == (6, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    levels = x * 16
    np.testing.assert_allclose(levels, np.rint(levels), atol=1e-5)
    with pytest.raises(ConfigError, match="fixed length"):
        model.sample(2, prompt="x")


def test_points_as_binned_coordinates():
    model = genlab.fit("moons", family="transformer", n_layer=1, n_head=2, n_embd=16, levels=32,
                       train={"steps": 100, "batch_size": 64, "lr": 3e-3, "device": "cpu"})
    x = model.sample(200, generator=torch.Generator().manual_seed(0))
    data = genlab.datasets.load("moons")
    assert x.shape == (200, 2)
    assert (x.min(0) >= data.x_train.min(0) - 1e-5).all() and (x.max(0) <= data.x_train.max(0) + 1e-5).all()


def test_continuous_families_refuse_text():
    with pytest.raises(ConfigError, match="transformer"):
        genlab.fit(code_data(), family="gaussian")


def test_text_sources(tmp_path, shared_data):
    (tmp_path / "a.txt").write_text("one two three four five six seven eight nine ten")
    single = genlab.datasets.load(tmp_path / "a.txt")
    assert single.modality == "text" and single.x_train[0] + single.x_test[0] == (tmp_path / "a.txt").read_text()
    folder = tmp_path / "code"
    folder.mkdir()
    for i in range(10):
        (folder / f"m{i}.py").write_text(f"x = {i}\n")
    split = genlab.datasets.load(folder)
    assert sorted(split.x_train.tolist() + split.x_test.tolist()) == sorted(f"x = {i}\n" for i in range(10))
    assert len(split.x_test) == 2
    shakespeare = genlab.datasets.load("tinyshakespeare", data_dir=shared_data)
    assert len(shakespeare.x_train[0]) == 1_003_854 and len(shakespeare.x_test[0]) == 111_540
    with pytest.raises(DataError, match="tinyshakespeare.txt"):
        genlab.datasets.load("tinyshakespeare", data_dir=tmp_path)
    stdlib = genlab.datasets.load("pystdlib")
    assert len(stdlib.x_train) > 300 and all(parses(t) for t in stdlib.x_test[:20])


def test_cli_writes_verified_text_samples(code_model, tmp_path, capsys):
    from genlab.cli.app import main

    code_model.save_pretrained(tmp_path / "run")
    out = tmp_path / "samples.txt"
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(tmp_path / "run"), "-n", "3", "--prompt", "def ", "--verify", "python",
              "--set", 'stop=["\\n\\n"]', "--set", "max_new_tokens=40", "--out", str(out)])
    assert exit_info.value.code in (0, None)
    samples = out.read_text().split("\n<|endoftext|>\n")[:-1]
    assert 1 <= len(samples) <= 3 and all(s.startswith("def ") and parses(s) for s in samples)
    assert "validity" in capsys.readouterr().err
