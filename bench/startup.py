"""Start-up cost of recipe validation.

Median wall time of ``gaitrun validate recipes/3dcnn_prune40.yaml`` against the floor of any
pydantic + ruamel.yaml program (``python -c "import pydantic, ruamel.yaml"``), measured
alternately in one run so machine noise hits both alike. Target: ratio <= 1.5, < 0.5 s.

    python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--recipe", default="recipes/3dcnn_prune40.yaml")
    args = parser.parse_args()
    exe = shutil.which("gaitrun") or str(Path(sys.executable).parent / "gaitrun")
    validate = [exe, "validate", args.recipe]
    floor = [sys.executable, "-c", "import pydantic, ruamel.yaml"]
    _time(validate), _time(floor)  # warm the file cache
    a, b = [], []
    for _ in range(args.runs):
        a.append(_time(validate))
        b.append(_time(floor))
    va, vb = statistics.median(a), statistics.median(b)
    print(f"gaitrun validate {args.recipe}: median {va * 1000:.0f} ms over {args.runs} runs")
    print(f"python -c 'import pydantic, ruamel.yaml': median {vb * 1000:.0f} ms")
    print(f"ratio {va / vb:.2f} (target <= 1.5); absolute {'OK' if va < 0.5 else 'over'} 0.5 s")


if __name__ == "__main__":
    main()
