import os
import sys
from pathlib import Path

# The test helpers live beside the tests; p2pview itself is imported from the
# installed package, so that CI exercises what pip installed.
sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).parent / "data"

# Device names in TUI tests and snapshots come from the bundled pci.ids subset,
# not from whatever /usr/share/misc/pci.ids the test host happens to have.
os.environ.setdefault("P2PVIEW_PCI_IDS", "bundled")
