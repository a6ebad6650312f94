"""corral's version: its own module so that the CLI can print it without importing the library."""

__version__ = "0.1.0"
