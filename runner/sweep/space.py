"""The ``search:`` section in Ray Tune's terms, and back again.

``param_space`` turns each recipe key path's domain into a Tune search-space object; a trial's
config (key path -> sampled value) becomes ``--set``-style overrides (``key.path=<YAML>``) of
the sweep's recipe with ``trial_overrides``. List and mapping values of ``choice``/``grid``
domains travel through Tune as their JSON text (Optuna only samples scalars) and are decoded
against the domain's own values.
"""

from __future__ import annotations

import json
from typing import Any

from ..recipe.search import Domain, Objective, Search


def encode(value: Any) -> Any:
    """A choice/grid value as Tune sees it: scalars as they are, lists and mappings as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def decode(domain: Domain, value: Any) -> Any:
    """The recipe value behind a sampled Tune value (the inverse of ``encode``)."""
    if hasattr(value, "item"):  # numpy scalars from Tune's samplers
        value = value.item()
    if domain.kind in ("choice", "grid"):
        for original in domain.args:
            if encode(original) == value and type(encode(original)) is type(value):
                return original
    return value


def tune_domain(domain: Domain, algorithm: str) -> Any:
    """The Tune object for one domain. ``algorithm: grid`` enumerates choice lists too."""
    from ray import tune

    kind, args = domain.kind, domain.args
    if kind == "grid" or (kind == "choice" and algorithm == "grid"):
        return tune.grid_search([encode(v) for v in args])
    if kind == "choice":
        return tune.choice([encode(v) for v in args])
    maker = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint,
             "quniform": tune.quniform}[kind]
    return maker(*args)


def param_space(search: Search) -> dict[str, Any]:
    """Tune's ``param_space``: recipe key path -> search-space object."""
    return {key: tune_domain(domain, search.algorithm) for key, domain in search.space.items()}


def trial_values(search: Search, config: dict[str, Any]) -> dict[str, Any]:
    """A trial's recipe values: key path -> the value it runs with."""
    return {key: decode(domain, config[key]) for key, domain in search.space.items()}


def trial_overrides(search: Search, config: dict[str, Any]) -> list[str]:
    """``--set`` texts that turn the sweep's recipe into this trial's (JSON is valid YAML)."""
    values = trial_values(search, config)
    return ["search=null", *(f"{key}={json.dumps(value)}" for key, value in values.items())]


def targets(search: Search) -> list[Objective]:
    """What the sweep optimises: the Pareto objectives, or the one metric and mode."""
    return list(search.objectives or [Objective(metric=search.metric, mode=search.mode)])
