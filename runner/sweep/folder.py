"""Sweep folders: ``artifacts/<name>/<UTC time>-<recipe hash>-sweep/``.

Layout: ``sweep.json`` (the manifest that tells a sweep from a run folder), ``recipe.yaml``
(the resolved recipe, with its ``search:``), ``tune/`` (Ray Tune's experiment state, for
``gaitrun resume``), ``trials/<trial id>/<run id>/`` (each trial's ordinary run folder, and
beside it the trial's final ``result.json``), ``trials.csv``, ``best_recipe.yaml``,
``pareto.json`` and ``plots/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import read_json, write_json, write_text
from ..errors import RunFolderError
from ..runfolder import default_artifacts, now, unique_folder, utc_stamp

MANIFEST = "sweep.json"
KIND = "gaitrun-sweep"


def is_sweep_folder(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


@dataclass
class SweepFolder:
    """One sweep's folder and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def create(cls, loaded: Any, *, artifacts: Path | None, strict: bool) -> SweepFolder:
        base = (artifacts or default_artifacts()) / loaded.recipe.name
        path = unique_folder(base, f"{utc_stamp()}-{loaded.hash}", what="sweep folder", suffix="-sweep")
        manifest = {"kind": KIND, "sweep_id": path.name, "name": loaded.recipe.name,
                    "recipe_hash": loaded.hash, "created": now(), "source": str(loaded.path),
                    "workdir": os.getcwd(), "strict": strict, "status": "created", "runs": []}
        folder = cls(path.resolve(), manifest)
        write_text(path / "recipe.yaml", loaded.yaml())
        folder.save()
        return folder

    @classmethod
    def open(cls, path: str | Path) -> SweepFolder:
        path = Path(path)
        if not is_sweep_folder(path):
            raise RunFolderError(f"{path} is not a sweep folder (no {MANIFEST})")
        try:
            manifest = read_json(path / MANIFEST)
        except ValueError as exc:
            raise RunFolderError(f"{path / MANIFEST}: not valid JSON ({exc})") from exc
        return cls(path.resolve(), manifest)

    def save(self) -> None:
        write_json(self.path / MANIFEST, self.manifest)

    def set_status(self, status: str, reason: str | None = None) -> None:
        """``running``, ``done``, ``interrupted`` or ``failed`` (with its ``reason``); each start
        is logged under ``runs``, and how it ended (``ended``, ``status``, ``reason``) beside it."""
        ending = {"ended": now(), "status": status, **({"reason": reason} if reason else {})}
        self.manifest["status"] = status
        self.manifest.pop("reason", None)
        if status == "running":
            self.manifest["runs"].append({"started": now(), "pid": os.getpid()})
        else:
            self.manifest.update({k: v for k, v in ending.items() if k == "reason"})
            if self.manifest["runs"]:
                self.manifest["runs"][-1].update(ending)
        self.save()

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    @property
    def tune_dir(self) -> Path:
        return self.file("tune")
