"""A sweep on an existing two-node Ray cluster: runs ``.ci/ray_cluster_test.sh`` (two
``ray start`` nodes on this machine, a 4-trial digits sweep, trials on both nodes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "ray_cluster_test.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux setsid")
def test_sweep_runs_trials_on_both_nodes_of_a_cluster():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    res = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert "4 trials, 4 done; trials ran on 2 nodes" in res.stdout
