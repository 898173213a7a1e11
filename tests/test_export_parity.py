"""Parity scoring: reports, the max_drop gate, a broken export caught, and the saved_model target."""

from __future__ import annotations

import numpy as np
import pytest
from test_export_models import TrainedModels, keras_outputs, make_ctx

from gaitrun.errors import StageError
from gaitrun.export.parity import check_max_drop, parity_report, score_backend
from gaitrun.plugins.exporters import onnx as onnx_exporter
from gaitrun.plugins.exporters import saved_model


@pytest.fixture(scope="module")
def data():
    return TrainedModels()["2d"]


def test_parity_report_figures():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    exp = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]])
    report = parity_report(ref, exp, labels=np.array([0, 1, 0, 0]))
    assert report["n"] == 4 and report["max_abs_diff"] == pytest.approx(0.2)
    assert report["mean_abs_diff"] == pytest.approx(0.1)
    assert report["top1_agreement"] == 0.75
    assert (report["reference_accuracy"], report["exported_accuracy"]) == (0.75, 0.5)
    assert report["accuracy_drop"] == pytest.approx(0.25)
    one_hot = parity_report(ref, exp, labels=np.eye(2)[[0, 1, 0, 0]])
    assert one_hot["exported_accuracy"] == 0.5
    with pytest.raises(StageError, match="shape"):
        parity_report(ref, exp[:3])


def test_check_max_drop_message_says_what_to_do():
    assert check_max_drop(0.912, 0.905, 0.01, target="onnx", precision="int8") == pytest.approx(0.007)
    with pytest.raises(StageError) as caught:
        check_max_drop(0.912, 0.878, 0.01, target="onnx", precision="int8")
    assert str(caught.value) == ("stage 'export' failed: onnx int8 export loses 0.034 accuracy (0.912 -> 0.878), "
                                 "more than deploy.max_drop=0.01; use precision fp16 or more calibration_samples")
    assert caught.value.stage == "export"
    with pytest.raises(StageError, match="use precision fp32"):
        check_max_drop(0.9, 0.8, 0.05, target="tflite", precision="fp16")


@pytest.mark.slow
def test_a_broken_export_fails_the_parity_gate(data, tmp_path):
    import keras

    broken = keras.models.clone_model(data["model"])
    rng = np.random.default_rng(0)
    broken.set_weights([w + rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in data["model"].get_weights()])
    ctx = make_ctx(tmp_path, "2d", "fp32")
    result = onnx_exporter.export(broken, params=onnx_exporter.Params(), ctx=ctx)
    report = parity_report(keras_outputs(data), score_backend(tmp_path / result["model"], data["x_test"]),
                           labels=data["y_test"])
    assert report["max_abs_diff"] > 0.1
    with pytest.raises(StageError, match="onnx fp32 export loses"):
        check_max_drop(report["reference_accuracy"], report["exported_accuracy"], 0.01,
                       target="onnx", precision="fp32")


@pytest.mark.slow
def test_saved_model_reloads_to_the_same_outputs(data, tmp_path):
    ctx = make_ctx(tmp_path, "2d", "fp32")
    result = saved_model.export(data["model"], params=saved_model.Params(), ctx=ctx)
    assert (result["status"], result["model"]) == ("done", "saved_model")
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
    assert result["files"][0]["bytes"] > 0 and result["files"][0]["path"] == "saved_model"
    outputs = score_backend(tmp_path / "saved_model", data["x_test"][:5])
    np.testing.assert_allclose(outputs, keras_outputs(data, data["x_test"][:5]), atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


def test_scoring_needs_a_known_artifact(tmp_path):
    # (a precision a target does not declare is refused by the recipe check: test_recipe_errors)
    with pytest.raises(StageError, match="cannot score this artifact"):
        score_backend(tmp_path / "model.engine", np.zeros((1, 2), "float32"))
