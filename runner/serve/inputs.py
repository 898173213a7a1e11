"""Request bodies -> float32 model inputs, with a clear 4xx for everything else.

Tensors: ``application/x-npy`` (one ``.npy`` array, read with ``allow_pickle=False``) or
``application/json`` ``{"inputs": [...]}``, shape ``(N, *input_shape)``, finite numbers only.

Raw inputs go through the training preprocessing (``gaitrun.data.raw_inputs``) after
the dataset adapters' own readers decode them:

- PNG frames, as ``application/zip`` or ``multipart/form-data`` files (frames in file-name
  order): read as CASIA-B's ``load`` reads a sequence folder (grey) or as ``image_folder``'s
  ``load`` reads an image (colour modalities); ``image/png`` is one image or frame;
- a video (``video/*`` or a multipart file .mp4/.avi/.mkv/.mov): ``video_folder``'s ``load``;
- an inertial window (``text/csv``): one row per time step, one column per sensor channel,
  an optional header row.

A raw input gives one model input per evaluation window (``data.clip.frames`` and
``data.clip.stride`` of the run's recipe).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

VIDEO_SUFFIXES = (".avi", ".mkv", ".mov", ".mp4")
MAX_FRAMES = 2000  # PNG frames per request
UNZIP_FACTOR = 8  # a zip may expand to this many times the body limit
MAX_DECODED = 1 << 30  # bytes of decoded video frames per request


class InputError(Exception):
    """A request the server refuses: ``status`` (4xx) and a message saying what was expected."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Spec:
    """What a request must become: the model's input shape, and the data settings of raw inputs."""

    input_shape: tuple[int, ...]
    modality: str
    layout: str
    frames: int
    size: tuple[int, int]
    stride: int | None
    max_unzipped: int
    video_max_frames: int | None = None

    @property
    def expected(self) -> str:
        return f"float32 array of shape (N, {', '.join(map(str, self.input_shape))})"


def check_tensor(x: np.ndarray, spec: Spec) -> np.ndarray:
    if x.dtype != np.float32:
        raise InputError(f"dtype {x.dtype}: expected a {spec.expected}")
    if x.ndim != len(spec.input_shape) + 1 or tuple(x.shape[1:]) != spec.input_shape or len(x) == 0:
        raise InputError(f"shape {tuple(x.shape)}: expected a {spec.expected} with N >= 1")
    if not np.isfinite(x).all():
        raise InputError(f"the input holds NaN or infinite values: expected finite numbers ({spec.expected})")
    return x


def from_npy(body: bytes, spec: Spec) -> np.ndarray:
    if not body:
        raise InputError(f"empty body: expected a .npy file holding a {spec.expected}")
    if body.startswith(b"PK"):
        raise InputError(f"an .npz archive: expected a single .npy array, a {spec.expected}")
    try:
        x = _npy_view(body)
    except (ValueError, OSError, EOFError, TypeError) as exc:
        raise InputError(f"not a readable .npy array ({_short(exc)}): expected a .npy file holding a "
                         f"{spec.expected} (object arrays are refused)") from exc
    return check_tensor(x, spec)


def _npy_view(body: bytes) -> np.ndarray:
    """The array of a .npy body without copying its data (``np.load`` copies every byte: for a
    25x60x60x2 clip, 720 kB per request on the server's event loop). Read-only, like the body."""
    stream = io.BytesIO(body)
    version = np.lib.format.read_magic(stream)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)  # 2.0 and 3.0 (utf-8) headers: ASCII here
    shape, fortran, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("object arrays cannot be loaded when allow_pickle=False")
    count = int(np.prod(shape, dtype=np.int64))
    if len(body) - stream.tell() < count * dtype.itemsize:
        raise EOFError(f"the body holds fewer bytes than its header's shape {shape} needs")
    x = np.frombuffer(body, dtype=dtype, count=count, offset=stream.tell())
    return x.reshape(shape[::-1]).T if fortran else x.reshape(shape)


def from_json(body: bytes, spec: Spec) -> np.ndarray:
    expected = f'JSON {{"inputs": nested lists of numbers}} forming a {spec.expected}'
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not valid JSON ({_short(exc)}): expected {expected}") from exc
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise InputError(f"no 'inputs' key: expected {expected}")
    try:
        x = np.asarray(doc["inputs"])
    except (ValueError, RecursionError) as exc:
        raise InputError(f"'inputs' is ragged ({_short(exc)}): expected {expected}") from exc
    if x.dtype.kind not in "iuf" or _has_booleans(doc["inputs"]):
        raise InputError(f"'inputs' holds non-numbers (strings, booleans or null): expected {expected}")
    return check_tensor(x.astype(np.float32), spec)


def _has_booleans(numbers: Any) -> bool:
    """NumPy reads [true, 1.5] as [1.0, 1.5]; the JSON text of numbers-only lists has no true/false."""
    text = json.dumps(numbers)
    return "true" in text or "false" in text


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


# --- raw inputs --------------------------------------------------------------------------------

def windows(raw: np.ndarray, spec: Spec) -> np.ndarray:
    """Raw adapter output -> (windows, *input_shape) through the training preprocessing."""
    from ..data.raw_inputs import model_inputs

    try:
        x = model_inputs(raw, modality=spec.modality, kind=spec.layout, frames=spec.frames, size=spec.size,
                         stride=spec.stride, source="request")
    except (DataError, ValueError) as exc:
        raise InputError(f"cannot preprocess the upload: {getattr(exc, 'reason', exc)}") from exc
    if tuple(x.shape[1:]) != spec.input_shape:
        raise InputError(f"the upload preprocesses to inputs of shape {tuple(x.shape[1:])}, the model takes "
                         f"{spec.input_shape}; send {_raw_hint(spec)}")
    return check_tensor(x, spec)


def _raw_hint(spec: Spec) -> str:
    if spec.modality == "inertial":
        return f"a CSV of {spec.input_shape[-1]} sensor columns"
    return "frames of the modality the model was trained on"


def _read_frames(folder: Path, spec: Spec) -> np.ndarray:
    """PNG frames in ``folder`` as the dataset adapters read them."""
    from ..data.records import Sample
    from ..plugins.datasets import casia_b, image_folder

    if spec.modality in ("silhouette", "optical_flow"):
        return casia_b.load(Sample(path=str(folder), label="request"), None)
    params = image_folder.Params(root=str(folder))
    frames = [image_folder.load(Sample(path=str(p), label="request"), params) for p in sorted(folder.glob("*.png"))]
    if not frames or any(f.shape != frames[0].shape for f in frames):
        raise InputError("expected PNG frames of one size")
    return frames[0] if len(frames) == 1 and spec.layout == "image" else np.stack(frames)


def frames_input(files: list[tuple[str, bytes]], spec: Spec) -> np.ndarray:
    """Model inputs from PNG frames given as (file name, bytes), in file-name order."""
    pngs = sorted((n, b) for n, b in files if n.lower().endswith(".png"))
    if not pngs:
        raise InputError("no .png file in the upload: expected PNG frames (zip or multipart)")
    if len(pngs) > MAX_FRAMES:
        raise InputError(f"{len(pngs)} frames: at most {MAX_FRAMES} per request", status=413)
    import cv2

    with tempfile.TemporaryDirectory(prefix="gaitrun-serve-") as tmp:
        for i, (_, data) in enumerate(pngs):
            (Path(tmp) / f"{i:06d}.png").write_bytes(data)
        try:
            raw = _read_frames(Path(tmp), spec)
        except DataError as exc:
            raise InputError(f"cannot read the frames: {exc.reason.split(';')[0]}; expected PNG images") from exc
        except cv2.error as exc:  # e.g. a header claiming more pixels than OPENCV_IO_MAX_IMAGE_PIXELS
            raise InputError(f"cannot decode the frames ({_short(exc).strip()[:120]}); expected PNG images "
                             "of camera size") from exc
    return windows(raw, spec)


def zip_input(body: bytes, spec: Spec) -> np.ndarray:
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > spec.max_unzipped:
            raise InputError(f"the zip expands to more than {spec.max_unzipped} bytes", status=413)
        files = [(Path(m.filename).name, archive.read(m)) for m in members]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise InputError(f"not a readable zip ({_short(exc)}): expected a zip of PNG frames") from exc
    return frames_input(files, spec)


def video_input(data: bytes, suffix: str, spec: Spec) -> np.ndarray:
    from ..data.records import Sample
    from ..plugins.datasets import video_folder

    if spec.modality == "inertial":
        raise InputError("this model takes inertial windows: expected text/csv, not a video", status=415)
    with tempfile.TemporaryDirectory(prefix="gaitrun-serve-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        _check_video_size(path, spec)
        try:
            raw = video_folder.load(Sample(path=str(path), label="request"),
                                    video_folder.Params(root=tmp, max_frames=spec.video_max_frames))
        except DataError as exc:
            raise InputError(f"cannot decode the video: {exc.reason.split(';')[0]}; expected an "
                             "H.264 .mp4 or MJPG .avi") from exc
    if spec.modality == "silhouette":
        import cv2

        raw = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in raw])
    return windows(raw, spec)


def _check_video_size(path: Path, spec: Spec) -> None:
    """Refuse a video whose decoded frames would not fit ``MAX_DECODED`` bytes (a few MB of H.264
    can hold thousands of full-HD frames), from its container's frame count and size."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if spec.video_max_frames is not None:
            count = min(count, spec.video_max_frames)
        pixels = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) * int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if count * pixels * 3 > MAX_DECODED or count > MAX_FRAMES:
        raise InputError(f"the video holds {count} frames of {pixels} pixels: expected at most {MAX_FRAMES} "
                         f"frames and {MAX_DECODED >> 20} MB decoded; cut or downscale it", status=413)


def csv_input(body: bytes, spec: Spec) -> np.ndarray:
    if spec.modality != "inertial":
        raise InputError(f"this model takes {spec.modality} frames, not a CSV", status=415)
    try:
        rows = [line.split(",") for line in body.decode("utf-8").strip().splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text: expected a CSV of numbers") from exc
    if rows and not _numeric(rows[0]):
        rows = rows[1:]  # a header
    try:
        raw = np.asarray([[float(v) for v in r] for r in rows], np.float32)
    except ValueError as exc:
        raise InputError(f"not a table of numbers ({_short(exc)}): expected a CSV with one row per "
                         f"time step and {spec.input_shape[-1]} columns") from exc
    if raw.ndim != 2 or raw.shape[1] != spec.input_shape[-1] or not len(raw):
        raise InputError(f"a table of shape {raw.shape}: expected rows of {spec.input_shape[-1]} values")
    if not np.isfinite(raw).all():
        raise InputError("the CSV holds NaN or infinite values: expected finite numbers")
    return windows(raw, spec)


def _numeric(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def multipart_input(files: list[tuple[str, bytes]], spec: Spec) -> np.ndarray:
    names = [n.lower() for n, _ in files]
    videos = [i for i, n in enumerate(names) if n.endswith(VIDEO_SUFFIXES)]
    if videos:
        name, data = files[videos[0]]
        return video_input(data, Path(name).suffix.lower(), spec)
    csvs = [i for i, n in enumerate(names) if n.endswith(".csv")]
    if csvs:
        return csv_input(files[csvs[0]][1], spec)
    return frames_input(files, spec)


VIDEO_TYPES = {"video/mp4": ".mp4", "video/x-msvideo": ".avi", "video/avi": ".avi", "video/quicktime": ".mov",
               "video/x-matroska": ".mkv"}
ACCEPTED = ("application/x-npy", "application/json", "application/zip", "multipart/form-data", "image/png",
            "text/csv", *VIDEO_TYPES)


def decode(content_type: str, body: bytes, spec: Spec) -> np.ndarray:
    """The model inputs of a non-multipart body of ``content_type``."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-npy":
        return from_npy(body, spec)
    if kind == "application/json":
        return from_json(body, spec)
    if not body:
        raise InputError(f"empty body: expected {kind} content")
    if kind == "application/zip":
        return zip_input(body, spec)
    if kind == "image/png":
        return frames_input([("frame.png", body)], spec)
    if kind == "text/csv":
        return csv_input(body, spec)
    if kind in VIDEO_TYPES:
        return video_input(body, VIDEO_TYPES[kind], spec)
    raise InputError(f"Content-Type {kind or '(none)'} is not served: send one of {', '.join(ACCEPTED)}",
                     status=415)


def spec_for(model: Any, max_body: int) -> Spec:
    data = model.recipe.data
    video_max = getattr(data.params, "max_frames", None) if data.adapter == "video_folder" else None
    return Spec(input_shape=tuple(model.input_shape), modality=model.modality, layout=model.layout,
                frames=data.clip.frames, size=tuple(data.clip.size), stride=data.clip.stride,
                max_unzipped=max_body * UNZIP_FACTOR, video_max_frames=video_max)
