"""Load a recipe: YAML (with marks) -> extends/overrides -> pydantic -> cross-checks.

``load_recipe`` either returns a valid ``LoadedRecipe`` or raises ``RecipeError`` listing
*every* problem found, each as ``file:line:col: key.path: message``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import RecipeError
from ..families import SECTIONS
from ..registry import Registries, registries
from ..yamlio import Document, dotted, dump, problem
from .checks import CHECKS, check_search
from .compose import compose
from .errors import to_problem, to_problems
from .model import broken_named, recipe_model_for, selection


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe plus what it came from."""

    recipe: Any  # an instance of the Recipe model built from the registries
    document: Document
    path: Path

    @property
    def resolved(self) -> dict:
        """The recipe with defaults filled in, as plain data (what runs)."""
        data = self.recipe.model_dump(mode="json")  # explicit nulls kept: null may override a default
        for section, fam in SECTIONS.items():
            if isinstance(data.get(section), dict) and fam.selector in data[section]:
                body = data[section]
                data[section] = {fam.selector: body.pop(fam.selector), **body}
        return data

    @property
    def hash(self) -> str:
        """8 hex digits identifying the resolved recipe (key order independent)."""
        return _digest(self.resolved)

    def matches(self, run_hash: str) -> bool:
        """Is this the recipe a run folder's ``run_hash`` was made from? A run folder's recipe.yaml
        is the resolved recipe, so its data as written hash to the run's hash even when a later
        version of gaitrun adds keys with defaults (which change the resolved recipe's hash);
        an edited file matches neither."""
        return run_hash in (self.hash, _digest(self.document.data))

    def yaml(self) -> str:
        return dump(self.resolved)


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _known(regs: Registries) -> dict[str, list[str]]:
    return {family: reg.names() for family, reg in regs.by_family.items()}


def _errors(regs: Registries, data: Any) -> list[dict]:
    model = recipe_model_for(regs, selection(data, regs))
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return exc.errors(include_url=False)
    return []


def validate_document(doc: Document, *, path: Path, regs: Registries | None = None) -> LoadedRecipe:
    regs = regs or registries()
    broken = broken_named(doc.data, regs)
    if broken:  # an installed plugin that cannot be used fails only the recipes that name it
        raise RecipeError(_sorted([problem(doc.mark(p, key=p[0] == "augment"), dotted(p), why)
                                   for p, why in broken]))
    model = recipe_model_for(regs, selection(doc.data, regs))
    errors = _errors(regs, doc.data)
    if errors:
        known = _known(regs)
        raise RecipeError(_sorted(to_problems(doc, model, errors, known)))
    recipe = model.model_validate(doc.data)
    found = [f for check in CHECKS for f in check(recipe, regs)]
    known = _known(regs)

    def explain(data: dict, err: dict) -> str:
        trial_model = recipe_model_for(regs, selection(data, regs))
        return to_problem(Document(data=data, source=doc.source), trial_model, err, known).message

    found += check_search(doc.data, lambda d: _errors(regs, d), recipe, explain)
    if found:
        raise RecipeError(_sorted([problem(doc.mark(p, key=p[0] in ("augment", "search")), dotted(p), msg)
                                   for p, msg in found]))
    return LoadedRecipe(recipe=recipe, document=doc, path=path)


def _sorted(problems: list) -> list:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.source, p.line or 0, p.col or 0))


def load_recipe(path: str | Path, overrides: list[str] = (), *, regs: Registries | None = None,
                retarget: bool = False) -> LoadedRecipe:
    """Load, compose and validate the recipe at ``path``. ``retarget``: ``path`` is a run
    folder's resolved recipe (every default written out), so an override that names another
    plugin drops the old plugin's keys instead of failing on them."""
    path = Path(path)
    doc = compose(path, list(overrides), retarget=retarget)
    return validate_document(doc, path=path, regs=regs)
