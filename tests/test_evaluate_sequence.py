"""One embedding per sequence: the windows that cover a sequence, and whole sequences through a
set model, on real (tiny) Keras models whose embedding is the mean frame, so every value is known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gaitrun.data.preprocess import clip_windows
from gaitrun.data.store import ClipStore
from gaitrun.train.embeddings import embed_whole, embed_windows, takes_whole_sequences


@pytest.mark.parametrize("n, length, stride, starts", [
    (10, 4, 4, [0, 4, 6]),   # 0-3, 4-7, then 6-9 reaches the last frame
    (12, 4, 4, [0, 4, 8]),   # already covered
    (10, 4, 3, [0, 3, 6]),   # 6-9 ends at the last frame
    (3, 4, 4, [0]),          # shorter than a window: one looped window
    (4, 4, 4, [0]),
])
def test_covering_windows_reach_the_last_frame(n, length, stride, starts):
    assert clip_windows(n, length, stride) == starts
    covered = {f for s in starts for f in range(s, s + length)}
    assert covered >= set(range(n))


def _store(lengths: list[int]) -> ClipStore:
    """Frame t of sequence i is filled with the value 100 * i + t (shape 2 x 2 x 1)."""
    frames = np.concatenate([np.full((n, 2, 2, 1), 100 * i, np.float32) + np.arange(n)[:, None, None, None]
                             for i, n in enumerate(lengths)])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return ClipStore(frames=frames, offsets=offsets, lengths=np.asarray(lengths, np.int64),
                     kept=np.arange(len(lengths)))


def _mean_frame_model(frames: int | None):
    import keras

    inputs = keras.Input(shape=(frames, 2, 2, 1), name="input")
    x = keras.layers.GlobalAveragePooling3D(name="embedding")(inputs)
    return keras.Model([inputs], x)  # as the evaluation builds it: keras.Model(model.inputs, ...)


def test_windows_cover_every_frame_and_name_their_owner():
    prep = SimpleNamespace(store=_store([10, 3]), kind="clip3d")
    model = _mean_frame_model(4)
    assert not takes_whole_sequences(model, "clip3d")
    emb, owners = embed_windows(model, prep, np.array([1, 0]), frames=4, stride=None, batch_size=2, pad="loop")
    assert owners.tolist() == [1, 0, 0, 0]
    # sequence 1 (3 frames) loops (data.clip.pad: loop): 100 101 102 100; sequence 0: 0-3, 4-7, 6-9
    assert emb[:, 0] == pytest.approx([100.75, 1.5, 5.5, 7.5])
    with pytest.raises(ValueError, match="a clip of 3 frames has no window of 4"):  # pad: error
        embed_windows(model, prep, np.array([1]), frames=4, stride=None, batch_size=2)


def test_a_set_model_sees_whole_sequences():
    prep = SimpleNamespace(store=_store([10, 3, 10]), kind="frame_set")
    model = _mean_frame_model(None)
    assert takes_whole_sequences(model, "frame_set")
    emb, positions = embed_whole(model, prep, np.array([2, 1, 0]), batch_size=8)
    assert positions.tolist() == [0, 1, 2]
    assert emb[:, 0] == pytest.approx([4.5, 101.0, 204.5])  # the mean of all frames
