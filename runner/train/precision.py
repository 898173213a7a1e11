"""Mixed precision: the Keras dtype policy that ``train.mixed_precision`` means on this machine,
and casting a model between policies.

Training may compute in bfloat16 or float16 (variables stay float32); every model a stage saves
(``model.keras``), evaluates or exports is float32, so scores, parity checks and deployed
runtimes never see the training precision.
"""

from __future__ import annotations

from typing import Any

from ..cpu import cpu_flags
from ..prune.graph import output_keys

FLOAT32 = "float32"
_NAMED = {False: FLOAT32, True: "mixed_float16", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def policy_name(setting: bool | str, *, has_gpu: bool | None = None, flags: set[str] | None = None) -> str:
    """``auto``: float16 on a GPU, bfloat16 on a CPU with bfloat16 matrix units (AMX or
    AVX-512 BF16: the main job's epochs 1.25x faster, 2dcnn_of's 2x on an AMX Xeon), else float32
    (emulated bfloat16 is slower)."""
    if setting != "auto":
        return _NAMED[setting]
    if has_gpu is None:
        import tensorflow as tf

        has_gpu = bool(tf.config.list_physical_devices("GPU"))
    if has_gpu:
        return "mixed_float16"
    return "mixed_bfloat16" if (cpu_flags() if flags is None else flags) & _BF16_FLAGS else FLOAT32


def policy_of(model: Any) -> str:
    """The compute policy of ``model``'s layers (float32 when every layer computes in float32)."""
    names = {layer.dtype_policy.name for layer in model.layers if layer.weights}
    return next((n for n in sorted(names) if n != FLOAT32), FLOAT32)


def with_policy(model: Any, policy: str) -> Any:
    """A copy of ``model`` whose layers compute under ``policy``, with the same weights; the
    layers producing the model's outputs keep float32 (a softmax in bfloat16 loses its tail).
    ``model`` itself when it already computes under ``policy``."""
    import keras

    if policy_of(model) == policy:
        return model
    outputs = {key[0] for key in output_keys(model)}  # names of the layers making the outputs

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer) and layer.name not in outputs:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
