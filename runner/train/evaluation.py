"""Score a trained fold: classifier metrics per sequence, and k-NN rank-1 on embeddings
(the gait protocol: gallery vs probes, per condition and view)."""

from __future__ import annotations

from typing import Any

import numpy as np


def predict_rows(model: Any, prep: Any, positions: np.ndarray, recipe: Any, *, output: str) -> tuple[np.ndarray, np.ndarray]:
    """(model output per evaluation window, owning sample position per window). ``output`` is
    the layer name of the softmax or of the embedding (``Outputs``)."""
    import keras

    from ..data.pipeline import eval_dataset

    layer = model.get_layer(output).output
    sub = keras.Model(model.inputs, layer)
    ds, owners = eval_dataset(prep.store, positions, None, kind=prep.kind, frames=recipe.data.clip.frames,
                              stride=recipe.data.clip.stride, pad=recipe.data.clip.pad,
                              batch_size=recipe.train.batch_size)
    out = np.asarray(sub.predict(ds, verbose=0), dtype=np.float32)
    if out.ndim > 3:  # a 1x1 convolutional code (cnn3d): one vector per window
        out = out.reshape(len(out), -1)
    return out, owners


def per_sample(values: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over each sample's windows: (values per sample, sample positions)."""
    positions, inverse = np.unique(owners, return_inverse=True)
    sums = np.zeros((len(positions), *values.shape[1:]), dtype=np.float64)
    np.add.at(sums, inverse, values)
    counts = np.bincount(inverse).reshape(-1, *([1] * (values.ndim - 1)))
    return (sums / counts).astype(np.float32), positions


def classification(model: Any, prep: Any, positions: np.ndarray, recipe: Any, *, output: str) -> dict:
    from ..evaluate.classification import classification_metrics

    probs, owners = predict_rows(model, prep, positions, recipe, output=output)
    ev = recipe.evaluate
    window = classification_metrics(prep.labels[owners], probs, metrics=["accuracy"], top_k=ev.top_k,
                                    class_names=prep.class_names)
    seq_probs, seq_pos = per_sample(probs, owners)
    out = classification_metrics(prep.labels[seq_pos], seq_probs, metrics=list(ev.metrics) or ["accuracy"],
                                 top_k=ev.top_k, class_names=prep.class_names)
    out["accuracy_window"] = window["accuracy"]
    return out


def _gallery_probe(fold: Any, prep: Any) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's gallery/probe split, or: gallery = training sequences of normal walks
    (all training sequences if there are no conditions), probes = validation sequences."""
    if fold.gallery is not None and fold.probe is not None:
        return fold.gallery, fold.probe
    conditions = np.asarray([s.condition for s in prep.samples], dtype=object)
    train = fold.train
    normal = train[np.isin(conditions[train], ["nm", "normal"])]
    return (normal if len(normal) else train), fold.val


def knn(model: Any, prep: Any, fold: Any, recipe: Any, *, output: str) -> dict:
    from ..evaluate.knn import protocol_eval

    gallery, probe = _gallery_probe(fold, prep)
    positions = np.concatenate([gallery, probe])
    emb, owners = predict_rows(model, prep, positions, recipe, output=output)
    rows_gallery = np.flatnonzero(np.isin(owners, gallery))
    rows_probe = np.flatnonzero(np.isin(owners, probe) & ~np.isin(owners, gallery))
    cfg = recipe.evaluate.knn
    samples = [prep.samples[p] for p in owners]
    return protocol_eval(emb, samples, rows_gallery, rows_probe, k=cfg.k, metric=cfg.metric,
                         exclude_identical_view=cfg.exclude_identical_view, per=cfg.per,
                         sequence_ids=owners, protocol=cfg.protocol)


def evaluate_fold(model: Any, prep: Any, fold: Any, recipe: Any, *, outputs: Any) -> dict:
    """Classification on the declared softmax, k-NN on the declared embedding (``Outputs``)."""
    out: dict[str, Any] = {}
    present = outputs.of(model)
    if present.logits and fold.gallery is None:
        out["classification"] = classification(model, prep, fold.val, recipe, output=present.logits)
    if present.embedding and recipe.evaluate.knn is not None:
        out["knn"] = knn(model, prep, fold, recipe, output=present.embedding)
    return out
