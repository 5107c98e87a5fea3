"""``python -m irx``: the same command line as ``irx``."""

import sys

from irx.cli import main

sys.exit(main())
