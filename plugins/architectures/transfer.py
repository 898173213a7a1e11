"""Transfer learning: a keras.applications backbone (ImageNet or local weights) + a new softmax head.

Input: RGB images (H, W, 3) with values in 0..1 (``input_range: "0-1"``, the default; the
image loaders divide by 255) or 0..255 (``input_range: "0-255"``). The backbone's own
preprocessing is inside the model as the layer ``preprocess``: a ``Rescaling`` to -1..1 for
xception and mobilenet_v2, a ``Rescaling`` to 0..255 for efficientnet_b0 (which normalises
inside), and ``CaffePreprocess`` (to 0..255, RGB->BGR, minus the ImageNet mean) for resnet50.

Layers: ``input`` -> ``preprocess`` -> ``backbone`` (the keras.applications model,
include_top=False, global ``pooling``; called with training=False so its BatchNormalization
layers stay in inference mode) -> ``fc1..`` -> ``logits`` (softmax).

Freeze-then-unfreeze schedule (Keras' transfer-learning guide), answered through the
architecture hook ``head_phase(params)``:

1. ``build`` returns the backbone frozen when ``head_epochs`` > 0; the trainer compiles and
   trains the head for ``head_epochs`` epochs;
2. it then calls the phase's ``unfreeze(model)`` (``set_trainable`` with ``unfreeze_top``),
   compiles again with the learning rate times ``finetune_lr_factor`` and trains the rest.

With ``head_epochs`` = 0, ``build`` applies step 2's trainability at once.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.errors import DataError
from gaitrun.families import HeadPhase

from ._common import BN_MOMENTUM, classifier_head, dropout, scaled, width_field

INPUT_KIND = "image"
LOGITS = "logits"  # the softmax output layer
EMBEDDING = None  # a plain classifier

# backbone -> (keras.applications constructor, preprocessing mode)
BACKBONES: dict[str, tuple[str, Literal["tf", "caffe", "in_model"]]] = {
    "xception": ("Xception", "tf"),
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "resnet50": ("ResNet50", "caffe"),
    "efficientnet_b0": ("EfficientNetB0", "in_model"),
}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: Literal["xception", "mobilenet_v2", "resnet50", "efficientnet_b0"] = Field(
        "xception", description="keras.applications backbone")
    weights: str | None = Field(
        "imagenet", description='"imagenet" (downloaded by Keras to ~/.keras/models), null (random) '
                                "or the path of a .weights.h5/.h5 file of the backbone")
    input_range: Literal["0-1", "0-255"] = Field("0-1", description="value range of the input images")
    pooling: Literal["avg", "max"] = Field("avg", description="global pooling of the backbone output")
    dense_units: tuple[int, ...] = Field((128,), description="units of the new hidden dense layers")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout before and after every dense layer")
    l2: float = Field(0.0, ge=0, description="L2 weight decay on the head's kernels")
    head_epochs: int = Field(5, ge=0, description="epochs training the head only (backbone frozen)")
    unfreeze_top: int | None = Field(
        None, ge=0, description="then unfreeze the top K backbone layers (null: all; "
                                "BatchNormalization stays frozen)")
    finetune_lr_factor: float = Field(0.1, gt=0, description="learning-rate factor for fine-tuning")
    width: float = width_field()


def build(*, input_shape: tuple[int, ...], num_classes: int, params: Params) -> Any:
    """Backbone + head for images of shape ``input_shape`` (H, W, 3)."""
    import keras

    pretrained = params.weights is not None
    inputs = keras.Input(shape=input_shape, name="input")
    x = _preprocess(params)(inputs)
    backbone = _backbone(params, input_shape)
    # pretrained: BatchNormalization keeps its statistics (Keras' transfer-learning advice);
    # random weights: the statistics must be learnt, so the backbone trains like any layer
    if not pretrained:
        _track_batch_statistics(backbone)
    x = backbone(x, training=False) if pretrained else backbone(x)
    x = dropout(x, params.dropout, "drop_features")
    outputs = classifier_head(x, units=[scaled(u, params.width) for u in params.dense_units],
                              dropout_rate=params.dropout, num_classes=num_classes, l2=params.l2)
    model = keras.Model(inputs, outputs, name=f"transfer_{params.backbone}")
    if pretrained:
        set_trainable(model, unfreeze_top=0 if params.head_epochs > 0 else params.unfreeze_top)
    return model


def head_phase(params: Params) -> HeadPhase | None:
    """The head-only phase: none without pretrained weights (random features) or head_epochs 0."""
    if params.weights is None or params.head_epochs == 0:
        return None
    return HeadPhase(epochs=params.head_epochs, lr_factor=params.finetune_lr_factor,
                     unfreeze=partial(set_trainable, unfreeze_top=params.unfreeze_top))


def set_trainable(model: Any, *, unfreeze_top: int | None) -> None:
    """Freeze the layer ``backbone`` except its top ``unfreeze_top`` layers (None: all of them).

    BatchNormalization layers always stay frozen. Compile the model again afterwards.
    """
    import keras

    backbone = model.get_layer("backbone")
    backbone.trainable = unfreeze_top != 0
    if unfreeze_top == 0:
        return
    first = 0 if unfreeze_top is None else max(0, len(backbone.layers) - unfreeze_top)
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)


def _track_batch_statistics(backbone: Any) -> None:
    """Give a randomly initialised backbone's BatchNormalization layers ``BN_MOMENTUM`` (0.9).

    keras.applications builds them with momentum 0.99-0.999, made for fine-tuning ImageNet
    statistics: from random weights, a few hundred steps would leave the moving mean and
    variance at their initial values, and the model would predict a constant in inference.
    """
    import keras

    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = min(layer.momentum, BN_MOMENTUM)


def _preprocess(params: Params) -> Any:
    """The backbone's ``preprocess_input`` as one layer, for inputs in ``input_range``."""
    import keras

    from gaitrun.layers import CaffePreprocess

    top = 1.0 if params.input_range == "0-1" else 255.0
    mode = BACKBONES[params.backbone][1]
    if mode == "tf":
        return keras.layers.Rescaling(2.0 / top, offset=-1.0, name="preprocess")
    if mode == "caffe":
        return CaffePreprocess(255.0 / top, name="preprocess")
    return keras.layers.Rescaling(255.0 / top, name="preprocess")


def _backbone(params: Params, input_shape: tuple[int, ...]) -> Any:
    """The keras.applications model named "backbone", with the requested weights."""
    import keras

    constructor = getattr(keras.applications, BACKBONES[params.backbone][0])
    kwargs = dict(include_top=False, input_shape=input_shape, pooling=params.pooling, name="backbone")
    if params.weights == "imagenet":
        return _imagenet_backbone(constructor, params.backbone, kwargs)
    path = None if params.weights is None else _weights_file(params.weights, params.backbone)
    backbone = constructor(weights=None, **kwargs)
    if path is not None:
        _load_weights(backbone, path, params.backbone)
    return backbone


def _weights_file(weights: str, name: str) -> Path:
    """The weights path, checked to be an HDF5 file before the (slow) backbone is built."""
    import h5py

    path = Path(weights).expanduser()
    if not path.is_file():
        raise DataError(str(path), f"no such weights file; give a .weights.h5 file saved from a "
                        f"{name} backbone (backbone.save_weights), or weights: imagenet / null")
    if not h5py.is_hdf5(path):
        raise DataError(str(path), f"not an HDF5 weights file; give a .weights.h5 file saved "
                        f"from a {name} backbone (backbone.save_weights)")
    return path


def _imagenet_backbone(constructor: Any, name: str, kwargs: dict[str, Any]) -> Any:
    """Build with ImageNet weights; a failed download becomes a DataError saying what to do."""
    try:
        return constructor(weights="imagenet", **kwargs)
    except ValueError:  # a bad input shape: Keras' own message is clear
        raise
    except Exception as exc:  # keras.utils.get_file raises a bare Exception when offline
        cache = Path(_keras_home(), "models")
        raise DataError(str(cache), f"could not get the ImageNet weights of {name} ({exc}); put "
                        "them there, or set model.params.weights to a local .weights.h5 file "
                        "(or null to train from scratch)") from exc


def _keras_home() -> str:
    """Where Keras caches downloads (``$KERAS_HOME`` or ``~/.keras``)."""
    import os

    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def _load_weights(backbone: Any, path: Path, name: str) -> None:
    """Load a weights file into ``backbone``; a file that does not fit becomes a DataError."""
    try:
        backbone.load_weights(str(path))
    except Exception as exc:  # h5py/Keras raise several types for a wrong or corrupt file
        raise DataError(str(path), f"cannot load it into a {name} backbone ({exc}); "
                        f"give weights saved from the same backbone") from exc
