"""Built-in deployment targets (family ``exporters``): name -> module."""

PLUGINS = {
    "saved_model": ".saved_model",
    "onnx": ".onnx",
    "tflite": ".tflite",
    "tensorrt": ".tensorrt",
}
