"""gaitrun: a declarative, YAML-driven experiment runner for gait, activity, video and image data."""

__version__ = "0.1.0"
