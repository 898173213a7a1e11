"""Ray Tune sweeps over recipe key paths: the ``search:`` section of a recipe.

``run_sweep(loaded)`` runs every trial as an ordinary gaitrun run in a sub-folder of a new sweep
folder and writes the trial table, the best recipe, plots and (Pareto mode) the front;
``resume_sweep(path)`` continues an interrupted sweep. Ray is imported only when a sweep runs.
"""

from .folder import SweepFolder, is_sweep_folder
from .run import resume_sweep, run_sweep

__all__ = ["SweepFolder", "is_sweep_folder", "resume_sweep", "run_sweep"]
