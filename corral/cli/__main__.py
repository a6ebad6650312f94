"""`python -m corral.cli`: the same as the `corral` command."""

from corral.cli.oneshot import entry

entry()
