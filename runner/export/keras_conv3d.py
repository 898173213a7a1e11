"""A copy of a Keras model whose Conv3D layers are computed exactly as Conv2D over frames (for TFLite).

TFLite has no integer CONV_3D kernel (an "int8" model keeps float CONV_3D between
QUANTIZE/DEQUANTIZE ops) and XNNPACK does not take CONV_3D, while Conv2D gets XNNPACK's FP32
and INT8 kernels. A Conv3D with kernel ``(kt, kh, kw)`` and temporal stride ``st`` (valid
padding, no dilation, one group, channels last) equals, for each output frame, a Conv2D over
the ``kt`` input frames it sees with their channels stacked::

    x (N, T, H, W, C) --gather frames t*st + dt--> (N*T_out, kt, H, W, C) --transpose-->
      (N*T_out, H, W, kt, C) --reshape--> (N*T_out, H, W, kt*C) --Conv2D (kernel reordered to
      (kh, kw, kt*C, O)) + bias + activation--> (N*T_out, H', W', O) --reshape--> (N, T_out, H', W', O)

the same sum in another order (outputs equal to float rounding). The ONNX exporter does the
same on the ONNX graph (``gaitrun.export.conv3d_as_2d``, where the NCHW layout needs no
transpose). Layers that do not fit keep their Conv3D.
"""

from __future__ import annotations

from typing import Any


def with_conv3d_as_2d(model: Any) -> tuple[Any, int]:
    """``model`` with every eligible Conv3D replaced (weights shared), and how many were replaced."""
    import keras

    replaced = []

    def clone(layer: Any) -> Any:
        if _eligible(layer):
            replaced.append(layer.name)
            return _frames_conv2d_class()(layer)
        return layer

    if not any(_eligible(layer) for layer in model.layers):
        return model, 0
    copy = keras.models.clone_model(model, clone_function=clone)
    return copy, len(replaced)


def _eligible(layer: Any) -> bool:
    import keras

    if type(layer) is not keras.layers.Conv3D or len(layer._inbound_nodes) != 1:  # subclasses, shared layers
        return False
    return (layer.padding == "valid" and layer.groups == 1 and tuple(layer.dilation_rate) == (1, 1, 1)
            and layer.data_format == "channels_last" and None not in tuple(layer.input.shape[1:]))


def _frames_conv2d_class() -> type:
    """The replacement layer (defined lazily: Keras is a heavy import)."""
    import keras
    from keras import ops

    class FramesConv2D(keras.layers.Layer):
        """A built Conv3D's maths as one Conv2D over stacked frames (inference only)."""

        def __init__(self, conv3d: Any) -> None:
            super().__init__(name=conv3d.name, dtype=conv3d.dtype_policy)
            kt, kh, kw = conv3d.kernel_size
            t, h, w, c = conv3d.input.shape[1:]
            self.st, self.kt, self.hw, self.c = conv3d.strides[0], kt, (h, w), c
            self.t_out = (t - kt) // self.st + 1
            self.frames = [i * self.st + d for i in range(self.t_out) for d in range(kt)]
            self.strides2d = tuple(conv3d.strides[1:])
            self.activation = conv3d.activation
            kernel = conv3d.kernel.numpy()  # (kt, kh, kw, C, O)
            self.kernel2d = self.add_weight(shape=(kh, kw, kt * c, kernel.shape[-1]), name="kernel",
                                            trainable=False)
            self.kernel2d.assign(kernel.transpose(1, 2, 0, 3, 4).reshape(kh, kw, kt * c, -1))
            self.bias = None
            if conv3d.use_bias:
                self.bias = self.add_weight(shape=(kernel.shape[-1],), name="bias", trainable=False)
                self.bias.assign(conv3d.bias.numpy())

        def call(self, x: Any) -> Any:
            h, w = self.hw
            frames = ops.take(x, self.frames, axis=1)  # (N, T_out*kt, H, W, C)
            frames = ops.reshape(frames, (-1, self.kt, h, w, self.c))
            stacked = ops.reshape(ops.transpose(frames, (0, 2, 3, 1, 4)), (-1, h, w, self.kt * self.c))
            y = ops.conv(stacked, self.kernel2d, strides=self.strides2d, padding="valid")
            if self.bias is not None:
                y = y + self.bias
            y = self.activation(y)
            return ops.reshape(y, (-1, self.t_out, *y.shape[1:]))

    return FramesConv2D
