"""Caption-conditioned diffusion on ``shapes`` with tiny configs: the cross-attention UNet, training with
caption dropout, guided sampling from a prompt, save/load, the CLI, and every bad prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.train import TrainConfig
from genlab.cli.app import main
from genlab.data import shapes
from genlab.data.captions import CaptionedImageCodec
from genlab.errors import ConfigError
from genlab.models.diffusion import DiffusionModel
from genlab.nn.cross_attention_unet import CrossAttentionUNet

TINY = {"channels": (8, 16), "patch": 2, "caption_width": 16, "caption_layers": 1, "timesteps": 50,
        "sampler": "dpm++", "sample_steps": 3}
PROMPT = "a large blue square at the bottom right"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, single_thread_module):
    data = shapes.shapes(0, n_train=48, n_test=8)
    model = DiffusionModel(**TINY).fit(data, train=TrainConfig(steps=3, batch_size=8, ema_decay=None))
    run = tmp_path_factory.mktemp("shapes-run")
    model.save_pretrained(run)
    return model, run


def test_captioned_data_builds_the_cross_attention_unet_and_its_codec(fitted):
    model, _ = fitted
    assert isinstance(model.network_, CrossAttentionUNet) and isinstance(model.codec_, CaptionedImageCodec)
    assert "triangle" in model.codec_.vocabulary
    # the same data without captions takes the plain UNet, exactly as before
    data = shapes.shapes(0, n_train=48, n_test=8)
    plain = DiffusionModel(**TINY, captions=False).fit(data, train=TrainConfig(steps=1, batch_size=8))
    assert type(plain.network_).__name__ == "UNet" and type(plain.codec_).__name__ == "ImageCodec"
    with pytest.raises(ConfigError, match="trained on captions"):
        plain.sample(1, prompt=PROMPT)


def test_the_caption_reaches_the_output_and_gradients_reach_every_parameter(fitted):
    model, _ = fitted
    network = model.network_
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 10])
    tokens = model.codec_.tokens([PROMPT, "a small red circle at the top left"])
    out = network(x[:1].expand(2, -1, -1, -1), t, tokens)
    # fit has moved the zero-initialised cross-attention away from the identity, so two captions differ
    assert out.shape == (2, 3, 32, 32) and not torch.allclose(out[0], out[1])
    network.train()
    network(x, t, tokens).pow(2).mean().backward()
    network.eval()
    assert all(p.grad is not None for p in network.parameters())
    network.zero_grad(set_to_none=True)


def test_prompted_guided_sampling_is_seeded_and_survives_save_and_load(fitted):
    model, run = fitted

    def draw(m):
        return m.sample(2, prompt=PROMPT, guidance=3.0, generator=torch.Generator().manual_seed(0))

    first = draw(model)
    assert first.shape == (2, 3, 32, 32) and 0 <= first.min() and first.max() <= 1
    np.testing.assert_array_equal(first, draw(model))
    np.testing.assert_array_equal(first, draw(genlab.load(run)))
    unguided = model.sample(2, prompt=PROMPT, guidance=1.0, generator=torch.Generator().manual_seed(0))
    assert not np.array_equal(first, unguided)
    per_sample = model.sample(2, prompt=[PROMPT, PROMPT], guidance=3.0, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(first, per_sample)
    assert model.sample(1, generator=torch.Generator().manual_seed(0)).shape == (1, 3, 32, 32)   # empty caption
    assert model.data_.captioned and genlab.load(run).data_.captioned   # saved in config.json


@pytest.mark.parametrize("prompt, match", [
    ("", "empty"), ("a small purple blob", "blob, purple"), ("red " * 40, "at most"),
])
def test_bad_prompts_are_one_error_naming_the_problem(fitted, prompt, match):
    model, _ = fitted
    with pytest.raises(ConfigError, match=match):
        model.sample(1, prompt=prompt)
    with pytest.raises(ConfigError, match="one prompt string"):
        model.sample(2, prompt=[PROMPT])


def test_cli_samples_a_prompt_grid_and_reports_bad_prompts_in_one_line(fitted, tmp_path, capsys):
    _, run = fitted
    out = tmp_path / "grid.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "--prompt", PROMPT, "--guidance", "3", "-n", "4", "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0, err
    assert out.is_file() and out.stat().st_size > 0
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "--prompt", "a small purple circle", "-n", "1", "--out", str(tmp_path / "b.png")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code != 0 and lines[-1].startswith("genlab: error:") and "purple" in lines[-1]
    assert not (tmp_path / "b.png").exists()


def test_sdedit_runs_the_last_strength_share_of_the_steps_from_the_noised_picture(fitted):
    model, _ = fitted
    picture = shapes.scenes(2, seed=9, split="test").images
    calls = []
    hook = model.network_.register_forward_pre_hook(lambda module, args: calls.append(len(args[0])))
    try:
        def edit(init, strength, seed=0):
            return model.sample(2, init=init, strength=strength, prompt=PROMPT, steps=3, guidance=1.0,
                                generator=torch.Generator().manual_seed(seed))

        first = edit(picture, 0.67)
        assert len(calls) == 2   # int(3 * 0.67) = 2 of the 3 steps (diffusers' strength)
        calls.clear()
        edit(picture[:1], 1.0)
        assert len(calls) == 3
    finally:
        hook.remove()
    np.testing.assert_array_equal(first, edit(picture, 0.67))
    assert not np.array_equal(first, edit(picture[::-1].copy(), 0.67))   # the output follows the picture
    for strength, match in ((0.0, r"\(0, 1\]"), (1.5, r"\(0, 1\]"), (0.2, "leaves no step")):
        with pytest.raises(ConfigError, match=match):
            edit(picture, strength)
    with pytest.raises(ConfigError, match="shape"):
        edit(picture[:, :1], 0.5)
    with pytest.raises(ConfigError, match="both init"):
        model.sample(1, strength=0.5)


def test_cli_init_edits_a_picture_and_refuses_the_wrong_size_or_mode(fitted, tmp_path, capsys):
    from PIL import Image

    _, run = fitted
    picture = (shapes.scenes(1, seed=9).images[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "in.png")
    Image.fromarray(picture).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(picture).resize((16, 16)).save(tmp_path / "small.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "--init", str(tmp_path / "in.png"), "--strength", "0.6", "--prompt", PROMPT,
              "-n", "2", "--out", str(tmp_path / "edit.png")])
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "edit.png").is_file()
    for name, match in (("rgba.png", "mode RGBA"), ("small.png", "16x16")):
        with pytest.raises(SystemExit) as exit_info:
            main(["sample", str(run), "--init", str(tmp_path / name), "--strength", "0.6", "-n", "1",
                  "--out", str(tmp_path / f"x{name}")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code != 0 and lines[-1].startswith("genlab: error:") and match in lines[-1]


def test_inpainting_keeps_the_unmasked_pixels_and_redraws_the_rest(fitted):
    model, _ = fitted
    picture = shapes.scenes(1, seed=9, split="test").images
    mask = np.zeros((1, 1, 32, 32), dtype=np.float32)
    mask[..., :, 16:] = 1.0   # redraw the right half
    out = model.sample(2, init=picture, mask=mask, prompt=PROMPT, steps=3, generator=torch.Generator().manual_seed(0))
    # the last step lands on alpha_bar = 1, where the kept pixels are the picture itself; 1e-6 covers the
    # float32 rounding of encoding (2x - 1) and decoding ((z + 1) / 2) values in [0, 1]
    np.testing.assert_allclose(out[..., :16], np.repeat(picture, 2, 0)[..., :16], atol=1e-6)
    assert np.abs(out[..., 16:] - picture[..., 16:]).max() > 0.1
    with pytest.raises(ConfigError, match="0 \\(keep\\) or 1"):
        model.sample(1, init=picture, mask=mask * 0.5)
    with pytest.raises(ConfigError, match="masks of shape"):
        model.sample(1, init=picture, mask=mask[:, :, :16])
    with pytest.raises(ConfigError, match="both init"):
        model.sample(1, mask=mask)


def test_cli_mask_inpaints_and_refuses_a_colour_mask(fitted, tmp_path, capsys):
    from PIL import Image

    _, run = fitted
    picture = (shapes.scenes(1, seed=9).images[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "in.png")
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[:, 16:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(mask).convert("RGB").save(tmp_path / "rgb_mask.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "--init", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
              "-n", "2", "--out", str(tmp_path / "inpainted.npy")])
    assert exit_info.value.code == 0, capsys.readouterr().err
    inpainted = np.load(tmp_path / "inpainted.npy")
    np.testing.assert_allclose(inpainted[..., :16], np.repeat(picture.transpose(2, 0, 1)[None] / 255, 2, 0)[..., :16],
                               atol=1e-6)
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run), "--init", str(tmp_path / "in.png"), "--mask", str(tmp_path / "rgb_mask.png"),
              "-n", "1", "--out", str(tmp_path / "x.png")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code != 0 and lines[-1].startswith("genlab: error:") and "mode RGB" in lines[-1]


def test_self_attention_joins_the_coarse_stages_as_the_identity():
    torch.manual_seed(0)
    kwargs = {"vocab_size": 12, "length": 6, "channels": (8, 16), "caption_width": 16, "caption_layers": 1}
    plain = CrossAttentionUNet(3, 3, **kwargs)
    mixed = CrossAttentionUNet(3, 3, **kwargs, self_attention_levels=1)
    attending = [name for name, module in mixed.named_modules() if type(module).__name__ == "SelfAttention"]
    # the coarsest level: one block down, two up, and both middle stages
    assert len(attending) == 5 and all(not name.startswith(("down.0", "up.3", "up.4")) for name in attending)
    mixed.load_state_dict(plain.state_dict(), strict=False)
    x, t, tokens = torch.randn(2, 3, 8, 8), torch.tensor([3, 7]), torch.randint(1, 12, (2, 6))
    torch.testing.assert_close(mixed(x, t, tokens), plain(x, t, tokens))   # zero-initialised output projections
    for name, module in mixed.named_modules():
        if name in attending:
            torch.nn.init.normal_(module.attention.out_proj.weight)
    # with weights of their own the layers take part in the forward pass
    assert not torch.allclose(mixed(x, t, tokens), plain(x, t, tokens))
