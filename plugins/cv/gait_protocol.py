"""The dataset's gallery/probe protocol: train subjects vs test subjects split into a gallery
(normal walks) and probes (other walks), as CASIA-B (nm-01..04 vs nm-05/06, bg, cl) and
TUM-GAID (normal vs bag vs shoes) define it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.errors import DataError


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    train_subjects: int | float = Field(
        0.6, gt=0, description="first N subjects (sorted) train, or this fraction of them (CASIA-B: 74)")
    gallery: list[str] = Field(["nm-01", "nm-02", "nm-03", "nm-04"],
                               min_length=1, description="sequence ids (walks) forming the gallery")
    probe_conditions: list[str] | None = Field(
        None, description="conditions used as probes; default: every walk not in the gallery")


def _train_subjects(subjects: list[str], spec: int | float) -> set[str]:
    n = int(spec) if isinstance(spec, int) or spec >= 1 else round(spec * len(subjects))
    if not 1 <= n < len(subjects):
        raise DataError("<dataset>", f"gait_protocol needs train subjects between 1 and "
                        f"{len(subjects) - 1}, got {n}; change cv.train_subjects")
    return set(subjects[:n])


def split(samples, *, params: Params, seed: int):
    import numpy as np

    from gaitrun.folds import Fold, check_disjoint, metadata

    subjects = metadata(samples, "subject")
    walks = metadata(samples, "sequence")
    conditions = np.asarray([s.condition or "" for s in samples])
    train_set = _train_subjects(sorted(set(subjects)), params.train_subjects)
    is_train = np.isin(subjects, list(train_set))
    train, _val = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    in_gallery = np.isin(walks, params.gallery)
    gallery = np.flatnonzero(~is_train & in_gallery)
    probe_ok = ~in_gallery if params.probe_conditions is None else np.isin(conditions, params.probe_conditions)
    probe = np.flatnonzero(~is_train & ~in_gallery & probe_ok)
    if not len(gallery) or not len(probe):
        raise DataError(samples[0].path if samples else "<dataset>",
                        f"gait_protocol found {len(gallery)} gallery and {len(probe)} probe sequences "
                        f"among test subjects; check cv.gallery (walk ids like 'nm-01')")
    fold = Fold(name="protocol", train=train, val=np.sort(np.concatenate([gallery, probe])),
                gallery=gallery, probe=probe)
    check_disjoint(fold, subjects)
    return [fold]
