"""One fold per group (e.g. per subject): train on all others, validate on it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ._common import run_splitter


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group_by: str = Field("subject", min_length=1, description="metadata field defining the groups")


def split(samples, *, params: Params, seed: int):
    from sklearn.model_selection import LeaveOneGroupOut

    from gaitrun.folds import metadata

    return run_splitter(LeaveOneGroupOut(), samples, groups=metadata(samples, params.group_by))
