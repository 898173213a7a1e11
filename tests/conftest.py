"""Shared fixtures: a valid recipe written to a temporary folder, and a helper to run the CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gaitrun.cli import main

# A valid recipe on scikit-learn's bundled digits (no files needed). Tests mutate its text,
# so line numbers below matter: keep them in sync with test_recipe_errors.py.
BASE_RECIPE = textwrap.dedent("""\
    name: digits_test
    seed: 7
    data:
      adapter: digits
      params: {n_class: 10}
      modality: rgb
      clip: {frames: 1, size: [8, 8]}
    augment:
      - shift: {max_px: 1}
    model:
      arch: simple_cnn
      params: {width: 0.25}
    train:
      optimizer: {name: adam, lr: 0.001}
      batch_size: 32
      epochs: 2
    cv: {scheme: stratified_kfold, folds: 3}
    evaluate:
      metrics: [accuracy, f1_macro]
    """)


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(BASE_RECIPE)
    return path


@pytest.fixture
def run_cli(capsys):
    """Run ``gaitrun`` in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def model_inputs(raw, *, modality: str, kind: str, frames: int, size: tuple[int, int],
                 stride: int | None = None, source: str = "sample", pad: str = "error") -> list:
    """Raw adapter output -> model inputs, the way a run makes them: ``to_clip`` (NumPy, once
    per sample), the clip store in the modality's dtype, then the tf.data evaluation windows in
    layout ``kind`` (``pad``: what a clip shorter than a window gets, as ``data.clip.pad``)."""
    import numpy as np

    from gaitrun.data.decode import STORE_DTYPES
    from gaitrun.data.pipeline import eval_dataset
    from gaitrun.data.preprocess import to_clip
    from gaitrun.data.store import ClipStore

    clip = to_clip(raw, modality=modality, size=size, source=source)
    one = np.zeros(1, np.int64)
    store = ClipStore(frames=clip.astype(STORE_DTYPES[modality]), offsets=one, lengths=np.array([len(clip)]),
                      kept=one)
    ds, _ = eval_dataset(store, one, None, kind=kind, frames=frames, stride=stride, batch_size=64, pad=pad)
    return [x for batch in ds for x in batch.numpy()]


def plugin_module(doc: str | None = "A fake plugin.", **attrs):
    """A module object holding ``attrs``: a plugin as the registry sees it."""
    import types

    module = types.ModuleType("fake", doc)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module
