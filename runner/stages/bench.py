"""The bench stage: latency and throughput of every row of the trade-off table (unpruned and
pruned, Keras and each exported precision; see ``gaitrun.tradeoff``) per batch size
(``bench.json``, a table, ``plots/bench.png``, ``plots/tradeoff.png``); also ``gaitrun bench RUN``."""

from __future__ import annotations

from typing import Any

from ..bench import plot, print_table, run_bench
from ..deploy_data import deployed_model_path
from .data import prepared
from .export import runtime_of


def run(ctx: Any) -> dict:
    prep = prepared(ctx)
    runtime = runtime_of(ctx.regs["exporters"].get(ctx.recipe.deploy.target))
    bench = run_bench(ctx.folder.path, deployed_model_path(ctx), prep.input_shape, ctx.recipe.deploy,
                      ctx.recipe.seed, runtime=runtime)
    ctx.folder.write_json("bench.json", bench)
    plot(bench, ctx.folder.file("plots", "bench.png"))
    if "rows" in bench:
        from ..tradeoff import plot as plot_tradeoff

        plot_tradeoff(bench, ctx.folder.file("plots", "tradeoff.png"))
    if not ctx.quiet:
        print_table(bench)
    return {}
