"""One train/validation split: a grouped fraction, or the dataset's own split folders."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gaitrun.errors import DataError


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float = Field(0.2, gt=0, lt=1, description="share of groups held out for validation")
    group_by: str | None = Field("subject", description="metadata field kept on one side; null: rows")
    use_dataset_split: bool = Field(False, description="use the dataset's own train/validation folders")
    groups: list[str] | None = Field(None, min_length=1, description="hold out exactly these values of "
                                     "group_by (e.g. walks [nm-05, nm-06, bg-02, cl-02]) instead of a fraction")


def _dataset_split(samples):
    import numpy as np

    from gaitrun.folds import Fold, listing

    splits = np.asarray([s.split or "" for s in samples])
    train = np.flatnonzero(splits == "train")
    val = np.flatnonzero(np.isin(splits, ["validation", "val"]))
    if not len(train) or not len(val):
        where = samples[0].path if samples else "<no samples>"
        raise DataError(where, "cv.use_dataset_split needs samples in both a train and a validation "
                        f"split (found splits {listing(sorted(set(map(str, splits))))})")
    return Fold(name="0", train=train, val=val)


def _named_groups(samples, groups, params: Params):
    import numpy as np

    from gaitrun.folds import Fold

    missing = sorted(set(params.groups) - set(groups))
    held = np.isin(groups, params.groups)
    where = samples[0].path if samples else "<no samples>"
    if missing:
        found = ", ".join(sorted(set(groups))[:12])
        raise DataError(where, f"cv.groups names {missing}, which no sample has as its {params.group_by} "
                        f"(values here: {found}); fix cv.groups")
    if held.all():
        raise DataError(where, "cv.groups hold out every sample; leave some groups for training")
    return Fold(name="0", train=np.flatnonzero(~held), val=np.flatnonzero(held))


def split(samples, *, params: Params, seed: int):
    import numpy as np

    from gaitrun.folds import Fold, check_disjoint, metadata

    if params.use_dataset_split:
        return [_dataset_split(samples)]
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit

    x = np.zeros((len(samples), 1))
    if params.group_by is None:
        train, val = next(ShuffleSplit(1, test_size=params.fraction, random_state=seed).split(x))
        return [Fold(name="0", train=np.sort(train), val=np.sort(val))]
    groups = metadata(samples, params.group_by)
    if params.groups is not None:
        return [_named_groups(samples, groups, params)]
    splitter = GroupShuffleSplit(1, test_size=params.fraction, random_state=seed)
    train, val = next(splitter.split(x, groups=groups))
    fold = Fold(name="0", train=np.sort(train), val=np.sort(val))
    check_disjoint(fold, groups)
    return [fold]
