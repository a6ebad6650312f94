"""The SQLite store: models, engine set-up and the repository (the only code that knows SQL)."""
