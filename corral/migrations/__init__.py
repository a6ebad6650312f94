"""Alembic migrations, shipped inside the package so that an installed corral can upgrade a store.

The store runs them (corral.store.migrate.alembic_config finds them as a package
resource); they import the store's models, never the other way round.
"""
