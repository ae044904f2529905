"""Layer 4: the O_DIRECT data-path simulator.

One I/O whose user buffer may be P2P memory, stepped through mmap, GUP, bio
building, splitting, request merging, blk_rq_map_sg, the DMA mapping, the
nvme PRPs/SGL, the device's TLPs, completion and munmap, as the chosen kernel
release does it. Each stage is a function from state to state plus events.

The simulator and its state hold memory in numpy arrays; a scenario does not.
Their names are imported on first use, so that reading or listing scenarios
(``p2pview scenarios``) starts without numpy.
"""

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from p2pview import lend_lazily
from p2pview.iosim.datapath import DataPath, datapath_for
from p2pview.iosim.dmachoice import DmaChoice, DmaChosenBy
from p2pview.iosim.limits import KernelLimits, kernel_limits
from p2pview.iosim.scenario import (
    BufferKind,
    BufferSegment,
    DmaMode,
    Iovec,
    QueueLimits,
    Scenario,
    TargetKind,
    quick_scenario,
    read_scenario,
)

if TYPE_CHECKING:
    from p2pview.iosim.simulate import Stepper, Trace, simulate, trace_document
    from p2pview.iosim.state import STAGE_TITLES, STAGES, SimState

#: The names that come with numpy, by the module that defines them.
_LAZY = {
    "p2pview.iosim.simulate": frozenset({"Stepper", "Trace", "simulate", "trace_document"}),
    "p2pview.iosim.state": frozenset({"STAGE_TITLES", "STAGES", "SimState"}),
}


#: The simulator's names, imported (with numpy) when first asked for.
__getattr__ = lend_lazily(globals(), _LAZY)


class _Package(ModuleType):
    """This package, whose ``simulate`` stays the function when its module is imported.

    Importing the submodule ``p2pview.iosim.simulate`` binds the package's
    attribute ``simulate`` to that module; with the eager import this file
    used to do, the function replaced it straight after. Now that the import
    may come later (or directly, not through :func:`__getattr__`), the
    function is put in its place here.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "simulate" and isinstance(value, ModuleType):
            value = value.simulate
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "STAGES",
    "STAGE_TITLES",
    "BufferKind",
    "BufferSegment",
    "DataPath",
    "DmaChoice",
    "DmaChosenBy",
    "DmaMode",
    "Iovec",
    "KernelLimits",
    "QueueLimits",
    "Scenario",
    "SimState",
    "Stepper",
    "TargetKind",
    "Trace",
    "datapath_for",
    "kernel_limits",
    "quick_scenario",
    "read_scenario",
    "simulate",
    "trace_document",
]
