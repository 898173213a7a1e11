"""gaitrun's custom Keras layers (no ``Lambda`` layers): used by the built-in architectures,
understood by the pruning core (``gaitrun.prune``) and needed to load a run's ``model.keras``.

Every layer is registered serializable under the package "gaitrun", so a saved ``.keras`` model
loads in plain Keras (``safe_mode=True``) once this module is imported::

    import gaitrun.layers  # noqa: F401  (registers the layers)
    model = keras.saving.load_model("artifacts/<name>/<run>/folds/0/model.keras")

Plugins may use these layers too; the pruner follows channels through them.

This module imports Keras at module level: import it only where a model is built or loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="gaitrun")
class FramesToBatch(keras.layers.Layer):
    """Fold the frame axis into the batch: (B, T, ...) -> (B*T, ...), so plain layers run per frame.

    Used instead of ``TimeDistributed``, which in Keras 3 unrolls a static T into T copies of
    the layer and, with T = None, gives wrong results after a retrace with another T.
    """

    def call(self, inputs: Any) -> Any:
        return ops.reshape(inputs, (-1, *inputs.shape[2:]))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (None, *input_shape[2:])


@keras.saving.register_keras_serializable(package="gaitrun")
class BatchToFrames(keras.layers.Layer):
    """Undo ``FramesToBatch``: ``[x (B*T, ...), frames (B, T, ...)] -> (B, T, ...)``.

    T is read from the second input (the original frames), so it may vary between calls.
    """

    def call(self, inputs: Sequence[Any]) -> Any:
        folded, frames = inputs
        return ops.reshape(folded, (-1, ops.shape(frames)[1], *folded.shape[1:]))

    def compute_output_shape(self, input_shape: Sequence[Sequence[int | None]]
                             ) -> tuple[int | None, ...]:
        folded, frames = input_shape
        return (frames[0], frames[1], *folded[1:])


@keras.saving.register_keras_serializable(package="gaitrun")
class SetMaxPooling(keras.layers.Layer):
    """Set pooling: the element-wise max over the frame axis, (B, T, ...) -> (B, ...).

    Order-free and defined for any number of frames T (GaitSet's "frame_max").
    """

    def call(self, inputs: Any) -> Any:
        return ops.max(inputs, axis=1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package="gaitrun")
class HorizontalPyramidPooling(keras.layers.Layer):
    """Horizontal pyramid pooling: (B, H, W, C) -> (B, sum(bins), C).

    For each ``n`` in ``bins`` the feature map is cut into ``n`` horizontal strips of equal
    height; each strip becomes mean + max over its pixels (GaitSet's HPM). H must be divisible
    by every ``n``.
    """

    def __init__(self, bins: Sequence[int] = (1, 2, 4, 8, 16), **kwargs: Any):
        super().__init__(**kwargs)
        self.bins = tuple(int(b) for b in bins)

    def build(self, input_shape: Sequence[int | None]) -> None:
        height = input_shape[1]
        bad = [b for b in self.bins if height is None or height % b]
        if bad:
            raise ValueError(f"{self.name}: feature-map height {height} is not divisible by the "
                             f"strip counts {bad}; choose bins that divide it")

    def call(self, inputs: Any) -> Any:
        _, height, width, channels = inputs.shape
        strips = []
        for n in self.bins:
            z = ops.reshape(inputs, (-1, n, (height // n) * width, channels))
            strips.append(ops.mean(z, axis=2) + ops.max(z, axis=2))
        return ops.concatenate(strips, axis=1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], sum(self.bins), input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bins": list(self.bins)}


@keras.saving.register_keras_serializable(package="gaitrun")
class StripDense(keras.layers.Layer):
    """One fully connected map per strip: (B, S, C) -> (B, S, units), kernel (S, C, units), no bias.

    GaitSet's separate FCs ("fc_bin"); computed as a batched matmul over the strip axis.
    """

    def __init__(self, units: int, kernel_initializer: Any = "glorot_uniform", **kwargs: Any):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[1], input_shape[2], self.units),
                                      initializer=self.kernel_initializer)

    def call(self, inputs: Any) -> Any:
        per_strip = ops.transpose(inputs, (1, 0, 2))  # (S, B, C)
        return ops.transpose(ops.matmul(per_strip, self.kernel), (1, 0, 2))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="gaitrun")
class CaffePreprocess(keras.layers.Layer):
    """ImageNet "caffe" preprocessing (ResNet50): x * scale, RGB -> BGR, minus the BGR mean."""

    def __init__(self, scale: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs: Any) -> Any:
        bgr = ops.flip(inputs * self.scale, axis=-1)
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}
