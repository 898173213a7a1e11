"""The JSON Schema of recipes, for editors' YAML language servers::

    # yaml-language-server: $schema=recipe.schema.json
"""

from __future__ import annotations

from typing import Any

from ..registry import registries
from .model import everything, recipe_model_for


def recipe_schema() -> dict[str, Any]:
    """The schema of recipes over every usable plugin; broken ones are listed with the reason
    under ``x-gaitrun-broken-plugins`` (recipes that name them fail validation)."""
    from ..plugin_table import plugin_rows

    regs = registries()
    schema = recipe_model_for(regs, everything(regs)).model_json_schema()
    broken = [{k: r[k] for k in ("family", "name", "origin", "broken")} for r in plugin_rows(regs) if r["broken"]]
    if broken:
        schema["x-gaitrun-broken-plugins"] = broken
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gaitrun recipe"
    schema["properties"]["extends"] = {
        "description": "base recipe(s) to deep-merge under this one, relative to this file",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    }
    return schema
