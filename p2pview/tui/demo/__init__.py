"""Demo mode (``p2pview demo``): a talk as a script of steps, played in the TUI.

:mod:`~p2pview.tui.demo.script` reads and checks a demo file and builds every
step's state before anything is shown; :mod:`~p2pview.tui.demo.app` plays it.
"""

from p2pview.tui.demo.app import DemoApp, make_demo_app
from p2pview.tui.demo.script import (
    Demo,
    DemoError,
    DemoStep,
    bundled_demos,
    demo_path,
    demos_dir,
    load_demo,
)

__all__ = [
    "Demo",
    "DemoApp",
    "DemoError",
    "DemoStep",
    "bundled_demos",
    "demo_path",
    "demos_dir",
    "load_demo",
    "make_demo_app",
]
