"""A file system that fills up mid-run: ``gaitrun run`` must stop with one clear line and exit
code 2, leave earlier runs and the failed run's finished stages intact, leave no temporaries,
and ``gaitrun resume`` must finish the run once space is freed.

The full disk is real: a small tmpfs is mounted for the test (this needs root, as on the CI
machine). Where mounting is not permitted, the kernel's per-process file-size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored) makes the same writes fail with EFBIG instead of ENOSPC:
the same code path, a different errno.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RECIPE = """\
name: digits_disk
seed: 3
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, max_samples: 400}
model: {arch: simple_cnn, params: {width: 0.25}}
train: {epochs: 1, batch_size: 32, tensorboard: false}
cv: {scheme: stratified_kfold, folds: 2}
evaluate: {metrics: [accuracy], plots: false}
deploy: {target: onnx, precision: fp32, batch_sizes: [1], bench: {warmup: 1, iterations: 3}}
"""
FREE_KB = 300  # what is left on the disk when the second run starts
FSIZE_KB = 20  # without tmpfs: the largest file the second run may write


def gaitrun(*args: str, cwd: Path, fsize_limit: int | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "gaitrun"
    env = {**os.environ, "GAITRUN_CACHE": str(cwd / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def limit() -> None:  # runs in the child before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, preexec_fn=limit if fsize_limit else None)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """(folder, is_tmpfs): a 24 MB tmpfs if mounting is allowed, else a plain folder."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    try:
        yield disk, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave_kb: int) -> None:
    """Write a filler file so that only ``leave_kb`` KB stay free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / "filler", "wb") as fh:
        fh.truncate(0)
        chunk = b"\0" * (1 << 20)
        todo = free - leave_kb * 1024
        while todo > 0:
            todo -= fh.write(chunk[: min(len(chunk), todo)])


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def statuses(run: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in json.loads((run / "manifest.json").read_text())["stages"]}


def test_full_disk_fails_cleanly_and_resumes(small_disk):
    disk, is_tmpfs = small_disk
    (disk / "recipe.yaml").write_text(RECIPE)
    first = gaitrun("run", "recipe.yaml", "--artifacts", "art", "--quiet", cwd=disk)
    assert first.returncode == 0, first.stderr
    earlier = next((disk / "art" / "digits_disk").iterdir())
    before = digests(earlier)

    if is_tmpfs:
        fill(disk, FREE_KB)
        second = gaitrun("run", "recipe.yaml", "--artifacts", "art", "--quiet", cwd=disk)
    else:
        second = gaitrun("run", "recipe.yaml", "--artifacts", "art", "--quiet", cwd=disk,
                         fsize_limit=FSIZE_KB * 1024)

    assert second.returncode == 2, second.stderr
    assert "Traceback" not in second.stderr
    last = second.stderr.strip().splitlines()[-1]
    reason = "No space left on device" if is_tmpfs else "File too large"
    assert last.startswith("gaitrun: error: cannot write ") and reason in last, last
    assert digests(earlier) == before, "a full disk changed an earlier run"
    failed = next(p for p in (disk / "art" / "digits_disk").iterdir() if p != earlier)
    assert "failed" in statuses(failed).values()
    assert not [p for p in (disk / "art").rglob("*") if p.name.endswith(".tmp")], "temporaries left"

    (disk / "filler").unlink(missing_ok=True)
    resumed = gaitrun("resume", str(failed), "--quiet", cwd=disk)
    assert resumed.returncode == 0, resumed.stderr
    assert set(statuses(failed).values()) == {"done"}
    assert json.loads((failed / "metrics.json").read_text())
    assert (failed / "export" / "model.fp32.onnx").stat().st_size > 0
