import os
import sys
from pathlib import Path

import pytest

# The test helpers live beside the tests; p2pview itself is imported from the
# installed package, so that CI exercises what pip installed.
sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).parent / "data"

# Device names in TUI tests and snapshots come from the bundled pci.ids subset,
# not from whatever /usr/share/misc/pci.ids the test host happens to have.
os.environ.setdefault("P2PVIEW_PCI_IDS", "bundled")


@pytest.fixture(autouse=True)
def _notifications_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every app's notifications, so that a test can read what the user was told.

    (``tuikit.said(app)``; imported here, not above, so that a test run without
    the TUI's dependencies still collects the other tests.)
    """
    from tuikit import record_notifications

    record_notifications(monkeypatch)
