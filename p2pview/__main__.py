"""``python -m p2pview``."""

import sys

from p2pview.cli import main

sys.exit(main())
