"""Built-in plugins, one sub-package per family. Each lists its plugins in ``PLUGINS``."""
