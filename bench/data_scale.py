"""Data at scale: data-stage wall time, peak memory of the whole process tree, store size, and
epoch throughput reading windows from the store on disk against the store in RAM
(``data.cache: memory``), on CASIA-B-layout synthetic sets.

Each measurement runs in a fresh child process (``--child``) with an empty cache folder: the
data stage of a ``casia_b`` recipe (scan, decode, preprocess, write the store; the data set
itself is generated beforehand and not timed), then a gaitset model (TensorFlow and the model
count in the memory figures) trained for ``--steps`` batches after a warm-up, and the input
pipeline alone for as many batches. The parent samples the child's process tree (decoding
workers included) every 0.5 s: peak RSS summed over the tree, and peak PSS (proportional set
size: pages shared between the forked workers and their parent counted once; RSS counts them
in every process). Figures come with the CPU, its VNNI flags and the load average.

``--compare`` adds a child that reads the same store from disk and, read into RAM, from
memory, alternating ``--rounds`` times in one process: training windows/s and input-pipeline
windows/s (no model) of each, and their ratio. ``--recipe FILE`` does the same on a recipe's
own data, model, augmentations and batch size, e.g. the main job's cnn3d on optical flow.

    python bench/data_scale.py --root /data/s20f30 [--root /data/s124f30 ...] [--memory-too]
    python bench/data_scale.py --root /data/s20f30 --compare-only --recipe recipes/3dcnn_prune40.yaml \
        --data-cache /data/cache                                              # disk vs RAM
    python bench/data_scale.py --generate /data/s20f30 --subjects 20 --frames 30   # make one set
    python bench/data_scale.py --profile /data/s20f30 --samples 200               # where time goes

``--root`` may be given several times (one table row per root and cache mode).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VIEWS = [0, 18, 36, 54, 72, 90, 108, 126, 144, 162, 180]
RECIPE = """\
name: data_scale
seed: 0
data:
  adapter: casia_b
  params: {{root: {root}}}
  modality: silhouette
  clip: {{frames: {frames}, size: [64, 44]}}
  cache: {cache}
  cache_dir: {cache_dir}
model: {{arch: gaitset, params: {{width: {width}}}}}
train: {{loss: {{name: triplet_batch_all}}, batch_size: {batch}, epochs: 1, tensorboard: false}}
"""


def _context(args: argparse.Namespace, cache_dir: Path) -> Any:
    """The run context of the child's recipe: the CASIA-B gaitset recipe on ``--child`` ROOT,
    or the recipe file ``--child`` names (``--recipe``), its data cached in ``cache_dir``."""
    from gaitrun.callbacks import CallbackList
    from gaitrun.recipe import load_recipe
    from gaitrun.registry import registries
    from gaitrun.runfolder import RunFolder
    from gaitrun.stages import RunContext

    if args.child.endswith((".yaml", ".yml")):
        recipe, sets = Path(args.child), [f"data.cache={args.cache}", f"data.cache_dir={cache_dir}",
                                          "train.tensorboard=false"]
    else:
        text = RECIPE.format(root=args.child, frames=args.frames, cache=args.cache, cache_dir=cache_dir,
                             width=args.width, batch=args.batch)
        recipe, sets = cache_dir / "recipe.yaml", []
        recipe.write_text(text)
    loaded = load_recipe(recipe, sets)
    folder = RunFolder.create(loaded, ["data"], artifacts=Path(args.cache_dir) / "artifacts")
    return RunContext(loaded=loaded, folder=folder, regs=registries(), callbacks=CallbackList())


def _rate(batches: Any, n: int, batch: int) -> tuple[float, float]:
    """Windows per second over ``n`` batches of an iterator (after one warm-up batch), and per
    CPU second of this process (all its threads)."""
    next(batches)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        next(batches)
    return n * batch / (time.perf_counter() - start), n * batch / (time.process_time() - cpu)


def _trainer(ctx: Any, prep: Any) -> tuple[Any, Any]:
    """The recipe's model compiled for its loss and optimizer, and ``store -> training dataset``
    (the recipe's augmentations, windows and batch size; every sample a training sample)."""
    import keras
    import numpy as np

    from gaitrun.data.pipeline import train_dataset
    from gaitrun.outputs import declared_outputs
    from gaitrun.train import setup
    from gaitrun.train.parts import augmenters

    recipe, train = ctx.recipe, ctx.recipe.train
    keras.utils.set_random_seed(0)
    model = ctx.regs["architectures"].get(recipe.model.arch).impl("build")(
        input_shape=prep.input_shape, num_classes=len(prep.class_names), params=recipe.model.params)
    train_model, loss, label_of = setup.training_model(model, train.loss, declared_outputs(ctx))
    train_model.compile(optimizer=setup.make_optimizer(train.optimizer.name, train.optimizer.lr, train.optimizer),
                        loss=loss, loss_weights=setup.loss_weights(train.loss))

    def dataset(store: Any) -> Any:
        return train_dataset(store, np.arange(len(prep.samples)), prep.labels, kind=prep.kind,
                             frames=recipe.data.clip.frames, batch_size=train.batch_size, seed=recipe.seed,
                             augmenters=augmenters(ctx), pad=recipe.data.clip.pad, label_of=label_of)

    return train_model, dataset


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement: data stage, then training and pipeline throughput; with ``--compare``,
    rounds alternating the store on disk and the same store read into RAM."""
    from dataclasses import replace

    import numpy as np

    from gaitrun.stages import data as data_stage

    ctx = _context(args, Path(args.data_cache or args.cache_dir))
    start = time.perf_counter()
    data_stage.run(ctx)
    data_s = time.perf_counter() - start
    prep = data_stage.prepared(ctx)
    train_model, dataset = _trainer(ctx, prep)
    batch, store = ctx.recipe.train.batch_size, prep.store
    ds = dataset(store)
    train_model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)  # tracing
    result = {"model": ctx.recipe.model.arch, "modality": ctx.recipe.data.modality, "batch": batch,
              "samples": len(prep.samples), "frames": int(store.lengths.sum()), "data_s": data_s,
              "store_bytes": int(store.lengths.sum()) * int(np.prod(store.frames.shape[1:])) * store.frames.itemsize,
              "skipped": len(store.skipped)}
    if not args.compare:
        return {**result, **_throughput(train_model, ds, args, batch)}
    ram_ds = dataset(replace(store, frames=np.asarray(store.frames), folder=None))
    train_model.fit(ram_ds, steps_per_epoch=3, epochs=1, verbose=0)
    rounds = [(_throughput(train_model, ds, args, batch), _throughput(train_model, ram_ds, args, batch))
              for _ in range(args.rounds)]
    return {**result, **rounds[0][0], "compare": [{"disk": d, "memory": m} for d, m in rounds]}


def _throughput(model: Any, ds: Any, args: argparse.Namespace, batch: int) -> dict[str, float]:
    """Training windows/s over ``--steps`` batches, and the input pipeline's alone; each also per
    CPU second of this process (``_cpu``: less sensitive to other jobs on a shared machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
    train = args.steps * batch / (time.perf_counter() - start), args.steps * batch / (time.process_time() - cpu)
    pipeline = _rate(iter(ds), args.pipeline_batches, batch)
    return {"train_samples_s": train[0], "train_samples_cpu_s": train[1],
            "pipeline_samples_s": pipeline[0], "pipeline_samples_cpu_s": pipeline[1]}


def _tree_memory(proc: Any) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over ``proc`` and its descendants."""
    import psutil

    rss = pss = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
    return rss, pss


def measure(root: Path, cache: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one child on ``root`` (a data set or a recipe file) with ``cache``; its result plus
    peak tree RSS/PSS."""
    import psutil

    cache_dir = Path(tempfile.mkdtemp(prefix="data_scale_", dir=args.work))
    compare = cache == "compare"
    cmd = [sys.executable, __file__, "--child", str(root), "--cache", "disk" if compare else cache,
           "--cache-dir", str(cache_dir), *(["--compare"] if compare else []),
           "--frames", str(args.frames), "--batch", str(args.batch), "--steps", str(args.steps),
           "--pipeline-batches", str(args.pipeline_batches), "--width", str(args.width), "--rounds", str(args.rounds),
           *(["--data-cache", str(args.data_cache)] if args.data_cache else [])]
    out = cache_dir / "result.json"
    peak_rss = peak_pss = 0
    with open(out, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            rss, pss = _tree_memory(watched)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.5)
    try:
        if proc.returncode != 0:
            raise SystemExit(f"child failed ({proc.returncode}) on {root} with cache {cache}")
        result = json.loads(out.read_text().strip().splitlines()[-1])
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return {"root": str(root), "cache": cache, "peak_rss": peak_rss, "peak_pss": peak_pss, **result}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    flags = Path("/proc/cpuinfo").read_text()
    vnni = [f for f in ("avx512_vnni", "avx_vnni") if f" {f}" in flags]
    return f"{model}, {os.cpu_count()} cores, vnni: {', '.join(vnni) or 'none'}, load {os.getloadavg()}"


def print_ratios(rows: list[dict[str, Any]]) -> None:
    """Disk / memory throughput per alternating round, from the ``compare`` children: windows
    per wall second and per CPU second of the process."""
    import statistics

    for r in (r for r in rows if "compare" in r):
        print(f"{Path(r['root']).name}: {r['model']} on {r['modality']}, batch {r['batch']}, "
              f"{len(r['compare'])} rounds alternating disk and memory")
        for key, what in (("pipeline_samples", "input pipeline"), ("train_samples", "training")):
            for unit, suffix in (("s", "_s"), ("CPU s", "_cpu_s")):
                disk, ram = ([c[side][key + suffix] for c in r["compare"]] for side in ("disk", "memory"))
                ratios = [d / m for d, m in zip(disk, ram, strict=True)]
                print(f"  {what} windows/{unit}: disk {', '.join(f'{x:,.0f}' for x in disk)}; memory "
                      f"{', '.join(f'{x:,.0f}' for x in ram)}; disk/memory {', '.join(f'{x:.2f}' for x in ratios)}"
                      f" (median {statistics.median(ratios):.2f})")


def print_table(rows: list[dict[str, Any]]) -> None:
    gb = 1024 ** 3
    print("| set | cache | samples | frames | data stage s | frames/s | store GB | peak RSS GB | peak PSS GB "
          "| train samples/s | pipeline samples/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {Path(r['root']).name} | {r['cache']} | {r['samples']} | {r['frames']:,} | {r['data_s']:.1f} | "
              f"{r['frames'] / r['data_s']:,.0f} | {r['store_bytes'] / gb:.2f} | {r['peak_rss'] / gb:.2f} | "
              f"{r['peak_pss'] / gb:.2f} | {r['train_samples_s']:.1f} | {r['pipeline_samples_s']:.0f} |")


def profile(root: Path, samples: int, frames: int) -> None:
    """Where one decoding worker's time goes, on ``samples`` sequences (one process)."""
    import cProfile
    import pstats

    from gaitrun.data.decode import Job, clip_of
    from gaitrun.plugins.datasets import casia_b

    params = casia_b.Params(root=str(root))
    picked = casia_b.scan(params, cache_dir=root, seed=0)[:samples]
    job = Job(load=casia_b.load, params=params, modality="silhouette", size=(64, 44))
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    n = sum(len(clip_of(s, job)) for s in picked)
    prof.disable()
    print(f"{n} frames in {time.perf_counter() - start:.2f} s in one process")
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, action="append", default=[], help="a CASIA-B-layout data set")
    parser.add_argument("--memory-too", action="store_true", help="also measure data.cache: memory")
    parser.add_argument("--compare", action="store_true", help="also a child that alternates reading from "
                                                               "disk and from a RAM copy (throughput ratio)")
    parser.add_argument("--compare-only", action="store_true", help="only the --compare child for each --root")
    parser.add_argument("--recipe", type=Path, action="append", default=[],
                        help="a recipe whose data and model (e.g. recipes/3dcnn_prune40.yaml) get a --compare child")
    parser.add_argument("--rounds", type=int, default=3, help="alternating disk/memory rounds of --compare")
    parser.add_argument("--data-cache", type=Path, default=None,
                        help="keep the children's data cache here (generated data and stores are reused; the "
                             "data stage is then timed only the first time)")
    parser.add_argument("--frames", type=int, default=30, help="clip.frames (window length)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="timed training batches")
    parser.add_argument("--pipeline-batches", type=int, default=200)
    parser.add_argument("--width", type=float, default=0.5, help="gaitset width")
    parser.add_argument("--work", type=Path, default=None, help="folder for the temporary caches")
    parser.add_argument("--generate", type=Path, help="write a synthetic set here and exit")
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--profile", type=Path, help="profile decoding of this set and exit")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="disk", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    if args.generate:
        from gaitrun.data.synthetic import generate

        generate(args.generate, subjects=args.subjects, views=VIEWS, walks={"nm": 6, "bg": 2, "cl": 2},
                 frames=args.frames, size=(64, 64), seed=0, workers=os.cpu_count() or 1)
        return
    if args.profile:
        profile(args.profile, args.samples, args.frames)
        return
    print(machine())
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    scale = () if args.compare_only else ("disk", *(["memory"] if args.memory_too else []))
    compare = ["compare"] if args.compare or args.compare_only else []
    runs = [(root, cache) for root in args.root for cache in (*scale, *compare)]
    for root, cache in [*runs, *((recipe.resolve(), "compare") for recipe in args.recipe)]:
        rows.append(measure(root, cache, args))
        print(json.dumps(rows[-1]), flush=True)
    print(machine())
    print_table(rows)
    print_ratios(rows)


if __name__ == "__main__":
    main()
