"""The "Features wrap models" redesign through the CLI, on the runs that used to break: a caption-trained
diffusion run (``shapes``) takes ``variations``, an ``--init`` edit, both ``compress`` paths and watermark
detection; a table run fitted with ``--infer-rules`` keeps its rules under a watermark."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli.app import main
from genlab.compress.layout import compression_of
from genlab.data import shapes
from genlab.interaction import variations
from genlab.models.diffusion import DiffusionModel
from genlab.rules import count_violations, rules_of
from genlab.train import TrainConfig

TINY = {"channels": (8, 16), "patch": 2, "caption_width": 16, "caption_layers": 1, "timesteps": 50,
        "sampler": "dpm++", "sample_steps": 3}
PROMPT = "a large blue square at the bottom right"


def run_cli(capsys, *argv: str) -> tuple[str, str]:
    """Run ``genlab ARGV``, assert it exits 0, and return its stdout and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    return captured.out, captured.err


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def captioned(tmp_path_factory, single_thread_module):
    """A caption-trained diffusion run (the cross-attention UNet), trained for 3 steps, and the model."""
    data = shapes.shapes(0, n_train=48, n_test=8)
    model = DiffusionModel(**TINY).fit(data, train=TrainConfig(steps=3, batch_size=8, ema_decay=None))
    run = tmp_path_factory.mktemp("captioned") / "run"
    model.save_pretrained(run)
    return genlab.load(run), run


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """One ``shapes`` test picture, float32 ``(1, 3, 32, 32)`` in ``[0, 1]``."""
    return shapes.scenes(1, seed=9, split="test").images


# ------------------------------------------------------------------------------ 1. one SDEdit
def test_variations_of_a_caption_trained_run_are_the_sdedit_of_its_record(captioned, tmp_path, capsys):
    model, run = captioned
    run_cli(capsys, "variations", run, "--seed", 3, "--index", 1, "-n", 2, "--strength", 0.67,
            "--out", tmp_path / "v.npy")
    varied = np.load(tmp_path / "v.npy")
    # the command's subject is record 1 of `sample --seed 3`; the variations draw from seed 4
    record = model.sample(2, generator=seeded(3))[1:2]
    expected = model.sample(2, init=record, strength=0.67, generator=seeded(4))
    assert varied.shape == (2, 3, 32, 32) and np.isfinite(varied).all()
    np.testing.assert_array_equal(varied, expected)
    run_cli(capsys, "variations", run, "--seed", 3, "-n", 2, "--strength", 0.67, "--set", f"prompt={PROMPT}",
            "--out", tmp_path / "prompted.npy")
    assert np.load(tmp_path / "prompted.npy").shape == (2, 3, 32, 32)


def test_sample_init_edits_a_picture_with_a_prompt(captioned, scene, tmp_path, capsys):
    model, run = captioned
    Image.fromarray((scene[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(tmp_path / "pic.png")
    run_cli(capsys, "sample", run, "--init", tmp_path / "pic.png", "--strength", 0.5, "--prompt", PROMPT,
            "--seed", 2, "-n", 2, "--out", tmp_path / "edit.npy")
    edited = np.load(tmp_path / "edit.npy")
    picture = np.asarray(Image.open(tmp_path / "pic.png"), dtype=np.float32).transpose(2, 0, 1)[None] / 255
    expected = model.sample(2, init=picture, strength=0.5, prompt=PROMPT, generator=seeded(2))
    np.testing.assert_array_equal(edited, expected)


def test_interaction_variations_is_sample_with_init_and_strength(captioned, scene):
    model, _ = captioned
    varied = variations(model, scene, n=4, strength=0.5, generator=seeded(0))
    edited = model.sample(4, init=scene, strength=0.5, generator=seeded(0))
    assert varied.shape == (4, 3, 32, 32) and np.isfinite(varied).all()
    np.testing.assert_array_equal(varied, edited)


# ------------------------------------------------------------------------------ 2. compress
# Both fail at this commit (the markers go when src/ is fixed; strict, so a fix shows up as XPASS):
# Both failed before compress left torch's fused modules alone (genlab.compress.fused): int8 swapped the
# nn.Linear layers that nn.MultiheadAttention / nn.TransformerEncoderLayer own, whose parents read
# `out_proj.weight` themselves (AttributeError); pruning's mask is re-applied only when a module calls its
# own forward, which out_proj never does (backward through the graph a second time).
@pytest.mark.parametrize("flags", [
    pytest.param(("--quantize", "int8"), id="int8"),
    pytest.param(("--prune", "0.3", "--steps", "5", "--data", "shapes"), id="prune"),
])
def test_a_caption_trained_run_compresses_and_the_result_samples_a_prompt(captioned, flags, tmp_path, capsys):
    _, run = captioned
    out = tmp_path / "small"
    run_cli(capsys, "compress", run, *flags, "--out", out)
    compressed = genlab.load(out)
    method = {"--quantize": "quantize", "--prune": "prune"}[flags[0]]
    assert [t["method"] for t in compression_of(compressed)["transforms"]] == [method]
    run_cli(capsys, "sample", out, "--prompt", PROMPT, "-n", 2, "--seed", 0, "--out", tmp_path / "s.npy")
    sample = np.load(tmp_path / "s.npy")
    assert sample.shape == (2, 3, 32, 32) and np.isfinite(sample).all()
    np.testing.assert_array_equal(sample, compressed.sample(2, prompt=PROMPT, generator=seeded(0)))


def test_an_int8_run_without_float_parameters_still_samples(tmp_path, capsys, single_thread):
    """Every layer of a points GAN is linear: once int8 the network has no parameter, and the model's device
    used to be read from next(parameters()) (StopIteration)."""
    run_cli(capsys, "fit", "ring8", "--family", "gan", "--steps", 2, "--out", tmp_path / "gan")
    run_cli(capsys, "compress", tmp_path / "gan", "--quantize", "int8", "--out", tmp_path / "int8")
    run_cli(capsys, "sample", tmp_path / "int8", "-n", 4, "--seed", 0, "--out", tmp_path / "s.npy")
    assert np.load(tmp_path / "s.npy").shape == (4, 2)


# ------------------------------------------------------------------------------ 3. image detection
def test_watermark_detection_inverts_a_caption_trained_run(captioned, tmp_path, capsys):
    model, run = captioned
    run_cli(capsys, "sample", run, "--prompt", PROMPT, "--watermark-key", 5, "-n", 2, "--out", tmp_path / "m.npy")
    run_cli(capsys, "detect", tmp_path / "m.npy", "--key", 5, "--run", run, "--out", tmp_path / "d.json")
    report = json.loads((tmp_path / "d.json").read_text())
    assert report["method"] == "tree-ring" and len(report["items"]) == 2
    assert all(0 <= item["p_value"] <= 1 for item in report["items"])
    again = genlab.detect(np.load(tmp_path / "m.npy"), key=5, model=model)
    assert [item.p_value for item in again.items] == pytest.approx([item["p_value"] for item in report["items"]])


# ------------------------------------------------------------------------------ 4. rules + watermark
@pytest.fixture(scope="module")
def rules_run(tmp_path_factory):
    """A Gaussian copula fitted with --infer-rules on a table whose role fixes sex and start <= end."""
    rng = np.random.default_rng(0)
    n = 600
    role = rng.choice(["husband", "wife", "child", "single"], size=n, p=[0.35, 0.25, 0.2, 0.2])
    sex = np.where(role == "husband", "M", np.where(role == "wife", "F", rng.choice(["M", "F"], size=n)))
    start = rng.integers(0, 50, size=n)
    table = pd.DataFrame({"role": role, "sex": sex, "start": start, "end": start + rng.integers(0, 30, size=n),
                          "city": rng.choice(["a", "b", "c"], size=n)})
    folder = tmp_path_factory.mktemp("rules")
    table.to_csv(folder / "people.csv", index=False)
    run = folder / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(folder / "people.csv"), "--family", "gaussian", "--infer-rules", "--out", str(run)])
    assert exit_info.value.code == 0
    return run


def test_a_watermarked_sample_of_a_rules_run_breaks_no_rule_and_is_detected(rules_run, tmp_path, capsys):
    rules = rules_of(genlab.load(rules_run))
    assert "role -> sex (husband->M, wife->F)" in [rule.describe() for rule in rules]
    run_cli(capsys, "sample", rules_run, "-n", 300, "--watermark-key", 7, "--out", tmp_path / "rows.csv")
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert len(rows) == 300
    assert count_violations(rows, rules) == {rule.describe(): 0 for rule in rules}
    out, _ = run_cli(capsys, "detect", tmp_path / "rows.csv", "--key", 7)
    assert json.loads(out)["combined"]["watermarked"]


# ------------------------------------------------------------------------------ 5. options as data, served
def test_the_server_offers_a_prompt_only_to_a_caption_trained_run_and_draws_it(captioned, tmp_path):
    """/v1/models lists the family's declared options with the run's own defaults; a prompt box only for a
    caption-trained run (it was offered to every diffusion model); /v1/images/generations reads the prompt
    as the caption (it read a class name) and gives the pictures sample(prompt=...) draws."""
    from fastapi.testclient import TestClient

    from genlab.serve import ModelRegistry, create_app

    model, run = captioned
    plain = genlab.fit(genlab.datasets.load("digits").x_train[:32], family="diffusion", channels=(8,),
                       timesteps=20, train={"steps": 1, "batch_size": 8})
    plain.save_pretrained(tmp_path / "plain")
    client = TestClient(create_app(ModelRegistry.from_runs([run, tmp_path / "plain"])))
    listed = {m["id"]: {o["name"]: o for o in m["options"]} for m in client.get("/v1/models").json()["data"]}
    assert "prompt" in listed["run"] and "prompt" not in listed["plain"]
    assert listed["run"]["sampler"]["default"] == "dpm++" and listed["run"]["steps"]["default"] == 3
    body = client.post("/v1/images/generations", json={"model": "run", "prompt": PROMPT, "n": 2, "seed": 5})
    assert body.status_code == 200, body.text
    served = body.json()["data"]
    assert len(served) == 2 and all(item["seed"] == 5 for item in served)
    expected = model.sample(2, prompt=PROMPT, generator=seeded(5))
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))) for item in served])
    assert decoded.shape[0] == 2
    assert np.abs(decoded.transpose(0, 3, 1, 2) / 255.0 - expected).max() <= 1 / 255 + 1e-6   # PNG rounding
    unknown = client.post("/v1/images/generations", json={"model": "run", "prompt": "a purple zebra", "n": 1})
    assert unknown.status_code == 400 and "zebra" in unknown.json()["error"]["message"]
    bad = client.post("/v1/models/plain/samples", json={"n": 1, "options": {"prompt": "a red circle"}})
    assert bad.status_code == 400 and "no sampling option 'prompt'" in bad.json()["error"]["message"]


def test_genlab_sample_checks_options_against_the_family_declarations(captioned, tmp_path, capsys):
    """An option outside its declared choices or range is one error line, produced from the declaration."""
    _, run = captioned
    for argv, message in ((("--sampler", "euler"), "option sampler='euler' is not one of: ddpm, ddim, dpm++"),
                          (("--guidance", "50"), "option guidance=50.0 is outside [0, 20]")):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in ("sample", run, *argv, "-n", 1, "--out", tmp_path / "x.npy")])
        err = capsys.readouterr().err
        assert exit_info.value.code != 0 and err.count("genlab: error:") == 1 and message in err, err
        assert not (tmp_path / "x.npy").exists()
