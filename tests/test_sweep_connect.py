"""A sweep's driver and its Ray cluster (``gaitrun.sweep.cluster``): a cluster that is not
there, or that refuses the driver's token, is one line on stderr and exit 2, and the sweep
folder says ``failed`` with the reason instead of ``running`` with a dead pid. The token cases
run against a real Ray head with token authentication, on 127.0.0.1 in a private network
namespace (``.ci/ray_auth_test.sh``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_sweep import RECIPE  # any sweep recipe: these sweeps stop before their first trial

from gaitrun.errors import UsageError
from gaitrun.sweep.cluster import auth_token

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep_manifest(artifacts: Path) -> dict:
    (manifest,) = artifacts.glob("*/*-sweep/sweep.json")
    return json.loads(manifest.read_text())


def _assert_failed_in_one_line(rc: int, stderr: str, artifacts: Path, says: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and says in lines[0], stderr
    assert "Traceback" not in stderr and "InvalidAuthToken" not in stderr
    manifest = _sweep_manifest(artifacts)
    assert manifest["status"] == "failed" and says in manifest["reason"], manifest
    assert manifest["runs"][-1]["status"] == "failed" and manifest["runs"][-1]["reason"] == manifest["reason"]


def test_sweep_where_no_cluster_listens_fails_at_once_and_says_so_in_its_folder(tmp_path: Path):
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    port = _free_port()  # closed again: nothing listens there
    res = subprocess.run([str(Path(sys.executable).parent / "gaitrun"), "run", str(tmp_path / "recipe.yaml"),
                          "--artifacts", str(tmp_path / "artifacts"), "--set", f"search.address=127.0.0.1:{port}"],
                         env=_env(), capture_output=True, text=True, timeout=180)
    _assert_failed_in_one_line(res.returncode, res.stderr, tmp_path / "artifacts",
                               f"cannot connect to the Ray cluster at '127.0.0.1:{port}'")
    assert "refused" in _sweep_manifest(tmp_path / "artifacts")["reason"]


def test_token_sources_follow_rays_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert auth_token() is None  # no ~/.ray/auth_token
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text(" home-token \nsecond line\n")
    assert auth_token() == "home-token"
    (tmp_path / "given").write_text("path-token\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "given"))
    assert auth_token() == "path-token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "env-token")
    assert auth_token() == "env-token"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    (tmp_path / "given").write_text("")
    with pytest.raises(UsageError, match="RAY_AUTH_TOKEN_PATH=.*the file is empty"):
        auth_token()
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="RAY_AUTH_TOKEN_PATH=.*cannot read the Ray token"):
        auth_token()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("setsid") is None,
                    reason="needs util-linux unshare and setsid (a private network namespace for Ray)")
def test_driver_against_a_head_that_checks_tokens(tmp_path: Path):
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    res = subprocess.run(["bash", str(REPO / ".ci" / "ray_auth_test.sh"), str(tmp_path)], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=900)
    if res.returncode == 77:
        pytest.skip(res.stderr.strip())
    assert res.returncode == 0 and "cases done" in res.stdout, (res.stdout + res.stderr)[-4000:]
    assert "private network namespace: only interface lo" in res.stdout
    assert "listening sockets, all on loopback" in res.stdout

    def case(name: str) -> tuple[int, str, str]:
        return (int((tmp_path / f"{name}.rc").read_text()), (tmp_path / f"{name}.out").read_text(),
                (tmp_path / f"{name}.err").read_text())

    rc, _, err = case("wrong")
    _assert_failed_in_one_line(rc, err, tmp_path / "artifacts" / "wrong", "the token given was rejected")
    assert err.startswith("authentication failed at the Ray cluster at '127.0.0.1:")
    rc, _, err = case("none")
    _assert_failed_in_one_line(rc, err, tmp_path / "artifacts" / "none", "no token was sent")
    rc, out, err = case("right")
    assert rc == 0 and out.strip() == "connected: 1 CPU", out + err
    assert "InvalidAuthToken" not in err and "Unauthenticated" not in err, err
