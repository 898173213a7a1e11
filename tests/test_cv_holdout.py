"""The holdout CV plugin: a grouped fraction, or exactly the named groups held out."""

from __future__ import annotations

import numpy as np
import pytest

from gaitrun.data.records import Sample
from gaitrun.errors import DataError
from gaitrun.plugins.cv.holdout import Params, split

WALKS = ["nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02"]


def samples(subjects: int = 3) -> list[Sample]:
    return [Sample(path=f"/d/{s:03d}/{w}/090", label=f"{s:03d}", subject=f"{s:03d}", condition=w[:2],
                   view="090", sequence=w) for s in range(1, subjects + 1) for w in WALKS]


def test_named_groups_hold_out_exactly_those_walks_of_every_subject():
    rows = samples()
    (fold,) = split(rows, params=Params(group_by="sequence", groups=["nm-05", "nm-06", "bg-02", "cl-02"]), seed=0)
    held = {rows[i].sequence for i in fold.val}
    assert held == {"nm-05", "nm-06", "bg-02", "cl-02"}
    assert {rows[i].sequence for i in fold.train} == set(WALKS) - held
    assert len(fold.val) == 12 and len(fold.train) == 18
    assert {rows[i].subject for i in fold.val} == {rows[i].subject for i in fold.train}  # identification
    assert np.array_equal(fold.val, np.sort(fold.val))


def test_a_named_group_no_sample_has_is_an_error_naming_the_values_found():
    with pytest.raises(DataError, match=r"cv.groups names \['nm-07'\].*nm-01"):
        split(samples(), params=Params(group_by="sequence", groups=["nm-05", "nm-07"]), seed=0)


def test_holding_out_every_group_is_an_error():
    with pytest.raises(DataError, match="every sample"):
        split(samples(), params=Params(group_by="sequence", groups=WALKS), seed=0)


def test_fraction_split_is_seeded_and_grouped():
    rows = samples(6)
    a, b = (split(rows, params=Params(group_by="subject", fraction=0.34), seed=3)[0] for _ in range(2))
    assert np.array_equal(a.val, b.val)
    subjects = np.asarray([r.subject for r in rows])
    assert not set(subjects[a.train]) & set(subjects[a.val])
