"""`genlab serve`: every route, every error code, auth on and off, path traversal, micro-batching,
the official openai client against a real uvicorn server (streaming included), and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from genlab.cli.app import main
from genlab.sampling.batch_decoding import BatchDecoder
from genlab.serve import ModelRegistry, ServeSettings, create_app
from genlab.serve.batcher import MicroBatcher, batchable
from serve_support import REPO, ThreadServer, build_runs

KEY = "sekrit-key"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("serve-runs"))


@pytest.fixture(scope="module")
def registry(runs):
    return ModelRegistry.from_runs(list(runs.values()))


@pytest.fixture(scope="module")
def client(registry):
    return TestClient(create_app(registry, ServeSettings(max_n=64, max_tokens=64)))


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status and error["message"]
    return error


def png_size(text: str) -> tuple[int, int]:
    picture = Image.open(io.BytesIO(base64.b64decode(text)))
    return picture.size


def test_health_and_models_describe_options_and_conditions(client):
    assert client.get("/health").json() == {"status": "ok"}
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert set(models) == {"ring", "digits_gan", "digits_vae", "digits_diffusion", "table", "code"}
    steps = next(o for o in models["digits_diffusion"]["options"] if o["name"] == "steps")
    assert steps["type"] == "integer" and steps["minimum"] == 1 and isinstance(steps["default"], int)
    assert {o["name"] for o in models["code"]["options"]} >= {"temperature", "top_p", "top_k", "max_new_tokens"}
    assert models["digits_vae"]["condition"] == {"classes": [str(i) for i in range(10)]}
    columns = {c["name"]: c for c in models["table"]["condition"]["columns"]}
    assert list(columns) == ["x", "y", "colour", "label"] and columns["colour"]["categories"] == ["blue", "green", "red"]
    assert models["ring"]["options"] == [] and models["ring"]["modality"] == "points"


def test_samples_match_genlab_sample_for_points_and_tables(client, runs, tmp_path, capsys):
    for name, suffix in (("ring", ".npy"), ("table", ".csv")):
        out = tmp_path / f"{name}{suffix}"
        with pytest.raises(SystemExit) as done:
            main(["sample", str(runs[name]), "-n", "7", "--seed", "5", "--out", str(out)])
        assert done.value.code == 0
        body = client.post(f"/v1/models/{name}/samples", json={"n": 7, "seed": 5}).json()
        assert body["model"] == name and body["seed"] == 5 and len(body["records"]) == 7
        if name == "ring":   # float32 values survive JSON exactly
            np.testing.assert_array_equal(np.asarray(body["records"], dtype=np.float32), np.load(out))
        else:
            written = pd.read_csv(out)
            pd.testing.assert_frame_equal(pd.DataFrame(body["records"]), written, check_dtype=False)
    again = client.post("/v1/models/ring/samples", json={"n": 7, "seed": 5}).json()["records"]
    other = client.post("/v1/models/ring/samples", json={"n": 7, "seed": 6}).json()["records"]
    assert again == body_records(client, "ring", 5) and other != again
    capsys.readouterr()


def body_records(client, name: str, seed: int) -> list:
    return client.post(f"/v1/models/{name}/samples", json={"n": 7, "seed": seed}).json()["records"]


def test_samples_in_each_modality_and_conditions(client):
    images = client.post("/v1/models/digits_vae/samples", json={"n": 3, "seed": 1, "condition": "7"}).json()
    assert [png_size(image) for image in images["records"]] == [(8, 8)] * 3
    rows = client.post("/v1/models/table/samples", json={"n": 5, "condition": {"colour": "red"}}).json()["records"]
    assert {row["colour"] for row in rows} == {"red"} and set(rows[0]) == {"x", "y", "colour", "label"}
    texts = client.post("/v1/models/code/samples",
                        json={"n": 2, "options": {"prompt": "def ", "max_new_tokens": 8}}).json()["records"]
    assert all(isinstance(t, str) and t.startswith("def ") for t in texts)
    diffused = client.post("/v1/models/digits_diffusion/samples", json={"n": 2, "options": {"steps": 3}}).json()
    assert diffused["options"] == {"steps": 3} and len(diffused["records"]) == 2


def test_images_generations_in_openai_shape(client):
    body = client.post("/v1/images/generations", json={"model": "digits_vae", "n": 2, "seed": 3,
                                                       "response_format": "b64_json", "prompt": "4"}).json()
    assert set(body) == {"created", "data"} and [png_size(d["b64_json"]) for d in body["data"]] == [(8, 8)] * 2
    conditioned = client.post("/v1/images/generations", json={"model": "digits_vae", "n": 2, "seed": 3,
                                                              "condition": 4}).json()
    assert [d["b64_json"] for d in conditioned["data"]] == [d["b64_json"] for d in body["data"]]
    steps = client.post("/v1/images/generations", json={"model": "digits_diffusion", "n": 1, "steps": 2,
                                                        "sampler": "ddim", "seed": 0})
    assert steps.status_code == 200
    error_of(client.post("/v1/images/generations", json={"model": "digits_vae", "response_format": "url"}), 422)
    error_of(client.post("/v1/images/generations", json={"model": "digits_vae", "size": "1024x1024"}), 400)
    error_of(client.post("/v1/images/generations", json={"model": "code"}), 400)
    error_of(client.post("/v1/images/generations", json={"model": "digits_gan", "steps": 5}), 400)


def test_completions_shape_usage_stop_and_finish_reasons(client):
    body = client.post("/v1/completions", json={"model": "code", "prompt": "def ", "max_tokens": 12, "n": 2,
                                                "seed": 4, "temperature": 0.8, "top_p": 0.9, "top_k": 20,
                                                "repetition_penalty": 1.1}).json()
    assert body["object"] == "text_completion" and body["model"] == "code" and body["id"].startswith("cmpl-")
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert all(c["finish_reason"] in ("stop", "length") for c in body["choices"])
    assert body["usage"]["prompt_tokens"] == 2 * 4   # characters of "def ", twice
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    greedy = {"model": "code", "prompt": "def f1", "max_tokens": 12, "temperature": 0, "seed": 1}
    text = client.post("/v1/completions", json=greedy).json()["choices"][0]["text"]
    assert len(text) == 12   # one character per token, and a tiny model does not stop early
    stop = text[5]
    cut = client.post("/v1/completions", json={**greedy, "stop": [stop]}).json()["choices"][0]
    assert cut["text"] == text[:text.index(stop)] and cut["finish_reason"] == "stop"
    error_of(client.post("/v1/completions", json={"model": "ring", "prompt": "x"}), 400)
    error_of(client.post("/v1/completions", json={"model": "code", "prompt": "x", "max_tokens": 10_000}), 400)
    error_of(client.post("/v1/completions", json={"model": "code", "prompt": "x", "temperature": "hot"}), 422)
    error_of(client.post("/v1/completions", json={"model": "code", "prompt": "x", "n": 65}), 400)


def test_stream_sends_chunks_then_done_and_errors_as_events(client, registry):
    request = {"model": "code", "prompt": "def ", "max_tokens": 10, "seed": 2, "stream": True}
    with client.stream("POST", "/v1/completions", json=request) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    streamed = "".join(c["choices"][0]["text"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length") and len(chunks) >= 2
    alone = registry.get("code").model.stream("def ", generator=torch.Generator().manual_seed(2), max_new_tokens=10)
    assert streamed == "".join(alone)   # the seed's own stream, piece for piece
    def failing(prompt, **options):
        yield "def"
        raise RuntimeError("cache exploded")

    step, steps = BatchDecoder.step, []

    def failing_step(self):   # the continuous batch: a first step, then the model fails
        steps.append(self)
        if len(steps) > 1:
            raise RuntimeError("cache exploded")
        return step(self)

    one_at_a_time = TestClient(create_app(registry, ServeSettings(max_tokens=64, continuous_batching=False)))
    for server in (client, one_at_a_time):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(registry.get("code").model, "stream", failing)
            patch.setattr(BatchDecoder, "step", failing_step)
            with server.stream("POST", "/v1/completions", json=request) as response:
                events = [line for line in response.iter_lines() if line]
        assert response.status_code == 200 and events[-1] == "data: [DONE]"   # the status line was already sent
        error = json.loads(events[-2][6:])["error"]
        assert error["code"] == 500 and "cache exploded" in error["message"]
        assert server.post("/v1/completions", json={**request, "stream": False}).status_code == 200   # serving on
    request["num_beams"] = 2    # ignored extra field (OpenAI's route): still streams
    with client.stream("POST", "/v1/completions", json={**request, "repetition_penalty": 1.0}) as response:
        assert response.status_code == 200


def test_streamed_and_plain_completions_give_the_same_text(client):
    request = {"model": "code", "prompt": "def ", "max_tokens": 12, "seed": 7, "temperature": 0.9, "top_k": 20}
    texts = {}
    for n in (1, 2):
        plain = client.post("/v1/completions", json={**request, "n": n}).json()["choices"]
        with client.stream("POST", "/v1/completions", json={**request, "n": n, "stream": True}) as response:
            events = [json.loads(line[6:]) for line in response.iter_lines() if line and line != "data: [DONE]"]
        streamed, finished = [""] * n, [None] * n
        for event in events:
            choice = event["choices"][0]
            streamed[choice["index"]] += choice["text"]
            finished[choice["index"]] = choice["finish_reason"] or finished[choice["index"]]
        assert streamed == [choice["text"] for choice in plain]
        assert finished == [choice["finish_reason"] for choice in plain]
        texts[n] = streamed
    assert texts[2][0] == texts[1][0]   # choice 0 draws from the seed itself, whatever n is


def test_interaction_routes(client):
    first, second = client.post("/v1/models/digits_vae/samples",
                                json={"n": 2, "seed": 1, "condition": "3"}).json()["records"]
    same = client.post("/v1/models/digits_vae/variations", json={"record": first, "n": 2, "strength": 0.0,
                                                                  "condition": "3"}).json()["records"]
    moved = client.post("/v1/models/digits_vae/variations", json={"record": first, "n": 2, "strength": 0.8,
                                                                   "condition": "3", "seed": 1}).json()["records"]
    assert same[0] == same[1] and moved[0] != moved[1]   # strength 0: both the reconstruction
    path = client.post("/v1/models/digits_vae/interpolate", json={"a": first, "b": second, "steps": 5,
                                                                  "condition": "3"}).json()
    assert len(path["records"]) == 5 and path["method"] == "slerp"
    gan = client.post("/v1/models/digits_gan/interpolate", json={"latent_a": [0.5] * 8, "latent_b": [0.2, -1] * 4,
                                                                 "steps": 3, "method": "lerp"})
    assert len(gan.json()["records"]) == 3
    error_of(client.post("/v1/models/digits_gan/variations", json={"record": first}), 400)   # no encoder
    edited = client.post("/v1/models/digits_diffusion/variations",
                         json={"record": first, "n": 2, "strength": 0.5, "options": {"steps": 4}})
    assert [png_size(x) for x in edited.json()["records"]] == [(8, 8)] * 2
    row = client.post("/v1/models/table/samples", json={"n": 1, "seed": 2}).json()["records"][0]
    refined = client.post("/v1/models/table/refine", json={"record": row, "n": 4, "locked": ["x", "colour"]}).json()
    assert all(r["x"] == pytest.approx(row["x"]) and r["colour"] == row["colour"] for r in refined["records"])
    varied = client.post("/v1/models/table/variations", json={"record": row, "n": 4, "locked": ["label"]}).json()
    assert {r["label"] for r in varied["records"]} == {row["label"]}
    text = client.post("/v1/models/code/refine", json={"prefix": "def f2", "n": 2,
                                                       "options": {"max_new_tokens": 6}}).json()["records"]
    assert all(t.startswith("def f2") for t in text)
    error_of(client.post("/v1/models/ring/variations", json={"record": [0.0, 1.0]}), 400)
    error_of(client.post("/v1/models/ring/interpolate", json={"a": [0, 1], "b": [1, 0]}), 400)
    error_of(client.post("/v1/models/digits_vae/interpolate", json={"a": first}), 400)
    error_of(client.post("/v1/models/digits_vae/variations", json={"record": "not a png"}), 400)
    error_of(client.post("/v1/models/table/refine", json={"record": {"nope": 1}, "locked": ["nope"]}), 400)


@pytest.mark.parametrize("name", ["..", "../ring", "..%2Fring", "%2e%2e%2fetc%2fpasswd", "%2Fetc%2Fpasswd",
                                  "ring%00", "RING", "ring/..", "~", "C:%5Cwindows"])
def test_model_names_are_looked_up_never_opened(client, name):
    response = client.post(f"/v1/models/{name}/samples", json={"n": 1})
    # an unknown name, or (once the client resolved the dots) no such route: never a file
    assert response.status_code in (404, 405) and response.json()["error"]["code"] == response.status_code
    error_of(client.post("/v1/completions", json={"model": name.replace("%2F", "/"), "prompt": ""}), 404)
    error_of(client.post("/v1/completions", json={"model": "/etc/passwd", "prompt": ""}), 404)


def test_error_codes_for_bad_requests(client):
    error_of(client.post("/v1/models/ring/samples", json={"n": 0}), 422)
    error_of(client.post("/v1/models/ring/samples", json={"n": 1, "typo": 1}), 422)
    error_of(client.post("/v1/models/ring/samples", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert error_of(client.post("/v1/models/ring/samples", json={"n": 65}), 400)["param"] == "n"
    assert error_of(client.post("/v1/models/ring/samples", json={"options": {"steps": 3}}), 400)["param"] == "options.steps"
    for bad in ({"steps": 0}, {"steps": "3"}, {"steps": True}, {"sampler": "magic"}):
        error_of(client.post("/v1/models/digits_diffusion/samples", json={"options": bad}), 400)
    error_of(client.post("/v1/models/digits_vae/samples", json={"condition": "eleven"}), 400)
    error_of(client.post("/v1/models/table/samples", json={"condition": {"colour": "purple"}}), 400)
    error_of(client.post("/v1/models/ring/samples", content=b"x" * 1_000_001), 413)
    chunked = (b"x" * 100_000 for _ in range(11))   # no Content-Length: counted as it arrives
    error_of(client.post("/v1/models/ring/samples", content=chunked), 413)
    small = (part for part in (b'{"n": ', b"2}"))
    assert len(client.post("/v1/models/ring/samples", content=small,
                           headers={"content-type": "application/json"}).json()["records"]) == 2
    error_of(client.get("/v1/nothing"), 404)


def test_model_failure_is_500_and_the_server_keeps_serving(runs, monkeypatch):
    registry = ModelRegistry.from_runs([runs["ring"]])
    client = TestClient(create_app(registry), raise_server_exceptions=False)

    def broken(*args, **kwargs):
        raise RuntimeError("weights on fire")

    monkeypatch.setattr(registry.get("ring").model, "sample", broken)
    assert "weights on fire" in error_of(client.post("/v1/models/ring/samples", json={"n": 2}), 500)["message"]
    monkeypatch.undo()
    assert client.post("/v1/models/ring/samples", json={"n": 2}).status_code == 200


def test_timeout_is_504(runs, monkeypatch):
    registry = ModelRegistry.from_runs([runs["ring"]])
    model = registry.get("ring").model
    draw = model.sample
    monkeypatch.setattr(model, "sample", lambda *a, **k: (time.sleep(0.5), draw(*a, **k))[1])
    client = TestClient(create_app(registry, ServeSettings(timeout_s=0.1)))
    assert "limit" in error_of(client.post("/v1/models/ring/samples", json={"n": 1}), 504)["message"]


def test_auth_on_and_off(registry):
    locked = TestClient(create_app(registry, ServeSettings(api_key=KEY)))
    assert locked.get("/health").status_code == 200 and locked.get("/").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        error = error_of(locked.get("/v1/models", headers=headers), 401)
        assert error["type"] == "authentication_error"
        error_of(locked.post("/v1/models/ring/samples", json={"n": 1}, headers=headers), 401)
    assert locked.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert TestClient(create_app(registry)).get("/v1/models").status_code == 200


def test_micro_batches_equal_records_drawn_alone(registry):
    gan = registry.get("digits_gan")
    assert batchable(gan.model, None, {}) and not batchable(registry.get("code").model, None, {})
    batcher = MicroBatcher(wait_s=0.05, max_batch=64)
    requests = [(3, 11), (5, 12), (2, 13), (4, 11)]

    async def many():
        return await asyncio.gather(*(batcher.submit(gan, n, seed, None, {"truncation": 0.7})
                                      for n, seed in requests))

    batched = asyncio.run(many())
    assert batcher.sizes == [4]   # one network call for the four requests
    for (n, seed), records in zip(requests, batched):
        alone = gan.model.sample(n, generator=torch.Generator().manual_seed(seed), truncation=0.7)
        # same latents; a batch of 14 vs one of n may sum the same products in another order: float32
        # rounding of a few small layers, far below one 8-bit grey level (1/255)
        np.testing.assert_allclose(records, alone, rtol=0, atol=1e-5)
    assert not np.allclose(batched[0], batched[1][:3], atol=1e-3)   # another seed, other records


@pytest.fixture(scope="module")
def live(registry):
    server = ThreadServer(registry, ServeSettings(api_key=KEY, max_concurrent=2, max_tokens=64)).start()
    yield server
    server.stop()


def test_official_openai_client_completions_and_stream(live):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0)
    assert "code" in [m.id for m in client.models.list()]
    completion = client.completions.create(model="code", prompt="def ", max_tokens=8, seed=1, temperature=0.7)
    assert completion.choices[0].finish_reason in ("stop", "length") and completion.usage.prompt_tokens == 4
    pieces = [chunk.choices[0].text for chunk in
              client.completions.create(model="code", prompt="def ", max_tokens=8, seed=1, stream=True)]
    assert len(pieces) >= 2 and "".join(pieces)
    image = client.images.generate(model="digits_vae", prompt="5", n=1, response_format="b64_json")
    assert png_size(image.data[0].b64_json) == (8, 8)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="../code", prompt="x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="wrong", max_retries=0).models.list()


def test_more_than_max_concurrent_is_429(live, registry, monkeypatch):
    step = BatchDecoder.step

    def slow_step(self):   # the two streams decode in one continuous batch, a token per 0.2 s
        time.sleep(0.2)
        return step(self)

    monkeypatch.setattr(BatchDecoder, "step", slow_step)
    headers = {"Authorization": f"Bearer {KEY}"}
    request = {"model": "code", "prompt": "def ", "max_tokens": 8, "stream": True, "temperature": 0}
    started = threading.Barrier(3)
    texts: list[str] = []

    def hold():
        with httpx.stream("POST", f"{live.url}/v1/completions", json=request, headers=headers, timeout=30) as r:
            lines = r.iter_lines()
            first = next(line for line in lines if line)   # the stream is under way
            started.wait(timeout=10)
            texts.append("".join([first, *lines]))

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait(timeout=10)
    third = httpx.get(f"{live.url}/v1/models", headers=headers, timeout=10)
    for thread in threads:
        thread.join(timeout=30)
    assert third.status_code == 429 and third.json()["error"]["type"] == "rate_limit_error"
    assert len(texts) == 2 and all(text.endswith("data: [DONE]") for text in texts)   # both finished
    assert httpx.get(f"{live.url}/v1/models", headers=headers, timeout=10).status_code == 200


def test_a_burst_is_held_to_max_concurrent(live, registry, monkeypatch):
    # the two requests let in (max_concurrent=2) hold their slots until the other eight are answered, so
    # the counts do not depend on how fast the ten arrive or are served
    model = registry.get("table").model
    draw, release = model.sample, threading.Event()

    def held(*args, **kwargs):
        release.wait(timeout=30)
        return draw(*args, **kwargs)

    monkeypatch.setattr(model, "sample", held)

    async def burst():
        async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as client:
            pending = [asyncio.ensure_future(client.post(f"{live.url}/v1/models/table/samples",
                                                         json={"n": 2, "seed": i})) for i in range(10)]
            first = []
            try:
                for answer in asyncio.as_completed(pending, timeout=30):
                    first.append(await answer)
                    if len(first) == 8:
                        break
            finally:
                release.set()
            return first, await asyncio.gather(*pending)

    first, every = asyncio.run(burst())
    assert all(error_of(response, 429)["type"] == "rate_limit_error" for response in first)
    assert sorted(response.status_code for response in every) == [200, 200] + [429] * 8


def test_genlab_serve_prints_url_and_stops_cleanly_on_sigterm(runs):
    stray_file = runs["ring"] / "config.json"   # as a shell glob like runs/demo/* would also name files
    process = subprocess.Popen([sys.executable, "-m", "genlab", "serve", str(runs["code"]), str(runs["ring"]),
                                str(stray_file), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO)
    try:
        url = None
        for line in process.stdout:
            if "open http" in line:
                url = line.split("open ")[1].split()[0]
                break
        assert url is not None, process.stderr.read()
        assert httpx.get(f"{url}v1/models", timeout=10).json()["data"][0]["id"] == "code"
        assert httpx.get(f"{url}health", timeout=10).json() == {"status": "ok"}
        request = {"model": "code", "prompt": "def ", "max_tokens": 48, "stream": True, "temperature": 0}
        with httpx.stream("POST", f"{url}v1/completions", json=request, timeout=30) as response:
            lines = response.iter_lines()
            first = next(line for line in lines if line)
            process.send_signal(signal.SIGTERM)         # mid-stream: the stream still ends properly
            rest = [line for line in lines if line]
        assert first.startswith("data: {") and rest[-1] == "data: [DONE]"
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_genlab_variations_cli_names_its_subject_by_seed_and_index(runs, tmp_path, capsys):
    out = tmp_path / "v.npy"
    with pytest.raises(SystemExit) as done:
        main(["variations", str(runs["digits_vae"]), "--condition", "3", "--index", "2", "-n", "4",
              "--strength", "0", "--out", str(out)])
    assert done.value.code == 0
    varied = np.load(out)
    assert varied.shape == (4, 1, 8, 8) and np.array_equal(varied[0], varied[3])   # strength 0: one record
    with pytest.raises(SystemExit) as done:
        main(["variations", str(runs["table"]), "--seed", "4", "--lock", "colour", "-n", "5",
              "--out", str(tmp_path / "v.csv")])
    subject = pd.read_csv(tmp_path / "v.csv")
    with pytest.raises(SystemExit):
        main(["sample", str(runs["table"]), "-n", "1", "--seed", "4", "--out", str(tmp_path / "s.csv")])
    assert done.value.code == 0 and set(subject["colour"]) == set(pd.read_csv(tmp_path / "s.csv")["colour"])
    with pytest.raises(SystemExit) as done:
        main(["variations", str(runs["ring"]), "--out", str(tmp_path / "r.npy")])
    assert done.value.code == 1 and "no variations" in capsys.readouterr().err
