"""The FastAPI app: OpenAI-shaped endpoints in front of a batching worker.

``create_app(served, settings)`` builds the app for one model. Which endpoint exists follows the
model: ``/v1/completions`` (causal LM), ``/v1/embeddings`` (sentence encoder) or ``/v1/classify``
(image classifier: base64 PNG/JPEG in; text classifier: strings in); ``/v1/models``, ``/healthz``,
``/readyz`` and ``/metrics`` always do.

Answers a client can cause, and nothing else: 400 (a body that is not JSON text), 401 (API key),
404 (another model id), 413 (body over ``max_body_bytes``), 422 (invalid body, with the field's path
in ``detail[i].loc``), 503 with ``Retry-After`` (queue full, warming up or shutting down), 504
(``timeout_s`` passed). Errors other than 422 have OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``.
"""

# NOTE: no `from __future__ import annotations`: FastAPI must see the per-app CompletionRequest class
# in the endpoint's signature, which a string annotation of a local name would hide.

import asyncio
import base64
import binascii
import hmac
import io
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from PIL import Image, UnidentifiedImageError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from neural_arch.errors import NeuralArchError
from neural_arch.serve import runners
from neural_arch.serve.batching import QueueFull
from neural_arch.serve.decoding import GenSequence
from neural_arch.serve.metrics import ServerMetrics
from neural_arch.serve.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    ModelList,
    completion_request_model,
)
from neural_arch.serve.served import CLASSIFY, COMPLETIONS, EMBEDDINGS, ServedModel

__all__ = ["ServeSettings", "create_app"]


@dataclass
class ServeSettings:
    """The server's limits (the ``neural-arch serve`` options).

    max_batch_size: items per forward (texts, images, decoding rows).
    max_wait_ms: how long a lone request waits for others to share its batch.
    max_queue: items waiting beyond which requests get 503 at once.
    max_tokens_cap: the largest ``max_tokens`` a completion may ask for.
    timeout_s: a request not answered by then gets 504 (its work is dropped).
    max_body_bytes: larger request bodies get 413.
    api_key: when set, ``/v1/*`` needs ``Authorization: Bearer <api_key>``.
    keep_alive_s: how long an idle keep-alive connection stays open. Longer than clients keep theirs
        (httpx and the openai package: 5 s), so the server never closes a connection at the moment a
        client reuses it (the request would be lost with a reset; uvicorn's own default is 5 s).
    length_groups: run a batch of texts (embeddings, text classification) as a few forwards of texts of
        similar length, instead of one padded to the longest (``runners.by_length``).
    """

    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256
    max_tokens_cap: int = 256
    timeout_s: float = 60.0
    max_body_bytes: int = 8 * 1024 * 1024
    api_key: str | None = None
    keep_alive_s: float = 75.0
    length_groups: bool = True


class ApiError(Exception):
    """An answer other than 2xx/422, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, type_: str, param: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.headers = status, message, type_, param, headers


def _error_response(status: int, message: str, type_: str, param=None, headers=None) -> JSONResponse:
    body = ErrorResponse(error={"message": message, "type": type_, "param": param, "code": None})
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _invalid(loc: list, message: str) -> JSONResponse:
    """A 422 shaped like FastAPI's own validation errors (``detail[i].loc`` is the field's path)."""
    return JSONResponse({"detail": [{"loc": loc, "msg": message, "type": "value_error"}]}, status_code=422)


class _InvalidInput(Exception):
    def __init__(self, loc: list, message: str):
        super().__init__(message)
        self.loc, self.message = loc, message


_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 503, 504)}


def create_app(served: ServedModel, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving ``served`` under ``settings``; its worker starts (and warms up) with the app's lifespan."""
    settings = settings or ServeSettings()
    state = _State(served, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        starting = asyncio.get_running_loop().create_task(state.start())
        try:
            yield
        finally:
            await starting
            await run_in_threadpool(state.stop)

    app = FastAPI(title=f"neural-arch serve: {served.name}", version="1", lifespan=lifespan,
                  description=f"Serves {served.name!r} ({served.kind}).")
    app.state.serve = state
    bearer = HTTPBearer(auto_error=False, description="Needed when the server runs with --api-key-env")

    async def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if settings.api_key is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise ApiError(401, "a valid API key is needed: send 'Authorization: Bearer <key>'",
                           "invalid_request_error", headers={"WWW-Authenticate": "Bearer"})

    def check_model(name: str | None) -> None:
        if name is not None and name != served.name:
            raise ApiError(404, f"model {name!r} is not served here; this server serves {served.name!r}",
                           "invalid_request_error", param="model")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return _error_response(e.status, e.message, e.type, e.param, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):  # e.g. a body that is not UTF-8 JSON: 400
        return _error_response(e.status_code, str(e.detail), "invalid_request_error", headers=e.headers)

    @app.exception_handler(_InvalidInput)
    async def _invalid_input(request: Request, e: _InvalidInput):
        return _invalid(e.loc, e.message)

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and warmed up", responses={503: {"model": ErrorResponse}})
    async def readyz():
        if state.draining or not state.ready.is_set():
            return _error_response(503, "shutting down" if state.draining else "warming up", "unavailable",
                                   headers={"Retry-After": "1"})
        problem = state.worker.problem(stuck_after_s=settings.timeout_s)
        if problem is not None:  # a load balancer should stop sending work and a supervisor restart us
            return _error_response(503, problem, "unavailable")
        return {"status": "ready", "model": served.name}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", response_model=ModelList, responses=_ERRORS, dependencies=[Depends(authorize)])
    async def models() -> ModelList:
        return ModelList(data=[{"id": served.name, "created": state.created}])

    if served.kind == EMBEDDINGS:
        @app.post("/v1/embeddings", response_model=EmbeddingResponse, responses=_ERRORS,
                  dependencies=[Depends(authorize)])
        async def embeddings(body: EmbeddingRequest) -> EmbeddingResponse:
            check_model(body.model)
            texts = [body.input] if isinstance(body.input, str) else body.input
            width = served.embedding_dim
            if body.dimensions is not None and body.dimensions != width:
                raise _InvalidInput(["body", "dimensions"], f"this model's embeddings have {width} dimensions")
            results = await state.run_items(texts)
            data = []
            for i, (vector, _) in enumerate(results):
                value = (base64.b64encode(vector.astype("<f4").tobytes()).decode() if body.encoding_format == "base64"
                         else vector.tolist())
                data.append({"index": i, "embedding": value})
            n = sum(tokens for _, tokens in results)
            return EmbeddingResponse(data=data, model=served.name, usage={"prompt_tokens": n, "total_tokens": n})

    if served.kind == CLASSIFY:
        @app.post("/v1/classify", response_model=ClassifyResponse, responses=_ERRORS,
                  dependencies=[Depends(authorize)])
        async def classify(body: ClassifyRequest) -> ClassifyResponse:
            check_model(body.model)
            single = isinstance(body.input, str)
            items = [body.input] if single else body.input
            if served.inputs == "image":
                items = await run_in_threadpool(_decode_images, items, served, single)
            results = await state.run_items(items)
            k = min(body.top_k, len(served.labels))
            data = []
            for i, probs in enumerate(results):
                top = np.argsort(-probs, kind="stable")[:k]
                data.append({"index": i, "label": served.labels[top[0]], "labels": [served.labels[j] for j in top],
                             "probabilities": [float(probs[j]) for j in top]})
            return ClassifyResponse(data=data, model=served.name)

    if served.kind == COMPLETIONS:
        CompletionRequest = completion_request_model(settings.max_tokens_cap)

        @app.post("/v1/completions", response_model=CompletionResponse, responses=_ERRORS,
                  dependencies=[Depends(authorize)])
        async def completions(body: CompletionRequest):
            check_model(body.model)
            return await _complete(state, body)

    app.add_middleware(_Guard, state=state, routes={r.path for r in app.routes})
    return app


class _State:
    """What the endpoints share: the model, its worker, the metrics, readiness."""

    def __init__(self, served: ServedModel, settings: ServeSettings):
        self.served, self.settings = served, settings
        self.created = int(time.time())
        self.ready = threading.Event()
        self.draining = False
        self.worker = None
        self.metrics = ServerMetrics(served.kind, lambda: self.worker.depth() if self.worker is not None else 0,
                                     (lambda: self.worker.active() if self.worker is not None else 0)
                                     if served.kind == COMPLETIONS else None)

    async def start(self) -> None:
        """Warm the model up (compiles kernels, fills caches) on a thread, then start the worker; /readyz is 200
        from then on. Requests that arrive before get 503 with Retry-After; so do all of them, and /readyz
        stays 503, when the warm-up fails (the model cannot run; the error is logged)."""
        try:
            await run_in_threadpool(runners.warm_up, self.served)
        except Exception:
            logging.getLogger("neural_arch.serve").exception("warming up %r failed", self.served.name)
            return
        self.worker = runners.make_worker(self.served, self.settings, self.metrics)
        self.ready.set()

    def stop(self) -> None:
        self.draining = True
        if self.worker is not None:
            self.worker.close()

    def submit(self, items: list):
        """Hand items to the worker; 503 when it is not running yet or its queue is full."""
        if self.worker is None:
            raise ApiError(503, "the model is warming up; retry shortly", "server_busy", headers={"Retry-After": "1"})
        try:
            return self.worker.submit(items)
        except QueueFull as e:
            raise ApiError(503, f"the server is busy ({e}); retry shortly", "server_busy",
                           headers={"Retry-After": "1"}) from None

    async def run_items(self, payloads: list) -> list:
        """Submit items to the batcher and await them all under the deadline (503 / 504 as ApiError)."""
        futures = self.submit(payloads)
        try:
            return await asyncio.wait_for(asyncio.gather(*futures), self.settings.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within {self.settings.timeout_s:g} s", "timeout") from None
        except QueueFull as e:  # queued when the worker stopped
            raise ApiError(503, str(e), "unavailable") from None


# -- images ---------------------------------------------------------------------------------------
_MAX_PIXELS = 4096 * 4096


def _decode_images(blobs: list[str], served: ServedModel, single: bool) -> list[np.ndarray]:
    """base64 PNG/JPEG -> the model's input arrays, or a 422 naming the image that failed."""
    out = []
    for i, blob in enumerate(blobs):
        loc = ["body", "input"] if single else ["body", "input", i]
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise _InvalidInput(loc, "not valid base64") from None
        try:
            with Image.open(io.BytesIO(raw)) as img:
                if img.format not in ("PNG", "JPEG"):
                    raise _InvalidInput(loc, f"expected a PNG or JPEG image, got {img.format}")
                if img.width * img.height > _MAX_PIXELS:
                    raise _InvalidInput(loc, f"the image has {img.width}x{img.height} pixels; at most 4096x4096")
                out.append(served.transform(np.asarray(_fit(img.convert(served.image_mode), served))))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
            raise _InvalidInput(loc, f"not a readable PNG or JPEG image ({type(e).__name__})") from None
    return out


def _fit(img: Image.Image, served: ServedModel) -> Image.Image:
    """Resize to ``served.image_size``, or (with ``shortest_edge``) resize the shorter side and keep the centre,
    as transformers' processors do (their sizes and crop offsets, so the pixels match theirs)."""
    if served.shortest_edge is None:
        return img.resize(served.image_size, served.resample)
    edge, (w, h) = served.shortest_edge, img.size
    size = (edge, int(edge * h / w)) if w <= h else (int(edge * w / h), edge)
    img = img.resize(size, served.resample)
    (cw, ch), (w, h) = served.image_size, img.size
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


# -- completions ----------------------------------------------------------------------------------
async def _complete(state: _State, body) -> Response:
    served = state.served
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    encoded = []
    for i, text in enumerate(prompts):
        loc = ["body", "prompt"] if isinstance(body.prompt, str) else ["body", "prompt", i]
        try:
            ids = [int(t) for t in np.asarray(served.tokenizer.encode(text)).reshape(-1)]
        except NeuralArchError as e:
            raise _InvalidInput(loc, str(e)) from None
        if not ids:
            raise _InvalidInput(loc, "the prompt must hold at least one token")
        encoded.append(ids)
    stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def emitter(index: int):
        return lambda text, reason: loop.call_soon_threadsafe(events.put_nowait, (index, text, reason))

    seqs = [GenSequence(ids, body.max_tokens, emitter(i), temperature=body.temperature, top_p=body.top_p,
                        seed=None if body.seed is None else body.seed + i, stops=stops)
            for i, ids in enumerate(encoded)]
    state.submit(seqs)
    rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    deadline = loop.time() + state.settings.timeout_s

    def cancel():
        for s in seqs:
            s.cancelled = True

    async def next_event():
        return await asyncio.wait_for(events.get(), max(0.0, deadline - loop.time()))

    if body.stream:
        async def sse():
            open_ = len(seqs)
            try:
                while open_:
                    try:
                        index, text, reason = await next_event()
                    except asyncio.TimeoutError:
                        err = {"error": {"message": f"no answer within {state.settings.timeout_s:g} s",
                                         "type": "timeout"}}
                        yield f"data: {json.dumps(err)}\n\n"
                        return
                    if reason is not None and reason not in ("stop", "length"):
                        yield f"data: {json.dumps({'error': {'message': reason, 'type': 'server_error'}})}\n\n"
                        return
                    open_ -= reason is not None
                    chunk = {"id": rid, "object": "text_completion", "created": created, "model": served.name,
                             "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": reason}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                cancel()

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    texts, reasons = [""] * len(seqs), [None] * len(seqs)
    try:
        while any(r is None for r in reasons):
            index, text, reason = await next_event()
            texts[index] += text
            reasons[index] = reason
    except asyncio.TimeoutError:
        cancel()
        raise ApiError(504, f"no answer within {state.settings.timeout_s:g} s", "timeout") from None
    except asyncio.CancelledError:
        cancel()
        raise
    failed = [r for r in reasons if r not in ("stop", "length")]
    if failed:
        raise ApiError(500, failed[0], "server_error")
    n_prompt = sum(len(ids) for ids in encoded)
    n_out = sum(s.n_generated for s in seqs)
    return CompletionResponse(id=rid, created=created, model=served.name,
                              choices=[{"index": i, "text": t, "finish_reason": r}
                                       for i, (t, r) in enumerate(zip(texts, reasons))],
                              usage={"prompt_tokens": n_prompt, "completion_tokens": n_out,
                                     "total_tokens": n_prompt + n_out})


# -- the middleware: body limit, metrics ----------------------------------------------------------
class _Guard:
    """Pure ASGI: answers 413 for a body over the limit (read at most limit + one chunk), counts
    requests by route and status, times them, and keeps the in-flight gauge."""

    def __init__(self, app, state: _State, routes: set):
        self.app, self.state, self.routes = app, state, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        metrics, route = self.state.metrics, scope["path"] if scope["path"] in self.routes else "other"
        start, status = time.perf_counter(), [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        metrics.in_flight.inc()
        try:
            receive_body = await self._read_limited(scope, receive)
            if receive_body is None:
                status[0] = 413
                response = _error_response(413, f"the request body is over {self.state.settings.max_body_bytes} "
                                                "bytes", "invalid_request_error")
                await response(scope, receive, send)
            elif receive_body is False:
                status[0] = 499  # the client left before its body arrived (nginx's code for it)
            else:
                await self.app(scope, receive_body, send_counted)
        finally:
            metrics.in_flight.dec()
            metrics.requests.labels(route, str(status[0])).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - start)

    async def _read_limited(self, scope, receive):
        """A receive() that replays the body; None when it is too large; False when the client left."""
        limit = self.state.settings.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        return replay
