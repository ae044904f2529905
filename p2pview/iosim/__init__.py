"""Layer 4: the O_DIRECT data-path simulator.

One I/O whose user buffer may be P2P memory, stepped through mmap, GUP, bio
building, splitting, request merging, blk_rq_map_sg, the DMA mapping, the
nvme PRPs/SGL, the device's TLPs, completion and munmap, as the chosen kernel
release does it. Each stage is a function from state to state plus events.
"""

from p2pview.iosim.datapath import DataPath, datapath_for
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
from p2pview.iosim.simulate import Stepper, Trace, simulate, trace_document
from p2pview.iosim.state import STAGE_TITLES, STAGES, SimState

__all__ = [
    "STAGES",
    "STAGE_TITLES",
    "BufferKind",
    "BufferSegment",
    "DataPath",
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
