"""`gaitrun serve`: a real server (the CLI in a subprocess, uvicorn on 127.0.0.1) over HTTP,
against two tiny real runs: a digits classifier and a GaitSet embedding model, both exported
to ONNX. Outputs are compared with an in-process ONNX Runtime session on the same inputs."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import BASE_RECIPE

from gaitrun.cli import main

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
FAST = ["--set", "data.max_samples=300", "--set", "train.epochs=1", "--set", "cv.folds=2",
        "--set", "deploy={target: onnx, batch_sizes: [1], bench: {warmup: 1, iterations: 2}}"]
GAIT_RECIPE = textwrap.dedent("""\
    name: gait_serve
    seed: 3
    data:
      adapter: synthetic_gait
      params: {subjects: 6, views: [90], walks: {nm: 3}, frames: 12, size: [32, 32], root: ROOT}
      modality: silhouette
      clip: {frames: 6, size: [16, 12]}
    model: {arch: gaitset, params: {width: 0.125, bins: [1, 2]}}
    train:
      optimizer: {name: adam, lr: 0.002}
      loss: {name: triplet_batch_all, margin: 0.2}
      batch_size: 8
      epochs: 1
    cv: {scheme: gait_protocol, train_subjects: 4, gallery: [nm-01, nm-02]}
    evaluate:
      metrics: []
      knn: {k: 1, protocol: none, exclude_identical_view: false, per: sequence}
    deploy: {target: onnx, batch_sizes: [1], bench: {warmup: 1, iterations: 2}}
    """)


def _run(recipe: Path, artifacts: Path, *extra: str) -> Path:
    assert main(["run", str(recipe), "--artifacts", str(artifacts), "--quiet", *extra]) == 0
    return next(p for p in artifacts.glob("*/*") if (p / "export" / "export.json").is_file())


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    (root / "recipe.yaml").write_text(BASE_RECIPE)
    return _run(root / "recipe.yaml", root / "artifacts", *FAST)


@pytest.fixture(scope="module")
def gait_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gait")
    (root / "recipe.yaml").write_text(GAIT_RECIPE.replace("ROOT", str(root / "walks")))
    return _run(root / "recipe.yaml", root / "artifacts")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(run: Path, *flags: str, log: list[str] | None = None):
    """``gaitrun serve RUN`` in a subprocess on a free loopback port; yields an httpx client.
    ``log`` receives the server's stderr lines when it has stopped."""
    port = _free_port()
    exe = Path(sys.executable).parent / "gaitrun"
    proc = subprocess.Popen([str(exe), "serve", str(run), "--host", HOST, "--port", str(port), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        assert "Traceback" not in err, err
        if log is not None:
            log.extend(err.splitlines())


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=True)
    return buf.getvalue()


@functools.lru_cache(maxsize=4)
def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ort(run: Path, x: np.ndarray) -> np.ndarray:
    """The exported model's outputs in this process."""
    return _session(run / "export" / "model.fp32.onnx").run(None, {"input": x})[0]


def _metric(client: httpx.Client, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{{want}}} " if want else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def digits(digits_run):
    with server(digits_run, "--max-body-mb", "1", "--max-wait-ms", "5", "--drift-window", "20") as client:
        yield client


# --- classifier ------------------------------------------------------------------------------

def test_model_description(digits, digits_run):
    info = digits.get("/v1/model").json()
    serving = json.loads((digits_run / "export" / "serving.json").read_text())
    assert info["run_id"] == digits_run.name and info["recipe_hash"] == digits_run.name.rsplit("-", 1)[1]
    assert info["input_shape"] == [8, 8, 3] and info["input_name"] == "input"
    assert info["labels"] == serving["labels"] == [str(d) for d in range(10)]
    assert (info["precision"], info["output"]) == ("fp32", "class scores")
    assert info["runtime"].startswith("onnxruntime")


def test_predictions_equal_in_process_onnxruntime(digits, digits_run):
    x = np.random.default_rng(0).random((5, 8, 8, 3), dtype=np.float32)
    expected = _ort(digits_run, x)
    for response in (digits.post("/v1/predict", content=_npy(x), headers={"content-type": "application/x-npy"}),
                     digits.post("/v1/predict", json={"inputs": x.tolist()})):
        assert response.status_code == 200, response.text
        preds = response.json()["predictions"]
        np.testing.assert_allclose([p["scores"] for p in preds], expected, rtol=0, atol=1e-6)
        assert [p["index"] for p in preds] == expected.argmax(-1).tolist()
        assert [p["label"] for p in preds] == [str(i) for i in expected.argmax(-1)]


def test_raw_png_goes_through_the_training_preprocessing(digits, digits_run, tmp_path):
    import cv2
    from sklearn.datasets import load_digits

    from gaitrun.data.raw_inputs import model_inputs

    image = np.rint(load_digits().images[3] * 255 / 16).astype(np.uint8)
    png = cv2.imencode(".png", image)[1].tobytes()
    expected = _ort(digits_run, np.stack(model_inputs(np.repeat(image[..., None], 3, -1), modality="rgb", kind="image",
                                                 frames=1, size=(8, 8))))
    for response in (digits.post("/v1/predict", content=png, headers={"content-type": "image/png"}),
                     digits.post("/v1/predict", files={"frame": ("d.png", png, "image/png")})):
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(response.json()["predictions"][0]["scores"], expected[0], atol=1e-6)


def _chunks(data: bytes):
    for i in range(0, len(data), 65536):
        yield data[i:i + 65536]


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + chunk(b"IEND", b""))


BAD = {
    "garbage bytes": ("application/x-npy", b"\x93NUMPY garbage \x00\x01\x02"),
    "wrong shape": ("application/x-npy", _npy(np.zeros((2, 8, 8), np.float32))),
    "wrong dtype": ("application/x-npy", _npy(np.zeros((2, 8, 8, 3), np.float64))),
    "object array": ("application/x-npy", _npy(np.array([{"a": 1}, None], dtype=object))),
    "npz archive": ("application/x-npy", (lambda b: (np.savez(b, x=np.zeros((1, 8, 8, 3), np.float32)), b.getvalue())[1])(io.BytesIO())),
    "empty npy": ("application/x-npy", b""),
    "empty json": ("application/json", b""),
    "invalid json": ("application/json", b'{"inputs": [1, 2'),
    "json strings": ("application/json", json.dumps({"inputs": [[[["1.5"] * 3] * 8] * 8]}).encode()),
    "json booleans": ("application/json", json.dumps({"inputs": [[[[True] * 3] * 8] * 8]}).encode()),
    "json null": ("application/json", json.dumps({"inputs": [[[[None] * 3] * 8] * 8]}).encode()),
    "json ragged": ("application/json", b'{"inputs": [[1, 2], [3]]}'),
    "json without inputs": ("application/json", b'{"x": []}'),
    "json NaN": ("application/json", json.dumps({"inputs": [[[[float("nan")] * 3] * 8] * 8]}).encode()),
    "npy infinity": ("application/x-npy", _npy(np.full((1, 8, 8, 3), np.inf, np.float32))),
    "deep json": ("application/json", b'{"inputs": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
    "bad zip": ("application/zip", b"PK\x03\x04 not really"),
    "bad png": ("image/png", b"\x89PNG\r\n\x1a\n truncated"),
    "png bomb": ("image/png", _png_claiming(30000, 30000)),
    "unknown type": ("application/octet-stream", b"abc"),
    "oversize": ("application/x-npy", b"\0" * (2 * 2**20)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_4xx_json_and_server_stays_healthy(digits, case):
    content_type, body = BAD[case]
    response = digits.post("/v1/predict", content=body, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    error = response.json()["error"]
    assert "expected" in error or "send one of" in error, error
    assert digits.get("/healthz").status_code == 200
    ok = digits.post("/v1/predict", json={"inputs": np.zeros((1, 8, 8, 3)).tolist()})
    assert ok.status_code == 200


def test_chunked_oversize_body_is_refused_while_streaming(digits):
    response = digits.post("/v1/predict", content=_chunks(b"\0" * (3 * 2**20)),
                           headers={"content-type": "application/x-npy"})
    assert response.status_code == 413 and "at most 1 MB" in response.json()["error"]
    assert digits.get("/healthz").status_code == 200


def test_classifier_has_no_gallery(digits):
    response = digits.post("/v1/identify", json={"inputs": np.zeros((1, 8, 8, 3)).tolist()})
    assert response.status_code == 400 and "embedding" in response.json()["error"]


def test_concurrent_clients_get_no_errors_and_are_batched(digits, digits_run):
    runs_before = _metric(digits, "gaitrun_batch_size_count")
    rows_before = _metric(digits, "gaitrun_batch_size_sum")
    rng = np.random.default_rng(1)
    inputs = [rng.random((int(rng.integers(1, 4)), 8, 8, 3), dtype=np.float32) for _ in range(256)]

    def call(x: np.ndarray) -> tuple[int, np.ndarray]:
        r = digits.post("/v1/predict", content=_npy(x), headers={"content-type": "application/x-npy"})
        return r.status_code, np.asarray([p["scores"] for p in r.json()["predictions"]])

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(call, inputs))
    assert [code for code, _ in results] == [200] * len(inputs)
    for x, (_, scores) in zip(inputs, results, strict=True):
        np.testing.assert_allclose(scores, _ort(digits_run, x), atol=1e-5)
    runs = _metric(digits, "gaitrun_batch_size_count") - runs_before
    assert _metric(digits, "gaitrun_batch_size_sum") - rows_before == sum(len(x) for x in inputs)
    assert runs < len(inputs), "concurrent requests were never batched together"


def test_metrics_count_requests(digits):
    before_ok = _metric(digits, "gaitrun_requests_total", endpoint="/v1/predict", status="200")
    before_bad = _metric(digits, "gaitrun_requests_total", endpoint="/v1/predict", status="400")
    for _ in range(3):
        digits.post("/v1/predict", json={"inputs": np.zeros((2, 8, 8, 3)).tolist()})
    digits.post("/v1/predict", json={"inputs": "nope"})
    assert _metric(digits, "gaitrun_requests_total", endpoint="/v1/predict", status="200") == before_ok + 3
    assert _metric(digits, "gaitrun_requests_total", endpoint="/v1/predict", status="400") == before_bad + 1
    text = digits.get("/metrics").text
    assert 'gaitrun_request_latency_seconds_bucket{endpoint="/v1/predict",le="+Inf"}' in text
    assert "gaitrun_predicted_class_total{label=" in text


def test_drift_alert_crosses_the_threshold(digits):
    """The window holds the last 20 inputs: 20 training-like images, then 20 brighter inputs."""
    import cv2
    from sklearn.datasets import load_digits

    for image in np.rint(load_digits().images[:20] * 255 / 16).astype(np.uint8):  # as a camera sends them
        png = cv2.imencode(".png", image)[1].tobytes()
        assert digits.post("/v1/predict", content=png, headers={"content-type": "image/png"}).status_code == 200
    calm = _metric(digits, "gaitrun_drift_psi")
    assert 0 <= calm < 0.25 and _metric(digits, "gaitrun_drift_alert") == 0
    bright = np.clip(np.random.default_rng(2).random((20, 8, 8, 3)) + 0.5, 0, 1).astype(np.float32)
    digits.post("/v1/predict", content=_npy(bright), headers={"content-type": "application/x-npy"})
    assert _metric(digits, "gaitrun_drift_psi") > 0.25 and _metric(digits, "gaitrun_drift_alert") == 1
    assert _metric(digits, "gaitrun_drift_window_inputs") == 20


# --- embeddings and the gallery --------------------------------------------------------------

def _walk_zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for png in sorted(folder.glob("*.png")):
            z.write(png, png.name)
    return buf.getvalue()


def _walk_embedding(run: Path, folder: Path) -> np.ndarray:
    """What the server should compute for a walk folder, in process."""
    from gaitrun.data.raw_inputs import model_inputs
    from gaitrun.data.records import Sample
    from gaitrun.plugins.datasets import casia_b
    from gaitrun.serve.gallery import walk_embedding

    raw = casia_b.load(Sample(path=str(folder), label="x"), None)
    x = np.stack(model_inputs(raw, modality="silhouette", kind="frame_set", frames=6, size=(16, 12)))
    return walk_embedding(_ort(run, x.astype(np.float32)))


def _video(folder: Path, path: Path) -> np.ndarray:
    """Write ``folder``'s PNG frames as an MJPG video; returns the model inputs made from it in process."""
    import cv2

    from gaitrun.data.raw_inputs import model_inputs
    from gaitrun.data.records import Sample
    from gaitrun.plugins.datasets import video_folder

    frames = [cv2.imread(str(p)) for p in sorted(folder.glob("*.png"))]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    raw = video_folder.load(Sample(path=str(path), label="x"), video_folder.Params(root=str(path.parent)))
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in raw])
    return np.stack(model_inputs(grey, modality="silhouette", kind="frame_set", frames=6, size=(16, 12))).astype(np.float32)


def test_embeddings_and_video_upload_equal_in_process_onnxruntime(gait_run, tmp_path):
    x = np.random.default_rng(3).random((3, 6, 16, 12, 1), dtype=np.float32)
    video = tmp_path / "walk.avi"
    from_video = _video(gait_run.parents[2] / "walks" / "004" / "nm-01" / "090", video)
    log: list[str] = []
    with server(gait_run, "--gallery", "/proc/gaitrun-test/gallery.npz", log=log) as client:
        assert _metric(client, "gaitrun_drift_psi") == -1  # no input yet
        info = client.get("/v1/model").json()
        assert info["output"] == "embedding" and info["input_shape"] == [6, 16, 12, 1]
        response = client.post("/v1/predict", content=_npy(x), headers={"content-type": "application/x-npy"})
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(response.json()["embeddings"], _ort(gait_run, x), atol=1e-5)
        response = client.post("/v1/predict", content=video.read_bytes(), headers={"content-type": "video/x-msvideo"})
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(response.json()["embeddings"], _ort(gait_run, from_video), atol=1e-5)
        bad = client.post("/v1/predict", content=b"not a video", headers={"content-type": "video/mp4"})
        assert bad.status_code == 400 and "expected" in bad.json()["error"]
        unwritable = client.post("/v1/gallery/s1", content=_npy(x), headers={"content-type": "application/x-npy"})
        assert unwritable.status_code == 503 and "--gallery" in unwritable.json()["error"], unwritable.text
        assert client.get("/healthz").status_code == 200
    requests = [json.loads(line) for line in log if line.startswith("{")]  # one JSON line per request
    predicts = [(r["status"], r["rows"]) for r in requests if r["endpoint"] == "/v1/predict"]
    assert predicts == [(200, 3), (200, len(from_video)), (400, None)], requests
    assert all(r["client"] == HOST and r["ms"] >= 0 and r["method"] == "POST" for r in requests if r["rows"])


def test_gallery_enrol_identify_delete_and_survive_restart(gait_run):
    walks = gait_run.parents[2] / "walks"
    walk = {s: walks / s / "nm-01" / "090" for s in ("001", "002", "003")}
    probe = _walk_embedding(gait_run, walk["001"])
    with server(gait_run, "--quiet") as client:
        r = client.post("/v1/gallery/s001", content=_walk_zip(walk["001"]), headers={"content-type": "application/zip"})
        assert r.status_code == 200 and r.json()["walks"] == 1, r.text
        files = [("frames", (p.name, p.read_bytes(), "image/png")) for p in sorted(walk["002"].glob("*.png"))]
        assert client.post("/v1/gallery/s002", files=files).status_code == 200
        assert client.post("/v1/gallery/s003", content=_walk_zip(walk["003"]),
                           headers={"content-type": "application/zip"}).status_code == 200
        assert client.post("/v1/gallery/bad name!", content=b"x").status_code in (400, 404)
        first = client.post("/v1/identify?k=2", content=_walk_zip(walk["001"]),
                            headers={"content-type": "application/zip"}).json()["matches"]
        assert [m["subject"] for m in first][0] == "s001" and first[0]["distance"] < 1e-3 and len(first) == 2
        from gaitrun.evaluate.knn import distances

        expected = distances(probe[None], np.stack([_walk_embedding(gait_run, walk[s]) for s in ("002", "003")]),
                             "euclidean")[0]
        assert first[1]["distance"] == pytest.approx(float(expected.min()), abs=1e-4)
        assert client.delete("/v1/gallery/s003").status_code == 200
        assert client.delete("/v1/gallery/s003").status_code == 404
    with np.load(gait_run / "serve" / "gallery.npz", allow_pickle=False) as f:
        assert sorted(f["subjects"].tolist()) == ["s001", "s002"]
    with server(gait_run, "--quiet") as client:  # a restart reads the gallery back
        assert client.get("/v1/gallery").json() == {"subjects": ["s001", "s002"], "walks": 2}
        again = client.post("/v1/identify?k=5", content=_walk_zip(walk["001"]),
                            headers={"content-type": "application/zip"}).json()["matches"]
        assert [m["subject"] for m in again] == [m["subject"] for m in first]
        assert again[0]["distance"] == pytest.approx(first[0]["distance"], abs=1e-6)
        assert client.delete("/v1/gallery/s002").status_code == 200
    with server(gait_run, "--quiet") as client:
        assert client.get("/v1/gallery").json() == {"subjects": ["s001"], "walks": 1}


# --- command line ----------------------------------------------------------------------------

def test_serve_refuses_what_it_cannot_serve(run_cli, tmp_path, digits_run):
    code, _, err = run_cli("serve", tmp_path)
    assert code == 2 and "not a run folder" not in err and "manifest.json is missing" in err
    code, _, err = run_cli("serve", digits_run, "--port", "99999")
    assert code == 2 and "--port" in err and "\n" == err[-1] and err.count("\n") == 1
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        code, _, err = run_cli("serve", digits_run, "--port", str(taken.getsockname()[1]))
    assert code == 2 and "cannot listen on" in err


# --- TFLite and inertial CSV -----------------------------------------------------------------

HAR_RECIPE = textwrap.dedent("""\
    name: har_serve
    seed: 4
    data:
      adapter: synthetic_imu
      params: {subjects: 3, walks: {nm: 2}, windows_per_walk: 2}
      modality: inertial
      clip: {frames: 64, size: [1, 9]}
    model: {arch: har_cnn1d, params: {width: 0.25}}
    train: {batch_size: 16, epochs: 1}
    cv: {scheme: holdout, fraction: 0.3, group_by: sequence}
    deploy: {target: tflite, precision: fp32, batch_sizes: [1], bench: {warmup: 1, iterations: 2}}
    """)


def test_tflite_export_and_inertial_csv(tmp_path):
    from gaitrun.data.raw_inputs import model_inputs
    from gaitrun.export.parity import run_tflite

    (tmp_path / "har.yaml").write_text(HAR_RECIPE)
    run = _run(tmp_path / "har.yaml", tmp_path / "artifacts")
    window = np.random.default_rng(5).standard_normal((150, 9)).astype(np.float32)
    csv = "ax,ay,az,gx,gy,gz,tx,ty,tz\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in window)
    x = np.stack(model_inputs(window, modality="inertial", kind="inertial", frames=64, size=(1, 9)))
    expected = run_tflite(run / "export" / "model.fp32.tflite", x)
    with server(run, "--quiet") as client:
        assert client.get("/v1/model").json()["runtime"].startswith("tflite")
        response = client.post("/v1/predict", content=csv, headers={"content-type": "text/csv"})
        assert response.status_code == 200, response.text
        np.testing.assert_allclose([p["scores"] for p in response.json()["predictions"]], expected, atol=1e-6)
        assert len(expected) == 3  # 150 steps: windows of 64 at 0 and 64, and 86-149 to reach the last step
        for bad in ("1,2,3\n4,5,6", "a,b\nc,d", "nan," * 8 + "nan"):
            r = client.post("/v1/predict", content=bad, headers={"content-type": "text/csv"})
            assert r.status_code == 400 and "expected" in r.json()["error"], r.text
        png = client.post("/v1/predict", content=b"\x89PNG", headers={"content-type": "video/mp4"})
        assert png.status_code == 415
