"""The enrolled walks of gait identification, persisted to one ``.npz`` file.

Each enrolment stores one walk's embedding: the mean of its windows' L2-normalised
embeddings (``gaitrun.evaluate.knn.normalise``: GaitSet's strips one by one). ``identify``
ranks the enrolled subjects by the distance of their nearest walk (the run's
``evaluate.knn.metric``). Every change rewrites the file atomically (``gaitrun.atomic``), so a
crash leaves the old or the new gallery, never half of one; it is read back at start-up.
"""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from ..errors import DataError
from ..evaluate.knn import distances, normalise

SUBJECT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def walk_embedding(window_embeddings: np.ndarray) -> np.ndarray:
    """One vector for a walk: the mean of its windows' normalised embeddings."""
    return normalise(window_embeddings).mean(axis=0)


class Gallery:
    def __init__(self, path: Path, *, metric: str = "euclidean"):
        self.path, self.metric = path, metric
        self.lock = threading.Lock()
        self.subjects: list[str] = []
        self.vectors = np.zeros((0, 0), np.float32)
        if path.is_file():
            self._load()

    def _load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as f:
                self.subjects, self.vectors = [str(s) for s in f["subjects"]], f["vectors"].astype(np.float32)
        except (ValueError, OSError, KeyError) as exc:
            raise DataError(str(self.path), f"is not a gallery file ({exc}); move it away to start an "
                                            "empty gallery") from exc

    def _save(self) -> None:
        buf = io.BytesIO()
        np.savez(buf, subjects=np.asarray(self.subjects, dtype=str), vectors=self.vectors)
        write_bytes(self.path, buf.getvalue())

    def enrol(self, subject: str, vector: np.ndarray) -> int:
        """Add a walk of ``subject``; returns how many walks the subject now has."""
        with self.lock:
            if len(self.subjects) and vector.shape[0] != self.vectors.shape[1]:
                raise ValueError(f"embedding size {vector.shape[0]} differs from the gallery's {self.vectors.shape[1]}")
            self.vectors = vector[None].astype(np.float32) if not self.subjects else \
                np.concatenate([self.vectors, vector[None].astype(np.float32)])
            self.subjects.append(subject)
            self._save()
            return self.subjects.count(subject)

    def remove(self, subject: str) -> int:
        """Forget every walk of ``subject``; returns how many were removed."""
        with self.lock:
            keep = [i for i, s in enumerate(self.subjects) if s != subject]
            removed = len(self.subjects) - len(keep)
            if removed:
                self.subjects = [self.subjects[i] for i in keep]
                self.vectors = self.vectors[keep]
                self._save()
            return removed

    def identify(self, vector: np.ndarray, k: int) -> list[dict]:
        """The ``k`` nearest subjects (by their nearest walk) with distances, nearest first."""
        with self.lock:
            if not self.subjects:
                return []
            dist = distances(vector[None], self.vectors, self.metric)[0]
            best: dict[str, float] = {}
            for subject, d in zip(self.subjects, dist.tolist(), strict=True):
                best[subject] = min(d, best.get(subject, np.inf))
        ranked = sorted(best.items(), key=lambda kv: kv[1])[:k]
        return [{"subject": s, "distance": d} for s, d in ranked]

    def summary(self) -> dict:
        with self.lock:
            return {"subjects": sorted(set(self.subjects)), "walks": len(self.subjects)}
