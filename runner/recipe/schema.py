"""The JSON Schema of recipes, for editors' YAML language servers::

    # yaml-language-server: $schema=recipe.schema.json
"""

from __future__ import annotations

from typing import Any

from ..registry import registries
from .model import everything, recipe_model_for


def recipe_schema() -> dict[str, Any]:
    schema = recipe_model_for(registries(), everything(registries())).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gaitrun recipe"
    schema["properties"]["extends"] = {
        "description": "base recipe(s) to deep-merge under this one, relative to this file",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    }
    return schema
