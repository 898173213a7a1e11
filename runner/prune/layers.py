"""How each kind of Keras layer treats the channels of its input (see ``graph.py``).

``classify(node)`` returns ``(kind, arg)``:

=============  ==================================================  ==========================
kind           layers                                              arg
=============  ==================================================  ==========================
``conv``       Conv1D/2D/3D (groups 1, channels last), also        {weight: axis} sliced by
               inside TimeDistributed                              input channels
``preserve``   pooling, activations, dropout, padding, cropping,   idem ({} for no weights)
               BatchNormalization (per-channel weights), GaitSet's
               set pooling / pyramid pooling, frame folding
``dense``      Dense, LSTM/GRU/SimpleRNN (kernel rows), StripDense  idem
               (kernel axis 1)
``flatten``    Flatten                                             leading axes kept (1 in TD)
``concat``     Concatenate on the channel axis                     --
``merge``      Add, Subtract, Multiply, Average, Maximum, Minimum,  --
               Concatenate on another axis
``unknown``    anything else, and layers called more than once      a description
=============  ==================================================  ==========================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .graph import Node

NOT_CHANNELWISE_ACTIVATIONS = ("softmax", "log_softmax")


def conv_filters(layer: Any) -> int:
    """The number of filters of a convolution (possibly wrapped in ``TimeDistributed``)."""
    return int(_unwrap(layer)[0].filters)


def conv_kernel(layer: Any) -> Any:
    """The kernel of a convolution (possibly wrapped in ``TimeDistributed``) as a NumPy array."""
    return _unwrap(layer)[0].kernel.numpy()


def classify(node: Node) -> tuple[str, Any]:
    """``(kind, arg)`` for the node's layer (see the module docstring)."""
    if node.calls > 1:
        return "unknown", "a layer called more than once"
    inner, wrapped = _unwrap(node.layer)
    if getattr(inner, "data_format", "channels_last") != "channels_last":
        return "unknown", "channels-first data format"
    rank = len(node.inputs[0][1])
    for kinds in (_weighted_kinds, _structural_kinds):
        found = kinds(inner, rank, wrapped)
        if found is not None:
            return found
    if _is_channelwise(inner):
        return "preserve", {}
    return "unknown", type(inner).__name__


def _unwrap(layer: Any) -> tuple[Any, int]:
    """The layer inside a ``TimeDistributed`` wrapper (and 1), or the layer itself (and 0)."""
    import keras

    if isinstance(layer, keras.layers.TimeDistributed):
        return layer.layer, 1
    return layer, 0


def _weighted_kinds(inner: Any, rank: int, wrapped: int) -> tuple[str, Any] | None:
    """Layers whose weights follow their input channels."""
    import keras

    from gaitrun.layers import StripDense

    if isinstance(inner, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        return ("conv", {0: -2}) if inner.groups == 1 else ("unknown", "a grouped convolution")
    if isinstance(inner, keras.layers.BatchNormalization):
        if inner.axis not in (-1, rank - 1):
            return "unknown", "BatchNormalization over another axis than the last"
        return "preserve", {i: 0 for i in range(len(inner.weights))}
    if isinstance(inner, (keras.layers.Dense, StripDense)):
        return "dense", {0: 1 if isinstance(inner, StripDense) else 0}
    if isinstance(inner, (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)) and not wrapped:
        return "dense", {0: 0}
    return None


def _structural_kinds(inner: Any, rank: int, wrapped: int) -> tuple[str, Any] | None:
    """Layers that reshape or combine their inputs."""
    import keras

    if isinstance(inner, keras.layers.Flatten):
        return "flatten", wrapped
    if isinstance(inner, keras.layers.Concatenate) and not wrapped:
        return ("concat" if inner.axis in (-1, rank - 1) else "merge"), None
    merges = (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
              keras.layers.Maximum, keras.layers.Minimum)
    if isinstance(inner, merges) and not wrapped:
        return "merge", None
    return None


def _is_channelwise(inner: Any) -> bool:
    """Layers that treat every channel on its own and keep the channel axis last."""
    import keras

    from gaitrun import layers as custom

    L = keras.layers
    channelwise = (
        L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Identity, L.Dropout, L.SpatialDropout1D,
        L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianDropout, L.GaussianNoise, L.AlphaDropout,
        L.ActivityRegularization, L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
        L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D, L.GlobalMaxPooling1D,
        L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.GlobalAveragePooling1D,
        L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, L.ZeroPadding1D, L.ZeroPadding2D,
        L.ZeroPadding3D, L.Cropping1D, L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D,
        L.UpSampling3D, custom.SetMaxPooling, custom.HorizontalPyramidPooling,
        custom.FramesToBatch, custom.BatchToFrames,
    )
    if isinstance(inner, L.Activation):
        return getattr(inner.activation, "__name__", "") not in NOT_CHANNELWISE_ACTIVATIONS
    return isinstance(inner, channelwise)
