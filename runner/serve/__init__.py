"""``gaitrun serve RUN``: an HTTP inference and gait-identification service for a run's export.

Modules (FastAPI, uvicorn, onnxruntime and prometheus-client are imported only when serving):

- ``model``    what the run folder says about the deployed artifact (labels, shape, precision)
- ``runtime``  the artifact behind one ``run(x)``: ONNX Runtime or the TFLite interpreter
- ``inputs``   request bodies -> model inputs (tensors, or raw uploads via the training preprocessing)
- ``batcher``  dynamic batching of concurrent requests (Triton-style)
- ``gallery``  enrolled walks for identification, persisted atomically
- ``drift``    training input statistics (written at export) and PSI of recent inputs
- ``metrics``  Prometheus metrics; ``app`` the FastAPI routes, error handlers and request log
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

from ..errors import UsageError


def _check_port(host: str, port: int) -> None:
    """Refuse a port that is taken before loading anything (uvicorn would exit with a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port "
                             "or --host") from exc


def _logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("gaitrun.serve")
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def serve(run_folder: Path, *, host: str, port: int, threads: int, options: object, quiet: bool = False) -> int:
    """Load the run's export and serve it until interrupted."""
    import os

    import uvicorn

    from .app import create_app
    from .model import load_served_model
    from .runtime import load_runtime

    # OpenCV refuses images above this many pixels (its default, 2^30, lets a tiny PNG claim GBs)
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 26))
    _check_port(host, port)
    model = load_served_model(run_folder)
    runtime = load_runtime(model.artifact, threads)
    app = create_app(model, runtime, options)
    _logging(quiet)
    if not quiet:
        kind = "embeddings" if model.embedding else f"{len(model.labels)} classes"
        print(f"serving {model.run_id} ({model.target} {model.precision}, {kind}) on http://{host}:{port}",
              file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_keep_alive=30)
    return 0
