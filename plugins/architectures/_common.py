"""Building blocks shared by the built-in architectures: width scaling, regularizers, blocks, head.

Layer-naming contract (the filter-pruning engine and the k-NN evaluator rely on it):

* a convolution block ``i`` is ``conv{i}`` (a plain ``Conv1D/2D/3D``, linear, with bias), then
  ``bn{i}`` (``BatchNormalization``, momentum ``BN_MOMENTUM``, only with ``batch_norm``), then
  ``act{i}`` (the activation layer), then optionally ``pool{i}`` and ``drop{i}``; a ``prefix``
  ("set_", "gl_", ...) is put in front of every name;
* per-frame CNNs (shared weights for every frame) fold the frames into the batch with the
  ``FramesToBatch`` layer (``frames``) and back with ``BatchToFrames``, so their convolutions
  are plain ``Conv2D`` layers too (see ``gaitrun/layers.py`` for why not ``TimeDistributed``);
* hidden dense layers are ``fc{i}`` (+ ``drop_fc{i}``); the classifier output is the softmax
  ``Dense`` named ``logits`` (float32 even under mixed precision; it outputs probabilities);
* embedding models have a layer named ``embedding`` whose output is the k-NN feature.

Only pydantic is imported at module level; Keras is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

# Moving-statistics momentum of every BatchNormalization layer. With Keras' 0.99 the moving
# mean/variance still hold 5-37 % of their initial 0/1 after the 100-300 steps of the shipped
# recipes' CPU trainings, so inference (which uses them) differs from training; 0.9 forgets
# the start within ~50 steps.
BN_MOMENTUM = 0.9


def width_field() -> Any:
    """The ``width`` parameter every architecture has."""
    return Field(1.0, gt=0, description="multiplier on every filter/unit count: round(n * width), "
                                        "at least 1; 1.0 is the published size")


def scaled(n: int, width: float) -> int:
    """``n`` filters or units scaled by ``width``: ``round(n * width)``, at least 1."""
    return max(1, round(n * width))


def regularizer(l2: float) -> Any:
    """An L2 kernel regularizer, or ``None`` when ``l2`` is 0."""
    import keras

    return keras.regularizers.L2(l2) if l2 > 0 else None


def conv_block(
    x: Any,
    index: int,
    *,
    rank: Literal[1, 2, 3],
    filters: int,
    kernel: int | Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: Literal["same", "valid"] = "same",
    activation: Literal["relu", "leaky_relu"] = "relu",
    batch_norm: bool = False,
    l2: float = 0.0,
    prefix: str = "",
) -> Any:
    """``conv{index}`` -> optional ``bn{index}`` -> ``act{index}`` (see the module docstring).

    ``leaky_relu`` uses slope 0.01 (as GaitSet).
    """
    import keras

    conv_cls = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    x = conv_cls(filters, kernel, strides=strides, padding=padding,
                 kernel_regularizer=regularizer(l2), name=f"{prefix}conv{index}")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}bn{index}")(x)
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.01, name=f"{prefix}act{index}")(x)
    return keras.layers.Activation("relu", name=f"{prefix}act{index}")(x)


def max_pool(x: Any, index: int, *, rank: Literal[1, 2, 3], pool: int = 2,
             padding: Literal["same", "valid"] = "same", prefix: str = "") -> Any:
    """``pool{index}``: max pooling by ``pool`` along every spatial axis."""
    import keras

    pool_cls = {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D,
                3: keras.layers.MaxPooling3D}[rank]
    return pool_cls(pool, padding=padding, name=f"{prefix}pool{index}")(x)


def dropout(x: Any, rate: float, name: str) -> Any:
    """A ``Dropout`` layer named ``name``, or ``x`` unchanged when ``rate`` is 0."""
    import keras

    return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x


def classifier_head(x: Any, *, units: Sequence[int], dropout_rate: float, num_classes: int,
                    l2: float = 0.0) -> Any:
    """``fc1 .. fcN`` (ReLU, each followed by ``drop_fc{i}``) then the softmax ``logits``."""
    import keras

    for i, n in enumerate(units, start=1):
        x = keras.layers.Dense(n, activation="relu", kernel_regularizer=regularizer(l2),
                               name=f"fc{i}")(x)
        x = dropout(x, dropout_rate, f"drop_fc{i}")
    return softmax_output(x, num_classes)


def softmax_output(x: Any, num_classes: int) -> Any:
    """The classifier output: a float32 softmax ``Dense`` named ``logits``."""
    import keras

    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="logits")(x)


def check_valid_geometry(arch: str, spatial: Sequence[int | None],
                         ops: Sequence[tuple[str, Sequence[int], Sequence[int]]]) -> None:
    """Raise ``ValueError`` if a chain of 'valid' convolutions/poolings leaves no output.

    ``spatial`` are the input's spatial sizes; each op is ``(name, kernel, strides)``.
    """
    sizes = list(spatial)
    for name, kernel, strides in ops:
        sizes = [None if s is None else (s - k) // st + 1
                 for s, k, st in zip(sizes, kernel, strides, strict=True)]
        if any(s is not None and s < 1 for s in sizes):
            raise ValueError(
                f"{arch}: input with spatial size {tuple(spatial)} is too small: layer '{name}' "
                f"(kernel {tuple(kernel)}, strides {tuple(strides)}, valid padding) would have no "
                f"output; use a larger clip/frame size")


def conv_pool_stack(x: Any, params: Any, *, rank: Literal[1, 2, 3]) -> Any:
    """``conv{i}`` (+ ``bn{i}``) -> ``act{i}`` -> ``pool{i}`` -> ``drop{i}`` for each entry of
    ``params.filters`` (scaled by ``params.width``), as the simple classifiers use them."""
    for i, n in enumerate(params.filters, start=1):
        x = conv_block(x, i, rank=rank, filters=scaled(n, params.width), kernel=params.kernel,
                       batch_norm=params.batch_norm, l2=params.l2)
        x = max_pool(x, i, rank=rank)
        x = dropout(x, params.dropout, f"drop{i}")
    return x
