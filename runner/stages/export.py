"""The export stage: convert the deployed model (pruned if the recipe prunes) with the
``deploy.target`` plugin, then the parity gate: re-score the exported model on the best fold's
evaluation windows with the same metric as the Keras model and fail past ``deploy.max_drop``.
Writes ``export/`` and ``export/export.json``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..deploy_data import (
    best_fold,
    calibration_for,
    deployed_model_path,
    pruned_model_path,
    train_root,
    windows,
)
from ..errors import StageError
from ..export import check_calibration
from ..keras_io import load_model
from ..outputs import declared_outputs
from ..serve.model import write_serving_info
from .data import prepared


def _metric(outputs: np.ndarray, labels: np.ndarray, owners: np.ndarray, prep: Any, fold: Any,
            is_classifier: bool) -> tuple[str, float]:
    if is_classifier:
        return "accuracy", float(np.mean(outputs.argmax(-1) == labels))
    from ..evaluate.knn import protocol_eval
    from ..train.evaluation import _gallery_probe

    gallery, _ = _gallery_probe(fold, prep)
    rows_g = np.flatnonzero(np.isin(owners, gallery))
    rows_p = np.flatnonzero(~np.isin(owners, gallery))
    res = protocol_eval(outputs, [prep.samples[p] for p in owners], rows_g, rows_p, k=1, protocol="none",
                        per="subsequence", sequence_ids=owners)
    return "rank1", float(next(iter(res["rank1"].values())))


def _context(ctx: Any, prep: Any) -> Any:
    from ..export import ExportContext

    d = ctx.recipe.deploy
    calib = calibration_for(ctx, d.precision)
    if d.precision == "int8" and len(calib) < d.calibration_samples:
        ctx.callbacks.on_message(f"warning: deploy.calibration_samples is {d.calibration_samples} but the "
                                 f"training split has only {len(calib)} windows; calibrating on those "
                                 f"(lower deploy.calibration_samples to silence this)", level="warning")
    data = ctx.recipe.data
    norm = {"modality": data.modality, "layout": prep.kind, "frames": data.clip.frames,
            "size": list(data.clip.size), "scale": "silhouettes and rgb in 0..1, optical flow in pixels"}
    return ExportContext(out_dir=ctx.folder.file("export"), precision=d.precision,
                         batch_sizes=tuple(d.batch_sizes), calibration=calib, input_name="input",
                         labels=list(prep.class_names), normalisation=norm, strict=ctx.strict)


def evaluation_windows(ctx: Any, prep: Any, fold: Any) -> tuple[np.ndarray, np.ndarray]:
    """The deployed fold's evaluation windows and the sample each belongs to."""
    return windows(prep, fold.val if fold.gallery is None else np.concatenate([fold.gallery, fold.probe]),
                   ctx.recipe)


def parity(ctx: Any, model: Any, ref: np.ndarray, exp: np.ndarray, prep: Any, fold: Any,
           owners: np.ndarray) -> dict:
    """Compare the Keras model's outputs ``ref`` and the exported model's ``exp`` on the same
    windows by the same metric; ``passed`` is false past deploy.max_drop."""
    from ..export.parity import parity_report

    is_classifier = ref.ndim == 2 and model.layers[-1].name == declared_outputs(ctx).of(model).logits
    labels = prep.labels[owners]
    report = parity_report(ref.reshape(len(ref), -1), exp.reshape(len(exp), -1), labels if is_classifier else None)
    name, keras_metric = _metric(ref, labels, owners, prep, fold, is_classifier)
    _, exported_metric = _metric(exp, labels, owners, prep, fold, is_classifier)
    report.update({"metric": name, "keras": keras_metric, "exported": exported_metric,
                   "max_drop": ctx.recipe.deploy.max_drop, "passed": keras_metric - exported_metric <= ctx.recipe.deploy.max_drop})
    return report


def runtime_of(exporter: Any) -> Any:
    """The exporter's optional ``runtime`` hook (how its artefact runs here), or ``None``."""
    return exporter.hook("runtime")


def run(ctx: Any) -> dict:
    prep = prepared(ctx)
    fold = best_fold(ctx)
    path = deployed_model_path(ctx)
    model = load_model(path)
    d = ctx.recipe.deploy
    write_serving_info(ctx, prep, fold)
    exporter = ctx.regs["exporters"].get(d.target)
    export_ctx = _context(ctx, prep)
    check_calibration(export_ctx, model)
    result = exporter.impl("export")(model, params=exporter.own_params(d), ctx=export_ctx)
    if d.precision == "int8":
        result["calibration_samples"] = {"asked": d.calibration_samples, "used": len(export_ctx.calibration)}
    result["source_model"] = str(path.relative_to(ctx.folder.path)) if path.is_relative_to(ctx.folder.path) else str(path)
    x, owners = evaluation_windows(ctx, prep, fold)
    scored = {}  # outputs on x by model file, for the trade-off table to reuse
    if result.get("model"):
        from ..export.parity import run_keras, score_backend

        artifact = ctx.folder.file("export", result["model"])
        scored = {path: run_keras(model, x), artifact: score_backend(artifact, x, runtime=runtime_of(exporter))}
        result["parity"] = parity(ctx, model, scored[path], scored[artifact], prep, fold, owners)
    ctx.folder.write_json("export/export.json", result)
    if result.get("parity") and not result["parity"]["passed"]:
        from ..export.parity import check_max_drop

        p = result["parity"]
        check_max_drop(p["keras"], p["exported"], d.max_drop, target=d.target, precision=d.precision, metric=p["metric"])
    if result.get("status") == "deferred":
        ctx.callbacks.on_message(f"warning: {d.target} export deferred: {result.get('reason')}", level="warning")
        if ctx.strict:
            raise StageError("export", f"{result.get('reason')} (--strict)")
        return {"status": "deferred", "reason": result.get("reason")}
    from ..tradeoff import export_variants

    export_variants(ctx, unpruned=train_root(ctx) / "folds" / fold.name / "model.keras",
                    pruned=pruned_model_path(ctx),
                    deployed_artifact=ctx.folder.file("export", result["model"]), context=export_ctx, x=x, owners=owners,
                    loaded={path: model}, scored=scored)
    return {}
