"""Connecting a sweep's driver to Ray: a new local Ray (``address: null``), or an existing
cluster (``"auto"``, ``host:port`` or ``$RAY_ADDRESS``) with Ray 2.60's token authentication.

For an explicit ``host:port`` Ray's driver does not turn token mode on by itself, and a
rejected token only shows as minutes of ``InvalidAuthToken`` retries: here token mode is turned
on when a token is available (``RAY_AUTH_MODE`` unset), and one gRPC call to the cluster's GCS
checks first that it answers and accepts the token, so either failure is one line.
Ray is imported only inside functions."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError

PROBE_TIMEOUT_S = 10.0
AUTH_HELP = ("give the driver the cluster's token with RAY_AUTH_TOKEN_PATH=<file>, RAY_AUTH_TOKEN or "
             "~/.ray/auth_token (the head's is printed by 'ray get-auth-token' on the head node)")


def no_cluster(target: str, why: str) -> UsageError:
    return UsageError(f"cannot connect to the Ray cluster at '{target}' ({why}); start it with "
                      "'ray start --head' or set search.address: null for a local Ray")


def host_port(target: str) -> tuple[str, int] | None:
    """``(host, port)`` of an explicit ``host:port``; None for local, auto and ray:// addresses."""
    host, sep, port = target.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or "://" in target:
        return None
    return host, int(port)


def auth_token() -> str | None:
    """The token the driver would send, from Ray's sources in Ray's order (RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token), or None. An unreadable RAY_AUTH_TOKEN_PATH is an error."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    given = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(given) if given else Path.home() / ".ray" / "auth_token"
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        if not given:
            return None
        raise UsageError(f"RAY_AUTH_TOKEN_PATH={given}: cannot read the Ray token "
                         f"({exc.strerror or exc}); point it at the cluster's token file") from exc
    token = lines[0].strip() if lines else ""
    if given and not token:
        raise UsageError(f"RAY_AUTH_TOKEN_PATH={given}: the file is empty; point it at the cluster's token file")
    return token or None


def _probe_gcs(target: str, host: str, port: int, token: str | None) -> None:
    """One call to the GCS: it must answer, and accept our token if it checks tokens."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), metadata=metadata, timeout=PROBE_TIMEOUT_S)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                sent = ("the token given was rejected" if token else "no token was sent"
                        + (" (RAY_AUTH_MODE is not 'token')" if "RAY_AUTH_MODE" in os.environ else " (none found)"))
                raise UsageError(f"authentication failed at the Ray cluster at '{target}': {sent}; "
                                 f"{AUTH_HELP}") from exc
            raise no_cluster(target, f"its GCS did not answer: {exc.code().name}") from exc


def _enable_token_mode() -> None:
    """RAY_AUTH_MODE=token for this process and its children, as Ray 2.60 needs with an explicit
    address; Ray's own helper also refreshes its configuration, read once per process."""
    from ray._private.authentication.authentication_token_setup import _enable_token_auth

    _enable_token_auth()


def check_cluster(target: str) -> None:
    """An explicit ``host:port`` must listen, answer and accept our token: fail at once
    (Ray would retry for minutes). Turns Ray's token mode on when a token is available."""
    where = host_port(target)
    if where is None:
        return  # "local", "auto" (Ray finds the cluster and its token itself) or ray://
    try:
        socket.create_connection(where, timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise no_cluster(target, exc.strerror or str(exc)) from exc
    token = auth_token()
    if token is not None and "RAY_AUTH_MODE" not in os.environ:
        _enable_token_mode()
    _probe_gcs(target, *where, token if os.environ.get("RAY_AUTH_MODE") == "token" else None)


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[str]:
    """Connect to ``address`` (else $RAY_ADDRESS, else a new local Ray) for the block."""
    import ray

    target = address or os.environ.get("RAY_ADDRESS") or "local"
    check_cluster(target)
    local = {"include_dashboard": False} if target == "local" else {}
    try:
        ray.init(address=target, log_to_driver=False, logging_level=logging.WARNING, **local)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise no_cluster(target, str(exc)) from exc
    try:
        yield target
    finally:
        ray.shutdown()
