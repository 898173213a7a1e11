"""Recipes: loading with line numbers, composition, the pydantic model and cross-checks."""

from .load import LoadedRecipe, load_recipe

__all__ = ["LoadedRecipe", "load_recipe"]
