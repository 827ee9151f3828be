"""``genlab sample``'s text-decoding flags (Hugging Face ``generate``'s names), ``--stream``, ``.jsonl``
output, and every bad value of them: one ``genlab: error:`` line, exit 2, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.cli.app import main
from genlab.cli.sample_command import TEXT_SEPARATOR
from genlab.data.dataset import Dataset
from genlab.data.text import string_array
from genlab.metrics.text import parses

from tables_support import split_table

CODE = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(80)]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def usage_error(capsys, *argv: str, match: str) -> str:
    """Run argv, expect exit 2 with exactly one ``genlab: error:`` line (the last) containing ``match``."""
    status, _, err = run_cli(capsys, *argv)
    errors = [line for line in err.splitlines() if line.startswith("genlab: error:")]
    assert status == 2, err
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert match in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A tiny character-level code model: 200 steps (about 3 s on one core) learn to write parsing functions."""
    data = Dataset("code", "text", string_array(CODE[:64]), string_array(CODE[64:]))
    torch.manual_seed(0)
    model = genlab.fit(data, family="transformer", n_layer=1, n_head=2, n_embd=32, block_size=32,
                       train={"steps": 200, "batch_size": 32, "lr": 3e-3, "device": "cpu", "seed": 0})
    run = tmp_path_factory.mktemp("decoding") / "code"
    model.save_pretrained(run)
    return run


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A VAE on points: its sampling options are ``mean`` and ``temperature``."""
    model = genlab.fit(genlab.datasets.load("ring8"), family="vae",
                       train={"steps": 3, "device": "cpu", "seed": 0})
    run = tmp_path_factory.mktemp("decoding") / "vae"
    model.save_pretrained(run)
    return run


def texts_of(path) -> list[str]:
    """The samples of a ``.txt`` output (each followed by a separator line)."""
    chunks = path.read_text(encoding="utf-8").split(f"\n{TEXT_SEPARATOR}\n")
    assert chunks[-1] == ""
    return chunks[:-1]


def sample_txt(capsys, run, tmp_path, name, *flags: str) -> list[str]:
    out = tmp_path / name
    status, _, err = run_cli(capsys, "sample", str(run), "--out", str(out), *flags)
    assert status == 0, err
    return texts_of(out)


def test_greedy_is_deterministic_and_equals_one_beam(text_run, tmp_path, capsys):
    flags = ("-n", "2", "--prompt", "def ", "--max-new-tokens", "24")
    greedy = sample_txt(capsys, text_run, tmp_path, "a.txt", *flags, "--temperature", "0", "--seed", "1")
    again = sample_txt(capsys, text_run, tmp_path, "b.txt", *flags, "--temperature", "0", "--seed", "2")
    beam = sample_txt(capsys, text_run, tmp_path, "c.txt", *flags, "--temperature", "0", "--num-beams", "1")
    assert greedy == again == beam and len(greedy) == 2 and greedy[0] == greedy[1]
    assert greedy[0].startswith("def ") and len(greedy[0]) > len("def ")
    # temperature 1 with another seed draws differently (the flag reaches the decoder)
    drawn = [sample_txt(capsys, text_run, tmp_path, f"t{seed}.txt", "-n", "4", "--prompt", "def ",
                        "--max-new-tokens", "24", "--temperature", "1.5", "--seed", str(seed)) for seed in (1, 2)]
    assert drawn[0] != drawn[1]


def test_python_api_takes_the_same_options_and_gives_the_cli_output(text_run, tmp_path, capsys):
    cli = sample_txt(capsys, text_run, tmp_path, "cli.txt", "-n", "2", "--prompt", "def f",
                     "--max-new-tokens", "5", "--temperature", "0.7", "--top-k", "5", "--seed", "3")
    api = genlab.load(text_run).sample(2, prompt="def f", max_new_tokens=5, temperature=0.7, top_k=5,
                                       generator=torch.Generator().manual_seed(3))
    assert cli == list(api)
    greedy = genlab.load(text_run).sample(2, prompt="def f", max_new_tokens=5, temperature=0)
    assert sample_txt(capsys, text_run, tmp_path, "g.txt", "-n", "2", "--prompt", "def f",
                      "--max-new-tokens", "5", "--temperature", "0") == list(greedy)


def test_beam_search_flag_reaches_the_decoder(text_run, tmp_path, capsys):
    beams = sample_txt(capsys, text_run, tmp_path, "beams.txt", "-n", "2", "--prompt", "def f", "--num-beams", "3",
                       "--max-new-tokens", "12", "--repetition-penalty", "1.3")
    api = genlab.load(text_run).sample(2, prompt="def f", num_beams=3, max_new_tokens=12, repetition_penalty=1.3)
    assert beams == list(api)


def test_max_new_tokens_bounds_the_length_and_stop_cuts(text_run, tmp_path, capsys):
    # a character model: one token per character, so a sample is at most prompt + max_new_tokens long
    for limit in (1, 7):
        texts = sample_txt(capsys, text_run, tmp_path, f"m{limit}.txt", "-n", "6", "--prompt", "def ",
                           "--max-new-tokens", str(limit), "--temperature", "1.2", "--seed", "0")
        assert all(t.startswith("def ") and len(t) <= len("def ") + limit for t in texts)
        assert any(len(t) == len("def ") + limit for t in texts)
    long = sample_txt(capsys, text_run, tmp_path, "long.txt", "-n", "3", "--prompt", "def ",
                      "--max-new-tokens", "30", "--temperature", "0")
    assert all("(" in t for t in long)   # the learnt "def fN(x):" reaches "(" within 30 characters
    cut = sample_txt(capsys, text_run, tmp_path, "cut.txt", "-n", "3", "--prompt", "def ",
                     "--max-new-tokens", "30", "--temperature", "0", "--stop", "(", "--stop", "\n")
    assert cut == [t[:t.index("(")] for t in long]


def test_stream_prints_what_the_non_streamed_sample_writes(text_run, tmp_path, capsys):
    flags = ("--prompt", "def ", "--max-new-tokens", "20", "--temperature", "0.9", "--top-p", "0.9", "--seed", "5")
    written = sample_txt(capsys, text_run, tmp_path, "one.txt", "-n", "1", *flags)
    status, out, err = run_cli(capsys, "sample", str(text_run), "-n", "1", *flags, "--stream")
    assert status == 0 and out == written[0] + "\n", err
    stopped = sample_txt(capsys, text_run, tmp_path, "stop.txt", "-n", "1", *flags, "--stop", "\n")
    status, out, err = run_cli(capsys, "sample", str(text_run), "-n", "1", *flags, "--stop", "\n", "--stream")
    assert status == 0 and out == stopped[0] + "\n" and "\n" not in stopped[0], err
    # n > 1: each sample in turn, separated by the separator line, and --out still written
    greedy = ("--prompt", "def ", "--max-new-tokens", "20", "--temperature", "0")
    batched = sample_txt(capsys, text_run, tmp_path, "batched.txt", "-n", "2", *greedy)
    status, out, err = run_cli(capsys, "sample", str(text_run), "-n", "2", *greedy, "--stream",
                               "--out", str(tmp_path / "streamed.txt"))
    assert status == 0 and out == f"\n{TEXT_SEPARATOR}\n".join(batched) + "\n", err
    assert texts_of(tmp_path / "streamed.txt") == batched


def test_text_without_out_goes_to_stdout_and_writes_nothing(text_run, tmp_path, capsys, monkeypatch):
    flags = ("-n", "2", "--prompt", "def ", "--max-new-tokens", "12", "--temperature", "0.8", "--seed", "3")
    (tmp_path / "files").mkdir()
    (tmp_path / "cwd").mkdir()
    written = sample_txt(capsys, text_run, tmp_path / "files", "kept.txt", *flags)
    monkeypatch.chdir(tmp_path / "cwd")
    for _ in range(2):   # again: nothing was written that could be in the way
        status, out, err = run_cli(capsys, "sample", str(text_run), *flags)
        assert status == 0 and out == f"\n{TEXT_SEPARATOR}\n".join(written) + "\n", err
    assert list((tmp_path / "cwd").iterdir()) == []


def test_jsonl_holds_prompt_text_and_validity(text_run, vae_run, tmp_path, capsys):
    flags = ("--prompt", "def ", "--max-new-tokens", "30", "--temperature", "0.5", "--seed", "0")
    status, _, err = run_cli(capsys, "sample", str(text_run), "-n", "3", *flags, "--out", str(tmp_path / "s.jsonl"))
    assert status == 0, err
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(set(r) == {"prompt", "text", "valid"} for r in rows)
    assert all(r["prompt"] == "def " and r["text"].startswith("def ") and r["valid"] is None for r in rows)
    assert [r["text"] for r in rows] == sample_txt(capsys, text_run, tmp_path, "s.txt", "-n", "3", *flags)
    # --verify: the kept samples, each with the check's own verdict
    status, _, err = run_cli(capsys, "sample", str(text_run), "-n", "2", "--prompt", "def ", "--max-new-tokens", "60",
                             "--temperature", "0", "--verify", "python", "--out", str(tmp_path / "v.jsonl"))
    assert status == 0, err
    verified = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert verified and all(r["valid"] is True and parses(r["text"]) for r in verified)
    # points: one JSON list per record, the same numbers as .npy
    for name in ("p.jsonl", "p.npy"):
        assert run_cli(capsys, "sample", str(vae_run), "-n", "4", "--temperature", "0.5",
                       "--out", str(tmp_path / name))[0] == 0
    points = np.array([json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()])
    np.testing.assert_array_equal(points.astype(np.float32), np.load(tmp_path / "p.npy"))


def test_table_jsonl_is_one_object_per_row(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "c": rng.choice(["x", "y"], 200)})
    genlab.fit(split_table(frame), family="gaussian").save_pretrained(tmp_path / "table")
    for name in ("t.jsonl", "t.csv"):
        assert run_cli(capsys, "sample", str(tmp_path / "table"), "-n", "5", "--out", str(tmp_path / name))[0] == 0
    rows = pd.DataFrame([json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()])
    expected = pd.read_csv(tmp_path / "t.csv")
    assert list(rows.columns) == ["a", "c"] and list(rows["c"]) == list(expected["c"])
    # 15 significant digits in the JSON against the CSV's shortest repr: equal to ~1e-15 relative
    np.testing.assert_allclose(rows["a"], expected["a"], rtol=1e-14)


@pytest.mark.parametrize("flags, match", [
    (("--max-new-tokens", "0"), "--max-new-tokens"),
    (("--max-new-tokens", "-3"), "--max-new-tokens"),
    (("--top-p", "0"), "--top-p"),
    (("--top-p", "1.5"), "(0, 1]"),
    (("--top-p", "nan"), "--top-p"),
    (("--top-k", "0"), "--top-k"),
    (("--num-beams", "0"), "--num-beams"),
    (("--repetition-penalty", "0.5"), "--repetition-penalty"),
    (("--temperature", "-1"), "--temperature"),
    (("--stop", ""), "--stop"),
    (("--stream", "--num-beams", "2"), "--stream"),
    (("--stream", "--verify", "python"), "--verify"),
    (("--top-k", "two"), "--top-k"),
    (("--num-beams", "2", "--temperature", "0.7"), "got --temperature"),
    (("--num-beams", "2", "--stop", "\n"), "got --stop"),
])
def test_bad_decoding_values_are_usage_errors_that_write_nothing(text_run, tmp_path, capsys, flags, match):
    out = tmp_path / "never.txt"
    usage_error(capsys, "sample", str(text_run), "--out", str(out), *flags, match=match)
    assert list(tmp_path.iterdir()) == []


def test_text_flags_on_other_models_and_flags_the_family_lacks(vae_run, tmp_path, capsys):
    out = tmp_path / "never.npy"
    for flags in (("--stop", "x"), ("--stream",), ("--max-new-tokens", "5"), ("--prompt", "a")):
        usage_error(capsys, "sample", str(vae_run), "--out", str(out), *flags, match=f"'{flags[0]}'")
    for flags in (("--top-p", "0.9"), ("--steps", "5"), ("--set", "top_k=3")):
        line = usage_error(capsys, "sample", str(vae_run), "--out", str(out), *flags, match="vae family")
        assert flags[0] in line and "its options: --temperature, mean" in line
    assert list(tmp_path.iterdir()) == []
    # --temperature is the VAE's own prior temperature: 0 puts every z at the prior's mode, so with
    # mean=true (E[x|z], no output noise) every record is the same decoded point
    status, _, err = run_cli(capsys, "sample", str(vae_run), "-n", "3", "--temperature", "0", "--set", "mean=true",
                             "--out", str(out))
    points = np.load(out)
    assert status == 0 and (points == points[0]).all() and not (np.load(out) == 0).all(), err
