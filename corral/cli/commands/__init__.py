"""One module per group of commands; each command is `def name(ctx: Context) -> int`."""
