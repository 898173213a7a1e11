"""TensorFlow SavedModel (FP32) via Keras 3's model.export, for TF Serving and TF-based tools.

Writes ``saved_model/`` under the export folder with a ``serve`` endpoint (and the
``serving_default`` signature) whose batch axis is dynamic. The folder is written under a
temporary name and renamed into place, so an interrupted export leaves no partial model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

PRECISIONS = frozenset({"fp32"})
FOLDER = "saved_model"


class Params(BaseModel):
    """No target-specific options: the shared deploy keys say everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def export(model: Any, *, params: Params, ctx: Any) -> dict[str, Any]:
    """Export ``model`` as a SavedModel folder in ``ctx.out_dir``."""
    from gaitrun.atomic import atomic_dir
    from gaitrun.errors import StageError
    from gaitrun.export import export_result

    final = ctx.out_dir / FOLDER
    with atomic_dir(final) as tmp:
        try:
            model.export(str(tmp), format="tf_saved_model", verbose=False)
        except Exception as exc:  # TensorFlow's tracing errors are too varied to list
            raise StageError("export", f"SavedModel export failed ({type(exc).__name__}: {exc})") from exc
    return export_result("saved_model", ctx, model=final, files=[final])


def runtime(path: Any, *, threads: int = 0) -> Any:
    """How the artefact runs on this machine (the parity gate and the bench call it)."""
    from gaitrun.export.runtimes import saved_model

    return saved_model(path, threads=threads)
