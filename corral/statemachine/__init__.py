"""The lifecycle: the table, the transition recipe, each event's kernel work, Container, Runtime, recovery.

Imports run one way: runtime → container, recovery → transition → events → step → context.
"""
