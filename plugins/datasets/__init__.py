"""Built-in dataset adapters (family ``datasets``): name -> module."""

PLUGINS = {
    "synthetic_gait": ".synthetic_gait",
    "synthetic_imu": ".synthetic_imu",
    "casia_b": ".casia_b",
    "opengait_pkl": ".opengait_pkl",
    "tum_gaid_h5": ".tum_gaid_h5",
    "image_folder": ".image_folder",
    "video_folder": ".video_folder",
    "uci_har": ".uci_har",
    "digits": ".digits",
}
