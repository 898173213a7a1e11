"""Synthetic hip-worn inertial windows of the synthetic walkers, generated once into the cache.

The walking bodies of ``gaitrun.data.synthetic`` (per-subject height, stride, cadence, lean,
step width ...; ``nm`` / ``bg`` / ``cl`` walks with drifted traits) carry a sensor at the
pelvis. One gait cycle of the body model gives the pelvis trajectory: its height and
fore-aft offset from the torso, the forward speed from the stance foot (which stays on the
ground), a sway towards the stance leg, pitch from the trunk lean, yaw from the leg that is
ahead and roll from the leg that is lifted. These are smoothed as Fourier series, so the
acceleration and angular velocity are exact derivatives, then sampled at 50 Hz with each
walk's start phase and cadence. The sensor sits at a slightly different angle on every walk
(more loosely on a coat), and its readings carry noise and bias.

Windows of 128 samples (2.56 s, 50 % overlap) hold 9 channels in the UCI HAR order
body_acc x, y, z (g), body_gyro x, y, z (rad/s), total_acc x, y, z (g, body + gravity), in
sensor axes x forward, y left, z up. ``label`` is the subject (identify walkers by their gait),
``sequence`` the walk (``nm-01``), ``index`` the window's row in the data set file
``<cache_dir>/synthetic_imu/<hash of the params>.npz`` (``extra['window']``: its number within
the walk). The same seed gives the same data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from gaitrun.data.synthetic import Walk

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.data.records import Sample
from gaitrun.errors import DataError

MODALITIES = frozenset({"inertial"})
KIND = "inertial"

VERSION = 2  # bump when the generated data changes: cached files are named by it
RATE = 50.0  # samples per second
WINDOW = 128  # samples per window (2.56 s), consecutive windows overlap by half
GRAVITY = 9.81  # m/s^2
BODY_HEIGHT = 1.75  # metres per body height at height trait 1
FRAME_RATE = 25.0  # the body model's cadence trait counts frames at 25 fps
PHASES = 256  # points per gait cycle at which the body model is evaluated
HARMONICS = 8  # Fourier terms kept: motion up to ~8 Hz, no differentiation noise
# sensor noise (standard deviation per reading) and bias (per walk): accelerometer in g, gyro in rad/s
ACC_NOISE, GYRO_NOISE, ACC_BIAS, GYRO_BIAS = 0.01, 0.015, 0.01, 0.01
MOUNT_DEG = {"nm": 3.0, "bg": 3.0, "cl": 8.0}  # sensor mounting angle jitter; on a coat it sits loosely


class Params(BaseModel):
    """How many subjects, walks and windows to generate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subjects: int = Field(12, ge=2, le=999, description="number of people (subject ids 001, 002, ...)")
    walks: dict[Literal["nm", "bg", "cl"], Annotated[int, Field(ge=1, le=99)]] = Field(
        default_factory=lambda: {"nm": 6, "bg": 2, "cl": 2}, min_length=1,
        description="walks per condition: nm normal, bg carrying a bag, cl wearing a coat")
    windows_per_walk: int = Field(4, ge=1, le=256, description="128-sample windows cut from each walk")
    seed: int | None = Field(None, ge=0, description="generator seed; null uses the recipe's seed")


def _spec(params: Params, seed: int) -> dict[str, Any]:
    """What decides the data set's content (the cache file is named by its hash)."""
    from gaitrun.data.synthetic import CONDITIONS

    return {"version": VERSION, "subjects": params.subjects, "windows_per_walk": params.windows_per_walk,
            "walks": {c: params.walks[c] for c in CONDITIONS if c in params.walks},
            "seed": seed if params.seed is None else params.seed}


def dataset_file(params: Params, *, cache_dir: Path, seed: int) -> Path:
    """``<cache_dir>/synthetic_imu/<hash of the params and seed>.npz``."""
    key = json.dumps(_spec(params, seed), sort_keys=True)
    return Path(cache_dir) / "synthetic_imu" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _walk_keys(spec: dict[str, Any]) -> list[tuple[int, str, int]]:
    """(subject, condition, number) of every walk, in data set order."""
    return [(subject, cond, number) for subject in range(1, spec["subjects"] + 1)
            for cond, count in spec["walks"].items() for number in range(1, count + 1)]


def scan(params: Params, *, cache_dir: Path, seed: int) -> list[Sample]:
    """Generate the data set file unless it exists, then one sample per window."""
    file, spec = dataset_file(params, cache_dir=cache_dir, seed=seed), _spec(params, seed)
    if not file.is_file():
        _write(file, spec)
    per_walk = spec["windows_per_walk"]
    return [Sample(path=str(file), label=f"{subject:03d}", subject=f"{subject:03d}", condition=cond,
                   sequence=f"{cond}-{number:02d}", index=w * per_walk + k, extra={"window": k})
            for w, (subject, cond, number) in enumerate(_walk_keys(spec)) for k in range(per_walk)]


def load(sample: Sample, params: Params) -> np.ndarray:
    """The window at row ``sample.index`` of the data set file as (128, 9) float32."""
    windows = _read(Path(sample.path))
    if sample.index is None or not 0 <= sample.index < len(windows):
        raise DataError(sample.path, f"has {len(windows)} windows, not row {sample.index}; delete "
                                     "the file and run again to regenerate it")
    return windows[sample.index].copy()


_CACHE: dict[str, tuple[int, np.ndarray]] = {}  # file -> (modification time, windows)


def _read(file: Path) -> np.ndarray:
    """The (N, 128, 9) float32 windows of a data set file, read once per process."""
    import numpy as np

    try:
        stamp = file.stat().st_mtime_ns
        if str(file) not in _CACHE or _CACHE[str(file)][0] != stamp:
            with np.load(file) as npz:
                _CACHE[str(file)] = (stamp, npz["windows"].astype(np.float32))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(str(file), f"cannot be read ({exc}); delete it and run again to regenerate "
                                   "the synthetic IMU data") from exc
    return _CACHE[str(file)][1]


def _write(file: Path, spec: dict[str, Any]) -> None:
    """Generate every walk's windows and save them atomically as ``windows`` (N, 128, 9)."""
    import numpy as np

    from gaitrun.atomic import atomic_path

    windows = np.concatenate([walk_windows(spec["seed"], *key, count=spec["windows_per_walk"])
                              for key in _walk_keys(spec)])
    with atomic_path(file, suffix=".npz") as tmp:
        np.savez_compressed(tmp, windows=windows)


def walk_windows(seed: int, subject: int, condition: str, number: int, *, count: int) -> np.ndarray:
    """``count`` overlapping (128, 9) float32 windows of the walk ``<condition>-<number>``."""
    import numpy as np

    from gaitrun.data.synthetic import CONDITIONS, walk_setup

    walk = walk_setup(seed, subject, condition, number)
    rng = np.random.default_rng([seed, 11, subject, CONDITIONS.index(condition), number])
    cycle_s = walk.traits.cycle / FRAME_RATE * rng.normal(1, 0.04)  # this walk's cadence
    phase = rng.random() + np.arange((count + 1) * WINDOW // 2) / RATE / cycle_s
    signals = _sensor(walk, phase, cycle_s, rng, MOUNT_DEG[condition])
    starts = range(0, count * WINDOW // 2, WINDOW // 2)
    return np.stack([signals[s:s + WINDOW] for s in starts]).astype(np.float32)


def _sensor(walk: Walk, phase: np.ndarray, cycle_s: float, rng: np.random.Generator,
            mount_deg: float) -> np.ndarray:
    """The 9 noisy channels (T, 9) at the gait phases ``phase`` (cycles) of a walk."""
    import numpy as np

    cycle, stride = _cycle(walk)
    coeffs = _fourier(cycle)
    metres, rate = BODY_HEIGHT * walk.traits.height, 1.0 / cycle_s  # body heights -> m, cycles/s
    acc = metres * rate**2 * _evaluate(coeffs[:, :3], phase, order=2)
    # the pelvis vaults over the stance leg: it slows down as it rises (v dv = -g dz)
    acc[:, 0] -= GRAVITY / stride * _evaluate(coeffs[:, 2:3], phase, order=1)[:, 0]  # (m/s^2: units cancel)
    angles = _evaluate(coeffs[:, 3:], phase, order=0)  # roll, pitch, yaw
    gyro = rate * _evaluate(coeffs[:, 3:], phase, order=1)
    mount = _rotation(np.radians(rng.normal(0, mount_deg, 3)))
    to_sensor = mount.T @ np.transpose(_rotations(angles), (0, 2, 1))  # (T, 3, 3): world -> sensor
    body = np.einsum("tij,tj->ti", to_sensor, acc) / GRAVITY
    total = body + to_sensor[:, :, 2]  # + gravity: the specific force of standing still is 1 g up
    gyro = gyro @ mount  # small angles: body rates, seen in the tilted sensor axes
    # one accelerometer: body and total acceleration share its noise and bias
    acc_err = rng.normal(0, ACC_BIAS, 3) + rng.normal(0, ACC_NOISE, body.shape)
    gyro_err = rng.normal(0, GYRO_BIAS, 3) + rng.normal(0, GYRO_NOISE, gyro.shape)
    return np.concatenate([body + acc_err, gyro + gyro_err, total + acc_err], axis=1)


def _cycle(walk: Walk) -> tuple[np.ndarray, float]:
    """One gait cycle of the pelvis, (PHASES, 6): x, y, z (body heights), roll, pitch, yaw
    (radians); and the stride (body heights per cycle)."""
    import numpy as np

    from gaitrun.data.synthetic import body

    grid = np.arange(PHASES) / PHASES
    marks = np.array([_landmarks(body(walk, p)) for p in grid])  # (PHASES, 10), see _landmarks
    pelvis, neck, right, left = marks[:, 0:3], marks[:, 3:6], marks[:, 6:8], marks[:, 8:10]
    sway = -0.5 * walk.traits.step_width * np.sin(2 * np.pi * grid)  # towards the right leg in its stance
    lean = np.arctan2(neck[:, 0] - pelvis[:, 0], neck[:, 2] - pelvis[:, 2])
    roll = 0.5 * (right[:, 1] - left[:, 1])  # the pelvis drops on the side of the lifted foot
    yaw = -0.35 * (right[:, 0] - left[:, 0])  # and turns forward with the leg that is ahead
    stride = 2 * float(np.ptp(right[:, 0]))  # two steps, each as long as the ankle's excursion
    return np.stack([pelvis[:, 0], sway, pelvis[:, 2], roll, lean, yaw], axis=1), stride


def _landmarks(shapes: Any) -> np.ndarray:
    """Pelvis xyz, neck xyz, then per leg (right, left) ankle x and sole height, from ``body()``.

    ``shapes.torso`` lists slices top down, the pelvis last; ``shapes.capsules`` holds the neck,
    then six limbs per side, right (y < 0) first: thigh, shank (knee -> ankle), foot (heel -> toe) ...
    """
    import numpy as np

    feet = []
    for i in (0, 1):
        (_, ankle, *_), (heel, toe, *_) = shapes.capsules[2 + 6 * i], shapes.capsules[3 + 6 * i]
        feet += [ankle[0], min(heel[2], toe[2])]
    return np.concatenate([shapes.torso[-1][0], shapes.torso[0][0], feet])


def _fourier(cycle: np.ndarray) -> np.ndarray:
    """The first ``HARMONICS`` complex Fourier coefficients of each column of a cycle."""
    import numpy as np

    return np.fft.rfft(cycle, axis=0)[: HARMONICS + 1] / len(cycle)


def _evaluate(coeffs: np.ndarray, phase: np.ndarray, *, order: int) -> np.ndarray:
    """The ``order``-th derivative (per cycle) of the Fourier series ``coeffs`` at ``phase``."""
    import numpy as np

    h = np.arange(len(coeffs))
    weights = np.where(h == 0, 1.0, 2.0)[:, None] * coeffs * (2j * np.pi * h[:, None]) ** order
    return np.real(np.exp(2j * np.pi * np.outer(phase, h)) @ weights)


def _rotation(angles: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) for roll, pitch, yaw (about x, y, z), applied in that order."""
    return _rotations(angles[None])[0]


def _rotations(angles: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) = Rz(yaw) Ry(pitch) Rx(roll) for angles (T, 3)."""
    import numpy as np

    (cr, cp, cy), (sr, sp, sy) = np.cos(angles).T, np.sin(angles).T
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
        np.stack([-sp, cp * sr, cp * cr], -1)], axis=1)
