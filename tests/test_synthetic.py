"""The synthetic gait generator (gaitrun.data.synthetic) and the synthetic_gait dataset plugin."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitrun.data import synthetic
from gaitrun.data.records import Sample
from gaitrun.errors import DataError
from gaitrun.plugins.datasets import synthetic_gait
from gaitrun.registry import Registry

SUBJECTS, VIEWS, WALKS, FRAMES, SIZE = 6, [0, 90], {"nm": 2, "bg": 1, "cl": 1}, 16, (32, 32)


def _make(out: Path, *, seed: int = 3, workers: int = 2, **changes) -> Path:
    params = {"subjects": SUBJECTS, "views": VIEWS, "walks": WALKS, "frames": FRAMES, "size": SIZE,
              "seed": seed, **changes}
    return synthetic.generate(out, workers=workers, **params)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make(tmp_path_factory.mktemp("synthetic") / "data")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def _gei(root: Path, subject: int, walk: str, view: int) -> np.ndarray:
    """Gait energy image: the mean silhouette of a sequence, in [0, 1]."""
    pngs = sorted((root / f"{subject:03d}" / walk / f"{view:03d}").glob("*.png"))
    return np.mean([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) / 255.0 for p in pngs], axis=0)


def test_layout_and_file_names_follow_casia_b(dataset: Path) -> None:
    walks = ["nm-01", "nm-02", "bg-01", "cl-01"]
    expected = {f"{s:03d}/{w}/{v:03d}" for s in range(1, SUBJECTS + 1) for w in walks for v in VIEWS}
    folders = {str(p.relative_to(dataset)) for p in dataset.glob("*/*/*") if p.is_dir()}
    assert folders == expected
    names = sorted(p.name for p in (dataset / "002" / "bg-01" / "090").iterdir())
    assert names == [f"002-bg-01-090-{i:03d}.png" for i in range(1, FRAMES + 1)]
    frame = cv2.imread(str(dataset / "002" / "bg-01" / "090" / names[0]), cv2.IMREAD_UNCHANGED)
    assert frame.shape == SIZE and frame.dtype == np.uint8 and set(np.unique(frame)) == {0, 255}
    # the body fills most of the frame height
    rows = np.flatnonzero(frame.any(axis=1))
    assert rows[-1] - rows[0] + 1 >= 0.7 * SIZE[0]
    manifest = json.loads((dataset / synthetic.MANIFEST).read_text())
    assert manifest["version"] == synthetic.VERSION and manifest["params"]["seed"] == 3
    assert not list(dataset.parent.glob("*.tmp-*")), "the temporary folder is left behind"


def test_same_seed_gives_identical_bytes_and_another_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = _make(tmp_path / "again", workers=1)  # serial: the same bytes as two workers
    assert _files(again) == _files(dataset)
    other = _files(_make(tmp_path / "other", seed=4, subjects=2))
    assert sum(other[name] != data for name, data in _files(dataset).items() if name in other) > 0.9 * len(other)


def test_bag_and_coat_change_the_silhouette(dataset: Path) -> None:
    def area(walk: str) -> float:
        return float(np.mean([_gei(dataset, s, walk, v).sum() for s in range(1, SUBJECTS + 1) for v in VIEWS]))

    assert area("cl-01") > 1.05 * area("nm-01")
    assert area("bg-01") > 1.02 * area("nm-01")


@pytest.mark.parametrize("extra", [{"bag": ("backpack", 1, 1.0)}, {"bag": ("shoulder", -1, 1.0)},
                                   {"bag": ("hand", 1, 1.0)}, {"coat": (0.3, 1.2)}])
def test_each_bag_and_the_coat_show_in_every_view(extra: dict) -> None:
    """Same body and pose, noise-free: the bag or coat adds to the outline in every view."""
    plain = synthetic.walk_setup(1, 1, "nm", 1)
    carrying = dataclasses.replace(plain, **extra)
    areas = []
    for view in (0, 90, 180):
        camera = synthetic.Camera.at(view, 110.0, (64.0, 124.0))
        for phase in (0.1, 0.6):
            without = synthetic.render(synthetic.body(plain, phase), camera, (128, 128)) > 0
            with_it = synthetic.render(synthetic.body(carrying, phase), camera, (128, 128)) > 0
            assert (with_it & ~without).sum() >= 10, (view, phase)
            areas.append((with_it.sum(), without.sum()))
    assert sum(a for a, _ in areas) > 1.01 * sum(b for _, b in areas)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """L1 distance of two GEIs, tolerant to a shift of one pixel."""
    return min(float(np.abs(np.roll(a, (dy, dx), (0, 1)) - b).sum()) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_identity_is_in_the_data(dataset: Path) -> None:
    """Two normal walks of one subject look more alike than walks of two subjects."""
    people = range(1, SUBJECTS + 1)
    gei = {(s, w, v): _gei(dataset, s, w, v) for s in people for w in ("nm-01", "nm-02") for v in VIEWS}
    same = [_distance(gei[s, "nm-02", v], gei[s, "nm-01", v]) for s in people for v in VIEWS]
    other = [_distance(gei[s, "nm-02", v], gei[t, "nm-01", v]) for s in people for t in people if s != t
             for v in VIEWS]
    assert np.mean(same) < 0.75 * np.mean(other)
    # nearest-neighbour matching of nm-02 against nm-01 (same view): at least 3x chance (1/6)
    hits = [min(people, key=lambda t, s=s, v=v: _distance(gei[s, "nm-02", v], gei[t, "nm-01", v])) == s
            for s in people for v in VIEWS]
    assert np.mean(hits) >= 0.5


def _params(**changes) -> synthetic_gait.Params:
    return synthetic_gait.Params(subjects=3, views=[90, 0], walks={"nm": 2, "cl": 1}, frames=8,
                                 size=[32, 32], **changes)


def test_scan_generates_once_and_lists_the_sequences(tmp_path: Path) -> None:
    params = _params()
    samples = synthetic_gait.scan(params, cache_dir=tmp_path, seed=11)
    assert len(samples) == 3 * 3 * 2
    assert samples == sorted(samples, key=lambda s: s.path)
    root = synthetic_gait.dataset_root(params, cache_dir=tmp_path, seed=11)
    assert root.parent == tmp_path / "synthetic_gait"
    assert samples[0] == Sample(path=str(root / "001" / "cl-01" / "000"), label="001", subject="001",
                                condition="cl", view="000", sequence="cl-01", split=None)
    assert {(s.condition, s.sequence) for s in samples} == {("nm", "nm-01"), ("nm", "nm-02"), ("cl", "cl-01")}
    assert {s.view for s in samples} == {"000", "090"} and {s.label for s in samples} == {"001", "002", "003"}

    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert synthetic_gait.scan(params, cache_dir=tmp_path, seed=11) == samples
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamps  # not generated again

    frames = synthetic_gait.load(samples[0], params)
    assert frames.shape == (8, 32, 32) and frames.dtype == np.uint8
    assert synthetic_gait.dataset_root(params, cache_dir=tmp_path, seed=12) != root  # recipe seed counts
    assert synthetic_gait.dataset_root(_params(seed=5), cache_dir=tmp_path, seed=12) == \
        synthetic_gait.dataset_root(_params(seed=5), cache_dir=tmp_path, seed=13)


def test_completeness_marker(tmp_path: Path) -> None:
    spec = synthetic.describe(subjects=2, views=[90], walks={"nm": 1}, frames=3, size=(32, 32), seed=1)
    calls: list[tuple[int, int]] = []
    out = synthetic.generate(tmp_path / "d", **spec, workers=1, progress=lambda *call: calls.append(call))
    assert calls == [(1, 2), (2, 2)]
    assert synthetic.is_complete(out, spec)
    assert not synthetic.is_complete(out, {**spec, "frames": 4})
    (out / synthetic.MANIFEST).unlink()  # as if generation had stopped before the end
    assert not synthetic.is_complete(out, spec)
    with pytest.raises(DataError) as caught:  # a foreign, non-empty folder is never overwritten
        synthetic.generate(out, **spec, workers=1)
    assert caught.value.path == str(out)


def test_load_names_a_truncated_png_and_an_empty_folder(tmp_path: Path) -> None:
    params = _params(root=str(tmp_path / "data"))
    sample = synthetic_gait.scan(params, cache_dir=tmp_path, seed=1)[0]
    png = sorted(Path(sample.path).glob("*.png"))[3]
    png.write_bytes(png.read_bytes()[:40])
    with pytest.raises(DataError) as caught:
        synthetic_gait.load(sample, params)
    assert caught.value.path == str(png) and png.name in str(caught.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .png frames"):
        synthetic_gait.load(dataclasses.replace(sample, path=str(empty)), params)


def test_plugin_fits_the_datasets_family_without_importing_opencv() -> None:
    assert Registry("datasets").add("synthetic_gait", synthetic_gait).description.startswith("Synthetic")
    code = "import sys, gaitrun.plugins.datasets.synthetic_gait; print('cv2' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        synthetic_gait.Params(walks={"xx": 1})
    with pytest.raises(ValueError):
        synthetic_gait.Params(views=[200])
    with pytest.raises(ValueError):
        synthetic_gait.Params(subjects=1)
    assert synthetic_gait.Params().walks == {"nm": 6, "bg": 2, "cl": 2}
