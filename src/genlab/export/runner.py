"""Sample from a graph written by :func:`genlab.export.onnx.export_onnx` with onnxruntime and NumPy only.

Nothing here imports torch: the runner reads the graph's ``genlab`` metadata (family, codec state,
sampling constants) and repeats genlab's own sampling maths in NumPy:

- ``gan``: ``x = G(z, y)``; ``vae``: ``E[x|z]`` plus, for a Gaussian likelihood, ``scale * eps``
  (``mean=True`` keeps the mean);
- ``diffusion``: deterministic DDIM (Song et al. 2021, eq. 12 with ``eta = 0``) over ``steps`` trailing
  timesteps, ``x0`` clipped into ``[-1, 1]`` for images and ``eps`` recomputed from it, exactly as
  :class:`genlab.sampling.ddim.DDIMSampler`; classifier-free guidance
  ``f_null + s (f_c - f_null)`` with a condition;
- ``transformer``: token-by-token decoding through the exported key/value cache (greedy at
  ``temperature=0``, else softmax sampling at that temperature), returning token ids.

Continuous records are decoded by the codec's affine map (images ``(z + 1) / 2`` clipped into
``[0, 1]``; points ``z * std + mean``). Noise is a NumPy generator's unless given (``noise=``), so the
same noise gives the same records as ``genlab sample`` within float tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genlab.errors import CheckpointError, ConfigError

#: The graph kind of files exported before ``meta["graph"]`` was written, by the family they name.
_LEGACY_GRAPHS = {"gan": "latent", "vae": "latent", "diffusion": "denoiser", "transformer": "cached_decoder"}


class OnnxSampler:
    """A torch-free sampler over an exported graph.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime intra-op threads (0 = its default).
    """

    def __init__(self, path: str | Path, *, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:   # onnxruntime raises its own exception types for unreadable files
            raise CheckpointError(f"{path} is not a readable ONNX graph ({str(error).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map.get("genlab")
        if meta is None:
            raise CheckpointError(f"{path} was not exported by genlab (no genlab metadata)")
        self.meta: dict[str, Any] = json.loads(meta)
        self.inputs = [i.name for i in self.session.get_inputs()]

    @property
    def family(self) -> str:
        """The exported family."""
        return self.meta["family"]

    @property
    def graph(self) -> str:
        """The graph kind: ``latent`` (a generator or decoder of latents), ``denoiser`` or ``cached_decoder``
        (:mod:`genlab.models.sampling_graph`); files exported before the kind was recorded name their family."""
        return self.meta.get("graph") or _LEGACY_GRAPHS[self.meta["family"]]

    def run(self, **feeds: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for ``feeds`` (names as exported; unused names are dropped)."""
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})

    def sample(self, n: int, *, noise: np.ndarray | None = None, condition: int | None = None, seed: int = 0,
               steps: int = 50, guidance: float = 1.0, mean: bool = False, temperature: float = 1.0,
               prior: str | None = None,
               max_new_tokens: int | None = None, batch_size: int | None = None) -> np.ndarray:
        """``n`` records: raw float32 ``(n, *shape)``, or int64 token ids ``(n, L)`` for a transformer.

        Args:
            noise: the starting noise (``z (n, latent_dim)``; diffusion ``x_T (n, *shape)``) instead of draws.
            condition: class index of a conditional model (``None`` draws labels from the class prior,
                or samples unconditionally for diffusion).
            seed: seed of the NumPy generator of every other draw.
            steps, guidance: diffusion's DDIM steps and guidance scale.
            mean: VAE: return ``E[x|z]`` without observation noise.
            prior: VAE: ``"standard"`` draws ``z`` from ``N(0, t^2 I)``; otherwise a graph exported with an
                ex-post mixture prior draws from it, ``noise`` then being the mixture's ``eps``.
            temperature: transformer: 0 = greedy; VAE: prior temperature.
            max_new_tokens: transformer: tokens to generate (default: the record length).
            batch_size: diffusion: records denoised together (default all ``n``; on CPU chunks that fit the
                caches are faster, as in genlab's own sampler).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"the number of samples must be a positive integer, got {n!r}")
        rng = np.random.default_rng(seed)
        graph = self.graph
        if graph == "cached_decoder":
            return self._decode(n, rng, condition, temperature, max_new_tokens)
        y = self._labels(n, rng, condition)
        if graph == "denoiser":
            x_T = noise if noise is not None else rng.standard_normal((n, *self.meta["shape"]))
            chunk = n if batch_size is None else batch_size
            if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
                raise ConfigError(f"batch_size must be a positive integer, got {chunk!r}")
            x = np.concatenate([self._ddim(x_T[i:i + chunk], None if y is None else y[i:i + chunk], steps,
                                           guidance if condition is not None else 1.0) for i in range(0, n, chunk)])
        else:
            z = noise if noise is not None else rng.standard_normal((n, self.meta["latent_dim"]))
            decoder = "likelihood" in self.meta   # a VAE's decoder: prior temperature and observation noise
            z = np.asarray(z, np.float32) * (temperature if decoder else 1.0)
            if decoder and "prior" in self.meta and prior != "standard":
                z = self._mixture_latents(z, y, rng)
            outputs = self.run(z=z.astype(np.float32), y=y)
            x = outputs[0]
            if decoder and len(outputs) > 1 and not mean:
                x = x + outputs[1] * rng.standard_normal(x.shape).astype(np.float32)
        return self._decode_records(x)

    def _mixture_latents(self, scaled_eps: np.ndarray, y: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """A VAE's ex-post mixture prior (:mod:`genlab.models.vae.ex_post`): ``z = m_yk + C_yk (tau eps)`` with
        ``k ~ pi_y`` drawn by ``rng``; ``scaled_eps (n, L)``, labels ``y (n,)`` or None -> ``(n, L)`` float32."""
        prior = self.meta["prior"]
        weights, means, tril = (np.exp(np.asarray(prior["log_weights"])), np.asarray(prior["means"]),
                                np.asarray(prior["scale_tril"]))
        groups = np.zeros(len(scaled_eps), dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)
        k = np.array([rng.choice(weights.shape[1], p=weights[g] / weights[g].sum()) for g in groups])
        z = means[groups, k] + np.einsum("nij,nj->ni", tril[groups, k], scaled_eps)
        return z.astype(np.float32)

    # ------------------------------------------------------------------ families
    def _labels(self, n: int, rng: np.random.Generator, condition: int | None) -> np.ndarray | None:
        if not self.meta.get("conditional"):
            if condition is not None:
                raise ConfigError("this graph was exported from an unconditional model: give no condition")
            return None
        classes = self.meta["n_classes"]
        if condition is not None:
            if not 0 <= int(condition) < classes:
                raise ConfigError(f"condition must be a class index 0..{classes - 1}, got {condition!r}")
            return np.full(n, int(condition), dtype=np.int64)
        if self.graph == "denoiser":
            return np.full(n, self.meta["null_class"], dtype=np.int64)
        prior = np.asarray(self.meta["class_prior"], dtype=np.float64)
        return rng.choice(len(prior), size=n, p=prior / prior.sum()).astype(np.int64)

    def _ddim(self, x: np.ndarray, y: np.ndarray | None, steps: int, guidance: float) -> np.ndarray:
        """Deterministic DDIM from ``x_T`` (module doc); returns ``x_0`` in model space."""
        meta = self.meta
        timesteps, alpha_bar = meta["timesteps"], np.asarray(meta["alpha_bar"], dtype=np.float64)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= timesteps:
            raise ConfigError(f"steps must be an integer in 1..{timesteps}, got {steps!r}")
        visited = [round(timesteps - i * timesteps / steps) - 1 for i in range(steps)]   # trailing spacing
        x = np.asarray(x, np.float32)
        channels = x.shape[1]
        for i, t in enumerate(visited):
            a_t = float(alpha_bar[t])
            a_prev = float(alpha_bar[visited[i + 1]]) if i + 1 < steps else 1.0
            t_batch = np.full(len(x), t, dtype=np.int64)
            if guidance != 1:
                null = np.full_like(y, meta["null_class"])
                both = self.run(x=np.concatenate([x, x]), t=np.concatenate([t_batch, t_batch]),
                                y=np.concatenate([y, null]))[0]
                cond, uncond = np.split(both, 2)
                out = uncond + np.float32(guidance) * (cond - uncond)
            else:
                out = self.run(x=x, t=t_batch, y=y)[0]
            out = out[:, :channels]                      # a learned-variance network's mean part
            x0, eps = _split(meta["prediction"], out, x, a_t)
            if meta["clip"] is not None:
                x0 = np.clip(x0, -meta["clip"], meta["clip"])
                eps = (x - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
            x = (a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps).astype(np.float32)
        return x

    def _decode(self, n: int, rng: np.random.Generator, condition: int | None, temperature: float,
                max_new_tokens: int | None) -> np.ndarray:
        """Tokens after the start (or class) token, one step per token through the cache (module doc)."""
        meta = self.meta
        length = max_new_tokens or meta.get("sequence_length")
        if not length:
            raise ConfigError("give max_new_tokens: this transformer's records have no fixed length")
        if length + 1 > meta["block_size"]:
            raise ConfigError(f"{length} tokens do not fit the block size {meta['block_size']}")
        start = meta["bos"] if condition is None else meta["first_class"] + int(condition)
        ids = np.full((n, 1), start, dtype=np.int64)
        empty = np.zeros((meta["n_layer"], n, meta["n_head"], 0, meta["head_size"]), np.float32)
        keys, values = empty, empty
        limit = meta.get("levels") or meta["vocab_size"]      # fixed-length records draw only their levels
        out = []
        for _ in range(length):
            logits, keys, values = self.run(input_ids=ids, past_keys=keys, past_values=values)
            scores = logits[:, -1, :limit].astype(np.float64)
            if temperature == 0:
                token = scores.argmax(axis=1)
            else:
                p = np.exp((scores - scores.max(axis=1, keepdims=True)) / temperature)
                p /= p.sum(axis=1, keepdims=True)
                token = np.array([rng.choice(limit, p=row) for row in p])
            ids = token[:, None].astype(np.int64)
            out.append(ids)
        return np.concatenate(out, axis=1)

    def _decode_records(self, z: np.ndarray) -> np.ndarray:
        """Model space -> raw records by the codec's affine map (module doc)."""
        codec = self.meta["codec"]
        if self.meta["modality"] == "images":
            return np.clip((z.astype(np.float32) + 1.0) / 2.0, 0.0, 1.0)
        if self.meta["modality"] == "points":
            return (z.astype(np.float64) * np.asarray(codec["std"]) + np.asarray(codec["mean"])).astype(np.float32)
        raise ConfigError(f"records of modality {self.meta['modality']!r} are not decoded without torch")


def _split(prediction: str, out: np.ndarray, x_t: np.ndarray, alpha_bar_t: float) -> tuple[np.ndarray, np.ndarray]:
    """``(x0, eps)`` from a network output, as :func:`genlab.sampling.schedules.split_prediction`."""
    a, s = alpha_bar_t ** 0.5, (1 - alpha_bar_t) ** 0.5
    if prediction == "eps":
        return (x_t - s * out) / a, out
    if prediction == "x0":
        return out, (x_t - a * out) / s
    return a * x_t - s * out, s * x_t + a * out
