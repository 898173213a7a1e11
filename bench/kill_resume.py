"""Kill -9 at random moments: how many killed runs resume to a complete, valid run folder.

Runs the digits recipe of ``tests/test_crash_resume.py`` (2 folds, 2 epochs, prune, ONNX
export, bench) ``--kills`` times, kills each run with SIGKILL after a seeded delay drawn
uniformly from [0, --run-seconds), resumes it with ``gaitrun resume`` and checks the folder
with the test's checks (every stage done, JSON parses, Keras models load with safe_mode, the
ONNX model loads in onnxruntime, no temporary files, finished stages not redone). The first
run is not killed: it measures the run's length (unless --run-seconds is given) and fills the
disk cache, which the killed runs share.

    python bench/kill_resume.py [--kills 20] [--seed 0] [--run-seconds S] [--workdir DIR]

Prints one line per kill (delay, stage hit, verdict) and "N/M survived". A run that ends before
its kill time (the first, uncut run also fills the cache, so later runs are shorter) is not
counted and another delay is drawn, until --kills runs were really killed. A kill before the
run folder exists (stage "startup") leaves nothing to resume and counts as survived.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_crash_resume import (  # noqa: E402
    frozen_files,
    kill,
    problems,
    resume,
    run_folder,
    stage_hit,
    start_run,
)

ENDED = "ended before the kill"


def measure(workdir: Path, cache: Path) -> float:
    """Seconds of one uninterrupted run (it also fills the disk cache)."""
    workdir.mkdir(parents=True)
    start = time.perf_counter()
    proc = start_run(workdir, cache)
    _, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"the uninterrupted run failed: {err}")
    return time.perf_counter() - start


def one_kill(workdir: Path, cache: Path, delay: float) -> tuple[str, list[str]]:
    """Run, kill after ``delay`` s, resume; returns (stage hit, problems)."""
    proc = start_run(workdir, cache)
    end = time.time() + delay
    while proc.poll() is None and time.time() < end:
        time.sleep(0.01)
    if proc.poll() is not None:
        return ENDED, [] if proc.returncode == 0 else [f"run failed: {proc.stderr.read()}"]
    kill(proc)
    run = run_folder(workdir)
    hit = stage_hit(run)
    if run is None:
        return hit, []  # killed before the run folder existed: nothing to resume
    frozen = frozen_files(run)
    code, err = resume(run, workdir, cache)
    return hit, ([f"resume exited {code}: {err.strip()[-300:]}"] if code != 0 else []) + problems(run, frozen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-seconds", type=float, default=None, help="length of a run (default: measure one)")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = ap.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="kill_resume."))
    cache = root / "cache"
    length = args.run_seconds or measure(root / "uncut", cache)
    print(f"run length {length:.1f} s; kills uniform in [0, {length:.1f}) s, seed {args.seed}", flush=True)
    rng = random.Random(args.seed)
    survived = killed = tries = 0
    while killed < args.kills and tries < 3 * args.kills:  # a run that ends first is drawn again
        delay = rng.uniform(0, length)
        workdir = root / f"kill{tries:02d}"
        workdir.mkdir(parents=True)
        tries += 1
        hit, found = one_kill(workdir, cache, delay)
        if hit == ENDED:
            print(f"try {tries:2d}  t={delay:6.1f} s  the run ended before its kill time (not counted)", flush=True)
            continue
        killed += 1
        survived += not found
        verdict = "ok" if not found else "BROKEN: " + "; ".join(found)
        print(f"kill {killed:2d}  t={delay:6.1f} s  stage={hit:<8} {verdict}", flush=True)
    print(f"{survived}/{killed} killed runs survived ({tries - killed} runs ended before their kill "
          f"time and were drawn again; folders in {root})")

if __name__ == "__main__":
    main()
