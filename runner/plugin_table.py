"""``gaitrun plugins``: every registered plugin with its params and their defaults."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

from .registry import Registries


def _param_rows(params: type) -> list[dict[str, Any]]:
    rows = []
    for name, field in params.model_fields.items():
        required = field.is_required()
        if required:
            default = None
        elif field.default_factory is not None:
            default = field.default_factory()
        else:
            default = field.default if field.default is not PydanticUndefined else None
        if hasattr(default, "model_dump"):
            default = default.model_dump(mode="json")
        rows.append({"name": name, "required": required, "default": default,
                     "type": _type_name(field.annotation), "description": field.description or ""})
    return rows


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")


def plugin_rows(regs: Registries, family: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for fam, reg in regs.by_family.items():
        if family not in (None, fam):
            continue
        for plugin in reg:
            declared = {attr: sorted(v) if isinstance(v := plugin.declared(attr), (set, frozenset)) else v
                        for attr in reg.spec.declarations}
            rows.append({"family": fam, "name": plugin.name, "description": plugin.description,
                         "origin": plugin.origin, "declares": declared,
                         "params": _param_rows(plugin.params)})
    return rows


def _fmt_default(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def print_plugin_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for col in ("family", "name", "description", "params (default)"):
        table.add_column(col, overflow="fold")
    for row in rows:
        params = ", ".join(f"{p['name']} (required)" if p["required"] else f"{p['name']}={_fmt_default(p['default'])}"
                           for p in row["params"])
        origin = "" if row["origin"] == "built-in" else f"\n[dim]{row['origin']}[/]"
        table.add_row(row["family"], f"[cyan]{row['name']}[/]{origin}", row["description"], params)
    Console().print(table)
