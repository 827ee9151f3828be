"""Errors as JSON, API keys, and the limits every request passes through.

Every error answer is ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status as
``code`` (vLLM's ``ErrorResponse``): 400 a bad value, 401 a missing or wrong key, 404 an unknown model
or route, 413 a body over the limit, 422 a body that does not fit the request's schema, 429 more
requests in flight than ``max_concurrent`` (TGI's convention), 499 a client that left before its answer
(nginx's code; nobody reads it), 500 a model that failed, 504 a request over its time limit. Inside an
event stream the same object is sent as one ``data:`` event before the end. Beam search and logits
processors are not options of ``POST /v1/completions``; in the library they decode one call at a time
(:meth:`genlab.sampling.batch_decoding.BatchDecoder.accepts`).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genlab.errors import GenlabError

log = logging.getLogger(__name__)

#: The ``type`` of an error answer by HTTP status (OpenAI's names where it has one).
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               405: "invalid_request_error", 413: "request_too_large", 422: "invalid_request_error",
               429: "rate_limit_error", 499: "client_closed_request", 500: "internal_server_error",
               504: "timeout_error"}
#: Paths anyone may read without a key: the health check and the playground page.
OPEN_PATHS = ("/health", "/")
STATIC_PREFIX = "/static/"


class APIError(Exception):
    """An answer other than success: HTTP ``status``, a message for people, the ``param`` at fault."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """The JSON of an error answer."""
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": status}}


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    """An error answer; a 401 also names the scheme a client should use."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


def as_api_error(error: BaseException) -> APIError:
    """What a failure becomes: a GenlabError is the client's (400), anything else the model's (500)."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, (GenlabError, ValueError)) and not isinstance(error, (KeyError, IndexError)):
        # ValueError: GenerationConfig's own checks (e.g. beam search with top_p)
        return APIError(400, str(error))
    log.exception("a model failed while serving a request", exc_info=error)
    return APIError(500, f"the model failed: {type(error).__name__}: {error}")


def install_handlers(app: Any) -> None:
    """Route every failure into the error JSON."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> JSONResponse:
        return error_response(error.status, error.message, error.param)

    @app.exception_handler(GenlabError)
    async def user_error(request: Request, error: GenlabError) -> JSONResponse:
        return error_response(400, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = ".".join(where) or None
        return error_response(422, f"{param or 'body'}: {first.get('msg', 'invalid request')}", param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "request failed"
        if error.status_code == 404:
            message = f"no route {request.url.path!r}"
        return error_response(error.status_code, message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> JSONResponse:
        failure = as_api_error(error)
        return error_response(failure.status, failure.message, failure.param)


def key_matches(header: str | None, key: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer key``, compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode())


class Guard:
    """ASGI middleware in front of the app: API key, body size and in-flight limit.

    ``max_concurrent`` counts API requests from their start to the last byte of their answer (streams
    included); one more is answered 429 at once rather than queued. The body is read here, up to
    ``max_body`` bytes, so a chunked upload without ``Content-Length`` is refused at the limit too.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], *, api_key: str | None, max_body: int,
                 max_concurrent: int) -> None:
        self.app, self.api_key, self.max_body, self.max_concurrent = app, api_key, max_body, max_concurrent
        self.in_flight = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if self.api_key is not None and not key_matches(headers.get("authorization"), self.api_key):
            await _send(send, 401, "a valid API key is needed: send the header 'Authorization: Bearer KEY'")
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _send(send, 413, f"the request body has {length} bytes; the limit is {self.max_body}")
            return
        if self.in_flight >= self.max_concurrent:
            await _send(send, 429, f"{self.in_flight} requests are in flight, the most this server takes "
                                   f"(--max-concurrent {self.max_concurrent}); retry shortly")
            return
        self.in_flight += 1   # before any await: the check and the count are one step of the event loop
        try:
            body = await _read_body(receive, self.max_body)
            if body is None:
                await _send(send, 413, f"the request body is over the limit of {self.max_body} bytes")
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.in_flight -= 1


async def _read_body(receive: Callable, limit: int) -> bytes | None:
    """The whole request body, or ``None`` once it grows past ``limit`` (chunked uploads included)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body                # the client left; the app will see the disconnect
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return body


def _replay(body: bytes, receive: Callable) -> Callable:
    """A ``receive`` that hands the app the body read already, then passes on (e.g. a disconnect)."""
    sent = False

    async def receive_again() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


async def _send(send: Callable, status: int, message: str) -> None:
    body = json.dumps(error_body(status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
