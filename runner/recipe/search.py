"""The ``search:`` section: a Ray Tune sweep over recipe key paths.

Only the models live here (no Ray import); ``gaitrun.sweep`` turns them into Tune objects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .sections import Strict

DOMAINS = ("choice", "grid", "uniform", "loguniform", "randint", "quniform")


class Domain(Strict):
    """Exactly one of the keys: ``{choice: [..]}``, ``{loguniform: [lo, hi]}``, ..."""

    choice: list[Any] | None = Field(None, min_length=1)
    grid: list[Any] | None = Field(None, min_length=1)
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = Field(None, description="[low, high) integers")
    quniform: tuple[float, float, float] | None = Field(None, description="[low, high, q]")

    @model_validator(mode="after")
    def _exactly_one(self) -> Domain:
        given = [k for k in DOMAINS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DOMAINS)} (got {given or 'none'})")
        kind = given[0]
        bounds = getattr(self, kind)
        if kind in ("uniform", "loguniform", "randint", "quniform") and not bounds[0] < bounds[1]:
            raise ValueError(f"{kind}: low must be below high")
        if kind == "loguniform" and bounds[0] <= 0:
            raise ValueError("loguniform: low must be > 0")
        if kind == "quniform" and bounds[2] <= 0:
            raise ValueError("quniform: q must be > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DOMAINS if getattr(self, k) is not None)

    @property
    def args(self) -> Any:
        return getattr(self, self.kind)

    def probe_values(self) -> list[Any]:
        """Values that must each give a valid recipe: every listed value, or the bounds."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        low, high = self.args[0], self.args[1]
        if self.kind == "randint":
            return [int(low), int(high) - 1]
        return [low, high]


class Objective(Strict):
    metric: str = Field(min_length=1)
    mode: Literal["min", "max"]


class Resources(Strict):
    cpu: float = Field(1.0, ge=0, le=1024, description="with train.distributed: the trial's driver only")
    gpu: float = Field(0.0, ge=0, le=64, description="fractions share a GPU between trials")

    @model_validator(mode="after")
    def _something(self) -> Resources:
        if self.cpu == 0 and self.gpu == 0:  # Ray Tune refuses a trial that reserves nothing
            raise ValueError("a trial must reserve some CPU or GPU; give e.g. cpu: 0.5")
        return self


class Search(Strict):
    space: dict[str, Domain] = Field(min_length=1, description="recipe key path -> domain")
    algorithm: Literal["grid", "random", "optuna"] = "random"
    scheduler: Literal["fifo", "asha", "median"] = "fifo"
    grace_period: int = Field(1, ge=1, le=100_000, description="asha, median: epochs every trial runs "
                              "before it may be stopped (ASHA's first rung)")
    num_samples: int = Field(8, ge=1, le=100_000, description="samples (grid: repeats of the grid)")
    max_concurrent: int = Field(2, ge=1, le=10_000)
    time_budget_s: float | None = Field(None, gt=0)
    resources: Resources = Field(default_factory=Resources)
    metric: str = Field("val_accuracy", min_length=1)
    mode: Literal["min", "max"] = "max"
    objectives: list[Objective] | None = Field(None, min_length=2, description="Pareto mode")
    max_failures: int = Field(1, ge=0, le=100, description="retries of a failing trial")
    address: str | None = Field(None, description="null: local Ray; 'auto' or host:port: a cluster")
    share_training: bool = Field(False, description="train once, before the trials; each trial prunes, "
                                 "exports and benchmarks that training (only prune.* and deploy.* searched)")

    @field_validator("space")
    @classmethod
    def _paths(cls, v: dict[str, Domain]) -> dict[str, Domain]:
        for key in v:
            if not key or any(not part for part in key.split(".")) or key.split(".")[0] == "search":
                raise ValueError(f"'{key}' is not a recipe key path like 'train.optimizer.lr'")
        return v

    @model_validator(mode="after")
    def _grid_alg(self) -> Search:
        has_grid = any(d.kind == "grid" for d in self.space.values())
        if has_grid and self.algorithm != "grid" and self.algorithm != "random":
            raise ValueError(f"'grid' domains need algorithm grid or random, not {self.algorithm}")
        return self
