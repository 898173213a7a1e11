"""Loading saved Keras models safely: gaitrun's custom layers and losses are registered first,
and ``safe_mode=True`` refuses models that would run arbitrary code (Lambda layers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_model(path: str | Path, *, compile: bool = True) -> Any:
    import keras

    import gaitrun.layers  # noqa: F401  (registers the custom layers)
    import gaitrun.losses  # noqa: F401  (registers the triplet losses)

    return keras.saving.load_model(str(path), safe_mode=True, compile=compile)
