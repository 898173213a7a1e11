"""The clip store and the tf.data pipeline: determinism, windows, balancing, over-sampling,
the disk cache, and the bad-sample policy on a CASIA-B tree with a truncated PNG and an
empty sequence folder."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitrun.data.pipeline import eval_dataset, oversampled, train_dataset
from gaitrun.data.store import ClipStore, build_store
from gaitrun.errors import DataError
from gaitrun.plugins.datasets import casia_b
from gaitrun.recipe.sections import Clip, DataBase


class Data(DataBase):
    adapter: str = "casia_b"
    params: casia_b.Params


def _walker(size=(32, 24), frames=10, shift=0) -> np.ndarray:
    out = np.zeros((frames, *size), np.uint8)
    for t in range(frames):  # a body whose outline changes from frame to frame
        w = 3 + (t + shift) % 7
        out[t, 4:28, 8:8 + w] = 255
        out[t, 4 + (t % 5):12, 8 + w:12 + w] = 255
    return out


def _tree(root: Path, subjects=3, walks=("nm-01", "nm-02", "bg-01")) -> Path:
    for s in range(1, subjects + 1):
        for w in walks:
            folder = root / f"{s:03d}" / w / "090"
            folder.mkdir(parents=True)
            for t, frame in enumerate(_walker(shift=s)):
                cv2.imwrite(str(folder / f"{s:03d}-{w}-090-{t + 1:03d}.png"), frame)
    return root


def _data(root: Path, **kw) -> Data:
    return Data(params=casia_b.Params(root=str(root)), modality="silhouette",
                clip=Clip(frames=4, size=(16, 12)), **kw)


def _store(root: Path, tmp: Path, **kw) -> tuple[list, ClipStore]:
    data = _data(root, **kw)
    samples = casia_b.scan(data.params, cache_dir=tmp, seed=0)
    return samples, build_store(samples, casia_b.load, data, cache_dir=tmp / "cache")


def _take(ds, n: int) -> list[np.ndarray]:
    it = iter(ds)
    return [next(it)[0].numpy() for _ in range(n)]


def test_store_concatenates_clips(tmp_path):
    samples, store = _store(_tree(tmp_path / "c"), tmp_path, cache="none")
    assert len(store.kept) == len(samples) == 9
    assert store.frames.dtype == np.float16 and store.frames.shape[1:] == (16, 12, 1)
    assert list(store.lengths) == [10] * 9 and store.offsets[3] == 30


def test_train_stream_is_deterministic_for_a_seed(tmp_path):
    _, store = _store(_tree(tmp_path / "c"), tmp_path, cache="none")
    pos, labels = np.arange(9), np.arange(9) % 3

    def stream(seed: int) -> list[np.ndarray]:
        return _take(train_dataset(store, pos, labels, kind="clip3d", frames=4, batch_size=4, seed=seed), 3)

    a, b, c = stream(1), stream(1), stream(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert a[0].shape == (4, 4, 16, 12, 1)


def test_pipelines_run_without_the_autotuning_thread(tmp_path):
    """Deleting an iterator whose autotuning thread ran for minutes waited for it (up to a minute
    at the end of every fit); the pipelines therefore do without it."""
    _, store = _store(_tree(tmp_path / "c"), tmp_path, cache="none")
    pos, labels = np.arange(9), np.arange(9) % 3
    train = train_dataset(store, pos, labels, kind="clip3d", frames=4, batch_size=4, seed=0)
    evaluation, _ = eval_dataset(store, pos, None, kind="clip3d", frames=4, stride=3, batch_size=4)
    for ds in (train, evaluation):
        assert ds.options().autotune.enabled is False


def test_eval_windows_cover_every_sample_in_order(tmp_path):
    _, store = _store(_tree(tmp_path / "c"), tmp_path, cache="none")
    ds, owners = eval_dataset(store, np.array([0, 4]), None, kind="clip3d", frames=4, stride=3, batch_size=16)
    x = next(iter(ds)).numpy()
    assert list(owners) == [0, 0, 0, 4, 4, 4]  # starts 0, 3, 6 of 10 frames
    np.testing.assert_array_equal(x[1], store.clip(0)[3:7].astype(np.float32))


def test_layouts_image_and_stack(tmp_path):
    _, store = _store(_tree(tmp_path / "c"), tmp_path, cache="none")
    ds, _ = eval_dataset(store, np.array([0]), None, kind="image", frames=4, stride=4, batch_size=4)
    gei = next(iter(ds)).numpy()[0]
    np.testing.assert_allclose(gei, store.clip(0)[0:4].astype(np.float32).mean(0), atol=1e-6)


def test_balanced_sampling_draws_groups_equally(tmp_path):
    _, store = _store(_tree(tmp_path / "c"), tmp_path, cache="none")
    pos = np.arange(9)
    groups = np.array(["a"] * 7 + ["b"] * 2)
    labels = np.where(groups == "a", 0, 1)
    ds = train_dataset(store, pos, labels, kind="clip3d", frames=4, batch_size=50, seed=0, groups=groups)
    y = next(iter(ds))[1].numpy()
    assert abs(np.mean(y == 1) - 0.5) < 0.2  # 2 of 9 samples, yet about half the draws


def test_oversampling_repeats_rare_classes():
    out = oversampled(np.arange(6), np.array([0, 0, 0, 0, 1, 1]))
    assert np.bincount(np.array([0, 0, 0, 0, 1, 1])[out]).tolist() == [4, 4]


def test_disk_cache_is_reused(tmp_path):
    root = _tree(tmp_path / "c")
    samples, first = _store(root, tmp_path, cache="disk")
    data = _data(root, cache="disk")

    def refuse(sample, params):
        raise AssertionError("decoded again instead of using the cache")

    again = build_store(samples, refuse, data, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(again.frames), np.asarray(first.frames))


def _break(root: Path) -> tuple[Path, Path]:
    bad_png = sorted((root / "002" / "nm-02" / "090").glob("*.png"))[3]
    bad_png.write_bytes(bad_png.read_bytes()[:20])  # truncated
    empty = root / "003" / "bg-01" / "090"
    for f in empty.glob("*.png"):
        f.unlink()
    return bad_png, empty


def test_bad_sample_error_names_the_file(tmp_path):
    root = _tree(tmp_path / "c")
    bad_png, empty = _break(root)
    with pytest.raises(DataError) as info:
        _store(root, tmp_path, cache="none")
    assert info.value.path in (str(bad_png), str(empty))
    assert "on_bad_sample: skip" in str(info.value)


def test_bad_samples_skipped_and_listed(tmp_path):
    root = _tree(tmp_path / "c")
    bad_png, empty = _break(root)
    samples, store = _store(root, tmp_path, cache="none", on_bad_sample="skip")
    by_sample = {s["path"]: s for s in store.skipped}
    assert set(by_sample) == {str(bad_png.parent), str(empty)}  # the sequences, not just the PNG
    frame = by_sample[str(bad_png.parent)]
    assert frame["file"] == str(bad_png) and "truncated" in frame["reason"]
    assert (frame["subject"], frame["sequence"], frame["view"]) == ("002", "nm-02", "090")
    assert "file" not in by_sample[str(empty)] and "no .png frames" in by_sample[str(empty)]["reason"]
    assert len(store.kept) == len(samples) - 2


def test_data_stage_writes_skipped_json(tmp_path, run_cli):
    root = _tree(tmp_path / "c")
    _break(root)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""\
name: bad_data
data: {{adapter: casia_b, params: {{root: {root}}}, modality: silhouette, clip: {{frames: 4, size: [16, 12]}},
        on_bad_sample: skip, cache: none}}
model: {{arch: gaitset, params: {{width: 0.125}}}}
train: {{loss: {{name: triplet_batch_all}}, epochs: 1}}
""")
    code, out, err = run_cli("data", "inspect", recipe, "--artifacts", tmp_path / "art", "--json")
    assert code == 0, err
    run = next((tmp_path / "art" / "bad_data").iterdir())
    assert json.loads((run / "data.json").read_text())["samples"] == 7
    assert (run / "plots" / "contact_sheet.png").stat().st_size > 1000
    listed = json.loads((run / "skipped.json").read_text())  # inspect reports them as the run does
    assert json.loads(out)["skipped_samples"] == listed and json.loads(out)["skipped"] == 2
    assert {Path(s["path"]).parts[-3:] for s in listed} == {("002", "nm-02", "090"), ("003", "bg-01", "090")}


def _short_recipe(tmp_path: Path, root: Path, extra: str) -> Path:
    recipe = tmp_path / "short.yaml"
    recipe.write_text(f"""\
name: short
data: {{adapter: casia_b, params: {{root: {root}}}, modality: silhouette, clip: {{frames: 8, size: [16, 12]{extra}}}
model: {{arch: gaitset, params: {{width: 0.125}}}}
train: {{loss: {{name: triplet_batch_all}}, epochs: 1}}
""")
    return recipe


def test_windows_longer_than_the_samples_are_an_error_unless_padding_is_asked(tmp_path, run_cli):
    root = _tree(tmp_path / "c")  # 10 frames per sequence, windows of 8
    short = root / "002" / "nm-02" / "090"
    for png in sorted(short.glob("*.png"))[6:]:
        png.unlink()  # 6 frames
    art = ("--artifacts", tmp_path / "art", "--json")
    code, out, err = run_cli("data", "inspect", _short_recipe(tmp_path, root, "}"), *art)
    err += out  # --json: the error is a JSON object on stdout
    assert code == 2 and f"{short}: has 6 frames after preprocessing, fewer than data.clip.frames (8)" in err
    assert "data.clip.pad" in err and "Traceback" not in err
    code, out, err = run_cli("data", "inspect", _short_recipe(tmp_path, root, "}, on_bad_sample: skip"), *art)
    assert code == 0, err
    assert [(s["path"], "fewer than data.clip.frames" in s["reason"]) for s in json.loads(out)["skipped_samples"]] \
        == [(str(short), True)]
    code, out, err = run_cli("data", "inspect", _short_recipe(tmp_path, root, ", pad: edge}"), *art)
    assert code == 0 and json.loads(out)["samples"] == 9 and json.loads(out)["skipped"] == 0, err


def _raw_store(folder: Path, lengths: list[int], frame_shape=(8, 6, 2)) -> tuple[ClipStore, ClipStore]:
    """A store of random float16 frames written in the on-disk format, opened from disk and in RAM."""
    from gaitrun.data import storefile
    from gaitrun.data.store import _open

    rng = np.random.default_rng(0)
    writer = storefile.StoreWriter(folder, dtype="float16")
    for i, n in enumerate(lengths):
        writer.add(i, rng.normal(size=(n, *frame_shape)).astype(np.float16))
    writer.commit(len(lengths))
    manifest = writer.finish({"modality": "optical_flow"})
    return _open(folder, manifest, in_memory=False), _open(folder, manifest, in_memory=True)


@pytest.mark.parametrize(("kind", "pad"), [("clip3d", "loop"), ("clip3d", "zero"), ("stack2d", "edge"),
                                           ("image", "error")])
def test_disk_store_gives_the_ram_windows_bit_for_bit(tmp_path, kind, pad):
    from gaitrun.data.pipeline import Augmenter
    from gaitrun.plugins.augmentations import flip, shift

    lengths = [9, 3, 12, 6, 20, 5] * 4 if pad != "error" else [9, 12, 6, 20] * 4
    disk, ram = _raw_store(tmp_path / "store", lengths)
    assert disk.folder is not None and ram.folder is None
    pos, labels = np.arange(len(lengths)), np.arange(len(lengths)) % 3
    augs = [Augmenter("shift", shift.apply, shift.Params(max_px=2)), Augmenter("flip", flip.apply, flip.Params())]
    train = [[b for b, _ in zip(train_dataset(s, pos, labels, kind=kind, frames=6, batch_size=5, seed=4, pad=pad,
                                              augmenters=augs, label_of=lambda y: (y, y)), range(6), strict=False)]
             for s in (disk, ram)]
    for (xd, (yd, _)), (xr, (yr, _)) in zip(*train, strict=True):
        np.testing.assert_array_equal(xd.numpy(), xr.numpy())
        np.testing.assert_array_equal(yd.numpy(), yr.numpy())
    evals = [eval_dataset(s, pos, labels, kind=kind, frames=6, stride=4, batch_size=7, pad=pad) for s in (disk, ram)]
    rows = [np.concatenate([x.numpy() for x, _ in ds]) for ds, _ in evals]
    np.testing.assert_array_equal(*rows)
    if kind == "clip3d":  # sample 1 has 3 frames: its window of 6 is padded as asked
        clip = ram.clip(1).astype(np.float32)
        expected = clip[[0, 1, 2, 0, 1, 2]] if pad == "loop" else np.concatenate([clip, np.zeros_like(clip)])
        np.testing.assert_array_equal(rows[0][list(evals[0][1]).index(1)], expected)


def test_a_store_file_cut_short_is_an_error_naming_it(tmp_path):
    disk, _ = _raw_store(tmp_path / "store", [10, 10])
    with open(tmp_path / "store" / "frames.bin", "r+b") as fh:
        fh.truncate(10 * 8 * 6 * 2 * 2 + 100)
    ds, _ = eval_dataset(disk, np.array([0, 1]), None, kind="clip3d", frames=10, stride=10, batch_size=2)
    with pytest.raises(Exception, match="frames.bin is shorter than its index"):
        next(iter(ds))
