"""What the server knows about the run it serves, read from the run folder.

``export/export.json`` names the deployed artifact and its precision; ``export/serving.json``
(written by the export stage, :func:`write_serving_info`) the labels, input shape, layout and
modality, and ``export/input_stats.json`` the training inputs' statistics for drift. Runs
exported before serving existed fall back to ``data.json`` and have no drift statistics.
An export whose parity metric is ``rank1`` outputs embeddings; otherwise class scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import read_json
from ..errors import RunFolderError, UsageError
from .drift import STATS_FILE, STATS_WINDOWS, training_stats

SERVING_FILE = "serving.json"


@dataclass(frozen=True)
class ServedModel:
    folder: Path
    run_id: str
    recipe_hash: str
    artifact: Path
    target: str
    precision: str
    input_name: str
    input_shape: tuple[int, ...]
    labels: list[str]
    embedding: bool
    layout: str
    modality: str
    recipe: Any  # the run's validated Recipe (data settings drive raw-input preprocessing)
    stats: dict[str, Any] | None = field(default=None, repr=False)

    def describe(self, runtime: str) -> dict[str, Any]:
        return {"run_id": self.run_id, "recipe_hash": self.recipe_hash, "target": self.target,
                "precision": self.precision, "runtime": runtime, "artifact": self.artifact.name,
                "input_name": self.input_name, "input_shape": list(self.input_shape), "dtype": "float32",
                "output": "embedding" if self.embedding else "class scores", "labels": self.labels,
                "layout": self.layout, "modality": self.modality,
                "raw_inputs": raw_formats(self.modality, self.layout)}


def raw_formats(modality: str, layout: str) -> list[str]:
    """Raw Content-Types this model accepts besides tensors (see ``gaitrun.serve.inputs``)."""
    if modality == "inertial":
        return ["text/csv"]
    formats = ["application/zip (PNG frames)", "multipart/form-data (PNG frames or one video)"]
    if modality != "silhouette":
        formats.append("video/* (mp4, avi, mkv, mov)")
    if layout == "image":
        formats.append("image/png")
    return formats


def write_serving_info(ctx: Any, prep: Any, fold: Any) -> None:
    """Export stage: ``export/serving.json`` and ``export/input_stats.json`` (per-channel statistics
    of ``STATS_WINDOWS`` windows drawn from the deployed fold's training split)."""
    from ..deploy_data import calibration

    x, _ = calibration(prep, fold.train, ctx.recipe, STATS_WINDOWS)
    ctx.folder.write_json(f"export/{STATS_FILE}", training_stats(x, seed=ctx.recipe.seed))
    ctx.folder.write_json(f"export/{SERVING_FILE}", {
        "labels": list(prep.class_names), "input_shape": list(prep.input_shape), "layout": prep.kind,
        "modality": ctx.recipe.data.modality, "input_stats": STATS_FILE})


def _read(path: Path, hint: str) -> Any:
    if not path.is_file():
        raise RunFolderError(f"{path} is missing; {hint}")
    try:
        return read_json(path)
    except ValueError as exc:
        raise RunFolderError(f"{path}: not valid JSON ({exc}); {hint}") from exc


def load_served_model(folder: Path) -> ServedModel:
    """Read ``folder``'s manifest, recipe and export; raise a one-line error when unservable."""
    from ..recipe import load_recipe

    manifest = _read(folder / "manifest.json", "give a run folder like artifacts/<name>/<run id>/")
    export = _read(folder / "export" / "export.json",
                   "the run has no export: add a deploy section (target onnx or tflite) and run "
                   f"'gaitrun export {folder}'")
    if not export.get("model") or export.get("status") != "done":
        raise UsageError(f"{folder}/export: the {export.get('target')} export has no runnable model here "
                         f"({export.get('reason') or export.get('status')}); export to onnx or tflite")
    data = _read(folder / "data.json", f"run 'gaitrun resume {folder}'")
    info = _read(folder / "export" / SERVING_FILE, "") if (folder / "export" / SERVING_FILE).is_file() else {}
    recipe = load_recipe(folder / "recipe.yaml").recipe
    labels = info.get("labels") or list(data.get("classes", {}))
    shape = info.get("input_shape") or data.get("input_shape")
    if not shape:
        raise RunFolderError(f"{folder}: neither export/{SERVING_FILE} nor data.json records the input shape; "
                             f"run 'gaitrun export {folder}' again")
    stats_path = folder / "export" / info.get("input_stats", STATS_FILE)
    return ServedModel(
        folder=folder, run_id=manifest.get("run_id", folder.name), recipe_hash=manifest.get("recipe_hash", ""),
        artifact=folder / "export" / export["model"], target=export["target"], precision=export["precision"],
        input_name=export.get("input_name", "input"),
        input_shape=tuple(shape), labels=[str(x) for x in labels],
        embedding=(export.get("parity") or {}).get("metric") == "rank1",
        layout=info.get("layout") or data.get("layout", ""), modality=info.get("modality") or recipe.data.modality,
        recipe=recipe, stats=read_json(stats_path) if stats_path.is_file() else None)
