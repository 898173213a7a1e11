"""The model outputs the core uses, as the architecture declares them (``LOGITS``,
``EMBEDDING``): the core never guesses layer names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

    from .stages import RunContext


@dataclass(frozen=True)
class Outputs:
    """Layer names of the softmax output and of the embedding (None: the model has none)."""

    logits: str | None
    embedding: str | None

    def of(self, model: keras.Model) -> Outputs:
        """The declared outputs that ``model`` really has (GaitSet has logits only with ce_head)."""
        names = {layer.name for layer in model.layers}
        return Outputs(self.logits if self.logits in names else None,
                       self.embedding if self.embedding in names else None)


def declared_outputs(ctx: RunContext) -> Outputs:
    """The outputs the recipe's architecture declares."""
    arch = ctx.regs["architectures"].get(ctx.recipe.model.arch)
    return Outputs(logits=arch.declared("LOGITS"), embedding=arch.declared("EMBEDDING"))
