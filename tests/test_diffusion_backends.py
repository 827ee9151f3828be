"""The ``backend`` of diffusion sampling: onnxruntime gives the eager records (every sampler, guidance, labels,
captions, SDEdit, inpainting), ``auto`` chooses it where it can run and pays and falls back to eager where it
cannot, the graph is exported once per weights (kept on the model and cached on disk), and the choice is
saved with the run and printed by ``genlab sample``."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import genlab
from genlab.cli.app import main
from genlab.data import shapes
from genlab.errors import ConfigError
from genlab.models.diffusion import DiffusionModel, backends
from genlab.train import TrainConfig
from serve_support import tiny_table
from tables_support import split_table

#: Records of the two backends after a few steps. Each onnxruntime call differs from eager PyTorch by float32
#: rounding of other kernels (~1e-6 on O(1) outputs, test_onnx.py); a sampler step is a contraction-or-
#: near-isometry of its input plus ~1 times the network output, so after <= 6 steps the records (in
#: [0, 1], decoded by a halving affine map) differ by ~1e-5 at most; a wrong operation differs by O(0.1).
ATOL = 1e-4
TRAIN = {"steps": 3, "batch_size": 8, "device": "cpu"}


def seeded() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def both(model, n, **options):
    """The records of one seeded call on each backend."""
    return [model.sample(n, generator=seeded(), backend=backend, **options) for backend in ("onnxruntime", "eager")]


@pytest.fixture(scope="module")
def digits(single_thread_module):
    """A tiny class-conditional digits model (8x8 images, labels)."""
    return genlab.fit("digits", family="diffusion", channels=(8, 16), timesteps=50, train=TRAIN)


@pytest.mark.parametrize("options", [
    {"sampler": "ddim", "steps": 4},
    {"sampler": "ddim", "steps": 4, "eta": 1.0},
    {"sampler": "ddpm", "steps": 4},
    {"sampler": "dpm++", "steps": 4, "condition": 3, "guidance": 2.5},
    {"sampler": "ddim", "steps": 4, "condition": "7", "batch_size": 2},
])
def test_onnxruntime_gives_the_eager_records(digits, options):
    onnx, eager = both(digits, 5, **options)
    assert onnx.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(onnx, eager, atol=ATOL)


def test_sdedit_and_inpainting_give_the_eager_records(digits):
    picture = genlab.datasets.load("digits").x_test[:1]
    onnx, eager = both(digits, 3, init=picture, strength=0.5, steps=6, condition=2, guidance=2.0)
    np.testing.assert_allclose(onnx, eager, atol=ATOL)
    mask = np.zeros((1, 1, 8, 8), dtype=np.float32)
    mask[..., 4:] = 1
    onnx, eager = both(digits, 3, init=picture, mask=mask, steps=4)
    np.testing.assert_allclose(onnx, eager, atol=ATOL)
    np.testing.assert_allclose(onnx[..., :4], np.repeat(picture, 3, axis=0)[..., :4], atol=0.02)


def test_captions_give_the_eager_records_and_the_export_says_nothing(single_thread, caplog):
    model = DiffusionModel(channels=(8, 16), patch=2, caption_width=16, caption_layers=1, timesteps=50,
                           self_attention_levels=1).fit(shapes.shapes(0, n_train=24, n_test=4),
                                                        train=TrainConfig(**TRAIN))
    with caplog.at_level(logging.WARNING):
        onnx, eager = both(model, 2, prompt="a large blue square at the bottom right", guidance=3.0, steps=3,
                           sampler="dpm++")
    np.testing.assert_allclose(onnx, eager, atol=ATOL)
    # onnxscript's optimiser notes each attention layer's unfolded Split; a user sampling sees none of it
    assert not [record.getMessage() for record in caplog.records if "constant folding" in record.getMessage()]


def test_the_graph_is_exported_once_per_weights_and_found_on_disk(digits, tmp_path, monkeypatch):
    exports = []
    export = backends.export_denoiser
    monkeypatch.setattr(backends, "export_denoiser", lambda *args: exports.append(args) or export(*args))
    digits.sample(2, steps=2, backend="onnxruntime")
    call = digits._graph.call
    digits.sample(3, steps=2, condition=1, guidance=2.0, backend="onnxruntime")
    assert digits._graph.call is call and len(exports) <= 1   # the module's earlier tests may have exported it
    # a saved and reloaded model has the same weights: its first call opens the cached graph, no export
    loaded = DiffusionModel.from_pretrained(digits.save_pretrained(tmp_path / "run"))
    exports.clear()
    assert loaded.sampling_backend(1, steps=1) == "eager"   # auto reads the call alone, not what is cached
    loaded.sample(2, steps=2, backend="onnxruntime")
    assert exports == [] and loaded._graph.call is not None
    with torch.no_grad():   # new weights, new graph
        next(loaded.network_.parameters()).add_(0.01)
    loaded.sample(2, steps=2, backend="onnxruntime")
    assert len(exports) == 1


def test_auto_exports_only_for_a_large_call(single_thread):
    model = genlab.fit("digits", family="diffusion", channels=(8,), timesteps=50, train=TRAIN)
    assert model.sampling_backend(4, steps=5) == "eager"   # too little work to pay an export
    large = backends.AUTO_EXPORT_WORK // (64 * 20) + 1      # records of 8x8 at 20 steps
    assert model.sampling_backend(large, steps=20) == "onnxruntime"
    half = large // 2 + 1
    assert model.sampling_backend(half, steps=20, guidance=2.0) == "eager"   # guidance needs a condition
    assert model.sampling_backend(half, condition=3, steps=20, guidance=2.0) == "onnxruntime"   # two calls a step
    assert model.sampling_backend(half, condition=3, steps=20, guidance=1.0) == "eager"
    assert model.sampling_backend(large, steps=20, strength=0.5) == "eager"   # SDEdit runs half the steps
    assert model.sampling_backend(large, steps=20, backend="eager") == "eager"


@pytest.mark.parametrize("options, reason", [({"compile": True}, "compile speed up the eager path"),
                                             ({"bf16": True}, "bf16 speed up the eager path")])
def test_auto_falls_back_to_eager_where_onnxruntime_cannot_run(digits, options, reason):
    assert digits.sampling_backend(10 ** 6, steps=50, **options) == "eager"
    with pytest.raises(ConfigError, match=reason):
        digits.sample(2, steps=2, backend="onnxruntime", **options)


def test_a_failed_export_falls_back_under_auto_and_raises_when_asked(single_thread, monkeypatch, caplog):
    model = genlab.fit("digits", family="diffusion", channels=(8,), timesteps=50, train=TRAIN)

    def broken(*args):
        raise RuntimeError("an operator the exporter lacks")

    monkeypatch.setattr(backends, "export_denoiser", broken)
    with pytest.raises(RuntimeError, match="lacks"):
        model.sample(2, steps=2, backend="onnxruntime")
    large = backends.AUTO_EXPORT_WORK // (64 * 2) + 1
    with caplog.at_level(logging.WARNING, logger="genlab.models.diffusion.backends"):
        auto = model.sample(large, steps=2, generator=seeded())
    assert "exporting the denoiser to ONNX failed" in caplog.text
    assert model.sampling_backend(large, steps=2) == "eager"   # not tried again for these weights
    np.testing.assert_array_equal(auto, model.sample(large, steps=2, generator=seeded(), backend="eager"))


def test_without_onnxruntime_auto_is_eager_and_asking_is_a_clear_error(digits, monkeypatch):
    monkeypatch.setattr(backends, "onnxruntime_available", lambda: False)
    assert digits.sampling_backend(10 ** 6, steps=50) == "eager"
    with pytest.raises(ConfigError, match=r"onnxruntime is not installed \(pip install 'genlab\[onnx\]'\)"):
        digits.sample(2, steps=2, backend="onnxruntime")


def test_cuda_and_tables_keep_the_eager_path(digits, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(DiffusionModel, "device", property(lambda self: torch.device("cuda")))
        assert digits.sampling_backend(10 ** 6, steps=50) == "eager"
        with pytest.raises(ConfigError, match="on CPU and this model is on cuda"):
            digits.sampling_backend(2, backend="onnxruntime")
    with pytest.raises(ConfigError, match="unknown backend 'dml'; choose one of: auto, eager, onnxruntime"):
        digits.sample(2, steps=2, backend="dml")
    table = genlab.fit(split_table(tiny_table(), "label"), family="diffusion", hidden=16, depth=1, train=TRAIN)
    assert table.sampling_backend(10 ** 6) == "eager"
    with pytest.raises(ConfigError, match="tables are sampled by their own loop"):
        table.sample(2, backend="onnxruntime")


def test_the_backend_is_saved_declared_and_printed(digits, tmp_path, capsys):
    run = digits.save_pretrained(tmp_path / "run")
    assert json.loads((run / "config.json").read_text())["model"]["backend"] == "auto"
    option = digits.sampling_options()["backend"]
    assert option.default == "auto" and option.choices == ("auto", "onnxruntime", "eager")
    pinned = DiffusionModel(channels=(8, 16), timesteps=50, backend="eager")
    assert pinned.config.backend == "eager"
    for backend in ("eager", "onnxruntime"):
        with pytest.raises(SystemExit) as exit_info:
            main(["sample", str(run), "-n", "2", "--steps", "2", "--backend", backend,
                  "--out", str(tmp_path / f"{backend}.npy")])
        err = capsys.readouterr().err
        assert exit_info.value.code == 0 and err.splitlines()[0] == f"backend: {backend}", err
    np.testing.assert_allclose(np.load(tmp_path / "eager.npy"), np.load(tmp_path / "onnxruntime.npy"), atol=ATOL)
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "-n", "2", "--backend", "tpu", "--out", str(tmp_path / "x.npy")])
    assert exit_info.value.code != 0 and "auto, onnxruntime, eager" in capsys.readouterr().err
