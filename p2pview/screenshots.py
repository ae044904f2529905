"""``python -m p2pview.screenshots``: SVGs of every TUI screen.

The work is in :mod:`p2pview.tui.screenshots` (only ``tui`` imports Textual).
"""

from __future__ import annotations

from p2pview.tui.screenshots import main

if __name__ == "__main__":
    raise SystemExit(main())
