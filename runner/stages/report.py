"""The report stage: ``report.md``, a human summary of the run folder."""

from __future__ import annotations

import json
from typing import Any


def _section(title: str, path: Any) -> list[str]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    return [f"## {title}", "", "```json", json.dumps(data, indent=2)[:4000], "```", ""]


def run(ctx: Any) -> dict:
    folder = ctx.folder
    m = folder.manifest
    lines = [f"# {m['name']} — run {m['run_id']}", "",
             f"Recipe hash `{m['recipe_hash']}`, seed {m['seed']}, created {m['created']}.", "",
             "| stage | status | reason |", "|---|---|---|"]
    for s in m["stages"]:
        lines.append(f"| {s['name']} | {s['status']} | {s['reason'] or ''} |")
    lines.append("")
    for title, rel in (("Data", "data.json"), ("Metrics", "metrics.json"),
                       ("Pruning", "pruned/pruning.json"), ("Export", "export/export.json"),
                       ("Benchmark", "bench.json")):
        lines += _section(title, folder.file(rel))
    plots = sorted(folder.file("plots").glob("*.png")) if folder.file("plots").is_dir() else []
    lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
    folder.write_text("report.md", "\n".join(lines) + "\n")
    return {}
