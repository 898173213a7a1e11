"""``gaitrun plugins``: every registered plugin with its params and their defaults; a plugin
that cannot be used is a row flagged ``broken`` with the reason."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

from .registry import Broken, Registries


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
        for entry in reg.entries():
            if isinstance(entry, Broken):
                rows.append(_broken_row(entry))
                continue
            declared = {attr: sorted(v) if isinstance(v := entry.declared(attr), (set, frozenset)) else v
                        for attr in reg.spec.declarations}
            rows.append({"family": fam, "name": entry.name, "description": entry.description,
                         "origin": entry.origin, "declares": declared,
                         "params": _param_rows(entry.params), "broken": None})
    rows += [_broken_row(b) for b in regs.broken_entry_points if family in (None, b.family)]
    return rows


def _broken_row(entry: Broken) -> dict[str, Any]:
    return {"family": entry.family, "name": entry.name, "description": "", "origin": entry.origin,
            "declares": {}, "params": [], "broken": entry.reason}


def _fmt_default(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def print_plugin_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for col in ("family", "name", "description", "params (default)"):
        table.add_column(col, overflow="fold")
    for row in rows:
        params = ", ".join(f"{p['name']} (required)" if p["required"] else f"{p['name']}={_fmt_default(p['default'])}"
                           for p in row["params"])
        origin = "" if row["origin"] == "built-in" else f"\n[dim]{row['origin']}[/]"
        if row["broken"]:
            table.add_row(row["family"], f"[red]{row['name']} (broken)[/]{origin}",
                          f"[red]{escape(row['broken'])}[/]", "")
            continue
        table.add_row(row["family"], f"[cyan]{row['name']}[/]{origin}", row["description"], params)
    Console().print(table)
