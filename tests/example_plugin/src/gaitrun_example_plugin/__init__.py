"""An example gaitrun plugin package: a dataset, an architecture and an augmentation."""
