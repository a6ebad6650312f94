"""The lifecycle table, the Container model, the Runtime, and recovery."""
