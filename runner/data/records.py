"""The record every dataset adapter yields: one sample plus the metadata that drives
subject-disjoint cross-validation and protocol evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One sample of a dataset (a sequence folder, a video, an image, a sensor window).

    ``label`` is the class the model learns (for gait recognition: the subject id).
    ``subject``, ``condition`` (nm/bg/cl, normal/bag/shoes ...), ``view`` and ``sequence``
    are the metadata CV schemes group by and protocols evaluate on; ``split`` is the
    dataset's own split ("train", "validation", "test") where the layout has one.
    ``path`` is the source on disk; ``index`` addresses one item inside a multi-sample
    file (e.g. a row of a UCI HAR text file), otherwise ``None``.
    """

    path: str
    label: str
    subject: str | None = None
    condition: str | None = None
    view: str | None = None
    sequence: str | None = None
    split: str | None = None
    index: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def meta(self, key: str) -> Any:
        """A metadata field by name (``subject``, ``condition``, ... or a key of ``extra``)."""
        if key in ("path", "label", "subject", "condition", "view", "sequence", "split", "index"):
            return getattr(self, key)
        return self.extra.get(key)
