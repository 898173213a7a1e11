"""The README's recipe reference and plugin-family table, generated from the recipe models and
the family table ``gaitrun.families.FAMILIES`` (a test keeps the README in sync: regenerate
with ``python -m gaitrun.recipe.reference --write README.md``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..families import FAMILIES, INPUT_SHAPES, INPUT_SOURCES, RAW_SAMPLES, SECTIONS, Family, signature_text
from ..plugin_table import _fmt_default, _param_rows, _type_name
from ..registry import Registries
from .search import Domain, Search
from .sections import CvBase, DataBase, DeployBase, Evaluate, PruneBase, Train

START, END = "<!-- recipe-reference:start -->", "<!-- recipe-reference:end -->"
FAMILY_START, FAMILY_END = "<!-- plugin-families:start -->", "<!-- plugin-families:end -->"

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
    bases = {"DataBase": DataBase, "CvBase": CvBase, "PruneBase": PruneBase, "DeployBase": DeployBase}
    for section, fam in SECTIONS.items():
        if section == "augment":
            continue
        names = ", ".join(f"`{n}`" for n in regs[fam.name].names())
        where = "beside it" if fam.flat else f"under `{section}.params`"
        out.append(f"| `{section}.{fam.selector}` | plugin name | {fam.default or 'required'} | one of {names}; "
                   f"the plugin's own keys go {where} (`gaitrun plugins {fam.name}`) |")
        if fam.base:
            out += _rows(bases[fam.base], f"{section}.")
    names = ", ".join(f"`{n}`" for n in regs["augmentations"].names())
    out.append(f"| `augment` | list | [] | one-key mappings `- NAME: {{params}}`, NAME one of {names} |")
    out += _rows(Train, "train.")
    out += _rows(Evaluate, "evaluate.")
    out += _rows(Search, "search.")
    out.append("| `search.space.<key path>` | domain | | exactly one of `choice`, `grid`, `uniform`, "
               "`loguniform`, `randint`, `quniform` |")
    out += ["", END]
    return "\n".join(out)


def _signature(name: str, sig: Any) -> str:
    text = signature_text(sig, returns=True).replace("|", "\\|")
    return f"`{name}{text}`"


def _family_row(fam: Family) -> str:
    required = [_signature(n, s) for n, s in fam.required_functions.items()]
    optional = [_signature(n, s) for n, s in fam.functions.items() if n in fam.optional]
    decls = [f"`{d}`" + (" (optional)" if d in fam.optional else "") for d in fam.declarations]
    where = f"`{fam.section}:`" + (f" `{fam.selector}:`" if fam.selector else " list") + \
        (", keys beside it" if fam.flat else (", keys under `params:`" if fam.selector else ""))
    hooks = "; optional: " + ", ".join(optional) if optional else ""
    return (f"| `{fam.name}` | {where} | {fam.default or '--'} | {', '.join(required)}{hooks} | "
            f"{', '.join(decls) or '--'} | {fam.doc} |")


def render_families() -> str:
    """The README's table of plugin families (from ``FAMILIES``)."""
    out = [FAMILY_START, "", "| family | recipe section | default | functions | declarations | notes |",
           "|---|---|---|---|---|---|"]
    out += [_family_row(fam) for fam in FAMILIES.values()]
    out += ["", "What a dataset's `load(sample, params)` returns, by modality (gaitrun crops, resizes and "
            "scales it, see `gaitrun/data/preprocess.py`):", "", "| modality | `load()` returns |", "|---|---|"]
    out += [f"| `{m}` | {text} |" for m, text in RAW_SAMPLES.items()]
    out += ["", "Which dataset `KIND` and modality can feed each architecture `INPUT_KIND`:", "",
            "| `INPUT_KIND` | model input (one window of T steps) | fed by (`KIND`, modality) |", "|---|---|---|"]
    out += [f"| `{kind}` | {INPUT_SHAPES[kind]} | "
            f"{', '.join(f'({k}, {m})' for k, m in sorted(INPUT_SOURCES[kind]))} |" for kind in INPUT_SOURCES]
    return "\n".join([*out, "", FAMILY_END])


def _replace_block(text: str, start: str, end: str, block: str) -> str:
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return head + block + tail


def sync(readme: Path) -> bool:
    """Rewrite the generated blocks in ``readme``; True if one changed."""
    text = readme.read_text()
    new = _replace_block(text, START, END, render())
    new = _replace_block(new, FAMILY_START, FAMILY_END, render_families())
    if new != text:
        readme.write_text(new)
    return new != text


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        print("updated" if sync(Path(sys.argv[2])) else "up to date")
    else:
        print(render())
