"""`python -m corral.cli`: the same as the `corral` command."""

import sys

from corral.cli.app import main

sys.exit(main())
