"""The HTTP app: genlab's own routes, the OpenAI-shaped ones, and the playground page.

``create_app(registry, settings)`` builds a FastAPI app over loaded models. Sampling runs in worker
threads (one call at a time per model, see :class:`~genlab.serve.registry.LoadedModel`), so the event
loop keeps answering health checks, 429s and streams while a model works. Sample requests go through
the :class:`~genlab.serve.batcher.MicroBatcher`; completions of a text model decode together in its
continuous batch (:mod:`genlab.serve.continuous`), or one request at a time with
``continuous_batching=False`` (:mod:`genlab.serve.completions`).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from genlab import interaction
from genlab.config import from_dict
from genlab.errors import ConfigError, DataError
from genlab.sampling.decoding import GenerationConfig
from genlab.serve.batcher import MicroBatcher
from genlab.serve.completions import (CompletionJob, EventStream, complete, complete_batched, stream_batched,
                                      stream_one_at_a_time)
from genlab.serve.continuous import ContinuousBatcher
from genlab.serve.errors import APIError, Guard, install_handlers
from genlab.serve.jobs import run_job, seeded, within
from genlab.serve.media import media_router
from genlab.serve.records import record_from_json, records_to_json
from genlab.serve.registry import LoadedModel, ModelRegistry, describe
from genlab.serve.schemas import (CompletionRequest, ImagesRequest, InterpolateRequest, RefineRequest,
                                  SamplesRequest, VariationsRequest)
from genlab.version import __version__


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """Limits and batching of a server.

    Attributes:
        api_key: every API route needs ``Authorization: Bearer api_key``; ``None`` leaves them open.
        max_n: the most records one request may ask for (``n``, ``steps`` of a path, choices).
        max_tokens: the most new tokens of one text completion.
        max_concurrent: API requests in flight at once; one more is answered 429.
        max_body: the largest request body in bytes (413 beyond).
        timeout_s: seconds a request may take before it is answered 504.
        batch_wait_ms: how long the micro-batcher collects compatible sample requests.
        max_batch: the most records the micro-batcher puts in one batch; ``1`` (the default) turns batching off:
            on a CPU a GAN or VAE draw has no fixed per-call cost to share, and 64-record image requests ran at
            0.94x the throughput with it (``benchmarks/serve_load.py``, 2-core EPYC); a GPU's kernel launches
            are such a cost, where ``--max-batch 256`` may pay.
        continuous_batching: decode the completions of a text model together, sequences joining and
            leaving between steps (:mod:`genlab.serve.continuous`); ``False`` runs one request at a time.
        max_num_seqs: the most sequences one model decodes at once; more wait for a place.
    """

    api_key: str | None = None
    max_n: int = 256
    max_tokens: int = 512
    max_concurrent: int = 64
    max_body: int = 1_000_000
    timeout_s: float = 60.0
    batch_wait_ms: float = 10.0
    max_batch: int = 1
    continuous_batching: bool = True
    max_num_seqs: int = 64


def create_app(registry: ModelRegistry, settings: ServeSettings = ServeSettings()) -> Guard:
    """The ASGI app over ``registry``'s models: the FastAPI app (``.app``) inside the key / body /
    concurrency :class:`Guard`."""
    app = FastAPI(title="genlab", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    install_handlers(app)
    batcher = MicroBatcher(wait_s=settings.batch_wait_ms / 1000, max_batch=settings.max_batch)
    app.state.batcher = batcher
    continuous = ContinuousBatcher(max_num_seqs=settings.max_num_seqs)
    app.state.continuous = continuous
    app.include_router(media_router(registry, max_n=settings.max_n, timeout_s=settings.timeout_s))

    def model(name: str, *, modality: str | None = None, param: str = "model") -> LoadedModel:
        entry = registry.get(name)
        if entry is None:
            listed = ", ".join(registry.names)
            raise APIError(404, f"no model {name!r} is loaded; models: {listed}", param)
        if modality is not None and entry.modality != modality:
            raise APIError(400, f"model {name!r} makes {entry.modality}, not {modality}", param)
        return entry

    def count(n: int, param: str = "n") -> int:
        if n > settings.max_n:
            raise APIError(400, f"{param}={n} is over this server's limit of {settings.max_n} (--max-n)", param)
        return n

    async def work(entry: LoadedModel, job: Callable[[], Any]) -> Any:
        return await run_job(entry, job, settings.timeout_s)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def playground() -> str:
        return resources.files("genlab.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [describe(entry, settings.max_tokens) for entry in registry]}

    @app.get("/v1/models/{name}")
    async def one_model(name: str) -> dict[str, Any]:
        return describe(model(name), settings.max_tokens)

    @app.post("/v1/models/{name}/samples")
    async def samples(name: str, body: SamplesRequest) -> dict[str, Any]:
        entry = model(name)
        n = count(body.n)
        options = check_options(entry, body.options, settings)
        records = await within(batcher.submit(entry, n, body.seed, body.condition, options), settings.timeout_s)
        return {"model": name, "seed": body.seed, "condition": body.condition, "options": options,
                "records": await run_in_threadpool(records_to_json, records, entry.modality)}

    @app.post("/v1/models/{name}/variations")
    async def variations(name: str, body: VariationsRequest) -> dict[str, Any]:
        entry = model(name)
        n = count(body.n)
        options = check_options(entry, body.options, settings)
        record = None if body.record is None else subject(entry, body.record, "record")

        def job() -> Any:
            return interaction.variations(entry.model, record, n=n, strength=body.strength,
                                          latent=body.latent, condition=body.condition, locked=body.locked,
                                          prefix=body.prefix, generator=seeded(body.seed), **options)

        records = await work(entry, job)
        return {"model": name, "seed": body.seed, "strength": body.strength, "options": options,
                "records": records_to_json(records, entry.modality)}

    @app.post("/v1/models/{name}/interpolate")
    async def interpolate(name: str, body: InterpolateRequest) -> dict[str, Any]:
        entry = model(name)
        steps = count(body.steps, "steps")
        ends = [subject(entry, value, param) if value is not None else latent
                for value, latent, param in ((body.a, body.latent_a, "a"), (body.b, body.latent_b, "b"))]
        if any(end is None for end in ends):
            raise APIError(400, "interpolate needs two end points: a and b (records) or latent_a and latent_b",
                           "a" if ends[0] is None else "b")

        def job() -> Any:
            return interaction.interpolate_records(entry.model, ends[0], ends[1], steps=steps,
                                                   method=body.method, condition=body.condition)

        records = await work(entry, job)
        return {"model": name, "steps": steps, "method": body.method,
                "records": records_to_json(records, entry.modality)}

    @app.post("/v1/models/{name}/refine")
    async def refine(name: str, body: RefineRequest) -> dict[str, Any]:
        entry = model(name)
        n = count(body.n)
        options = check_options(entry, body.options, settings)
        record = None if body.record is None else subject(entry, body.record, "record")

        def job() -> Any:
            return interaction.refine(entry.model, record, n=n, condition=body.condition, locked=body.locked,
                                      prefix=body.prefix, generator=seeded(body.seed), **options)

        records = await work(entry, job)
        return {"model": name, "seed": body.seed, "options": options,
                "records": records_to_json(records, entry.modality)}

    @app.post("/v1/images/generations")
    async def images(body: ImagesRequest) -> dict[str, Any]:
        entry = model(body.model, modality="images")
        n = count(body.n)
        shape = entry.model.data_.shape
        if body.size is not None and body.size != f"{shape[2]}x{shape[1]}":
            raise APIError(400, f"this model makes {shape[2]}x{shape[1]} images, not {body.size}", "size")
        given = {"steps": body.steps, "sampler": body.sampler, "guidance": body.guidance}
        captioned = "prompt" in entry.options   # a caption-trained model reads the prompt as its caption
        if captioned:
            given["prompt"] = body.prompt
        options = check_options(entry, {k: v for k, v in given.items() if v is not None}, settings)
        condition = body.condition
        classes = entry.model.data_.class_names or ()
        if not captioned and condition is None and body.prompt in classes:
            condition = body.prompt
        seed = body.seed if body.seed is not None else secrets.randbits(63)
        records = await within(batcher.submit(entry, n, seed, condition, options), settings.timeout_s)
        images = await run_in_threadpool(records_to_json, records, "images")   # PNG encoding off the event loop
        return {"created": int(time.time()), "data": [{"b64_json": image, "seed": seed} for image in images]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Any:
        """OpenAI's completions: ``n`` choices per prompt, prompt-major. Streamed or not, choice ``i``
        (counted across prompts) is the text drawn alone from seed ``seed + i``, so ``stream: true`` sends
        piece by piece the very text ``stream: false`` returns, choice ``i`` does not depend on ``n``, and
        neither depends on the other requests decoded beside it in the model's continuous batch; a request
        without ``seed`` gets a random one. Without continuous batching (or for a model that cannot batch,
        :mod:`genlab.serve.continuous`) the choices are drawn one after another."""
        entry = model(body.model, modality="text")
        prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        if not prompts:
            raise APIError(400, "prompt must be a string or a non-empty list of strings", "prompt")
        count(body.n * len(prompts), "n")
        max_tokens = body.max_tokens if body.max_tokens is not None else settings.max_tokens
        if max_tokens > settings.max_tokens:
            raise APIError(400, f"max_tokens={max_tokens} is over this server's limit of {settings.max_tokens} "
                                "(--max-tokens)", "max_tokens")
        config = {"max_new_tokens": max_tokens, "temperature": body.temperature,
                  "top_p": None if body.top_p == 1 else body.top_p,
                  "top_k": None if body.top_k in (None, -1, 0) else body.top_k,
                  "repetition_penalty": body.repetition_penalty,
                  "stop": [body.stop] if isinstance(body.stop, str) else list(body.stop or [])}
        config = check_options(entry, config, settings)
        try:
            tokens = [entry.model.codec_.tokenize(prompt) for prompt in prompts]
        except DataError as error:
            raise APIError(400, str(error), "prompt") from None
        job = CompletionJob(prompts=[prompt for prompt in prompts for _ in range(body.n)],
                            prompt_tokens=[ids for ids in tokens for _ in range(body.n)],
                            seed=body.seed if body.seed is not None else secrets.randbits(63), options=config,
                            generation=from_dict(GenerationConfig, config, what="generation"),
                            header={"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                                    "created": int(time.time()), "model": body.model},
                            timeout_s=settings.timeout_s)
        loop = await continuous.loop_for(entry) if settings.continuous_batching else None
        if body.stream:
            return EventStream(stream_one_at_a_time(entry, job) if loop is None else stream_batched(entry, loop, job))
        if loop is None:
            choices, usage = await work(entry, lambda: complete(entry, job))
        else:
            choices, usage = await complete_batched(entry, loop, job, request.receive)
        return {**job.header, "choices": choices, "usage": usage}

    return Guard(app, api_key=settings.api_key, max_body=settings.max_body, max_concurrent=settings.max_concurrent)


# ---------------------------------------------------------------------------------------- helpers
def subject(entry: LoadedModel, value: Any, param: str) -> Any:
    """A record a client sent, as raw records of one row; a bad one is a 400 naming ``param``."""
    columns = entry.model.codec_.columns if entry.modality == "tables" else None
    try:
        return record_from_json(value, entry.modality, tuple(entry.model.data_.shape), columns)
    except DataError as error:
        raise APIError(400, str(error), param) from None


def check_options(entry: LoadedModel, options: dict[str, Any], settings: ServeSettings) -> dict[str, Any]:
    """Check each option against the model's declared ones (:mod:`genlab.models.options`); a 400 names it."""
    specs = entry.options
    checked = {}
    for name, value in options.items():
        param = f"options.{name}"
        if name not in specs:
            listed = ", ".join(specs) or "none"
            raise APIError(400, f"model {entry.name!r} ({entry.model.family}) has no sampling option {name!r}; "
                                f"its options: {listed}", param)
        try:
            checked[name] = specs[name].check(name, value)
        except ConfigError as error:
            raise APIError(400, str(error), param) from None
    if checked.get("max_new_tokens", 0) > settings.max_tokens:
        raise APIError(400, f"max_new_tokens={checked['max_new_tokens']} is over this server's limit of "
                            f"{settings.max_tokens} (--max-tokens)", "options.max_new_tokens")
    if entry.modality == "text" and "max_new_tokens" not in checked:
        checked["max_new_tokens"] = min(settings.max_tokens, entry.default("max_new_tokens"))
    if "stop" in checked:
        checked["stop"] = tuple(checked["stop"])
    return checked
