"""`python -m gateway.cli`: the same as the `sluice` script."""

import sys

from gateway.cli import main

sys.exit(main())
