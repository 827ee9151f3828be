"""The CLI end to end: happy paths, and every bad input gives one readable line and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from genlab.cli.app import COMMANDS, load_command, main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_one_line_error(capsys, *argv: str, match: str, code: int = 1) -> str:
    status, _, err = run_cli(capsys, *argv)
    errors = [line for line in err.splitlines() if line.startswith("genlab: error:")]
    assert status == code, err
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert match in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "ring8"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "ring8", "--family", "gaussian", "--set", "n_components=8", "--out", str(run)])
    assert exit_info.value.code == 0
    return run


def test_fit_sample_eval_happy_path(ring_run, tmp_path, capsys):
    assert {"config.json", "model.safetensors", "codec.json"} <= {p.name for p in ring_run.iterdir()}
    status, _, _ = run_cli(capsys, "sample", str(ring_run), "-n", "300", "--seed", "1", "--out", str(tmp_path / "s.npy"))
    assert status == 0 and np.load(tmp_path / "s.npy").shape == (300, 2)
    status, _, _ = run_cli(capsys, "sample", str(ring_run), "-n", "300", "--out", str(tmp_path / "s.csv"))
    assert status == 0 and (tmp_path / "s.csv").read_text().splitlines()[0] == "x0,x1"
    status, _, _ = run_cli(capsys, "sample", str(ring_run), "-n", "300", "--out", str(tmp_path / "s.png"))
    assert status == 0 and (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status, out, _ = run_cli(capsys, "eval", str(ring_run), "--real", "ring8", "--out", str(tmp_path / "m.json"))
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert status == 0 and "modes_captured" in out
    assert metrics["modes_captured"] == 8 and metrics["high_quality"] >= 0.98


def test_same_seed_gives_identical_sample_files(ring_run, tmp_path, capsys):
    for name in ("a.npy", "b.npy"):
        run_cli(capsys, "sample", str(ring_run), "-n", "50", "--seed", "4", "--out", str(tmp_path / name))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_datasets_lists_builtins(capsys):
    status, out, _ = run_cli(capsys, "datasets")
    assert status == 0 and all(name in out for name in ("ring8", "grid25", "digits", "mnist"))


def write(path, text):
    path.write_text(text)
    return str(path)


def test_bad_data_files(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert_one_line_error(capsys, "fit", str(tmp_path / "missing.csv"), "--out", out, match="missing.csv")
    assert_one_line_error(capsys, "fit", write(tmp_path / "empty.csv", ""), "--out", out, match="empty")
    text = write(tmp_path / "text.csv", "a,b\n1,2\n3,abc\n5,6\n")
    assert_one_line_error(capsys, "fit", text, "--out", out, match="'b'")
    nan = write(tmp_path / "nan.csv", "a,b\n1,2\n3,nan\n5,6\n")
    assert_one_line_error(capsys, "fit", nan, "--out", out, match="NaN")
    inf = write(tmp_path / "inf.csv", "a,b\n1,2\n3,inf\n5,6\n")
    assert_one_line_error(capsys, "fit", inf, "--out", out, match="inf")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    assert_one_line_error(capsys, "fit", str(folder), "--out", out, match="broken.png")
    assert not (tmp_path / "run").exists()


def test_unknown_names_and_options(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert_one_line_error(capsys, "fit", "ring8", "--family", "nope", "--out", out, match="unknown family 'nope'")
    assert_one_line_error(capsys, "fit", "ring9", "--out", out, match="ring8")
    assert_one_line_error(capsys, "fit", "ring8", "--family", "gaussian", "--set", "n_component=3", "--out", out, match="n_components")
    assert_one_line_error(capsys, "fit", "ring8", "--family", "gaussian", "--set", "covariance=tied", "--out", out, match="full")
    assert_one_line_error(capsys, "fit", "ring8", "--max-time", "soon", "--out", out, match="duration")
    assert_one_line_error(capsys, "fit", "ring8", "--no-such-flag", match="--no-such-flag", code=2)
    assert_one_line_error(capsys, "mnist-please", match="mnist-please", code=2)


@pytest.mark.parametrize("n", ["0", "-5"])
def test_bad_sample_counts(ring_run, tmp_path, capsys, n):
    assert_one_line_error(capsys, "sample", str(ring_run), "-n", n, "--out", str(tmp_path / "s.npy"),
                          match="positive integer")
    assert not (tmp_path / "s.npy").exists()


def test_existing_outputs_are_never_overwritten_without_asking(ring_run, tmp_path, capsys):
    before = (ring_run / "model.safetensors").read_bytes()
    assert_one_line_error(capsys, "fit", "ring8", "--out", str(ring_run), match="already exists")
    assert (ring_run / "model.safetensors").read_bytes() == before
    target = tmp_path / "kept.npy"
    target.write_bytes(b"precious")
    assert_one_line_error(capsys, "sample", str(ring_run), "--out", str(target), match="--overwrite")
    assert target.read_bytes() == b"precious"
    status, _, _ = run_cli(capsys, "sample", str(ring_run), "-n", "5", "--out", str(target), "--overwrite")
    assert status == 0 and np.load(target).shape == (5, 2)
    assert_one_line_error(capsys, "sample", str(ring_run), "--out", str(tmp_path / "x.txt"), match=".npy")


def test_broken_run_directories(ring_run, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in ring_run.iterdir():
        if item.is_file():
            (broken / item.name).write_bytes(item.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x80\x7f")
    assert_one_line_error(capsys, "sample", str(broken), "--out", str(tmp_path / "s.npy"), match="checksum")
    weights.unlink()
    assert_one_line_error(capsys, "eval", str(broken), "--real", "ring8", match="missing")
    assert_one_line_error(capsys, "sample", str(tmp_path / "nothing"), "--out", str(tmp_path / "s.npy"),
                          match="not a run directory")
    assert_one_line_error(capsys, "fit", "ring8", "--family", "gaussian", "--out", str(tmp_path / "fresh"),
                          "--resume", "--set", "solver=adam", match="nothing to resume")


def test_mnist_without_data_dir_says_where_to_put_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    assert_one_line_error(capsys, "fit", "mnist", "--out", str(tmp_path / "run"), match="GENLAB_DATA")


def test_debug_mode_shows_the_traceback(tmp_path, monkeypatch):
    from genlab.errors import DataError

    monkeypatch.setenv("GENLAB_DEBUG", "1")
    with pytest.raises(DataError):
        main(["fit", str(tmp_path / "missing.csv")])


def test_unknown_sampling_options_name_the_valid_ones(ring_run, tmp_path, capsys):
    assert_one_line_error(capsys, "sample", str(ring_run), "--steps", "20", "--out", str(tmp_path / "s.npy"),
                          match="no sampling option steps", code=2)   # a flag the family lacks: a usage error


HELP_AND_IMPORTS = """
import sys
from genlab.cli.app import main
try:
    main(["--help"])
except SystemExit:
    pass
heavy = ("torch", "sklearn", "pandas", "matplotlib", "fairlearn", "genlab.cli.")
print("IMPORTED", *sorted(name for name in sys.modules if name.startswith(heavy)))
"""


def test_help_lists_every_command_without_importing_them():
    # in a fresh interpreter: what `genlab --help` prints (one line per command at 250 columns), and imports
    done = subprocess.run([sys.executable, "-c", HELP_AND_IMPORTS], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    help_text, imported = done.stdout.split("IMPORTED")
    rows = [line.strip("│ ").split(maxsplit=1) for line in help_text.splitlines() if line.startswith("│")]
    for name, command in COMMANDS.items():
        assert [name, command.help] in rows, help_text
    assert imported.split() == ["genlab.cli.app"]   # no command module, no torch, pandas, scikit-learn


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_is_the_first_paragraph_of_each_command(name):
    first = load_command(name).help.split("\n\n")[0]
    assert " ".join(first.split()) == COMMANDS[name].help


def test_bare_genlab_prints_the_help_and_no_error_line(capsys):
    status, out, err = run_cli(capsys)
    assert status == 2 and "Commands" in out and "sample" in out and "genlab: error" not in err


def test_a_misspelt_command_gets_a_suggestion(capsys):
    assert_one_line_error(capsys, "smaple", match="Did you mean 'sample'?", code=2)
