"""Evaluation: classifier metrics, k-NN gait protocols, plots and report tables.

NumPy only at import time; scikit-learn and matplotlib are imported by the functions that
use them. The train stage computes model outputs and calls these functions.
"""

from __future__ import annotations

from .classification import aggregate_folds, classification_metrics
from .knn import knn_rank1, protocol_eval
from .plots import plot_confusion_matrix, plot_learning_curves, plot_rank1_heatmap
from .summary import markdown_tables

__all__ = ["aggregate_folds", "classification_metrics", "knn_rank1", "markdown_tables", "plot_confusion_matrix",
           "plot_learning_curves", "plot_rank1_heatmap", "protocol_eval"]
