"""Request bodies, checked by pydantic before any model sees them (a misfit is a 422).

The genlab routes refuse unknown fields (a typo is an error, not a silently ignored option). The
OpenAI-shaped routes ignore fields they do not use, as vLLM does, so that clients which send
``user``, ``logprobs: null`` or ``stream_options`` work unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Seeds are 63-bit so every one is a valid ``torch.Generator.manual_seed`` argument.
MAX_SEED = 2 ** 63 - 1
Condition = int | str | dict[str, Any] | None


class Strict(BaseModel):
    """Unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class SamplesRequest(Strict):
    """``POST /v1/models/{name}/samples``: ``n`` records from ``seed`` with ``condition`` and ``options``."""

    n: int = Field(1, ge=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    condition: Condition = None
    options: dict[str, Any] = Field(default_factory=dict)
    format: Literal["json"] = "json"


class CompletionRequest(BaseModel):
    """``POST /v1/completions`` (OpenAI / vLLM). ``top_k = -1`` means no top-k, as in vLLM."""

    model_config = ConfigDict(extra="ignore")

    model: str
    prompt: str | list[str] = ""
    max_tokens: int | None = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = None
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stream: bool = False
    repetition_penalty: float = Field(1.0, ge=1)


class ImagesRequest(BaseModel):
    """``POST /v1/images/generations`` (OpenAI) plus genlab's ``condition``, ``steps``, ``sampler``,
    ``guidance``. A caption-trained model (``shapes``) draws the ``prompt`` as its caption; for another, a
    ``prompt`` that names one of the model's classes conditions on it."""

    model_config = ConfigDict(extra="ignore")

    model: str
    prompt: str | None = None
    n: int = Field(1, ge=1)
    response_format: Literal["b64_json"] = "b64_json"
    size: str | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    condition: int | str | None = None
    steps: int | None = None
    sampler: str | None = None
    guidance: float | None = None


class VariationsRequest(Strict):
    """``POST /v1/models/{name}/variations``: ``n`` variations of ``record`` at ``strength`` in [0, 1]."""

    record: Any = None
    latent: list[float] | None = None
    n: int = Field(4, ge=1)
    strength: float = Field(0.3, ge=0, le=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    condition: Condition = None
    locked: list[str] = Field(default_factory=list)
    prefix: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class InterpolateRequest(Strict):
    """``POST /v1/models/{name}/interpolate``: the path from record ``a`` to ``b`` (or latents) in ``steps``."""

    a: Any = None
    b: Any = None
    latent_a: list[float] | None = None
    latent_b: list[float] | None = None
    steps: int = Field(8, ge=2)
    method: Literal["lerp", "slerp"] = "slerp"
    condition: int | str | None = None


class RefineRequest(Strict):
    """``POST /v1/models/{name}/refine``: keep part of ``record`` (``locked`` columns, a text ``prefix``,
    the ``condition``) and draw the rest again, ``n`` times."""

    record: Any = None
    n: int = Field(4, ge=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    condition: Condition = None
    locked: list[str] = Field(default_factory=list)
    prefix: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
