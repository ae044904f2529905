"""p2pview: explore Linux PCIe peer-to-peer DMA decisions and data paths."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing's names only for the checker: --version stays light
    from collections.abc import Callable, Collection, Mapping
    from typing import Any

__version__ = "0.1.0"


def lend_lazily(
    namespace: dict[str, Any], lazy: Mapping[str, Collection[str]]
) -> Callable[[str], Any]:
    """A package's ``__getattr__`` that imports some of its names on first use.

    ``lazy`` maps a module to the names the package lends from it; the first
    time one of them is asked for, the module is imported and all its names are
    put in ``namespace`` (the package's ``globals()``), so that later lookups
    no longer come here. The sources, kernel and iosim packages keep their
    readers, the matrix and the simulator (numpy) off the start-up of commands
    that do not need them this way (``tests/test_cli_startup.py``).
    """

    def __getattr__(name: str) -> Any:
        for module_name, names in lazy.items():
            if name in names:
                module = importlib.import_module(module_name)
                for each in names:
                    namespace[each] = getattr(module, each)
                return namespace[name]
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")

    return __getattr__
