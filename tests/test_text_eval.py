"""Text evaluation: the metrics against hand-computed values, the transformer's likelihood against a direct
cross-entropy, a seeded evaluation that repeats exactly, the report's text view, and the demo's text run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genlab
from genlab.data.dataset import Dataset
from genlab.data.text import string_array
from genlab.errors import NotSupportedError
from genlab.metrics.text import CopyIndex, copying, copying_scores, distinct_n, perplexity, validity, words
from genlab.report.html import TEXT_SAMPLES_SHOWN, RunResult, render_html
from genlab.evaluation.text import CODE_STOP, code_language, evaluate_text, real_snippets

CODE = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(80)]
PROSE = ["the cat sat on the mat. ", "a dog ran far away! ", "it was a dark night. "] * 10


def code_data() -> Dataset:
    return Dataset("code", "text", string_array(CODE[:64]), string_array(CODE[64:]))


@pytest.fixture(scope="module")
def code_model(single_thread_module):
    return genlab.fit(code_data(), family="transformer", n_layer=1, n_head=2, n_embd=16, block_size=16,
                      train={"steps": 30, "batch_size": 8, "lr": 3e-3, "seed": 0})


# --- metrics against hand computations ---------------------------------------------------------------


def test_validity_is_the_share_that_parses():
    texts = ["def f():\n    return 1\n", "def f(:", "x = 1", "def ", "def f(x):"]
    assert validity(texts) == pytest.approx(2 / 5)   # a prompt or a signature without a body is invalid
    assert validity(["1 + \0"]) == 0.0                 # null bytes are invalid, not an exception


def test_distinct_n_counts_word_ngrams_within_texts():
    texts = ["a b a", "b c"]
    # 1-grams a b a b c: 3 distinct of 5; 2-grams (a b) (b a) | (b c): 3 of 3 (none crosses texts)
    assert distinct_n(texts, 1) == pytest.approx(3 / 5)
    assert distinct_n(texts, 2) == 1.0 and distinct_n(texts, 3) == 1.0 and distinct_n(["a b"], 3) == 0.0
    assert words("x=f(y_1)") == ["x", "=", "f", "(", "y_1", ")"]
    assert distinct_n(["x=x", "x"], 1) == pytest.approx(2 / 4)


def test_copy_index_matches_substring_search():
    train = ["abcdefghij", "klmnopqrst"]
    index = CopyIndex.from_texts(train, n=5)
    rows = copying(["cdefgh", "zzzzzz", "ijklm", "abcdefghij", "abc"], index)
    # windows: cdefg defgh | none | (ijklm crosses the two texts) | all 6 | too short
    assert rows.tolist() == [[2, 2, 1], [0, 2, 0], [0, 1, 0], [6, 6, 1], [0, 0, 0]]
    assert copying_scores(rows) == {"copied_ngrams": pytest.approx(8 / 11), "copied_texts": pytest.approx(2 / 4)}


# --- the transformer's likelihood --------------------------------------------------------------------


def direct_log_prob(model, text: str, start_of_window) -> tuple[float, int]:
    """Sum of log p over ``eos text eos``, each token from the context ``start_of_window(j)`` gives."""
    codec, network = model.codec_, model.network_
    sequence = [codec.eos, *codec.tokenize(text), codec.eos]
    total = 0.0
    with torch.no_grad():
        for j in range(len(sequence) - 1):
            context = torch.tensor([sequence[start_of_window(j):j + 1]])
            total += float(network(context)[0, -1].log_softmax(-1)[sequence[j + 1]])
    return total, len(sequence) - 1


def test_log_prob_of_short_documents_is_the_cross_entropy(code_model):
    documents = np.array(["def f1(x):\n", "x"], dtype=object)
    log_p = code_model.log_prob(documents)
    codec = code_model.codec_
    for text, value in zip(documents, log_p):
        tokens = torch.tensor([[codec.eos, *codec.tokenize(text), codec.eos]])
        with torch.no_grad():
            logits = code_model.network_(tokens[:, :-1])
        expected = -F.cross_entropy(logits[0], tokens[0, 1:], reduction="sum").item()
        assert value == pytest.approx(expected, abs=1e-4)
    likelihood = code_model.token_log_likelihood(documents)
    assert likelihood.n_tokens.tolist() == [12, 2]
    assert likelihood.perplexity == pytest.approx(math.exp(-log_p.sum() / 14))
    assert perplexity(likelihood.log_prob, likelihood.n_tokens) == pytest.approx(likelihood.perplexity)


def test_long_documents_are_scored_in_half_overlapping_windows(code_model):
    text = CODE[70] + CODE[71]                          # 58 tokens + eos, block_size 16
    block, stride = 16, 8
    # target j is scored by the first window that reaches it: windows start at 0, 8, 16, ... and hold 16 inputs
    window_start = lambda j: 0 if j < block else ((j - block) // stride + 1) * stride  # noqa: E731
    expected, count = direct_log_prob(code_model, text, window_start)
    likelihood = code_model.token_log_likelihood(np.array([text], dtype=object))
    assert likelihood.n_tokens.tolist() == [count]
    assert likelihood.log_prob[0] == pytest.approx(expected, abs=1e-3)
    opening = code_model.token_log_likelihood(np.array([text], dtype=object), max_tokens=10)
    assert opening.n_tokens.tolist() == [10]


def test_token_models_of_points_have_no_log_prob():
    model = genlab.fit(genlab.datasets.load("ring8"), family="transformer", n_layer=1, n_head=1, n_embd=8,
                       block_size=4, train={"steps": 1, "batch_size": 4})
    with pytest.raises(NotSupportedError):
        model.log_prob(np.zeros((2, 2), dtype=np.float32))


# --- the evaluation ----------------------------------------------------------------------------------


def test_text_evaluation_is_seeded_and_complete(code_model):
    data = code_data()
    assert code_language(data) == "python"
    assert code_language(Dataset("prose", "text", string_array(PROSE[:20]), string_array(PROSE[20:]))) is None
    first = genlab.evaluate(code_model, data, n=12, seed=3, n_bootstrap=5)   # dispatched to evaluate_text
    again = evaluate_text(code_model, data, n=12, seed=3, n_bootstrap=5)
    assert first.to_dict() == again.to_dict()
    assert {"validity", "distinct_1", "distinct_2", "distinct_3", "copied_ngrams", "copied_texts",
            "nll_per_token", "perplexity"} <= set(first.metrics)
    assert first.n_samples == 12 and first.seed == 3 and first.n_bootstrap == 5
    assert first.floor["validity"] == 1.0 and "perplexity" not in first.floor   # real short functions parse
    for name, value in first.metrics.items():
        low, high = first.intervals[name]
        assert low <= value + 1e-9 and value <= high + 1e-9, name
    assert first.metrics["perplexity"] == pytest.approx(math.exp(first.metrics["nll_per_token"]))
    assert evaluate_text(code_model, data, n=12, seed=4, n_bootstrap=5).to_dict() != first.to_dict()


def test_real_snippets_are_cut_like_completions(code_model):
    documents = np.array(["dune\ndef f1(x):\n    return 1\nx\ndef f2(x): return x\n"], dtype=object)
    snippets = real_snippets(documents, 5, codec=code_model.codec_, language="python",
                             rng=np.random.default_rng(0))
    assert snippets == ["def f1(x):\n    return 1", "def f2(x): return x\n"]
    assert "\nx" in CODE_STOP and "\n " not in CODE_STOP


# --- the report --------------------------------------------------------------------------------------


class ScriptedModel:
    """Stands in for a text model whose samples hold HTML."""

    family = "transformer"
    history_: list = []

    def sample(self, n, *, generator=None, **options):
        texts = ["def f():\n    return 1 < 2\n", "def <script>alert(1)</script>"]
        return np.array([texts[i % 2] for i in range(n)], dtype=object)


def test_report_shows_escaped_text_samples_with_validity_marks(code_model):
    data = code_data()
    report = evaluate_text(code_model, data, n=8, seed=0, n_bootstrap=3)
    page = render_html([RunResult("code-transformer", ScriptedModel(), data, report)])
    assert page.count("<pre>") == TEXT_SAMPLES_SHOWN
    assert page.count('class="mark ok"') == TEXT_SAMPLES_SHOWN // 2
    assert page.count('class="mark bad"') == TEXT_SAMPLES_SHOWN - TEXT_SAMPLES_SHOWN // 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "return 1 &lt; 2" in page and "nll_per_token ↓" in page and "validity ↑" in page
    real = render_html([RunResult("code-transformer", code_model, data, report)])
    assert real.count("<pre>") == TEXT_SAMPLES_SHOWN and "training losses" in real


# --- the demo's text run -----------------------------------------------------------------------------


def test_demo_text_run_repeats_exactly(monkeypatch, tmp_path, capsys):
    from genlab.cli import demo_command
    from genlab.cli.app import main
    from genlab.evaluation import text as text_evaluation

    run = next(r for r in demo_command.DEMO_RUNS if r.data == "pystdlib")
    tiny = demo_command.DemoRun(run.name, run.data, run.family, 5)   # a step budget repeats exactly
    monkeypatch.setattr(demo_command, "DEMO_RUNS", (tiny,))
    monkeypatch.setattr(demo_command, "load_dataset", lambda name, seed: code_data())
    monkeypatch.setattr(text_evaluation, "TEXT_SAMPLES", 10)
    metrics = []
    for folder in ("a", "b"):
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", "--out", str(tmp_path / folder)])
        assert exit_info.value.code == 0, capsys.readouterr().err
        metrics.append(json.loads((tmp_path / folder / run.name / "metrics.json").read_text()))
    assert metrics[0] == metrics[1] and "validity" in metrics[0]["metrics"]
    summaries = [json.loads((tmp_path / folder / "summary.json").read_text()) for folder in ("a", "b")]
    assert summaries[0] == summaries[1] and summaries[0][run.name]["budget"] == "5 steps"
    page = (tmp_path / "a" / "report.html").read_text()
    assert page.count("<pre>") == TEXT_SAMPLES_SHOWN and ('class="mark ok"' in page or 'class="mark bad"' in page)
