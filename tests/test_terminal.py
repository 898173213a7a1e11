"""The user's terminal stays clean: TensorFlow's C++ start-up lines, Python warnings and TFLite's
interpreter messages go to the run folder's log.txt. Real runs of the gaitrun CLI in a subprocess;
the gait run also checks the saved evaluation embeddings against metrics.json."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# Lines that must never reach the terminal (each seen there before log.txt existed).
NOISE = ("absl", "oneDNN", "cuInit", "cuda", "np.object", "retracing", "TensorFlow Lite", "XNNPACK",
         "Warning", "WARNING", "I0000", "E0000", "W0000")
TF_CPP = re.compile(r"absl::InitializeLog|^[IWEF]\d{4} \d\d:\d\d:\d\d|^[IWEF]0000 ", re.M)

GAIT = """\
name: tiny_gait
seed: 1
data:
  adapter: synthetic_gait
  params: {subjects: 4, views: [0, 90], frames: 12, size: [32, 32]}
  modality: silhouette
  clip: {frames: 6, size: [16, 11]}
model: {arch: gaitset, params: {width: 0.125, bins: [1, 2, 4]}}
train: {epochs: 1, batch_size: 16, loss: {name: triplet_batch_all}}
cv: {scheme: gait_protocol, train_subjects: 2}
evaluate: {metrics: [], knn: {k: 1, protocol: casia_b}}
"""

DIGITS_TFLITE = """\
name: tiny_tflite
seed: 1
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: none, max_samples: 200}
model: {arch: simple_cnn, params: {width: 0.25}}
train: {epochs: 1, batch_size: 32}
cv: {scheme: holdout, fraction: 0.3, group_by: null}
deploy: {target: tflite, precision: fp32, batch_sizes: [1], bench: {warmup: 1, iterations: 2}}
"""


def _gaitrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "gaitrun"
    env = {"GAITRUN_CACHE": str(cwd / "cache"), "PATH": str(exe.parent), "HOME": str(cwd)}
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


def _assert_clean(text: str) -> None:
    found = [word for word in NOISE if word in text]
    assert not found, f"{found} reached the terminal:\n{text}"


def test_quiet_gait_run_prints_one_line_and_logs_the_rest(tmp_path):
    (tmp_path / "r.yaml").write_text(GAIT)
    res = _gaitrun("run", "r.yaml", "--artifacts", "art", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run = next((tmp_path / "art" / "tiny_gait").iterdir())
    assert res.stderr == ""
    assert res.stdout.splitlines() == [res.stdout.strip()]  # one line: the result
    assert res.stdout.startswith(f"run finished: {Path('art') / 'tiny_gait' / run.name} (rank1_nm ")
    log = (run / "log.txt").read_text()
    assert TF_CPP.search(log), log  # TensorFlow's start-up lines are kept, in the log
    _check_embeddings(run)


def _check_embeddings(run: Path) -> None:
    """folds/<k>/embeddings.npz holds what the headline rank-1 was computed on."""
    from gaitrun.evaluate.embeddings import rank1_from_file

    knn = json.loads((run / "folds" / "protocol" / "metrics.json").read_text())["knn"]
    path = run / "folds" / "protocol" / "embeddings.npz"
    again = rank1_from_file(path)
    assert again["rank1"] == knn["rank1"] and again["rank1_matrix"] == knn["rank1_matrix"]
    assert knn["sequence_embedding"].startswith("set pooling")
    assert set(knn["rank1_window"]) == {"nm", "bg", "cl"}
    with np.load(path, allow_pickle=False) as z:
        n = len(z["embedding"])
        assert n == knn["gallery"] + sum(knn["probes"].values()) == 2 * 10 * 2  # 2 test subjects x 10 walks x 2 views
        assert sorted(set(z["condition"].tolist())) == ["bg", "cl", "nm"] and sorted(set(z["view"])) == ["000", "090"]
        assert set(z["sequence"][z["role"] == "gallery"]) == {"nm-01", "nm-02", "nm-03", "nm-04"}
        strips = 2 * (1 + 2 + 4)  # two branches x bins, each strip a unit vector
        assert np.linalg.norm(z["embedding"], axis=1) == pytest.approx(np.full(n, np.sqrt(strips)), rel=1e-5)
        assert z["window_owner"].max() == n - 1 and len(z["window_embedding"]) == len(z["window_owner"])


def test_tflite_run_shows_progress_but_no_library_chatter(tmp_path):
    (tmp_path / "r.yaml").write_text(DIGITS_TFLITE)
    res = _gaitrun("run", "r.yaml", "--artifacts", "art", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "▶ train" in res.stderr and "▶ bench" in res.stderr and "samples/s" in res.stderr  # gaitrun's own output
    _assert_clean(res.stdout + res.stderr)
    run = next((tmp_path / "art" / "tiny_tflite").iterdir())
    log = (run / "log.txt").read_text()
    assert TF_CPP.search(log), log


def test_a_real_terminal_gets_live_progress_and_no_chatter(tmp_path):
    """Under a pseudo-terminal rich draws live progress bars, which by default would take over
    sys.stderr and pass library warnings through to the screen."""
    (tmp_path / "r.yaml").write_text(DIGITS_TFLITE.replace("deploy:", "# deploy:"))
    exe = Path(sys.executable).parent / "gaitrun"
    env = {"GAITRUN_CACHE": str(tmp_path / "cache"), "PATH": str(exe.parent), "HOME": str(tmp_path),
           "TERM": "xterm", "COLUMNS": "120"}
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(exe), "run", "r.yaml", "--artifacts", "art"], cwd=tmp_path, env=env,
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=600) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))  # no colours
    assert "▶ train" in screen and "run finished" in screen
    _assert_clean(screen)
    log = next((tmp_path / "art" / "tiny_tflite").iterdir()).joinpath("log.txt").read_text()
    assert TF_CPP.search(log), log
