"""Synthetic gait silhouettes in the CASIA-B layout: ``generate`` writes binary PNGs to
``<out>/<subject>/<cond>-<nn>/<view>/<subject>-<cond>-<nn>-<view>-<frame>.png``.

Each person is an articulated 3D body (torso, head, arms, legs, feet) animated by a gait
cycle and drawn orthographically from a slightly raised camera turned about the vertical
axis (view 90 is the side view, 0 the front, 180 the back). Identity lives in per-subject
traits drawn from the seed (height, proportions, width, stride, cadence, arm swing, lean);
``bg`` walks add a bag, ``cl`` walks a coat; every sequence gets its own start phase, speed,
scale, position and segmentation noise. Random numbers come from generators seeded per
(seed, subject, walk, view), so any number of workers gives byte-identical files. The
manifest ``synthetic_gait.json`` is written last: a folder with a matching one is complete.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import math
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from gaitrun.errors import DataError

from .temporaries import remove_dead

VERSION = 1
MANIFEST = "synthetic_gait.json"
CONDITIONS = ("nm", "bg", "cl")
ELEVATION = math.radians(10.0)  # the camera looks slightly down, so front and back views differ
SUPERSAMPLE = 3  # draw at 3x the size and shrink: smooth outlines
SHIFT = 3  # fixed-point bits for OpenCV's sub-pixel drawing
# How much a trait drifts between two walks of one subject (relative standard deviation).
WALK_DRIFT = {"stride": 0.05, "arm_swing": 0.12, "lean": 0.15, "cycle": 0.04, "elbow": 0.1}


def _trait(low: float, high: float) -> Any:
    return field(metadata={"range": (low, high)})


@dataclass(frozen=True)
class Traits:
    """A subject's body and gait, drawn uniformly from each field's range (body heights, degrees)."""

    height: float = _trait(0.86, 1.08)  # overall size in the frame
    leg: float = _trait(0.49, 0.56)  # hip-joint height
    width: float = _trait(0.82, 1.22)  # breadth of hips, shoulders and torso
    girth: float = _trait(0.82, 1.3)  # torso depth, limb thickness
    head: float = _trait(0.88, 1.15)  # head size
    arm: float = _trait(0.92, 1.08)  # arm length
    stride: float = _trait(0.75, 1.25)  # hip swing amplitude
    knee: float = _trait(48.0, 70.0)  # peak knee flexion in swing
    arm_swing: float = _trait(6.0, 36.0)  # shoulder swing amplitude
    arm_asym: float = _trait(0.65, 1.35)  # right arm swing / left arm swing
    elbow: float = _trait(5.0, 35.0)  # elbow flexion at rest
    lean: float = _trait(-3.0, 12.0)  # forward trunk lean
    cycle: float = _trait(22.0, 34.0)  # frames per gait cycle (cadence at 25 fps)
    step_width: float = _trait(0.035, 0.065)  # distance of the feet from the midline


@dataclass(frozen=True)
class Walk:
    """One walk of a subject: the traits of the day and what the subject carries or wears."""

    traits: Traits
    bag: tuple[str, int, float] | None = None  # (backpack | shoulder | hand, side -1/+1, size)
    coat: tuple[float, float] | None = None  # (hem height, width factor)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([k % 2**63 for k in key])


def subject_traits(seed: int, subject: int) -> Traits:
    """The traits of ``subject``, the same for every walk and view."""
    rng = _rng(seed, 1, subject)
    return Traits(**{f.name: float(rng.uniform(*f.metadata["range"])) for f in fields(Traits)})


def walk_setup(seed: int, subject: int, condition: str, number: int) -> Walk:
    """The walk ``<condition>-<number>`` of ``subject``: drifted traits plus a bag or coat."""
    base = subject_traits(seed, subject)
    rng = _rng(seed, 2, subject, CONDITIONS.index(condition), number)
    traits = replace(base, **{k: getattr(base, k) * (1 + rng.normal(0, s)) for k, s in WALK_DRIFT.items()})
    if condition == "bg":
        kinds = ("backpack", "shoulder", "hand")
        favourite = _rng(seed, 3, subject).integers(3)  # a subject tends to carry one kind of bag
        kind = kinds[favourite if rng.random() < 0.7 else rng.integers(3)]
        return Walk(traits, bag=(kind, int(rng.choice((-1, 1))), float(rng.uniform(0.9, 1.4))))
    if condition == "cl":
        return Walk(traits, coat=(float(rng.uniform(0.26, 0.4)), float(rng.uniform(1.12, 1.3))))
    return Walk(traits)


def _cos(p: float) -> float:
    return math.cos(2 * math.pi * p)


def _bump(p: float, centre: float, width: float) -> float:
    """A periodic Gaussian bump of the phase ``p`` (period 1)."""
    d = (p - centre + 0.5) % 1.0 - 0.5
    return math.exp(-0.5 * (d / width) ** 2)


def _leg(t: Traits, p: float, side: int) -> list[np.ndarray]:
    """Hip, knee, ankle, heel, toe of one leg at leg phase ``p`` (0 = heel strike), hip at z 0."""
    hip = math.radians(8 + 22 * t.stride * _cos(p - 0.9))
    shank = hip - math.radians(4 + 14 * _bump(p, 0.13, 0.06) + t.knee * _bump(p, 0.72, 0.1))
    foot = math.radians(15 * _bump(p, 0.98, 0.05) - 50 * _bump(p, 0.6, 0.07))  # push-off tilts it
    seg, hy, ay = (t.leg - 0.04) / 2, side * 0.055 * t.width, side * t.step_width
    knee = np.array([seg * math.sin(hip), hy, -seg * math.cos(hip)])
    ankle = knee + [seg * math.sin(shank), ay - hy, -seg * math.cos(shank)]
    c, s = math.cos(foot), math.sin(foot)
    heel = ankle + [-0.025 * c + 0.025 * s, 0, -0.025 * s - 0.025 * c]
    toe = ankle + [0.1 * c + 0.025 * s, 0, 0.1 * s - 0.025 * c]
    return [np.array([0.0, hy, 0.0]), knee, ankle, heel, toe]


def _arm(walk: Walk, p: float, shoulder: np.ndarray, side: int) -> list[np.ndarray]:
    """Shoulder, elbow, wrist, fingertip; ``p`` is the phase of the opposite leg."""
    t = walk.traits
    holds_bag = walk.bag is not None and walk.bag[0] == "hand" and walk.bag[1] == side
    swing = t.arm_swing * (t.arm_asym if side < 0 else 1.0) * (0.15 if holds_bag else 1.0)
    a = math.radians(-4 + swing * _cos(p - 0.9))
    e = a + math.radians(t.elbow * (0.3 if holds_bag else 1.0) + 10 * (0.5 + 0.5 * _cos(p - 0.9)))
    out = side * 0.15 * (1.5 if walk.coat else 1.0)  # abduction, more around a coat
    elbow = shoulder + 0.186 * t.arm * np.array([math.sin(a), out, -math.cos(a)])
    wrist = elbow + 0.146 * t.arm * np.array([math.sin(e), 0.05 * side, -math.cos(e)])
    return [shoulder, elbow, wrist, wrist + 0.08 * t.arm * np.array([math.sin(e), 0.0, -math.cos(e)])]


@dataclass
class Shapes:
    """What one frame draws, in body coordinates (x forward, y left, z up, 1 = body height)."""

    capsules: list[tuple[np.ndarray, np.ndarray, float, float]]  # limbs: both ends, their radii
    torso: list[tuple[np.ndarray, float, float]]  # slices top down: centre, half width, half depth
    blobs: list[tuple[np.ndarray, tuple[float, float, float]]]  # ellipsoids: centre, semi-axes xyz
    skirt: list[tuple[np.ndarray, float, float]]  # coat: slices whose convex hull is drawn


def body(walk: Walk, phase: float) -> Shapes:
    """The body of ``walk`` at gait phase ``phase`` (of the right leg), standing on z = 0."""
    t, seg = walk.traits, (walk.traits.leg - 0.04) / 2
    legs = [_leg(t, (phase + 0.5 * i) % 1.0, side) for i, side in enumerate((-1, 1))]
    lift = 0.02 - min(pt[2] for leg in legs for pt in leg[3:])  # the lower sole touches the ground
    lean = math.radians(t.lean + 1.5 * _cos(2 * phase))
    cos, sin = math.cos(lean), math.sin(lean)

    def up(x: float, y: float, z: float) -> np.ndarray:  # a point of the leaned upper body
        return np.array([x * cos + z * sin, y, z * cos - x * sin + lift])

    trunk, cw = 0.818 - t.leg, walk.coat[1] if walk.coat else 1.0
    torso = [(up(0, 0, trunk * f), a * t.width * cw, b * t.girth * cw) for f, a, b in (
        (1.1, 0.04, 0.04), (0.97, 0.1, 0.06), (0.7, 0.09, 0.08), (0.35, 0.075, 0.065), (0.0, 0.095, 0.075))]
    torso.append((up(0, 0, -0.045), 0.08 * t.width * cw, 0.055 * t.girth * cw))
    limb, h = t.girth * (1.25 if walk.coat else 1.0), t.head
    shapes = Shapes([(up(0, 0, trunk), up(0.01, 0, trunk + 0.07), 0.035 * limb, 0.03 * limb)], torso,
                    [(up(0.015, 0, trunk + 0.05 + 0.065 * h), (0.056 * h, 0.047 * h, 0.066 * h))], [])
    hands: dict[int, np.ndarray] = {}
    for i, side in enumerate((-1, 1)):
        hip, knee, ankle, heel, toe = (p + [0, 0, lift] for p in legs[i])
        shoulder = up(0, side * 0.105 * t.width, trunk)
        sh, el, wr, hands[side] = _arm(walk, (phase + 0.5 * (1 - i)) % 1.0, shoulder, side)
        shapes.capsules += [
            (hip, knee, 0.05 * t.girth, 0.033 * t.girth), (knee, ankle, 0.031 * t.girth, 0.02 * t.girth),
            (heel, toe, 0.017, 0.012), (sh, el, 0.032 * limb, 0.026 * limb),
            (el, wr, 0.025 * limb, 0.019 * limb), (wr, hands[side], 0.018, 0.014)]
    if walk.bag:
        shapes.blobs.append(_bag(walk, phase, up, hands))
    if walk.coat:  # the skirt reaches down to the hem, following both legs
        depth = t.leg - walk.coat[0]
        hem = [[np.interp(depth, (0, seg, 2 * seg), c) for c in np.array(leg[:3]).T] for leg in legs]
        shapes.skirt = [torso[-2]] + [(np.add(p, [0, 0, lift]), 0.06 * limb, 0.06 * limb) for p in hem]
    return shapes


def _bag(walk: Walk, phase: float, up: Callable[..., np.ndarray],
         hands: dict[int, np.ndarray]) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The bag of a ``bg`` walk as an ellipsoid: on the back, at the hip or in one hand."""
    kind, side, size = walk.bag  # type: ignore[misc]
    t = walk.traits
    if kind == "backpack":  # between the shoulder blades
        centre = up(-0.07 * t.girth - 0.06 * size, 0, 0.6 * (0.818 - t.leg))
        return centre, (0.07 * size, 0.11 * size, 0.14 * size)
    if kind == "shoulder":  # hangs at the hip and swings a little
        centre = up(0.02 + 0.02 * _cos(2 * phase), side * (0.1 * t.width + 0.06), 0.02)
        return centre, (0.11 * size, 0.05, 0.09 * size)
    return hands[side] + [0.0, 0.0, -0.07 * size], (0.09 * size, 0.035, 0.08 * size)


@dataclass(frozen=True)
class Camera:
    """Orthographic, tilted down by ``ELEVATION``; ``at(view)``: 0 sees the front, 90 the side."""

    right: np.ndarray  # the image x axis in body coordinates
    up: np.ndarray  # the image up axis in body coordinates
    scale: float  # pixels per body height
    origin: np.ndarray | tuple[float, float]  # the pixel of the ground point under the pelvis

    @classmethod
    def at(cls, view: float, scale: float, origin: np.ndarray | tuple[float, float]) -> Camera:
        th = math.radians(view)
        towards = np.array([math.cos(th), -math.sin(th), 0.0])  # from the body to the camera
        up = np.array([0.0, 0.0, math.cos(ELEVATION)]) - towards * math.sin(ELEVATION)
        return cls(np.array([math.sin(th), math.cos(th), 0.0]), up, scale, origin)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of body points (..., 3)."""
        return points @ (self.scale * np.stack([self.right, -self.up], 1)) + self.origin

    def half_width(self, lateral: float, depth: float) -> float:
        """Horizontal pixel half-extent of an ellipse with this half width (y) and half depth (x)."""
        return self.scale * math.hypot(depth * self.right[0], lateral * self.right[1])


def _fix(values: Any) -> np.ndarray:
    return np.round(np.asarray(values, dtype=np.float64) * (1 << SHIFT)).astype(np.int32)


def _limbs(img: np.ndarray, cam: Camera, shapes: Shapes) -> None:
    """Draw the capsules: two discs joined by their tangent quadrilateral (projected at once)."""
    import cv2

    ends = cam.project(np.array([end for c in shapes.capsules for end in c[:2]])).reshape(-1, 2, 2)
    radii = cam.scale * np.array([c[2:] for c in shapes.capsules])[..., None]  # (n, 2, 1)
    d = ends[:, 1] - ends[:, 0]
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)[:, None]
    offsets = normal[:, None] * radii  # (n, 2, 2)
    quads = _fix(np.concatenate([ends + offsets, (ends - offsets)[:, ::-1]], 1))
    for quad, centres, rs in zip(quads, _fix(ends).tolist(), _fix(radii[..., 0]).tolist(), strict=True):
        cv2.fillConvexPoly(img, quad, 255, cv2.LINE_8, SHIFT)
        for centre, r in zip(centres, rs, strict=True):
            cv2.circle(img, centre, r, 255, -1, cv2.LINE_8, SHIFT)


def _outline(cam: Camera, slices: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """The outline (2n, 2) through the left ends (top down) and right ends of elliptic slices."""
    centres = cam.project(np.array([c for c, _, _ in slices]))
    half = np.array([[cam.half_width(a, b), 0.0] for _, a, b in slices])
    return np.concatenate([centres - half, (centres + half)[::-1]])


def render(shapes: Shapes, cam: Camera, shape: tuple[int, int]) -> np.ndarray:
    """The silhouette of ``shapes`` as a (H, W) uint8 0/255 image."""
    import cv2

    img = np.zeros(shape, np.uint8)
    _limbs(img, cam, shapes)
    cv2.fillPoly(img, [_fix(_outline(cam, shapes.torso))], 255, cv2.LINE_8, SHIFT)
    for centre, (sx, sy, sz) in shapes.blobs:
        axes = _fix((cam.half_width(sy, sx), cam.scale * sz)).tolist()
        cv2.ellipse(img, _fix(cam.project(centre)).tolist(), axes, 0, 0, 360, 255, -1, cv2.LINE_8, SHIFT)
    if shapes.skirt:
        cv2.fillConvexPoly(img, cv2.convexHull(_fix(_outline(cam, shapes.skirt))), 255, cv2.LINE_8, SHIFT)
    return img


def _segmentation_noise(mask: np.ndarray, rng: np.random.Generator, morph: int, blobs: float) -> np.ndarray:
    """Erosion or dilation, and small blobs and holes near the body, as background subtraction gives."""
    import cv2

    unit = mask.shape[0] / 64
    morph += int(rng.choice((-1, 1))) if rng.random() < 0.1 else 0
    if morph and unit > 0.75:  # a 2x2 kernel at 64 px; smaller frames are left alone
        kernel = np.ones((round(2 * unit),) * 2, np.uint8)
        mask = (cv2.dilate if morph > 0 else cv2.erode)(mask, kernel)
    count = int(rng.poisson(blobs))
    ys, xs = np.nonzero(mask) if count else ((), ())
    for _ in range(count if len(xs) else 0):
        i = int(rng.integers(len(xs)))
        centre = (int(xs[i] + rng.normal(0, 2 * unit)), int(ys[i] + rng.normal(0, 2 * unit)))
        axes = (max(1, round(rng.uniform(0.5, 2.5) * unit)), max(1, round(rng.uniform(0.5, 2) * unit)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.choice((0, 255))), -1)
    return mask


def render_sequence(seed: int, subject: int, condition: str, number: int, view: int, *,
                    frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The (H, W) uint8 0/255 frames of the sequence ``<subject>/<condition>-<number>/<view>``."""
    import cv2

    walk = walk_setup(seed, subject, condition, number)
    rng = _rng(seed, 4, subject, CONDITIONS.index(condition), number, view)
    # nuisance: start phase, speed, size, position, segmentation bias (erode/dilate) and noise
    start, cycle = rng.random(), walk.traits.cycle * rng.normal(1, 0.04)
    (h, w), ss = size, SUPERSAMPLE
    scale, (dx, dy) = ss * h * 0.86 * walk.traits.height * rng.normal(1, 0.02), rng.normal(0, [0.006, 0.003])
    morph, blobs = int(rng.choice((-1, 0, 0, 0, 1))), rng.uniform(0, 1.2)
    out = []
    for i in range(frames):
        origin = ss * (np.array([w / 2 + h * dx, h * (0.97 + dy)]) + rng.normal(0, 0.3, 2))  # jitter: pixels
        big = render(body(walk, (start + i / cycle) % 1.0), Camera.at(view, scale, origin), (h * ss, w * ss))
        small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
        out.append(_segmentation_noise(np.where(small >= 128, 255, 0).astype(np.uint8), rng, morph, blobs))
    return out


def _write_sequence(root: str, spec: dict[str, Any], key: tuple[int, str, int, int]) -> None:
    """Render the sequence ``key`` (subject, condition, number, view) into ``root``."""
    import cv2

    subject, condition, number, view = key
    rel = f"{subject:03d}/{condition}-{number:02d}/{view:03d}"  # e.g. 001/nm-01/090
    folder = Path(root) / rel
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(spec["frames"])))  # file names must sort in frame order
    frames = render_sequence(spec["seed"], *key, frames=spec["frames"], size=spec["size"])
    for i, frame in enumerate(frames, start=1):
        path = folder / f"{rel.replace('/', '-')}-{i:0{digits}d}.png"
        if not cv2.imwrite(str(path), frame):
            raise DataError(str(path), "could not be written; check free disk space and permissions")


def describe(*, subjects: int, views: Sequence[int], walks: Mapping[str, int], frames: int,
             size: Sequence[int], seed: int) -> dict[str, Any]:
    """The canonical generation parameters, as stored in the manifest."""
    if set(walks) - set(CONDITIONS) or any(not 0 <= v <= 180 for v in views) or len(size) != 2:
        raise ValueError(f"walks only of {CONDITIONS}, views within 0..180 and size (H, W), please")
    return {"subjects": int(subjects), "views": sorted({int(v) for v in views}),
            "walks": {c: int(walks[c]) for c in CONDITIONS if walks.get(c, 0) > 0},
            "frames": int(frames), "size": [int(size[0]), int(size[1])], "seed": int(seed)}


def is_complete(out_dir: Path, params: Mapping[str, Any]) -> bool:
    """Whether ``out_dir`` holds a finished dataset made from ``params`` by this generator version."""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("version") == VERSION and manifest.get("params") == describe(**params)


def _claimed(out: Path, spec: dict[str, Any]) -> bool:
    """True if ``out`` already is this dataset; ``DataError`` if it is some other non-empty folder."""
    if is_complete(out, spec):
        return True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(str(out), f"is not the synthetic dataset asked for (no matching {MANIFEST}); "
                                  "delete it or choose another data.params.root")
    return False


def _run(root: Path, spec: dict[str, Any], workers: int, progress: Callable[[int, int], None] | None) -> int:
    """Write every sequence of ``spec`` into ``root`` with ``workers`` processes; their number."""
    import cv2

    keys = [(subject, cond, number, view) for subject in range(1, spec["subjects"] + 1)
            for cond, count in spec["walks"].items() for number in range(1, count + 1)
            for view in spec["views"]]
    write = functools.partial(_write_sequence, str(root), spec)
    # fork, not spawn: spawn re-imports the caller's main module and hangs on unguarded scripts
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with contextlib.ExitStack() as stack:
        results: Any = map(write, keys)
        if workers > 1:  # OpenCV single-threaded: one process per core already
            pool = stack.enter_context(context.Pool(workers, cv2.setNumThreads, (1,)))
            results = pool.imap_unordered(write, keys, chunksize=4)
        for done, _ in enumerate(results, start=1):
            if progress:
                progress(done, len(keys))
    return len(keys)


def generate(out_dir: Path, *, subjects: int, views: Sequence[int], walks: Mapping[str, int], frames: int,
             size: tuple[int, int], seed: int, workers: int = 2,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Render the dataset into a temporary sibling of ``out_dir``, then rename it; ``out_dir``.

    A complete dataset of the same parameters found there (before, or after another process
    won the race) is kept. ``progress(done, total)`` is called after each sequence."""
    spec = describe(subjects=subjects, views=views, walks=walks, frames=frames, size=size, seed=seed)
    out = Path(out_dir)
    if _claimed(out, spec):
        return out
    remove_dead(out.parent, f"{glob.escape(out.name)}.tmp-*")  # left by killed generators
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        count = _run(tmp, spec, workers, progress)
        manifest = {"generator": __name__, "version": VERSION, "params": spec, "sequences": count}
        (tmp / f".{MANIFEST}.tmp").write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp / f".{MANIFEST}.tmp", tmp / MANIFEST)  # last: it marks the folder complete
        with contextlib.suppress(OSError):
            os.rename(tmp, out)  # fails if another process renamed its copy in first: checked below
        if not _claimed(out, spec):
            raise DataError(str(out), "the generated dataset could not be moved here; check permissions")
    except OSError as exc:
        raise DataError(str(out), f"cannot write the synthetic dataset ({exc}); check free space "
                                  "and permissions or choose another data.params.root") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
