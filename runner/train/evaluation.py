"""Score a trained fold: classifier metrics per sequence, and k-NN rank-1 on embeddings
(the gait protocol: gallery vs probes, per condition and view), per sequence -- one embedding
per whole sequence, as GaitSet/OpenGait report -- and per window."""

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


def sequence_embeddings(model: Any, prep: Any, positions: np.ndarray, recipe: Any, *, output: str) -> dict[str, Any]:
    """Window embeddings (rows covering every frame of each sequence) and one L2-normalised
    embedding per sequence: the set model's pooling over the whole sequence when its input
    takes any number of frames, otherwise the mean of the normalised window embeddings."""
    import keras

    from ..evaluate.knn import normalise, pool_sequences
    from .embeddings import embed_whole, embed_windows, takes_whole_sequences

    sub = keras.Model(model.inputs, model.get_layer(output).output)
    clip, size = recipe.data.clip, recipe.train.batch_size
    windows, owners = embed_windows(sub, prep, positions, frames=clip.frames, stride=clip.stride, batch_size=size,
                                    pad=clip.pad)
    if takes_whole_sequences(model, prep.kind):
        whole, seq_pos = embed_whole(sub, prep, positions, batch_size=size)
        pooled, how = normalise(whole), "set pooling over all frames of the sequence"
    else:
        pooled, seq_pos = pool_sequences(windows, owners)
        how = "mean of the L2-normalised embeddings of the windows covering the sequence, L2-normalised"
    return {"sequences": pooled.astype(np.float32), "positions": seq_pos, "windows": windows,
            "owners": owners, "how": how}


def knn(model: Any, prep: Any, fold: Any, recipe: Any, *, output: str, save_to: Any = None) -> dict:
    """Rank-1 per sequence (``rank1``, the headline) and per window (``rank1_window``);
    ``save_to``: write the embeddings there (``gaitrun.evaluate.embeddings``)."""
    from ..evaluate.knn import protocol_eval

    gallery, probe = _gallery_probe(fold, prep)
    probe = np.setdiff1d(probe, gallery)
    emb = sequence_embeddings(model, prep, np.concatenate([gallery, probe]), recipe, output=output)
    cfg = recipe.evaluate.knn
    settings = {"k": cfg.k, "metric": cfg.metric, "protocol": cfg.protocol,
                "exclude_identical_view": cfg.exclude_identical_view}

    def score(rows: np.ndarray, owners: np.ndarray) -> dict:
        return protocol_eval(rows, [prep.samples[p] for p in owners], np.flatnonzero(np.isin(owners, gallery)),
                             np.flatnonzero(np.isin(owners, probe)), per="subsequence",
                             sequence_ids=owners.tolist(), **settings)

    out = score(emb["sequences"], emb["positions"]) if cfg.per != "subsequence" else {}
    if cfg.per != "sequence":
        window = score(emb["windows"], emb["owners"])
        out = {**{k: v for k, v in window.items() if not k.startswith("rank1")}, **out,
               **{k.replace("rank1", "rank1_window", 1): v for k, v in window.items() if k.startswith("rank1")},
               "probe_windows": window["probes"]}
    out.update(per=cfg.per, sequence_embedding=emb["how"])
    if save_to is not None:
        _save(save_to, emb, prep, gallery, settings)
    return out


def _save(path: Any, emb: dict, prep: Any, gallery: np.ndarray, settings: dict) -> None:
    from ..evaluate.embeddings import save_embeddings

    positions = emb["positions"]
    row_of = {int(p): i for i, p in enumerate(positions)}
    save_embeddings(path, embedding=emb["sequences"], samples=[prep.samples[p] for p in positions],
                    roles=np.where(np.isin(positions, gallery), "gallery", "probe"), positions=positions,
                    window_embedding=emb["windows"].reshape(len(emb["windows"]), -1),
                    window_owner=np.asarray([row_of[int(p)] for p in emb["owners"]]), settings=settings)


def evaluate_fold(model: Any, prep: Any, fold: Any, recipe: Any, *, outputs: Any, save_to: Any = None) -> dict:
    """Classification on the declared softmax, k-NN on the declared embedding (``Outputs``);
    ``save_to``: the embeddings file to write."""
    out: dict[str, Any] = {}
    present = outputs.of(model)
    if present.logits and fold.gallery is None:
        out["classification"] = classification(model, prep, fold.val, recipe, output=present.logits)
    if present.embedding and recipe.evaluate.knn is not None:
        out["knn"] = knn(model, prep, fold, recipe, output=present.embedding, save_to=save_to)
    return out
