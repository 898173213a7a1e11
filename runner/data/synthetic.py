"""Synthetic gait silhouettes in the CASIA-B folder layout.

``generate`` renders walking people as binary silhouettes::

    <out>/<subject>/<cond>-<nn>/<view>/<subject>-<cond>-<nn>-<view>-<frame>.png

Each person is an articulated 3D body (torso, head, arms, legs, feet) animated by a gait
cycle and drawn orthographically from a slightly raised camera turned about the vertical
axis (view 90 is the side view, 0 the front, 180 the back). Identity lives in per-subject
traits drawn from the seed (height, proportions, width, stride, cadence, arm swing, lean);
``bg`` walks add a bag, ``cl`` walks a coat; every sequence gets its own start phase, speed,
scale, position and segmentation noise. Random numbers come from generators seeded per
(seed, subject, walk, view), so any number of workers gives byte-identical files.

The finished folder holds ``synthetic_gait.json`` (parameters + generator version), written
last: a folder with a matching one is complete (``is_complete``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from gaitrun.errors import DataError

VERSION = 1
MANIFEST = "synthetic_gait.json"
CONDITIONS = ("nm", "bg", "cl")
ELEVATION = math.radians(10.0)  # camera looks slightly down, so front and back views differ
SUPERSAMPLE = 3  # draw at 3x and shrink: smooth outlines
SHIFT = 3  # OpenCV fixed-point bits for sub-pixel drawing

# Per-subject traits: uniform ranges (lengths in body heights, angles in degrees).
TRAIT_RANGES: dict[str, tuple[float, float]] = {
    "height": (0.86, 1.08),  # overall size in the frame
    "leg": (0.49, 0.56),  # hip-joint height
    "width": (0.82, 1.22),  # hips, shoulders, torso breadth
    "girth": (0.82, 1.3),  # torso depth, limb thickness
    "head": (0.88, 1.15),
    "arm": (0.92, 1.08),  # arm length
    "stride": (0.75, 1.25),  # hip swing amplitude
    "knee": (48.0, 70.0),  # peak knee flexion in swing
    "arm_swing": (6.0, 36.0),
    "arm_asym": (0.65, 1.35),  # right / left arm swing
    "elbow": (5.0, 35.0),  # elbow flexion at rest
    "lean": (-3.0, 12.0),  # forward trunk lean
    "cycle": (22.0, 34.0),  # frames per gait cycle (cadence at 25 fps)
    "step_width": (0.035, 0.065),  # feet distance from the midline
}
# How much a trait drifts between two walks of one subject (relative).
WALK_DRIFT = {"stride": 0.05, "arm_swing": 0.12, "lean": 0.15, "cycle": 0.04, "elbow": 0.1}


@dataclass(frozen=True)
class Traits:
    """A subject's body and gait (see ``TRAIT_RANGES``)."""

    height: float
    leg: float
    width: float
    girth: float
    head: float
    arm: float
    stride: float
    knee: float
    arm_swing: float
    arm_asym: float
    elbow: float
    lean: float
    cycle: float
    step_width: float


@dataclass(frozen=True)
class Walk:
    """One walk of a subject: its traits of the day and what it carries or wears."""

    traits: Traits
    bag: tuple[str, int, float] | None = None  # (backpack | shoulder | hand, side -1/+1, size)
    coat: tuple[float, float] | None = None  # (hem height, width factor)


@dataclass(frozen=True)
class Task:
    """One sequence to render and write."""

    folder: str
    seed: int
    subject: int
    condition: str
    number: int
    view: int
    frames: int
    size: tuple[int, int]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([k % 2**63 for k in key])


def subject_traits(seed: int, subject: int) -> Traits:
    """The traits of ``subject``, the same for every walk and view."""
    rng = _rng(seed, 1, subject)
    return Traits(**{f.name: float(rng.uniform(*TRAIT_RANGES[f.name])) for f in fields(Traits)})


def walk_setup(seed: int, subject: int, condition: str, number: int) -> Walk:
    """The subject's walk ``<condition>-<number>``: drifted traits plus bag or coat."""
    base = subject_traits(seed, subject)
    rng = _rng(seed, 2, subject, CONDITIONS.index(condition), number)
    traits = replace(base, **{k: getattr(base, k) * (1 + rng.normal(0, s)) for k, s in WALK_DRIFT.items()})
    if condition == "bg":
        kinds = ("backpack", "shoulder", "hand")
        favourite = _rng(seed, 3, subject).integers(3)  # a subject tends to carry one kind
        kind = kinds[favourite if rng.random() < 0.7 else rng.integers(3)]
        return Walk(traits, bag=(kind, int(rng.choice((-1, 1))), float(rng.uniform(0.8, 1.3))))
    if condition == "cl":
        return Walk(traits, coat=(float(rng.uniform(0.26, 0.4)), float(rng.uniform(1.12, 1.3))))
    return Walk(traits)


# ----------------------------------------------------------------------------- body pose


def _cos(p: float) -> float:
    return math.cos(2 * math.pi * p)


def _bump(p: float, centre: float, width: float) -> float:
    """A periodic Gaussian bump of the phase ``p`` (period 1)."""
    d = (p - centre + 0.5) % 1.0 - 0.5
    return math.exp(-0.5 * (d / width) ** 2)


def _leg(t: Traits, p: float, side: int) -> list[np.ndarray]:
    """Hip, knee, ankle, heel, toe of one leg at leg phase ``p``, relative to the pelvis."""
    hip = math.radians(8 + 22 * t.stride * _cos(p - 0.9))
    shank = hip - math.radians(4 + 14 * _bump(p, 0.13, 0.06) + t.knee * _bump(p, 0.72, 0.1))
    foot = math.radians(15 * _bump(p, 0.98, 0.05) - 50 * _bump(p, 0.6, 0.07))
    seg = (t.leg - 0.04) / 2
    hy, ay = side * 0.055 * t.width, side * t.step_width
    knee = np.array([seg * math.sin(hip), hy, -seg * math.cos(hip)])
    ankle = knee + [seg * math.sin(shank), ay - hy, -seg * math.cos(shank)]
    c, s = math.cos(foot), math.sin(foot)
    heel = ankle + [-0.025 * c + 0.025 * s, 0, -0.025 * s - 0.025 * c]
    toe = ankle + [0.1 * c + 0.025 * s, 0, 0.1 * s - 0.025 * c]
    return [np.array([0.0, hy, 0.0]), knee, ankle, heel, toe]


def _arm(t: Traits, p: float, shoulder: np.ndarray, side: int, walk: Walk) -> list[np.ndarray]:
    """Shoulder, elbow, wrist, fingertip; ``p`` is the phase of the opposite leg."""
    holds_bag = walk.bag is not None and walk.bag[0] == "hand" and walk.bag[1] == side
    swing = t.arm_swing * (t.arm_asym if side < 0 else 1.0) * (0.15 if holds_bag else 1.0)
    a = math.radians(-4 + swing * _cos(p - 0.9))
    e = a + math.radians(t.elbow * (0.3 if holds_bag else 1.0) + 10 * (0.5 + 0.5 * _cos(p - 0.9)))
    out = side * 0.15 * (1.5 if walk.coat else 1.0)  # abduction (more around a coat)
    elbow = shoulder + 0.186 * t.arm * np.array([math.sin(a), out, -math.cos(a)])
    wrist = elbow + 0.146 * t.arm * np.array([math.sin(e), 0.05 * side, -math.cos(e)])
    tip = wrist + 0.08 * t.arm * np.array([math.sin(e), 0.0, -math.cos(e)])
    return [shoulder, elbow, wrist, tip]


@dataclass
class Shapes:
    """What one frame draws, in 3D body coordinates (x forward, y left, z up)."""

    capsules: list[tuple[np.ndarray, np.ndarray, float, float]]  # ends and their radii
    torso: list[tuple[np.ndarray, float, float]]  # slices (centre, half width, half depth), top down
    blobs: list[tuple[np.ndarray, tuple[float, float, float]]]  # ellipsoids: centre, semi-axes xyz
    skirt: list[tuple[np.ndarray, float, float]]  # coat: slices whose convex hull is the skirt


def body(walk: Walk, phase: float) -> Shapes:
    """The body of ``walk`` at gait phase ``phase`` (of the right leg), standing on z = 0."""
    t = walk.traits
    legs = [_leg(t, (phase + 0.5 * i) % 1.0, side) for i, side in enumerate((-1, 1))]
    lift = 0.02 - min(pt[2] for leg in legs for pt in leg[3:])  # the lower sole touches the ground
    lean = math.radians(t.lean + 1.5 * _cos(2 * phase))
    cl, sl = math.cos(lean), math.sin(lean)

    def up(x: float, y: float, z: float) -> np.ndarray:  # a point of the upper body, leaned
        return np.array([x * cl + z * sl, y, z * cl - x * sl + lift])

    trunk, cw = 0.818 - t.leg, walk.coat[1] if walk.coat else 1.0
    torso = [(up(0, 0, trunk * f), a * t.width * cw, b * t.girth * cw) for f, a, b in (
        (1.1, 0.04, 0.04), (0.97, 0.1, 0.06), (0.7, 0.09, 0.08), (0.35, 0.075, 0.065), (0.0, 0.095, 0.075))]
    torso.append((up(0, 0, -0.045), 0.08 * t.width * cw, 0.055 * t.girth * cw))
    limb = t.girth * (1.25 if walk.coat else 1.0)
    shapes = Shapes([(up(0, 0, trunk), up(0.01, 0, trunk + 0.07), 0.035 * limb, 0.03 * limb)], torso,
                    [(up(0.015, 0, trunk + 0.05 + 0.065 * t.head), (0.056 * t.head, 0.047 * t.head, 0.066 * t.head))],
                    [])
    hands = {}
    for i, side in enumerate((-1, 1)):
        hip, knee, ankle, heel, toe = (p + [0, 0, lift] for p in legs[i])
        sh, el, wr, hands[side] = _arm(t, (phase + 0.5 * (1 - i)) % 1.0, up(0, side * 0.105 * t.width, trunk), side, walk)
        shapes.capsules += [
            (hip, knee, 0.05 * t.girth, 0.033 * t.girth), (knee, ankle, 0.031 * t.girth, 0.02 * t.girth),
            (heel, toe, 0.017, 0.012), (sh, el, 0.032 * limb, 0.026 * limb), (el, wr, 0.025 * limb, 0.019 * limb),
            (wr, hands[side], 0.018, 0.014)]
    if walk.bag:
        shapes.blobs.append(_bag(walk, phase, up, hands))
    if walk.coat:
        hem = t.leg - walk.coat[0]
        shapes.skirt = [torso[-2]] + [(_along(leg, hem) + [0, 0, lift], 0.07 * limb, 0.07 * limb) for leg in legs]
    return shapes


def _bag(walk: Walk, phase: float, up: Callable[..., np.ndarray],
         hands: dict[int, np.ndarray]) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The bag of a ``bg`` walk as an ellipsoid: on the back, at the hip or in one hand."""
    kind, side, size = walk.bag  # type: ignore[misc]
    t = walk.traits
    if kind == "backpack":
        return up(-0.07 * t.girth - 0.05 * size, 0, 0.6 * (0.818 - t.leg)), (0.06 * size, 0.1 * size, 0.13 * size)
    if kind == "shoulder":
        return up(0.02 + 0.02 * _cos(2 * phase), side * (0.1 * t.width + 0.05), 0.02), (0.1 * size, 0.04, 0.085 * size)
    return hands[side] + [0.0, 0.0, -0.06 * size], (0.08 * size, 0.03, 0.07 * size)


def _along(leg: list[np.ndarray], depth: float) -> np.ndarray:
    """The point ``depth`` below the hip along the leg (thigh, then shank)."""
    hip, knee, ankle = leg[:3]
    thigh = float(np.linalg.norm(knee - hip))
    if depth <= thigh:
        return hip + (knee - hip) * depth / thigh
    return knee + (ankle - knee) * min(1.0, (depth - thigh) / float(np.linalg.norm(ankle - knee)))


# ----------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class Camera:
    """Orthographic camera at ``view`` degrees about the vertical axis, slightly raised."""

    right: np.ndarray  # image x axis in body coordinates
    up: np.ndarray  # image up axis in body coordinates
    scale: float  # pixels per body height
    origin: tuple[float, float]  # pixel of the ground point under the pelvis

    @classmethod
    def at(cls, view: float, scale: float, origin: tuple[float, float]) -> Camera:
        th = math.radians(view)
        towards = np.array([math.cos(th), -math.sin(th), 0.0])  # from the body to the camera
        up = np.array([0.0, 0.0, math.cos(ELEVATION)]) - towards * math.sin(ELEVATION)
        return cls(np.array([math.sin(th), math.cos(th), 0.0]), up, scale, origin)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of body points (..., 3)."""
        return np.stack([self.origin[0] + self.scale * (points @ self.right),
                         self.origin[1] - self.scale * (points @ self.up)], axis=-1)

    def half_width(self, lateral: float, depth: float) -> float:
        """Horizontal pixel half-extent of an ellipse with these half width (y) and depth (x)."""
        return self.scale * math.hypot(depth * self.right[0], lateral * self.right[1])


def _fix(values: Any) -> np.ndarray:
    return np.round(np.asarray(values, dtype=np.float64) * (1 << SHIFT)).astype(np.int32)


def _capsule(img: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> None:
    import cv2

    for centre, radius in ((a, ra), (b, rb)):
        cv2.circle(img, tuple(_fix(centre).tolist()), int(_fix(radius)), 255, -1, cv2.LINE_8, SHIFT)
    d = b - a
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6)
    cv2.fillConvexPoly(img, _fix([a + n * ra, b + n * rb, b - n * rb, a - n * ra]), 255, cv2.LINE_8, SHIFT)


def _slices(cam: Camera, slices: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Left and right outline points (2n, 2) of horizontal elliptic slices."""
    centres = cam.project(np.array([c for c, _, _ in slices]))
    half = np.array([cam.half_width(a, b) for _, a, b in slices])
    return np.concatenate([centres - np.stack([half, 0 * half], 1), (centres + np.stack([half, 0 * half], 1))[::-1]])


def render(shapes: Shapes, cam: Camera, shape: tuple[int, int]) -> np.ndarray:
    """The silhouette of ``shapes`` as a (H, W) uint8 0/255 image."""
    import cv2

    img = np.zeros(shape, np.uint8)
    for a, b, ra, rb in shapes.capsules:
        _capsule(img, cam.project(a), cam.project(b), cam.scale * ra, cam.scale * rb)
    cv2.fillPoly(img, [_fix(_slices(cam, shapes.torso))], 255, cv2.LINE_8, SHIFT)
    for centre, (sx, sy, sz) in shapes.blobs:
        axes = (cam.half_width(sy, sx), cam.scale * sz)
        cv2.ellipse(img, tuple(_fix(cam.project(centre)).tolist()), tuple(_fix(axes).tolist()),
                    0, 0, 360, 255, -1, cv2.LINE_8, SHIFT)
    if shapes.skirt:
        cv2.fillConvexPoly(img, cv2.convexHull(_fix(_slices(cam, shapes.skirt))), 255, cv2.LINE_8, SHIFT)
    return img


# ----------------------------------------------------------------------------- sequences


@dataclass(frozen=True)
class Nuisance:
    """What varies between sequences apart from identity and condition."""

    phase: float  # gait phase of the first frame
    speed: float  # cadence factor
    scale: float  # size factor
    shift: tuple[float, float]  # offset in frame heights
    morph: int  # segmentation bias: -1 erodes, 1 dilates every frame
    blobs: float  # mean number of noise blobs / holes per frame


def _nuisance(rng: np.random.Generator) -> Nuisance:
    return Nuisance(phase=float(rng.random()), speed=float(rng.normal(1, 0.04)),
                    scale=float(rng.normal(1, 0.025)), shift=(float(rng.normal(0, 0.025)), float(rng.normal(0, 0.01))),
                    morph=int(rng.choice((-1, 0, 0, 0, 1))), blobs=float(rng.uniform(0, 1.2)))


def _segmentation_noise(mask: np.ndarray, rng: np.random.Generator, nz: Nuisance) -> np.ndarray:
    """Erosion/dilation and random blobs and holes near the body, like background subtraction."""
    import cv2

    unit = mask.shape[0] / 64
    morph = nz.morph + (int(rng.choice((-1, 1))) if rng.random() < 0.15 else 0)
    if morph:
        mask = (cv2.dilate if morph > 0 else cv2.erode)(mask, np.ones((2, 2), np.uint8))
    ys, xs = np.nonzero(mask)
    for _ in range(int(rng.poisson(nz.blobs)) if len(xs) else 0):
        i = int(rng.integers(len(xs)))
        centre = (int(xs[i] + rng.normal(0, 2 * unit)), int(ys[i] + rng.normal(0, 2 * unit)))
        axes = (max(1, round(rng.uniform(0.5, 2.5) * unit)), max(1, round(rng.uniform(0.5, 2) * unit)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.choice((0, 255))), -1)
    return mask


def render_sequence(task: Task) -> list[np.ndarray]:
    """The (H, W) uint8 0/255 frames of one sequence."""
    import cv2

    walk = walk_setup(task.seed, task.subject, task.condition, task.number)
    rng = _rng(task.seed, 4, task.subject, CONDITIONS.index(task.condition), task.number, task.view)
    nz = _nuisance(rng)
    (h, w), ss = task.size, SUPERSAMPLE
    scale = ss * h * 0.86 * walk.traits.height * nz.scale
    frames = []
    for i in range(task.frames):
        jitter = rng.normal(0, 0.3, 2)
        origin = (ss * (w / 2 + h * nz.shift[0] + jitter[0]), ss * (h * (0.97 + nz.shift[1]) + jitter[1]))
        phase = (nz.phase + i / (walk.traits.cycle * nz.speed)) % 1.0
        big = render(body(walk, phase), Camera.at(task.view, scale, origin), (h * ss, w * ss))
        small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
        frames.append(_segmentation_noise(np.where(small >= 128, 255, 0).astype(np.uint8), rng, nz))
    return frames


def sequence_folder(subject: int, condition: str, number: int, view: int) -> str:
    """``001/nm-01/090``: a sequence's folder relative to the dataset root."""
    return f"{subject:03d}/{condition}-{number:02d}/{view:03d}"


def _write_sequence(task: Task) -> None:
    import cv2

    rel = sequence_folder(task.subject, task.condition, task.number, task.view)
    folder = Path(task.folder) / rel
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(task.frames)))
    for i, frame in enumerate(render_sequence(task), start=1):
        path = folder / f"{rel.replace('/', '-')}-{i:0{digits}d}.png"
        if not cv2.imwrite(str(path), frame):
            raise DataError(str(path), "could not be written; check free disk space and permissions")


# ----------------------------------------------------------------------------- the dataset


def describe(*, subjects: int, views: Sequence[int], walks: Mapping[str, int], frames: int,
             size: Sequence[int], seed: int) -> dict[str, Any]:
    """The canonical generation parameters, as stored in the manifest."""
    if set(walks) - set(CONDITIONS):
        raise ValueError(f"walks may only name {CONDITIONS}, got {sorted(walks)}")
    if any(not 0 <= v <= 180 for v in views) or subjects < 1 or frames < 1 or len(size) != 2:
        raise ValueError("need subjects >= 1, frames >= 1, views within 0..180 and size (H, W)")
    return {"subjects": int(subjects), "views": sorted({int(v) for v in views}),
            "walks": {c: int(walks[c]) for c in CONDITIONS if walks.get(c, 0) > 0},
            "frames": int(frames), "size": [int(size[0]), int(size[1])], "seed": int(seed)}


def is_complete(out_dir: Path, params: Mapping[str, Any]) -> bool:
    """Whether ``out_dir`` holds a finished dataset generated with ``params`` by this version."""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("version") == VERSION and manifest.get("params") == describe(**params)


def _tasks(folder: Path, spec: dict[str, Any]) -> list[Task]:
    return [Task(str(folder), spec["seed"], subject, cond, number, view, spec["frames"], tuple(spec["size"]))
            for subject in range(1, spec["subjects"] + 1)
            for cond, count in spec["walks"].items() for number in range(1, count + 1)
            for view in spec["views"]]


def _run(tasks: list[Task], workers: int, progress: Callable[[int, int], None] | None) -> None:
    """Write every task's sequence, in ``workers`` processes."""
    done = 0
    if workers <= 1:
        results: Any = map(_write_sequence, tasks)
    else:
        pool = multiprocessing.get_context("spawn").Pool(workers)
        results = pool.imap_unordered(_write_sequence, tasks, chunksize=4)
    try:
        for _ in results:
            done += 1
            if progress:
                progress(done, len(tasks))
    finally:
        if workers > 1:
            pool.close()
            pool.join()


def _claimed(out: Path, spec: dict[str, Any]) -> bool:
    """True if ``out`` already is this dataset; ``DataError`` if it is a non-empty other folder."""
    if is_complete(out, spec):
        return True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(str(out), f"exists but is not the synthetic dataset asked for (no matching {MANIFEST}); "
                                  "delete it or choose another root")
    return False


def generate(out_dir: Path, *, subjects: int, views: Sequence[int], walks: Mapping[str, int], frames: int,
             size: tuple[int, int], seed: int, workers: int = 2,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Render the dataset into ``out_dir`` (atomically: in a temporary sibling, then renamed).

    Returns ``out_dir``. A complete dataset with the same parameters already there is kept
    as it is (also when another process finishes it first); ``progress(done, total)`` is
    called after each sequence.
    """
    spec = describe(subjects=subjects, views=views, walks=walks, frames=frames, size=size, seed=seed)
    out = Path(out_dir)
    if _claimed(out, spec):
        return out
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tasks = _tasks(tmp, spec)
        _run(tasks, workers, progress)
        manifest = {"generator": "gaitrun.data.synthetic", "version": VERSION, "params": spec,
                    "sequences": len(tasks)}
        (tmp / f".{MANIFEST}.tmp").write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp / f".{MANIFEST}.tmp", tmp / MANIFEST)
        try:
            os.rename(tmp, out)
        except OSError:
            if not _claimed(out, spec):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
