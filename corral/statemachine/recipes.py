"""The Recipes of one Runtime's Containers, one per incarnation (key), made when first needed.

`Runtime.list()` hands out Containers that hold only their key and id, so that
listing 10,000 records builds no recipe and reads no record; a Container makes
its recipe here on first use. The book holds recipes weakly (each Container
holds its own), so that a Container made from a record (`create`, `load`,
recovery) and a listed one of the same incarnation share one recipe while
either is used, and nothing outlives the Containers.
"""

from __future__ import annotations

import threading
import weakref

from corral.statemachine.context import Context
from corral.statemachine.transition import Recipe
from corral.store.repository import ContainerRecord


class RecipeBook:
    """Recipes by key, weakly held; `context` is the Runtime's, which every recipe gets."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._recipes: weakref.WeakValueDictionary[int, Recipe] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    def recipe(self, key: int, container_id: str, record: ContainerRecord | None = None) -> Recipe:
        """The recipe of incarnation `key` (made if none lives); it keeps `record` unless it holds a newer one.

        Without a record, a new recipe reads its record on first use.
        """
        with self._guard:
            recipe = self._recipes.get(key)
            if recipe is None:
                recipe = self._recipes[key] = Recipe(self.context, record, key=key, container_id=container_id)
                return recipe
        if record is not None:
            recipe.adopt(record)
        return recipe

    def adopt(self, record: ContainerRecord) -> None:
        """Give `record` to its incarnation's recipe, if one lives (a listed Container may have none yet)."""
        with self._guard:
            recipe = self._recipes.get(record.key)
        if recipe is not None:
            recipe.adopt(record)
