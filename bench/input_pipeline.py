"""Input pipeline throughput: gaitrun's tf.data pipeline over the clip store against a
single-worker ``keras.utils.PyDataset`` in the style of the seed projects (reads the PNGs with
OpenCV and preprocesses in NumPy for every batch), on the same on-disk CASIA-B-layout data,
same clip length, layout and batch size, measured in one run.

Reports samples/s for the first epoch (gaitrun: decoding into the store included) and for a
cached epoch. Target: >= 4x on the cached epoch on a 2-core machine.

    python bench/input_pipeline.py [--subjects 8] [--frames 25] [--batch 16]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _dataset(root: Path, subjects: int) -> list:
    from gaitrun.data.synthetic import generate
    from gaitrun.plugins.datasets import casia_b

    if not (root / "001").is_dir():
        generate(root, subjects=subjects, views=[0, 90], walks={"nm": 6, "bg": 2, "cl": 2}, frames=30,
                 size=(64, 64), seed=0, workers=2)
    return casia_b.scan(casia_b.Params(root=str(root)), cache_dir=root, seed=0)


def baseline(samples: list, *, frames: int, batch: int, size: tuple[int, int]) -> tuple[float, float]:
    """Seconds for two epochs of a seed-style PyDataset (decode + preprocess every time)."""
    import cv2
    import keras
    import numpy as np

    from gaitrun.data.preprocess import crop_silhouette

    labels = {s: i for i, s in enumerate(sorted({x.label for x in samples}))}

    class Sequences(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(0)

        def __len__(self) -> int:
            return math.ceil(len(samples) / batch)

        def __getitem__(self, i: int):
            xs, ys = [], []
            for s in samples[i * batch:(i + 1) * batch]:
                files = sorted(Path(s.path).glob("*.png"))
                start = int(self.rng.integers(0, max(1, len(files) - frames + 1)))
                clip = [crop_silhouette(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), size)[0]
                        for f in files[start:start + frames]]
                xs.append(np.stack(clip)[..., None])
                ys.append(labels[s.label])
            return np.stack(xs).astype("float32"), np.asarray(ys)

    ds = Sequences()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def gaitrun_pipeline(samples: list, *, frames: int, batch: int, size: tuple[int, int]) -> tuple[float, float]:
    """Seconds for the first epoch (store build included) and a cached epoch."""
    import numpy as np

    from gaitrun.data.pipeline import train_dataset
    from gaitrun.data.store import build_store
    from gaitrun.plugins.datasets import casia_b
    from gaitrun.recipe.sections import Clip, DataBase

    class Data(DataBase):
        adapter: str = "casia_b"
        params: casia_b.Params

    data = Data(params=casia_b.Params(root=str(Path(samples[0].path).parents[2])), modality="silhouette",
                clip=Clip(frames=frames, size=size), cache="memory")
    steps = math.ceil(len(samples) / batch)
    start = time.perf_counter()
    store = build_store(samples, casia_b.load, data, cache_dir=Path(tempfile.mkdtemp()))
    labels = np.arange(len(samples)) % 7
    ds = iter(train_dataset(store, np.arange(len(samples)), labels, kind="frame_set", frames=frames,
                            batch_size=batch, seed=0))
    for _ in range(steps):
        next(ds)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        next(ds)
    return first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "gaitrun-bench-casia")
    args = parser.parse_args()
    samples = _dataset(args.data, args.subjects)
    size = (64, 44)
    n = len(samples)
    b_first, b_cached = baseline(samples, frames=args.frames, batch=args.batch, size=size)
    g_first, g_cached = gaitrun_pipeline(samples, frames=args.frames, batch=args.batch, size=size)
    print(f"{n} sequences, clips of {args.frames} silhouettes {size}, batch {args.batch}, {os.cpu_count()} cores")
    print(f"{'':26s}{'first epoch':>14s}{'cached epoch':>14s}  (samples/s)")
    print(f"{'PyDataset (1 worker)':26s}{n / b_first:14.1f}{n / b_cached:14.1f}")
    print(f"{'gaitrun tf.data':26s}{n / g_first:14.1f}{n / g_cached:14.1f}")
    print(f"ratio first epoch {b_first / g_first:.2f}x, cached epoch {b_cached / g_cached:.2f}x (target >= 4x)")


if __name__ == "__main__":
    main()
