"""``genlab serve RUN [RUN ...] | --runs-dir DIR``: an HTTP API and a web playground over saved models.

Each run is loaded once and named by its directory. Concurrent completions of a text model decode in one
continuous batch (``--no-continuous-batching``: one request at a time; the texts are the same). The URL
is printed as soon as the socket listens, before the web stack is imported and the runs are loaded
(seconds of imports): connections queue until then and are answered once the server runs. SIGINT or
SIGTERM stop the running server cleanly: it stops accepting, lets in-flight requests finish (up to the
request timeout) and exits 0. The server writes no files.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Annotated

import typer

from genlab.errors import CheckpointError, ConfigError, NotSupportedError


def serve(
    runs: Annotated[list[Path] | None, typer.Argument(help="Run directories written by `genlab fit`.")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Serve every run inside this folder.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8000,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="GENLAB_API_KEY", help="Require 'Authorization: Bearer KEY' on every API route.")] = None,
    max_n: Annotated[int, typer.Option("--max-n", help="Most records per request.")] = 256,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Most new tokens per completion.")] = 512,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", help="API requests in flight; more get 429.")] = 64,
    max_body: Annotated[int, typer.Option("--max-body", help="Largest request body in bytes.")] = 1_000_000,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a request may take (504 beyond).")] = 60.0,
    batch_wait_ms: Annotated[float, typer.Option("--batch-wait-ms", help="How long to collect a micro-batch.")] = 10.0,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most records per micro-batch of GAN/VAE draws (1, the default: none; "
                                                     "on a CPU it did not pay).")] = 1,
    continuous_batching: Annotated[bool, typer.Option(
        "--continuous-batching/--no-continuous-batching",
        help="Decode the concurrent completions of a text model together, one step for all (off: one request "
             "at a time).")] = True,
    max_num_seqs: Annotated[int, typer.Option(
        "--max-num-seqs", help="Most sequences a text model decodes at once; more wait for a place.")] = 64,
) -> None:
    """Serve the models in RUN... (or --runs-dir) over HTTP: the API under /v1 and a playground at /."""
    if bool(runs) == (runs_dir is not None):
        raise ConfigError("pass run directories or --runs-dir DIR (one of the two)")
    for name, value in (("--max-n", max_n), ("--max-tokens", max_tokens), ("--max-concurrent", max_concurrent),
                        ("--max-body", max_body), ("--max-batch", max_batch), ("--max-num-seqs", max_num_seqs)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if timeout <= 0 or batch_wait_ms < 0:
        raise ConfigError(f"--timeout must be > 0 and --batch-wait-ms >= 0, got {timeout} and {batch_wait_ms}")
    if runs:   # a shell glob such as runs/demo/* also names the folder's files (summary.json, report.html)
        files = [run for run in runs if run.is_file()]
        runs = [run for run in runs if not run.is_file()]
        if files:
            print(f"genlab serve: skipping {len(files)} file(s) that are not run directories: "
                  f"{', '.join(f.name for f in files)}", flush=True)
    missing = [str(run) for run in (runs or [runs_dir]) if not run.is_dir()]   # a typo fails before the URL
    if missing:
        raise CheckpointError(f"no such directory: {', '.join(missing)}")
    listener = _listen(host, port)
    try:
        print(f"genlab serve: open http://{host}:{listener.getsockname()[1]}/  (API under /v1; Ctrl-C stops)",
              flush=True)
        _serve(listener, runs, runs_dir, timeout, dict(
            api_key=api_key, max_n=max_n, max_tokens=max_tokens, max_concurrent=max_concurrent, max_body=max_body,
            timeout_s=timeout, batch_wait_ms=batch_wait_ms, max_batch=max_batch,
            continuous_batching=continuous_batching, max_num_seqs=max_num_seqs))
    finally:
        listener.close()
    print("genlab serve: stopped", flush=True)


def _serve(listener: socket.socket, runs: list[Path] | None, runs_dir: Path | None, timeout: float,
           settings: dict) -> None:
    """Import the web stack, load the runs and answer on ``listener`` until SIGINT or SIGTERM."""
    try:   # imported here, so that the other commands start without the web stack
        import uvicorn

        from genlab.serve import ModelRegistry, ServeSettings, create_app
    except ImportError as error:
        raise NotSupportedError(f"genlab serve needs fastapi and uvicorn, dependencies of genlab ({error.name} is "
                                "missing): reinstall genlab, e.g. pip install genlab") from None

    started = time.perf_counter()
    registry = ModelRegistry.from_runs(runs if runs else ModelRegistry.runs_in(runs_dir))
    loaded = time.perf_counter() - started
    app = create_app(registry, ServeSettings(**settings))
    print(f"genlab serve: {len(registry.names)} model(s) loaded in {loaded:.2f} s: {', '.join(registry.names)}",
          flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=max(1, int(timeout)),
                            lifespan="off")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal under the handlers it
    # found; these make that re-raise a no-op, so a requested stop exits 0 instead of dying by signal.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (connections queue from here on, before uvicorn runs)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    listener.listen(128)
    return listener
