"""Built-in augmentations (family ``augmentations``): name -> module. Each runs inside the
tf.data graph, is seeded, and declares the modalities it supports."""

PLUGINS = {
    name: f".{name}"
    for name in ("flip", "shift", "zoom", "rotate", "shear", "brightness", "contrast", "cutout",
                 "temporal_crop", "frame_dropout", "flow_threshold", "jitter", "scaling")
}
