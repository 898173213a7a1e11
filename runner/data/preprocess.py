"""Per-sample preprocessing: raw arrays from a dataset adapter -> model inputs.

Runs once per sample before caching (NumPy + OpenCV)::

    raw sample --to_clip--> clip (T, H, W, C) float32 --> the clip store (``store.py``);
    the tf.data pipeline (``pipeline.py``) cuts windows of ``frames`` and lays them out

What adapters return (``raw``), by modality:

==============  =======================================================================
silhouette      (T, H, W) uint8 0/255 (or one (H, W) frame); each frame is cropped to
                the body and scaled to ``size`` (``crop_silhouette``); frames without a
                body are dropped. Values 0..1, C = 1.
rgb             (T, H, W, 3) uint8, or one (H, W, 3) image; resized to ``size`` (aspect
                not kept). Values 0..1, C = 3.
optical_flow    uint8 frames (T, H, W) or (T, H, W, 3): resized to ``size``, then
                Farneback flow between consecutive frames (T - 1 fields); or flow already
                computed, (T, H, W, 2) floating in pixels (TUM-GAID), resized to ``size``
                with its vectors rescaled. Values: pixels per frame at ``size``, C = 2.
inertial        (T, C) float sensor window, kept as is.
==============  =======================================================================

Layouts (an architecture's ``INPUT_KIND``), for a window of T time steps:
``image`` (H, W, C) -- a still image, or the temporal mean of a window (for silhouettes the
gait energy image); ``stack2d`` (H, W, 2T) -- optical flow only, x/y interleaved per frame
(x0, y0, x1, y1, ... as Embedded-Gait's 2D CNN); ``clip3d``, ``frame_set``, ``sequence``
(T, H, W, C); ``inertial`` (T, C).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gaitrun.errors import DataError

CHANNELS = {"silhouette": 1, "optical_flow": 2, "rgb": 3}
# Farneback settings for small gait crops (a 9 px window keeps limbs apart at 64 px).
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=9, iterations=3, poly_n=5, poly_sigma=1.1, flags=0)
FOREGROUND = 127  # a silhouette pixel above this value belongs to the body


def crop_silhouette(frame: np.ndarray, size: tuple[int, int] = (64, 44)) -> tuple[np.ndarray, bool]:
    """Crop a 0/255 silhouette to its body, OpenGait-style; returns (image, found).

    The body's bounding box is scaled to height ``H`` keeping its aspect, centred
    horizontally on the body's column mass centre and padded/cut to width ``W`` (the same
    as GaitSet's 64 x 64 crop cut to 64 x 44). ``image`` is float32 (H, W) in 0..1; a frame
    without body pixels gives zeros and ``found=False``.
    """
    import cv2

    height, width = size
    body = frame > FOREGROUND
    rows, cols = np.flatnonzero(body.any(axis=1)), np.flatnonzero(body.any(axis=0))
    if rows.size == 0:
        return np.zeros(size, np.float32), False
    crop = frame[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255.0
    scaled_width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    crop = cv2.resize(crop, (scaled_width, height), interpolation=cv2.INTER_LINEAR)
    mass = crop.sum(axis=0)
    total = float(mass.sum())
    centre = round(float(mass @ np.arange(scaled_width)) / total) if total > 0 else scaled_width // 2
    first = centre - width // 2  # the crop's column shown in the output's first column
    out = np.zeros(size, np.float32)
    lo, hi = max(first, 0), min(first + width, scaled_width)
    if hi > lo:
        out[:, lo - first:hi - first] = crop[:, lo:hi]
    return np.clip(out, 0.0, 1.0, out=out), True


def optical_flow(frames: np.ndarray) -> np.ndarray:
    """Farneback flow between consecutive grey frames (T, H, W) uint8 -> (T-1, H, W, 2) float32.

    Channel 0 is the x (rightward) and channel 1 the y (downward) displacement in pixels.
    """
    import cv2

    pairs = zip(frames[:-1], frames[1:], strict=True)
    flows = [cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK) for a, b in pairs]
    if not flows:
        return np.zeros((0, *frames.shape[1:3], 2), np.float32)
    return np.stack(flows).astype(np.float32)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize flow fields (T, h, w, 2) to (T, H, W, 2), scaling the vectors to the new pixels."""
    import cv2

    height, width = size
    if flow.shape[1:3] == (height, width):
        return flow.astype(np.float32)
    scale = np.array([width / flow.shape[2], height / flow.shape[1]], np.float32)
    resized = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in flow])
    return resized.astype(np.float32) * scale


def _resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize every frame of (T, h, w[, C]) to (T, H, W[, C]) with area interpolation."""
    import cv2

    return np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in frames])


def _expect(raw: np.ndarray, ok: bool, what: str, source: str) -> None:
    if not ok:
        raise DataError(source, f"expected {what}, got an array of shape {raw.shape} and dtype "
                                f"{raw.dtype}; check the dataset adapter's output for this sample")


def _silhouette_clip(raw: np.ndarray, size: tuple[int, int], source: str) -> np.ndarray:
    _expect(raw, raw.dtype == np.uint8 and raw.ndim in (2, 3), "0/255 uint8 silhouettes (T, H, W)", source)
    crops = [crop_silhouette(frame, size) for frame in raw.reshape(-1, *raw.shape[-2:])]
    kept = [image for image, found in crops if found]
    if not kept:
        raise DataError(source, "no frame holds a silhouette (pixels > 127); silhouettes must be "
                                "white (255) bodies on black (0)")
    return np.stack(kept)[..., None]


def _rgb_clip(raw: np.ndarray, size: tuple[int, int], source: str) -> np.ndarray:
    ok = raw.dtype == np.uint8 and raw.ndim in (3, 4) and raw.shape[-1] == 3
    _expect(raw, ok, "uint8 colour frames (T, H, W, 3) or an image (H, W, 3)", source)
    frames = raw.reshape(-1, *raw.shape[-3:])
    return _resize_frames(frames, size).astype(np.float32) / 255.0


def _flow_clip(raw: np.ndarray, size: tuple[int, int], source: str) -> np.ndarray:
    if np.issubdtype(raw.dtype, np.floating):
        _expect(raw, raw.ndim == 4 and raw.shape[-1] == 2, "flow (T, H, W, 2) in pixels", source)
        return resize_flow(raw, size)
    frames_ok = raw.ndim == 3 or (raw.ndim == 4 and raw.shape[-1] == 3)
    _expect(raw, raw.dtype == np.uint8 and frames_ok and len(raw) >= 2,
            "at least 2 uint8 frames (T, H, W) or (T, H, W, 3) to compute optical flow", source)
    if raw.ndim == 4:
        import cv2

        raw = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in raw])
    return optical_flow(_resize_frames(raw, size))


def _inertial_clip(raw: np.ndarray, size: tuple[int, int], source: str) -> np.ndarray:
    _expect(raw, raw.ndim == 2 and np.issubdtype(raw.dtype, np.number), "a sensor window (T, C)", source)
    return raw.astype(np.float32)


CLIP_MAKERS: dict[str, Callable[[np.ndarray, tuple[int, int], str], np.ndarray]] = {
    "silhouette": _silhouette_clip, "rgb": _rgb_clip,
    "optical_flow": _flow_clip, "inertial": _inertial_clip,
}


def to_clip(raw: np.ndarray, *, modality: str, size: tuple[int, int], source: str = "sample") -> np.ndarray:
    """A raw sample as a float32 clip: (T, H, W, C) for image modalities, (T, C) for inertial.

    ``source`` (the sample's path) names the sample in the ``DataError`` a bad array raises.
    """
    if modality not in CLIP_MAKERS:
        raise ValueError(f"unknown modality {modality!r}; known: {', '.join(CLIP_MAKERS)}")
    return CLIP_MAKERS[modality](np.asarray(raw), tuple(size), source)


def clip_windows(n_frames: int, length: int, stride: int) -> list[int]:
    """Start frames of the evaluation windows of ``length`` frames: ``stride`` apart, plus one
    ending at the last frame, so that the windows cover every frame of the sequence (a sequence
    is judged on all its frames, as GaitSet and OpenGait evaluate). A sequence no longer than
    ``length`` gives one window at 0 (the pipeline fills it as ``data.clip.pad`` says).
    """
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length} and {stride}")
    starts = list(range(0, max(n_frames - length, 0) + 1, stride))
    if n_frames - length > starts[-1]:
        starts.append(n_frames - length)
    return starts


def layout_shape(kind: str, frames: int, size: tuple[int, int], channels: int) -> tuple[int, ...]:
    """The shape of one model input in layout ``kind`` (what the pipeline's windows have).

    ``frames`` counts model time steps (for optical flow: flow fields, one fewer than the
    video frames they come from); ``channels`` is ``CHANNELS[modality]`` or the sensor count.
    """
    height, width = size
    shapes = {"image": (height, width, channels), "stack2d": (height, width, frames * channels),
              "clip3d": (frames, height, width, channels), "frame_set": (frames, height, width, channels),
              "sequence": (frames, height, width, channels), "inertial": (frames, channels)}
    if kind not in shapes:
        raise ValueError(f"unknown layout {kind!r}; known: {', '.join(shapes)}")
    if kind == "stack2d" and channels != 2:
        raise ValueError(f"layout 'stack2d' holds optical flow (2 channels), got {channels}")
    return shapes[kind]
