"""Latent paths and directions: lerp/slerp maths, genlab.interpolate on GAN and VAE, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import genlab
from genlab.cli.app import main
from genlab.errors import ConfigError, DataError, NotSupportedError
from genlab.sampling.latent import attribute_direction, latent_path


def test_lerp_and_slerp_hit_both_end_points():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    for method in ("lerp", "slerp"):
        path = latent_path(a, b, 7, method)
        assert path.shape == (7, 16)
        np.testing.assert_allclose(path[0], a, atol=1e-12)
        np.testing.assert_allclose(path[-1], b, atol=1e-12)


def test_slerp_keeps_the_norm_of_equal_norm_latents_and_moves_the_angle_evenly():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=32), rng.normal(size=32)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = latent_path(a, b, 9, "slerp")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    angles = np.arccos(np.clip(path @ a / np.linalg.norm(path, axis=1) / np.linalg.norm(a), -1, 1))
    np.testing.assert_allclose(np.diff(angles), angles[-1] / 8, rtol=1e-6)
    # lerp cuts the corner: its midpoint is shorter than the end points
    assert np.linalg.norm(latent_path(a, b, 3, "lerp")[1]) < 0.99 * np.linalg.norm(a)


def test_slerp_moves_the_norm_linearly_and_handles_parallel_and_opposite_ends():
    a = np.array([1.0, 0.0])
    path = latent_path(a, np.array([0.0, 3.0]), 5, "slerp")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linspace(1, 3, 5))
    np.testing.assert_allclose(latent_path(a, 2 * a, 3, "slerp"), [[1, 0], [1.5, 0], [2, 0]])
    with pytest.raises(DataError, match="opposite"):
        latent_path(a, -a, 3, "slerp")


@pytest.mark.parametrize("kwargs, match", [({"method": "cubic"}, "lerp, slerp"), ({"steps": 1}, "at least 2")])
def test_bad_path_options_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        latent_path(np.zeros(2), np.ones(2), **{"steps": 4, **kwargs})


@pytest.fixture(scope="module")
def gan():
    return genlab.fit("ring8", family="gan", latent_dim=6, hidden=16, depth=2, train={"steps": 3, "batch_size": 32})


@pytest.fixture(scope="module")
def vae():
    return genlab.fit("moons", family="vae", latent_dim=3, hidden=16, conditional=False,
                      train={"steps": 3, "batch_size": 32})


def test_interpolate_on_a_gan_decodes_the_latent_path(gan):
    z = np.random.default_rng(0).normal(size=(2, 6))
    strip = genlab.interpolate(gan, z[0], z[1], steps=5, method="slerp")
    assert strip.shape == (5, 2)
    np.testing.assert_allclose(strip[[0, -1]], gan.decode(z), atol=1e-5)
    np.testing.assert_allclose(strip, gan.decode(latent_path(z[0], z[1], 5, "slerp")), atol=1e-5)
    with pytest.raises(NotSupportedError):
        genlab.interpolate(gan, z[0], z[1], inputs="records")


def test_interpolate_on_a_vae_encodes_records_first(vae):
    x = genlab.datasets.load("moons").x_test[:2]
    strip = genlab.interpolate(vae, x[0], x[1], steps=4)
    np.testing.assert_allclose(strip[[0, -1]], vae.decode(vae.encode(x)), atol=1e-5)
    z = np.random.default_rng(0).normal(size=(2, 3))
    np.testing.assert_allclose(genlab.interpolate(vae, z[0], z[1], steps=4, inputs="latents")[[0, -1]], vae.decode(z),
                               atol=1e-5)


def test_attribute_direction_is_the_mean_latent_difference(vae, gan):
    data = genlab.datasets.load("moons")
    x_a, x_b = data.x_test[data.y_test == 0][:40], data.x_test[data.y_test == 1][:30]
    expected = vae.encode(x_b).mean(0) - vae.encode(x_a).mean(0)
    np.testing.assert_allclose(attribute_direction(vae, x_a, x_b), expected, rtol=1e-5, atol=1e-6)
    z_a, z_b = np.zeros((3, 6)), np.ones((2, 6))
    np.testing.assert_allclose(attribute_direction(gan, z_a, z_b), np.ones(6))


def test_models_without_a_latent_space_are_refused():
    gaussian = genlab.fit("ring8", family="gaussian")
    with pytest.raises(NotSupportedError, match="latent"):
        genlab.interpolate(gaussian, np.zeros(2), np.ones(2))


def test_cli_interpolate_writes_a_strip_and_an_array(gan, tmp_path, capsys):
    run = gan.save_pretrained(tmp_path / "gan")
    with pytest.raises(SystemExit) as exit_info:
        main(["interpolate", str(run), "--steps", "6", "--paths", "3", "--out", str(tmp_path / "strip.npy")])
    assert exit_info.value.code == 0
    assert np.load(tmp_path / "strip.npy").shape == (3, 6, 2)
    with pytest.raises(SystemExit) as exit_info:
        main(["interpolate", str(run), "--out", str(tmp_path / "strip.png")])
    assert exit_info.value.code == 0 and (tmp_path / "strip.png").stat().st_size > 0


def test_cli_interpolate_on_images_and_bad_inputs_give_one_line_errors(tmp_path, capsys):
    images = genlab.fit("digits", family="vae", latent_dim=2, hidden=8, channels=4, train={"steps": 1, "batch_size": 8})
    run = images.save_pretrained(tmp_path / "vae")
    with pytest.raises(SystemExit) as exit_info:
        main(["interpolate", str(run), "--condition", "3", "--out", str(tmp_path / "digits.png")])
    assert exit_info.value.code == 0 and (tmp_path / "digits.png").is_file()
    for argv, match in [(["--out", str(tmp_path / "x.png")], "condition"),
                        (["--condition", "3", "--method", "cubic", "--out", str(tmp_path / "y.png")], "lerp, slerp"),
                        (["--condition", "3", "--out", str(tmp_path / "z.txt")], ".png")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["interpolate", str(run), *argv])
        assert exit_info.value.code == 1
        assert match in capsys.readouterr().err
