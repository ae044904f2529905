"""Files shipped inside the installed ``p2pview`` package (data, topologies, guest sources).

A path beside this module rather than ``importlib.resources.files()``: p2pview
is installed as plain files (a wheel, or an editable checkout), never run from a
zip, and importing ``importlib.resources`` (which brings ``zipfile`` with it)
cost 9 ms of every command's start-up for a path known in advance.
"""

from __future__ import annotations

from pathlib import Path

#: The installed ``p2pview`` package's directory.
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def package_file(*parts: str) -> Path:
    """``p2pview/<parts...>`` as installed (the path may not exist)."""
    return PACKAGE_DIR.joinpath(*parts)
