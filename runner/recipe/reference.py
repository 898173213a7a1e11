"""The README's recipe reference, generated from the recipe models (a test keeps the README
in sync: regenerate with ``python -m gaitrun.recipe.reference --write README.md``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..plugin_table import _fmt_default, _param_rows, _type_name
from ..registry import Registries
from .model import SECTIONS
from .search import Domain, Search
from .sections import CvBase, DataBase, DeployBase, Evaluate, PruneBase, Train

START, END = "<!-- recipe-reference:start -->", "<!-- recipe-reference:end -->"

TOP = [("name", "str (required)", "names the run folder artifacts/<name>/; letters, digits, _ . -"),
       ("seed", "int = 0", "seeds data order, augmentation, initialisation and CV"),
       ("extends", "str | list", "base recipe(s), deep-merged under this one, relative to this file")]


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    lines = []
    for row in _param_rows(model):
        sub = model.model_fields[row["name"]].annotation
        nested = _nested_model(sub)
        if nested is not None and nested is not Domain:
            lines += _rows(nested, f"{prefix}{row['name']}.")
            continue
        default = "required" if row["required"] else _fmt_default(row["default"])
        lines.append(f"| `{prefix}{row['name']}` | {_type_name(sub).replace('|', 'or')} | {default} | "
                     f"{row['description']} |")
    return lines


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    from typing import get_args

    candidates = [annotation, *get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def render() -> str:
    regs = Registries()  # built-ins only: the README must not depend on what else is installed
    regs.load_builtins()
    out = [START, "", "| key | type | default | meaning |", "|---|---|---|---|"]
    out += [f"| `{k}` | {t} | | {d} |" for k, t, d in TOP]
    plugin_sections = [("data", DataBase), ("model", None), ("cv", CvBase), ("prune", PruneBase),
                       ("deploy", DeployBase)]
    for section, base in plugin_sections:
        family, selector, flat, default = SECTIONS[section]
        names = ", ".join(f"`{n}`" for n in regs[family].names())
        where = "beside it" if flat else f"under `{section}.params`"
        out.append(f"| `{section}.{selector}` | plugin name | {default or 'required'} | one of {names}; "
                   f"the plugin's own keys go {where} (`gaitrun plugins {family}`) |")
        if base is not None:
            out += _rows(base, f"{section}.")
    names = ", ".join(f"`{n}`" for n in regs["augmentations"].names())
    out.append(f"| `augment` | list | [] | one-key mappings `- NAME: {{params}}`, NAME one of {names} |")
    out += _rows(Train, "train.")
    out += _rows(Evaluate, "evaluate.")
    out += _rows(Search, "search.")
    out.append("| `search.space.<key path>` | domain | | exactly one of `choice`, `grid`, `uniform`, "
               "`loguniform`, `randint`, `quniform` |")
    out += ["", END]
    return "\n".join(out)


def sync(readme: Path) -> bool:
    """Rewrite the block in ``readme``; True if it changed."""
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = head + render() + tail
    if new != text:
        readme.write_text(new)
    return new != text


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        print("updated" if sync(Path(sys.argv[2])) else "up to date")
    else:
        print(render())
