"""The FastAPI application: routes, error handlers, metrics and request logs.

Every refused request answers a 4xx JSON ``{"error": "... expected ..."}``; anything
unforeseen answers 500 with a JSON error and is logged, and the server keeps serving.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse

from ..errors import RunFolderError
from .batcher import Batcher
from .drift import DriftMonitor
from .gallery import SUBJECT, Gallery, walk_embedding
from .inputs import MAX_FRAMES, InputError, Spec, decode, multipart_input, spec_for
from .metrics import Metrics
from .model import ServedModel
from .runtime import Runtime

log = logging.getLogger("gaitrun.serve")
TENSOR_TYPES = ("application/x-npy", "application/json")


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = 32
    max_wait_ms: float = 0.0
    max_body_mb: float = 16.0
    drift_threshold: float = 0.25
    drift_window: int = 256
    gallery: Path | None = None  # default: <run>/serve/gallery.npz

    @property
    def max_body(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


@dataclass
class State:
    model: ServedModel
    runtime: Runtime
    options: ServeOptions
    metrics: Metrics
    gallery: Gallery
    drift: DriftMonitor | None
    spec: Spec
    batcher: Batcher | None = None


def _on_batch(state: State) -> Any:
    """Per model run, in the inference thread: batch size, predicted classes, drift."""
    labels = np.asarray(state.model.labels)

    def on_batch(batch: np.ndarray, out: np.ndarray) -> None:
        m = state.metrics
        m.batch_size.observe(len(batch))
        if not state.model.embedding and out.ndim == 2 and out.shape[1] == len(labels):
            for index, count in enumerate(np.bincount(out.argmax(-1), minlength=len(labels))):
                if count:
                    m.predicted.labels(label=str(labels[index])).inc(int(count))
        if state.drift is not None:
            state.drift.update(batch)
            score = state.drift.score()
            m.drift_inputs.set(state.drift.inputs)
            m.drift_psi.set(-1 if score is None else score)
            m.drift_alert.set(int(state.drift.alert()))

    return on_batch


def build_state(model: ServedModel, runtime: Runtime, options: ServeOptions) -> State:
    metrics = Metrics.create(options.drift_threshold)
    drift = None if model.stats is None else DriftMonitor(model.stats, window=options.drift_window,
                                                          threshold=options.drift_threshold)
    knn = model.recipe.evaluate.knn
    gallery = Gallery(options.gallery or model.folder / "serve" / "gallery.npz",
                      metric=knn.metric if knn is not None else "euclidean")
    state = State(model, runtime, options, metrics, gallery, drift, spec_for(model, options.max_body))
    state.batcher = Batcher(runtime.run, max_batch=options.max_batch, max_wait_ms=options.max_wait_ms,
                            on_batch=_on_batch(state))
    return state


async def read_inputs(request: Any, state: State) -> np.ndarray:
    """The request's model inputs (tensors, or raw uploads through the training preprocessing)."""
    from starlette.concurrency import run_in_threadpool

    spec = state.spec
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        async with request.form(max_files=MAX_FRAMES) as form:
            files = [(f.filename or "", await f.read()) for _, f in form.multi_items() if hasattr(f, "read")]
        if not files:
            raise InputError("a multipart body without files: expected PNG frames, a video or a CSV file")
        x = await run_in_threadpool(multipart_input, files, spec)
    else:
        body = await request.body()
        tensor = content_type.split(";")[0].strip().lower() in TENSOR_TYPES
        x = decode(content_type, body, spec) if tensor else await run_in_threadpool(decode, content_type, body, spec)
    request.state.rows = len(x)
    return x


def _predictions(model: ServedModel, out: np.ndarray) -> dict:
    if model.embedding:
        return {"embeddings": out.tolist()}
    labels = model.labels
    return {"predictions": [{"index": i, "label": labels[i] if i < len(labels) else str(i), "scores": row.tolist()}
                            for i, row in zip(out.argmax(-1).tolist(), out, strict=True)]}


def _need_embeddings(model: ServedModel) -> None:
    if not model.embedding:
        raise InputError("this run's model answers class scores, not embeddings; gallery identification "
                         "needs an embedding model (e.g. gaitset trained with a triplet loss)")


@contextmanager
def _gallery_writes() -> Any:
    """A gallery file that cannot be written (e.g. a read-only run folder) answers 503, not 500."""
    try:
        yield
    except RunFolderError as exc:
        raise InputError(f"{exc}; start the server with --gallery on a writable path", status=503) from exc


def _subject(subject: str) -> str:
    if not SUBJECT.match(subject):
        raise InputError(f"subject {subject!r}: expected 1-64 letters, digits, '_', '.' or '-'")
    return subject


def add_routes(app: Any, state: State) -> None:
    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "run_id": state.model.run_id}

    @app.get("/v1/model")
    async def model_info() -> dict:
        info = state.model.describe(f"{state.runtime.name} {state.runtime.version}".strip())
        o = state.options
        info.update({"max_batch": o.max_batch, "max_wait_ms": o.max_wait_ms, "max_body_mb": o.max_body_mb,
                     "drift": None if state.drift is None else {"threshold": o.drift_threshold, "window": o.drift_window}})
        return info

    @app.post("/v1/predict")
    async def predict(request: Request) -> Any:
        x = await read_inputs(request, state)
        # a JSONResponse skips FastAPI's jsonable_encoder walk over every score
        return JSONResponse(_predictions(state.model, await state.batcher.submit(x)))

    @app.get("/v1/gallery")
    async def gallery_list() -> dict:
        return state.gallery.summary()

    @app.post("/v1/gallery/{subject}")
    async def enrol(subject: str, request: Request) -> dict:
        _need_embeddings(state.model)
        _subject(subject)
        x = await read_inputs(request, state)
        vector = walk_embedding(await state.batcher.submit(x))
        with _gallery_writes():
            walks = state.gallery.enrol(subject, vector)
        return {"subject": subject, "walks": walks, "windows": len(x)}

    @app.delete("/v1/gallery/{subject}")
    async def forget(subject: str) -> Any:
        with _gallery_writes():
            removed = state.gallery.remove(_subject(subject))
        if not removed:
            raise InputError(f"subject {subject!r} is not enrolled; GET /v1/gallery lists the subjects", status=404)
        return {"subject": subject, "removed": removed}

    @app.post("/v1/identify")
    async def identify(request: Request, k: int = 5) -> dict:
        _need_embeddings(state.model)
        if not 1 <= k <= 100:
            raise InputError(f"k={k}: expected 1 <= k <= 100")
        x = await read_inputs(request, state)
        vector = walk_embedding(await state.batcher.submit(x))
        return {"matches": state.gallery.identify(vector, k), "windows": len(x)}

    @app.get("/metrics")
    async def metrics() -> Any:
        from fastapi.responses import Response
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _error(status: int, message: str) -> Any:
    return JSONResponse({"error": message}, status_code=status)


def add_error_handlers(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(InputError)
    async def input_error(request: Any, exc: InputError) -> Any:
        return _error(exc.status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: HTTPException) -> Any:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Any, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def internal_error(request: Any, exc: Exception) -> Any:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server keeps running, see its log")


class BodyLimit:
    """ASGI middleware: refuse a body over ``limit`` bytes with 413, by its Content-Length before
    reading anything, or (chunked bodies) as soon as the bytes read pass the limit."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    def _message(self) -> str:
        return f"request body too large: expected at most {self.limit / 2**20:g} MB (--max-body-mb)"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            response = _error(413, self._message())
            response.headers["connection"] = "close"  # the unread body must not be taken for a request
            return await response(scope, receive, send)
        seen = [0]

        async def counted() -> dict:
            message = await receive()
            seen[0] += len(message.get("body", b""))
            if seen[0] > self.limit:
                raise InputError(self._message(), status=413)
            return message

        await self.app(scope, counted, send)


class Observe:
    """ASGI middleware: request counter and latency by endpoint (route template), and one JSON
    log line per request."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._record(scope, status[0], time.perf_counter() - start)

    def _record(self, scope: dict, status: int, seconds: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "other"
        self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.metrics.latency.labels(endpoint=endpoint).observe(seconds)
        if log.isEnabledFor(logging.INFO):
            client = scope.get("client") or ("", 0)
            log.info(json.dumps({"ts": round(time.time(), 3), "method": scope["method"], "path": scope["path"],
                                 "endpoint": endpoint, "status": status, "ms": round(seconds * 1000, 2),
                                 "rows": scope.get("state", {}).get("rows"), "client": client[0]}))


def create_app(model: ServedModel, runtime: Runtime, options: ServeOptions) -> Any:
    from fastapi import FastAPI

    state = build_state(model, runtime, options)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        state.batcher.start()
        yield
        await state.batcher.stop()

    app = FastAPI(title="gaitrun serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.serve = state
    add_routes(app, state)
    add_error_handlers(app)
    app.add_middleware(BodyLimit, limit=options.max_body)
    app.add_middleware(Observe, metrics=state.metrics)  # added last: outermost, sees every answer
    return app
