"""What a plugin may import from gaitrun: the stable, documented surface (README "Writing a
plugin"). Everything else in gaitrun is internal and may change. Importing this module is
cheap (no TensorFlow).

* ``Sample`` -- what a dataset's ``scan`` returns, one per sample; ``Fold`` -- what a CV
  scheme's ``split`` returns (index arrays into the samples it was given);
* ``HeadPhase`` -- an architecture's answer to the optional ``head_phase(params)`` hook;
* ``ExportContext`` -- what an exporter's ``export`` receives as ``ctx``;
* ``DataError`` -- raise it for a missing or corrupt data file (``DataError(path, message)``);
* ``metadata(samples, key)`` -- a metadata field of every sample (a CV scheme's groups), and
  ``check_disjoint(fold, groups)`` -- refuse a fold whose train and validation share a group;
* the protocols ``Dataset``, ``Architecture``, ``Augmentation``, ``CvScheme``, ``Pruner``,
  ``Exporter`` (for type checkers: a plugin module fits its family's protocol);
* the vocabularies a plugin declares from: ``MODALITIES``, ``SAMPLE_KINDS``, ``INPUT_KINDS``,
  ``PRECISIONS``, and ``INPUT_SOURCES`` (which dataset KIND and modality feed each INPUT_KIND).
"""

from __future__ import annotations

from .data.records import Sample
from .errors import DataError
from .export import ExportContext
from .families import (
    INPUT_KINDS,
    INPUT_SOURCES,
    MODALITIES,
    PRECISIONS,
    RAW_SAMPLES,
    SAMPLE_KINDS,
    Architecture,
    Augmentation,
    CvScheme,
    Dataset,
    Exporter,
    HeadPhase,
    Pruner,
)
from .folds import Fold, check_disjoint, metadata

__all__ = ["INPUT_KINDS", "INPUT_SOURCES", "MODALITIES", "PRECISIONS", "RAW_SAMPLES", "SAMPLE_KINDS",
           "Architecture", "Augmentation", "CvScheme", "DataError", "Dataset", "ExportContext", "Exporter",
           "Fold", "HeadPhase", "Pruner", "Sample", "check_disjoint", "metadata"]

