"""How the store finds and runs its Alembic migrations (the scripts live in corral/migrations)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config


def alembic_config(url: str) -> Config:
    """An Alembic config for `url` that finds the scripts as a package resource.

    The scripts are named by resource ("corral:migrations"), not imported: the
    migrations import the store's models, never the other way round.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "corral:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolates `%`
    return config
