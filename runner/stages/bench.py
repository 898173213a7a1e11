"""The bench stage: latency and throughput of the deployed model per backend and batch size
(``bench.json``, a table, ``plots/bench.png``); also ``gaitrun bench RUN_FOLDER``."""

from __future__ import annotations

from typing import Any

from ..bench import plot, print_table, run_bench
from ..deploy_data import deployed_model_path
from .data import prepared


def run(ctx: Any) -> dict:
    prep = prepared(ctx)
    bench = run_bench(ctx.folder.path, deployed_model_path(ctx), prep.input_shape, ctx.recipe.deploy, ctx.recipe.seed)
    ctx.folder.write_json("bench.json", bench)
    plot(bench, ctx.folder.file("plots", "bench.png"))
    if not ctx.quiet:
        print_table(bench)
    return {}
