"""QEMU's NVMe trace: the commands the emulated controller saw, and what each transferred.

``p2pview verify --io`` runs QEMU with ``-trace events=FILE -D LOG``, FILE
naming :data:`TRACE_EVENTS`. Debian's qemu-system-x86 7.2 has the "log"
backend: one line per event, ``NAME ARGS`` as hw/nvme/trace-events formats them
(read in Debian's qemu 7.2 source, hw/nvme/trace-events and hw/nvme/ctrl.c):

* ``pci_nvme_read cid C nsid N nlb B count BYTES lba 0xL`` and
  ``pci_nvme_write cid C opname 'O' nsid N nlb B count BYTES lba 0xL``: one I/O
  command (``nvme_read()`` / ``nvme_do_write()``; ``nlb`` is already the block
  count, the command's field plus one);
* ``pci_nvme_map_prp trans_len T len L prp1 0xA prp2 0xB num_prps K``: the command
  carries PRPs (``nvme_map_prp()``; ``num_prps`` is QEMU's ``len / page + 1``,
  not a count the driver chose);
* ``pci_nvme_map_sgl type 0xT len L``: the command carries an SGL whose first
  descriptor has type T (0: one Data Block in the command; 2/3: a (Last)
  Segment pointing to a list);
* ``pci_nvme_map_addr addr 0xA len L``: one range the controller maps, per PRP
  entry or SGL Data Block (``nvme_map_addr()``); ``pci_nvme_map_addr_cmb`` follows
  when the range is in the controller's own CMB;
* ``pci_nvme_err_*``: the controller refused something (``pci_nvme_err_mdts``,
  ``pci_nvme_err_invalid_*``...), kept with the command it belongs to.

The guest brackets each scenario with two 512-byte reads at sentinel LBAs;
:func:`scenario_commands` returns the commands between them. The log is read
line by line, at most :data:`MAX_LOG_BYTES` bytes and :data:`MAX_LINE` bytes a
line; anything else is a one-line :class:`TraceError` naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from p2pview.model.errors import ToolError

#: The events ``-trace events=FILE`` enables (one a line; ``*`` is QEMU's glob).
TRACE_EVENTS = (
    "pci_nvme_read",
    "pci_nvme_write",
    "pci_nvme_map_prp",
    "pci_nvme_map_sgl",
    "pci_nvme_map_addr",
    "pci_nvme_map_addr_cmb",
    "pci_nvme_err_*",
)
#: The most of a trace log read: a few hundred commands of at most 2,048 ranges each.
MAX_LOG_BYTES = 256 << 20
MAX_LINE = 4096
#: SGL descriptor types (NVMe base specification; hw/nvme/ctrl.c names them).
SGL_DATA_BLOCK = 0x0
SGL_SEGMENT = 0x2
SGL_LAST_SEGMENT = 0x3

_NUM = r"(0x[0-9a-fA-F]+|[0-9]+)"
_RW = re.compile(
    rf"^pci_nvme_(read|write) cid {_NUM}(?: opname '[^']*')? nsid {_NUM} nlb {_NUM}"
    rf" count {_NUM} lba {_NUM}$"
)
_PRP = re.compile(
    rf"^pci_nvme_map_prp trans_len {_NUM} len {_NUM} prp1 {_NUM} prp2 {_NUM} num_prps -?{_NUM}$"
)
_SGL = re.compile(rf"^pci_nvme_map_sgl type {_NUM} len {_NUM}$")
_ADDR = re.compile(rf"^pci_nvme_map_addr(_cmb)? addr {_NUM} len {_NUM}$")
_ERR = re.compile(r"^(pci_nvme_err_\w+)(?: (.*))?$")
#: QEMU's log backend may prefix ``PID@SECONDS.MICROS:`` (``-msg timestamp=on``).
_PREFIX = re.compile(r"^[0-9]+@[0-9]+\.[0-9]+:")


class TraceError(ToolError):
    """The trace log cannot be read or a line is not what QEMU 7.2 writes; one line.

    A tool's failure, not the user's input: QEMU writes the log where p2pview
    tells it to, so a line p2pview cannot read says which QEMU ran.
    """


@dataclass
class NvmeCommand:
    """One I/O command as the controller saw it.

    ``ranges`` are the ``(address, length)`` pairs ``nvme_map_addr()`` mapped, in
    order; ``cmb`` marks those in the controller's own CMB. ``dptr`` is ``prp``,
    ``sgl`` or ``None`` (rejected before mapping, e.g. above MDTS).
    """

    op: str
    slba: int
    nlb: int
    count: int
    line: int
    dptr: str | None = None
    prp1: int | None = None
    prp2: int | None = None
    sgl_type: int | None = None
    ranges: list[tuple[int, int]] = field(default_factory=list)
    cmb: list[bool] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def sgl_inline(self) -> bool:
        """One Data Block descriptor in the command itself."""
        return self.sgl_type == SGL_DATA_BLOCK

    @property
    def mapped(self) -> int:
        """Bytes the ranges cover."""
        return sum(n for _, n in self.ranges)


def _int(text: str) -> int:
    return int(text, 0)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of the log, bounded in total and per line."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - a generator: closed by the with below
    except OSError as exc:
        raise TraceError(f"{path}: {exc.strerror or exc}") from None
    with fh:
        total = 0
        for number, raw in enumerate(iter(lambda: fh.readline(MAX_LINE + 1), b""), 1):
            total += len(raw)
            if total > MAX_LOG_BYTES:
                raise TraceError(f"{path}: larger than {MAX_LOG_BYTES >> 20} MiB")
            if len(raw) > MAX_LINE:
                raise TraceError(f"{path}:{number}: a line longer than {MAX_LINE} bytes")
            try:
                text = raw.decode("ascii").rstrip("\r\n")
            except UnicodeDecodeError:
                raise TraceError(f"{path}:{number}: not ASCII text") from None
            yield number, _PREFIX.sub("", text)


def parse_lines(lines: Iterable[tuple[int, str]], where: str) -> list[NvmeCommand]:
    """Every I/O command of the log, in order (``where`` names the file in errors)."""
    commands: list[NvmeCommand] = []
    current: NvmeCommand | None = None
    for number, text in lines:
        if not text.startswith("pci_nvme_"):
            continue
        if m := _RW.match(text):
            current = NvmeCommand(
                op=m[1], slba=_int(m[6]), nlb=_int(m[4]), count=_int(m[5]), line=number
            )
            commands.append(current)
            continue
        kind = text.split(" ", 1)[0]
        if kind in ("pci_nvme_read", "pci_nvme_write"):
            raise TraceError(f"{where}:{number}: not a QEMU 7.2 {kind} line: {text[:80]!r}")
        if current is None:
            # Admin commands (identify, queue set-up) map data before any I/O command.
            continue
        if m := _PRP.match(text):
            current.dptr, current.prp1, current.prp2 = "prp", _int(m[3]), _int(m[4])
        elif m := _SGL.match(text):
            current.dptr, current.sgl_type = "sgl", _int(m[1])
        elif m := _ADDR.match(text):
            if m[1]:
                # The range was already listed by pci_nvme_map_addr: mark it.
                if current.ranges and current.ranges[-1] == (_int(m[2]), _int(m[3])):
                    current.cmb[-1] = True
                continue
            current.ranges.append((_int(m[2]), _int(m[3])))
            current.cmb.append(False)
        elif m := _ERR.match(text):
            current.errors.append(m[1].removeprefix("pci_nvme_err_"))
        elif kind in ("pci_nvme_map_prp", "pci_nvme_map_sgl", "pci_nvme_map_addr"):
            raise TraceError(f"{where}:{number}: not a QEMU 7.2 {kind} line: {text[:80]!r}")
    return commands


def read_trace(path: Path) -> list[NvmeCommand]:
    """Every I/O command in the log at ``path``.

    Raises:
        TraceError: unreadable, too large, or a line QEMU 7.2 does not write.
    """
    return parse_lines(_lines(path), str(path))


def scenario_commands(
    commands: list[NvmeCommand], before: int, after: int
) -> list[NvmeCommand] | None:
    """The commands between the sentinel reads at LBAs ``before`` and ``after``.

    ``None`` when either sentinel is missing (the scenario never reached its
    I/O, or the log was cut short).
    """

    def is_sentinel(c: NvmeCommand, lba: int) -> bool:
        return c.op == "read" and c.slba == lba and c.nlb == 1

    start = next((i for i, c in enumerate(commands) if is_sentinel(c, before)), None)
    if start is None:
        return None
    end = next(
        (i for i in range(start + 1, len(commands)) if is_sentinel(commands[i], after)), None
    )
    if end is None:
        return None
    return commands[start + 1 : end]
