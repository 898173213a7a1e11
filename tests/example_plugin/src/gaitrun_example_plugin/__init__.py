"""An example gaitrun plugin package: one architecture and one augmentation."""
