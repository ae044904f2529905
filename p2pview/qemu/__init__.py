"""QEMU machines that reproduce a topology, and the check of p2pview against a booted kernel.

``machine`` turns a :class:`~p2pview.model.Topology` into a q35 command line
plus the topology the guest will really have; ``initramfs`` and ``verify``
boot it and compare the guest kernel's verdicts with p2pview's. Like the
layers below it, this package imports neither Rich nor Textual;
``commands`` is the command-line face.
"""

from p2pview.qemu.machine import (
    CPU_MODELS,
    Difference,
    Machine,
    MachineError,
    QemuDevice,
    VerdictChange,
    build_machine,
)

__all__ = [
    "CPU_MODELS",
    "Difference",
    "Machine",
    "MachineError",
    "QemuDevice",
    "VerdictChange",
    "build_machine",
]
