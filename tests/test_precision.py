"""Mixed precision: what ``train.mixed_precision`` means on a machine, casting models between
policies, and a run trained in bfloat16 that saves, prunes and exports float32 models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runner.cpu import cpu_flags
from runner.train import precision


@pytest.mark.parametrize(("setting", "has_gpu", "flags", "policy"), [
    (False, True, {"amx_bf16"}, "float32"),
    (True, False, set(), "mixed_float16"),
    ("float16", False, set(), "mixed_float16"),
    ("bfloat16", False, set(), "mixed_bfloat16"),
    ("auto", True, {"amx_bf16"}, "mixed_float16"),
    ("auto", False, {"avx512f", "amx_bf16"}, "mixed_bfloat16"),
    ("auto", False, {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
    ("auto", False, {"avx2", "avx512_vnni"}, "float32"),
])
def test_policy_name(setting, has_gpu, flags, policy):
    assert precision.policy_name(setting, has_gpu=has_gpu, flags=flags) == policy


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16 avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx2", "amx_bf16", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def _small_model():
    import keras

    inputs = keras.Input(shape=(12, 12, 3), name="input")
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(5, activation="softmax", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs)


def test_with_policy_keeps_weights_and_a_float32_output():
    import keras

    keras.utils.set_random_seed(3)
    keras.mixed_precision.set_global_policy("float32")
    try:
        full = _small_model()
        x = np.random.default_rng(0).random((4, 12, 12, 3), dtype=np.float32)
        bf16 = precision.with_policy(full, "mixed_bfloat16")
        assert bf16 is not full and precision.policy_of(bf16) == "mixed_bfloat16"
        assert bf16.get_layer("conv").compute_dtype == "bfloat16"
        assert bf16.get_layer("logits").dtype_policy.name == "float32"  # the softmax stays float32
        back = precision.with_policy(bf16, "float32")
        assert precision.policy_of(back) == "float32"
        assert precision.with_policy(back, "float32") is back
        for a, b, c in zip(full.get_weights(), bf16.get_weights(), back.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
        want = full.predict(x, verbose=0)
        np.testing.assert_array_equal(back.predict(x, verbose=0), want)
        got = bf16.predict(x, verbose=0)
        assert got.dtype == np.float32 and not np.array_equal(got, want)  # computed in bfloat16
        np.testing.assert_allclose(got, want, atol=0.02)
    finally:
        keras.mixed_precision.set_global_policy("float32")


RECIPE = """\
name: digits_bf16
seed: 5
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: none, max_samples: 400}
model: {arch: simple_cnn, params: {width: 0.5}}
train: {epochs: 8, batch_size: 32, optimizer: {name: adam, lr: 0.003}, mixed_precision: bfloat16}
cv: {scheme: stratified_kfold, folds: 2}
prune: {percentile: 30, scope: per_layer, finetune: {epochs: 1, lr: 0.001}}
deploy: {target: onnx, batch_sizes: [1], bench: {warmup: 0, iterations: 2}}
"""


@pytest.mark.slow
def test_a_run_trained_in_bfloat16_saves_prunes_and_exports_float32(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    exe = Path(sys.executable).parent / "gaitrun"
    done = subprocess.run([str(exe), "run", "r.yaml", "--quiet"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    run = next((tmp_path / "artifacts" / "digits_bf16").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    # every fold: clear_session() between folds resets Keras' policy, so each fit sets it again
    assert [f["training_precision"] for f in metrics["folds"]] == ["mixed_bfloat16"] * 2
    assert metrics["summary"]["mean"]["accuracy"] > 0.4  # learns (float32: 0.54; chance 0.1)
    check = (
        "import sys; from runner.keras_io import load_model\n"
        "for path in sys.argv[1:]:\n"
        "    m = load_model(path)\n"
        "    print(sorted({l.dtype_policy.name for l in m.layers if l.weights}))\n")
    models = [run / "folds" / "1" / "model.keras", run / "pruned" / "model.keras"]
    out = subprocess.run([sys.executable, "-c", check, *map(str, models)], capture_output=True, text=True,
                         timeout=300, cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:2] == ["['float32']", "['float32']"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert {s["name"]: s["status"] for s in manifest["stages"]}["export"] == "done"
    bench = json.loads((run / "bench.json").read_text())
    assert bench  # the float32 ONNX export runs in ONNX Runtime
