"""What a sweep's trials with ``train.distributed`` need from the Ray cluster, checked after the
driver connects and before any trial starts.

One such trial reserves its driver (``search.resources``: the work process that loads the data,
starts the workers and evaluates) and, through Ray Train, ``workers`` x (``cpus_per_worker``,
``gpus_per_worker``). A trial the cluster can never hold (in all, or node by node: the driver on
one node, each worker on one node) is a one-line error (exit 2; the sweep folder says failed,
with the reason). Trials run at once only as many as the cluster's totals hold whole: with
more, Tune would start drivers that hold CPUs while their workers wait for CPUs that other
drivers hold, for ever (how several trials pack onto the nodes is not checked). A searched
``train.distributed.*`` key counts with its largest value. The cluster's size is read once, at
the start: nodes an autoscaler would add later are not counted. Ray is imported only inside
functions."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..recipe.search import Search

SEARCHED = ("workers", "cpus_per_worker", "gpus_per_worker")  # train.distributed.<key> in search.space


@dataclass(frozen=True)
class TrialNeed:
    """One trial's reservation: its driver and its Ray Train workers."""

    driver_cpu: float
    driver_gpu: float
    dist: Any  # train.distributed, with the largest searched values

    @property
    def cpu(self) -> float:
        return self.driver_cpu + self.dist.workers * self.dist.cpus_per_worker

    @property
    def gpu(self) -> float:
        return self.driver_gpu + self.dist.workers * self.dist.gpus_per_worker

    def __str__(self) -> str:
        d = self.dist
        return (f"{self.driver_cpu:g} CPU, {self.driver_gpu:g} GPU for its driver (search.resources) + "
                f"{d.workers} workers x ({d.cpus_per_worker:g} CPU, {d.gpus_per_worker:g} GPU) "
                f"(train.distributed) = {self.cpu:g} CPU, {self.gpu:g} GPU")


def trial_need(recipe: Any) -> TrialNeed | None:
    """What one trial reserves, or None if its trials train in one process."""
    from ..recipe.sections import Distributed

    search: Search = recipe.search
    searched = {key.rsplit(".", 1)[1]: domain for key, domain in search.space.items()
                if key in {f"train.distributed.{k}" for k in SEARCHED}}
    dist = recipe.train.distributed
    if dist is None and not searched:
        return None
    values = (dist or Distributed()).model_dump()
    values.update({k: max(d.probe_values()) for k, d in searched.items()})
    return TrialNeed(search.resources.cpu, search.resources.gpu, Distributed(**values))


def fits_once(need: TrialNeed, nodes: list[dict[str, float]]) -> bool:
    """Some node holds the driver, and what the nodes have left holds the workers (each on one node)."""
    from ..train.distributed import worker_slots

    driver = {"CPU": need.driver_cpu, "GPU": need.driver_gpu}
    for host in nodes:
        if all(host.get(k, 0.0) + 1e-9 >= v for k, v in driver.items()):
            rest = [{k: n.get(k, 0.0) - (driver[k] if n is host else 0.0) for k in driver} for n in nodes]
            if worker_slots(need.dist, rest) >= need.dist.workers:
                return True
    return False


def _at_once(need: TrialNeed, total: dict[str, float]) -> int:
    """Whole trials the cluster's totals hold at once."""
    counts = [math.floor(total.get(kind, 0.0) / amount + 1e-9) for kind, amount in (("CPU", need.cpu),
              ("GPU", need.gpu)) if amount > 0]
    return min(counts)


def concurrent_trials(recipe: Any, target: str) -> int:
    """``search.max_concurrent``, lowered to the distributed trials the cluster holds at once
    (said on stderr); a UsageError if it can never hold one."""
    import ray

    from ..train.distributed import describe_nodes, per_node

    search: Search = recipe.search
    need = trial_need(recipe)
    if need is None:
        return search.max_concurrent
    nodes, total = per_node(), ray.cluster_resources()
    have = f"{total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU in all; nodes: {describe_nodes(nodes)}"
    fits = _at_once(need, total)
    if fits < 1 or not fits_once(need, nodes):
        raise UsageError(f"one trial needs {need}, which can never fit the Ray cluster '{target}' ({have}); lower "
                         "train.distributed.workers, cpus_per_worker or gpus_per_worker or search.resources, "
                         "or add nodes")
    if fits < search.max_concurrent:
        sys.stderr.write(f"gaitrun: running {fits} trial(s) at once, not search.max_concurrent "
                         f"{search.max_concurrent}: one trial needs {need} and the Ray cluster '{target}' has "
                         f"{have}\n")
    return min(fits, search.max_concurrent)
