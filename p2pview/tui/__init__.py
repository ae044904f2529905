"""Layer 5: the Textual TUI. The only package that imports textual."""

from p2pview.tui.app import P2PViewApp, TuiArgs, make_app

__all__ = ["P2PViewApp", "TuiArgs", "make_app"]
