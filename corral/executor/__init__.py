"""Everything that touches the kernel.

Nothing here imports the store or the state machine: the kernel side knows no SQL
and decides no lifecycle. Importing this package is cheap on purpose; the init
and the spawn helper start from it.
"""
