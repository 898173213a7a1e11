"""The clip store on disk: resumed after a real kill at the chunk it reached, read by several
processes at once, the same with one or two decoding processes, the same windows from disk as
from RAM, and short clips padded only when the recipe asks."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitrun.data import storefile
from gaitrun.data.pipeline import eval_dataset, train_dataset
from gaitrun.data.preprocess import clip_windows
from gaitrun.data.store import build_store, shard
from gaitrun.plugins.datasets import casia_b
from gaitrun.recipe.sections import Clip, DataBase


class Data(DataBase):
    adapter: str = "casia_b"
    params: casia_b.Params


def _tree(root: Path, subjects: int = 3, walks=("nm-01", "nm-02", "bg-01"), frames=(10,)) -> Path:
    for s in range(1, subjects + 1):
        for k, w in enumerate(walks):
            folder = root / f"{s:03d}" / w / "090"
            folder.mkdir(parents=True)
            for t in range(frames[(s + k) % len(frames)]):
                img = np.zeros((32, 24), np.uint8)
                img[4:28, 8:11 + (t + s) % 7] = 255
                img[4 + t % 5:12, 12:15] = 255
                cv2.imwrite(str(folder / f"{s:03d}-{w}-090-{t + 1:03d}.png"), img)
    return root


def _data(root: Path, **kw) -> Data:
    clip = kw.pop("clip", Clip(frames=4, size=(16, 12)))
    return Data(params=casia_b.Params(root=str(root)), modality="silhouette", clip=clip, **kw)


def _build(root: Path, cache_dir: Path, *, load=casia_b.load, workers: int = 1, **kw):
    data = _data(root, **kw)
    samples = casia_b.scan(data.params, cache_dir=cache_dir, seed=0)
    return samples, build_store(samples, load, data, cache_dir=cache_dir, workers=workers)


KILLED_BUILD = textwrap.dedent("""\
    import os, signal, sys
    from pathlib import Path
    from gaitrun.data import store
    from gaitrun.plugins.datasets import casia_b
    from gaitrun.recipe.sections import Clip, DataBase

    class Data(DataBase):
        adapter: str = "casia_b"
        params: casia_b.Params

    store.CHUNK_SAMPLES = 4
    calls = 0

    def load(sample, params):
        global calls
        calls += 1
        if calls == 7:  # chunk 1 (samples 4..7) is half written
            os.kill(os.getpid(), signal.SIGKILL)
        return casia_b.load(sample, params)

    data = Data(params=casia_b.Params(root=sys.argv[1]), modality="silhouette",
                clip=Clip(frames=4, size=(16, 12)), cache="disk")
    samples = casia_b.scan(data.params, cache_dir=Path(sys.argv[2]), seed=0)
    store.build_store(samples, load, data, cache_dir=Path(sys.argv[2]), workers=1)
    """)


def test_killed_build_resumes_at_the_chunk_it_reached(tmp_path):
    root, cache = _tree(tmp_path / "c"), tmp_path / "cache"
    killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(root), str(cache)], check=False)
    assert killed.returncode == -9
    (folder,) = (cache / "clips").iterdir()
    assert storefile.read_manifest(folder) is None  # incomplete: not readable as a store
    assert [p.name for p in sorted((folder / "chunks").iterdir())] == ["000000.json"]
    (folder / "chunks" / ".000001.json.x1.tmp").mkdir()  # as a kill during a chunk's atomic write leaves
    decoded = []

    def counting(sample, params):
        decoded.append(sample.path)
        return casia_b.load(sample, params)

    import gaitrun.data.store as store_module

    chunk, store_module.CHUNK_SAMPLES = store_module.CHUNK_SAMPLES, 4
    try:
        samples, resumed = _build(root, cache, load=counting, cache="disk")
    finally:
        store_module.CHUNK_SAMPLES = chunk
    assert decoded == [s.path for s in samples[4:]]  # the committed chunk was not decoded again
    _, fresh = _build(root, tmp_path / "fresh", cache="none")
    np.testing.assert_array_equal(np.asarray(resumed.frames), fresh.frames)
    np.testing.assert_array_equal(resumed.lengths, fresh.lengths)
    assert not (folder / storefile.LOCK).exists()


TWO_BUILDERS = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from gaitrun.data import store
    from gaitrun.plugins.datasets import casia_b
    from gaitrun.recipe.sections import Clip, DataBase

    class Data(DataBase):
        adapter: str = "casia_b"
        params: casia_b.Params

    def load(sample, params):
        with open(sys.argv[3], "a") as log:
            log.write(sample.path + "\\n")
        time.sleep(0.1)  # the two builds overlap
        return casia_b.load(sample, params)

    data = Data(params=casia_b.Params(root=sys.argv[1]), modality="silhouette",
                clip=Clip(frames=4, size=(16, 12)), cache="disk")
    samples = casia_b.scan(data.params, cache_dir=Path(sys.argv[2]), seed=0)
    built = store.build_store(samples, load, data, cache_dir=Path(sys.argv[2]), workers=1)
    print(float(built.frames.astype("float64").sum()))
    """)


def test_two_runs_building_one_store_decode_each_sample_once(tmp_path):
    root, cache, log = _tree(tmp_path / "c"), tmp_path / "cache", tmp_path / "decoded.log"
    runs = [subprocess.Popen([sys.executable, "-c", TWO_BUILDERS, str(root), str(cache), str(log)],
                             stdout=subprocess.PIPE, text=True) for _ in range(2)]
    sums = [run.communicate(timeout=300)[0].strip() for run in runs]
    assert [run.returncode for run in runs] == [0, 0] and sums[0] == sums[1]
    assert sorted(log.read_text().split()) == sorted(str(p) for p in root.glob("*/*/*"))  # once each
    (folder,) = (cache / "clips").iterdir()
    assert not (folder / storefile.LOCK).exists() and not list(folder.rglob(".*.tmp"))


def _read_clips(folder: str) -> list[float]:
    manifest = storefile.read_manifest(Path(folder))
    frames = storefile.open_frames(Path(folder), manifest)
    index, _ = storefile.read_index(Path(folder))
    return [float(frames[o: o + n].astype(np.float64).sum()) for o, n in zip(index["offsets"], index["lengths"],
                                                                             strict=True)]


def test_one_store_many_reader_processes(tmp_path):
    root = _tree(tmp_path / "c")
    _, store = _build(root, tmp_path / "cache", cache="disk", workers=2)
    expected = [float(store.clip(i).astype(np.float64).sum()) for i in range(len(store.kept))]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(_read_clips, [str(store.folder)] * 3)
    assert results == [expected] * 3 and len(expected) == 9


def test_parallel_decoding_gives_the_same_store(tmp_path):
    root = _tree(tmp_path / "c", frames=(10, 7, 12))
    _, one = _build(root, tmp_path / "a", cache="none", workers=1)
    _, two = _build(root, tmp_path / "b", cache="none", workers=2)
    np.testing.assert_array_equal(one.frames, two.frames)
    np.testing.assert_array_equal(one.offsets, two.offsets)
    assert one.lengths.tolist() == two.lengths.tolist() and sorted(set(one.lengths.tolist())) == [7, 10, 12]


def test_disk_windows_equal_memory_windows(tmp_path):
    root = _tree(tmp_path / "c", frames=(10, 7, 12))
    _, disk = _build(root, tmp_path / "cache", cache="disk")
    _, ram = _build(root, tmp_path / "cache", cache="memory")
    assert disk.folder is not None and ram.folder is None
    pos, labels = np.arange(9), np.arange(9) % 3
    for kind in ("frame_set", "image"):
        def batches(store, kind=kind):
            ds = train_dataset(store, pos, labels, kind=kind, frames=5, batch_size=4, seed=3)
            return [b[0].numpy() for b, _ in zip(ds, range(3), strict=False)]

        for a, b in zip(batches(disk), batches(ram), strict=True):
            np.testing.assert_array_equal(a, b)
        ev_disk, owners = eval_dataset(disk, pos, None, kind=kind, frames=5, stride=3, batch_size=64)
        ev_ram, _ = eval_dataset(ram, pos, None, kind=kind, frames=5, stride=3, batch_size=64)
        np.testing.assert_array_equal(next(iter(ev_disk)).numpy(), next(iter(ev_ram)).numpy())
        assert len(owners) == sum(len(clip_windows(int(n), 5, 3)) for n in disk.lengths)


@pytest.mark.parametrize("cache", ["disk", "memory"])
def test_short_clips_padded_as_asked(tmp_path, cache):
    root = _tree(tmp_path / "c", subjects=1, walks=("nm-01",), frames=(3,))
    _, store = _build(root, tmp_path / "cache", cache=cache)
    clip = store.clip(0).astype(np.float32)  # 3 frames, windows of 5

    def window(pad):
        ds, _ = eval_dataset(store, np.array([0]), None, kind="frame_set", frames=5, stride=5, batch_size=1, pad=pad)
        return next(iter(ds)).numpy()[0]

    np.testing.assert_array_equal(window("loop"), clip[[0, 1, 2, 0, 1]])
    np.testing.assert_array_equal(window("edge"), clip[[0, 1, 2, 2, 2]])
    np.testing.assert_array_equal(window("zero"), np.concatenate([clip, np.zeros_like(clip[:2])]))
    with pytest.raises(Exception, match="shorter than data.clip.frames"):
        window("error")
    ds = train_dataset(store, np.array([0]), np.array([0]), kind="frame_set", frames=5, batch_size=3, seed=0,
                       pad="edge")
    np.testing.assert_array_equal(next(iter(ds))[0].numpy(), np.stack([clip[[0, 1, 2, 2, 2]]] * 3))


def test_shards_are_disjoint_complete_and_seed_deterministic():
    positions = np.arange(100, 203)
    parts = [shard(positions, rank=r, world=4, seed=7) for r in range(4)]
    assert sorted(np.concatenate(parts).tolist()) == positions.tolist()
    assert {len(p) for p in parts} == {25, 26}
    assert all(np.array_equal(p, shard(positions, rank=r, world=4, seed=7)) for r, p in enumerate(parts))
    assert not np.array_equal(parts[0], shard(positions, rank=0, world=4, seed=8))
    with pytest.raises(ValueError, match="rank must be in 0..3"):
        shard(positions, rank=4, world=4, seed=7)
