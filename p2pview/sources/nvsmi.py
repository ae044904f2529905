"""``nvidia-smi topo -m`` output: a labelling of GPU and NIC pairs, not a topology.

The text is a header line naming the devices (``GPU0``, ``GPU1``, ...,
then NICs as ``NIC0`` ... or, before the "NIC Legend", as ``mlx5_0`` ...),
optionally followed by the affinity columns ``CPU Affinity``,
``NUMA Affinity`` and ``GPU NUMA ID``; one row per device with a label per
column (``X`` on the diagonal) and the affinity values (NIC rows have none);
then a ``Legend:`` block and, on newer drivers, a ``NIC Legend:`` block
mapping ``NIC0`` to its RDMA device name (``mlx5_0``).

Two legend forms exist: the old one (2016 drivers) labels cross-socket pairs
``SOC``; the current one has ``SYS`` and ``NODE``. A file that mixes them is
rejected.

PCI addresses: ``nvidia-smi topo -m`` never prints a GPU's or NIC's PCI
address. GPUs are numbered in PCI bus order (NVML's order, the order CUDA
uses with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``). So that a comparison can match
by address, the same file may also hold the output of
``nvidia-smi --query-gpu=index,pci.bus_id --format=csv`` (lines such as
``0, 00000000:1A:00.0``); those lines give the BDFs.

Tolerated around the matrix: shell prompts and other text before the
header, ANSI colour codes, CRLF line ends, blank lines, text after the
legend. Anything wrong inside the matrix raises :class:`SourceError` naming
the file and the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from p2pview.model import BDF, AddressError
from p2pview.model.nvlabel import is_nvlink
from p2pview.sources.checks import SourceError
from p2pview.sources.readfile import NVSMI, ReadRefused, read_bounded

#: Said wherever GPU addresses would be expected.
NO_GPU_BDFS = (
    "nvidia-smi topo -m prints no PCI addresses; GPUs are numbered in PCI bus order"
    " (add 'nvidia-smi --query-gpu=index,pci.bus_id --format=csv' output to the file to"
    " match by address)"
)

#: Matrix cells p2pview knows.
KNOWN_CELLS = frozenset({"X", "PIX", "PXB", "PHB", "NODE", "SYS", "SOC", "N/A"})

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}[0-9]$")
_GPU_RE = re.compile(r"^GPU([0-9]{1,4})$")
_NIC_RE = re.compile(r"^NIC[0-9]{1,4}$")
_COLUMN_RE = re.compile(r"CPU\s+Affinity|NUMA\s+Affinity|GPU\s+NUMA\s+ID")
_STOP_WORDS = frozenset({"CPU", "NUMA", "GPU", "Affinity", "ID"})
_UNKNOWN_CELL_RE = re.compile(r"^[A-Z][A-Z0-9]{1,5}$")
_LIST_RE = re.compile(r"^\d{1,6}(?:-\d{1,6})?(?:,\d{1,6}(?:-\d{1,6})?)*$", re.ASCII)
_NUMA_ID_RE = re.compile(r"^\d{1,6}$", re.ASCII)
_LEGEND_RE = re.compile(r"^\s*(\S{1,8})\s*=\s*(.*?)\s*$")
_NIC_LEGEND_RE = re.compile(r"^\s*(NIC[0-9]{1,4})\s*:\s*(\S+)\s*$")
_BUS_ID_RE = re.compile(
    r"^\s*(\d{1,4})\s*,\s*((?:[0-9A-Fa-f]{4,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])\s*$",
    re.ASCII,
)


class LegendForm(StrEnum):
    """Which legend the output uses."""

    #: 2016 drivers: ``SOC`` for a socket-level link, no ``NODE``.
    OLD = "old"
    #: ``SYS`` and ``NODE`` (drivers of 2017 and later).
    CURRENT = "current"
    #: Neither SOC nor SYS/NODE appears (a one-socket box without a legend).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class NvsmiMatrix:
    """One ``nvidia-smi topo -m`` output.

    ``labels`` are the devices in matrix order; ``cells[i][j]`` the label
    printed in row ``i``, column ``j`` (``X`` on the diagonal).
    ``affinity[i]`` maps the affinity columns printed for device ``i`` to
    their text (``"0-7,16-23"``, ``"N/A"``). ``nic_names`` comes from the NIC
    Legend, ``bdfs`` from ``--query-gpu=index,pci.bus_id`` lines in the same
    file: ``topo -m`` itself never prints addresses (:data:`NO_GPU_BDFS`).
    ``lines[i]`` is the line number of row ``i``.
    """

    path: str
    labels: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]
    form: LegendForm
    affinity_columns: tuple[str, ...] = ()
    affinity: tuple[Mapping[str, str], ...] = ()
    nic_names: Mapping[str, str] = field(default_factory=dict)
    bdfs: Mapping[str, BDF] = field(default_factory=dict)
    legend: Mapping[str, str] = field(default_factory=dict)
    header_line: int = 1
    lines: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()

    def index(self, label: str) -> int:
        """Position of ``label`` in the matrix (``KeyError`` if absent)."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{label} is not in the matrix") from None

    def cell(self, a: str, b: str) -> str:
        """The label printed in ``a``'s row, ``b``'s column."""
        return self.cells[self.index(a)][self.index(b)]

    def kind(self, label: str) -> str:
        """``"gpu"`` or ``"nic"``."""
        return "gpu" if _GPU_RE.match(label) else "nic"

    @property
    def gpus(self) -> tuple[str, ...]:
        """GPU labels, in matrix order."""
        return tuple(x for x in self.labels if self.kind(x) == "gpu")

    @property
    def nics(self) -> tuple[str, ...]:
        """NIC labels, in matrix order."""
        return tuple(x for x in self.labels if self.kind(x) == "nic")

    def name(self, label: str) -> str | None:
        """The RDMA device name of a NIC: from the NIC Legend, or the header itself (``mlx5_0``)."""
        if label in self.nic_names:
            return self.nic_names[label]
        if self.kind(label) == "nic" and not _NIC_RE.match(label):
            return label
        return None

    def affinity_of(self, label: str, column: str) -> str | None:
        """One affinity value as printed, ``None`` when not printed."""
        i = self.index(label)
        return self.affinity[i].get(column) if i < len(self.affinity) else None

    def numa_affinity(self, label: str) -> tuple[int, ...] | None:
        """The NUMA nodes of ``NUMA Affinity`` (``None`` when absent or N/A)."""
        return cpu_list(self.affinity_of(label, "NUMA Affinity"))

    def cpu_affinity(self, label: str) -> tuple[tuple[int, int], ...] | None:
        """``CPU Affinity`` as inclusive ranges (``None`` when absent or N/A)."""
        text = self.affinity_of(label, "CPU Affinity")
        if text is None or not _LIST_RE.match(text):
            return None
        return tuple(_range(part) for part in text.split(","))


def _range(part: str) -> tuple[int, int]:
    lo, _, hi = part.partition("-")
    return int(lo), int(hi or lo)


def cpu_list(text: str | None) -> tuple[int, ...] | None:
    """Expand a short list such as ``0-1`` (at most 1,024 entries), ``None`` for N/A."""
    if text is None or not _LIST_RE.match(text):
        return None
    out: list[int] = []
    for part in text.split(","):
        lo, hi = _range(part)
        if hi - lo > 1024 or len(out) > 1024:
            return None
        out.extend(range(lo, hi + 1))
    return tuple(out)


def _clean(line: str) -> str:
    return _ANSI_RE.sub("", line).replace("\x1b", "").rstrip("\r\n")


def _is_header(tokens: list[str]) -> bool:
    return bool(tokens) and tokens[0] == "GPU0" and "X" not in tokens


def _strict_header(tokens: list[str]) -> bool:
    return all(t in _STOP_WORDS or _LABEL_RE.match(t) for t in tokens)


def sniff_nvsmi_topo(text: str) -> bool:
    """Whether ``text`` looks like ``nvidia-smi topo -m`` output.

    True when a header line starting with ``GPU0`` is followed by a row that
    starts with ``GPU0`` and has ``X`` next, or when the legend's
    ``X = Self`` line is there with a PCIe label line.
    """
    header = False
    for raw in text.splitlines()[:400]:
        tokens = _clean(raw).split()
        if not tokens:
            continue
        if _is_header(tokens) and _strict_header(tokens):
            header = True
        elif header and tokens[0] == "GPU0" and len(tokens) > 1 and tokens[1] == "X":
            return True
    if re.search(r"^\s*X\s*=\s*Self\s*$", text, re.MULTILINE):
        return re.search(r"^\s*(PIX|PHB|SOC|SYS)\s*=", text, re.MULTILINE) is not None
    return False


def read_nvsmi_topo(path: str | Path) -> NvsmiMatrix:
    """Read and parse a file holding ``nvidia-smi topo -m`` output.

    Raises:
        SourceError: the file cannot be read or is malformed (the message
            names the file and the line).
    """
    name = str(path)
    try:
        data = read_bounded(path, NVSMI)
    except ReadRefused as exc:
        raise SourceError(
            f"{name}: line 1: cannot read: {str(exc).removeprefix(name + ': ')}"
        ) from None
    return parse_nvsmi_topo(data.decode("utf-8", errors="replace"), name)


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = [_clean(line) for line in text.splitlines()]
        self.notes: list[str] = []

    def err(self, lineno: int, message: str) -> SourceError:
        return SourceError(f"{self.path}: line {lineno}: {message}")

    def run(self) -> NvsmiMatrix:
        start = self._find_header()
        labels, columns = self._header(start)
        cells, affinity, row_lines, end = self._rows(start, labels, columns)
        legend, legend_lines, nic_names, bdfs = self._tail(start, end, labels)
        form = self._form(labels, cells, row_lines, legend, legend_lines)
        self._symmetry(labels, cells)
        return NvsmiMatrix(
            path=self.path,
            labels=tuple(labels),
            cells=tuple(tuple(row) for row in cells),
            form=form,
            affinity_columns=tuple(columns),
            affinity=tuple(affinity),
            nic_names=nic_names,
            bdfs=bdfs,
            legend=legend,
            header_line=start + 1,
            lines=tuple(row_lines),
            notes=tuple(self.notes),
        )

    def _find_header(self) -> int:
        """The first header line; a line that only starts like one is taken if nothing better.

        Prose such as ``GPU0 is hot`` before the matrix is skipped when a real
        header follows; if none does, the first candidate is parsed so that the
        error names what is wrong with it.
        """
        candidate: int | None = None
        for i, line in enumerate(self.lines):
            tokens = line.split()
            if not tokens or tokens[0] != "GPU0":
                continue
            if _is_header(tokens):
                if _strict_header(tokens):
                    return i
                if candidate is None:
                    candidate = i
                continue
            if candidate is not None:
                return candidate
            raise self.err(i + 1, "a matrix row (GPU0 ... X ...) before any header line")
        if candidate is not None:
            return candidate
        last = max(len(self.lines), 1)
        raise self.err(
            last,
            "end of file: no 'nvidia-smi topo -m' header line (a line starting with GPU0)",
        )

    def _header(self, i: int) -> tuple[list[str], list[str]]:
        line = self.lines[i]
        labels: list[str] = []
        pos = 0
        for m in re.finditer(r"\S+", line):
            token = m.group()
            if token in _STOP_WORDS or not _LABEL_RE.match(token):
                break
            if token in labels:
                raise self.err(i + 1, f"device {token} appears twice in the header")
            labels.append(token)
            pos = m.end()
        rest = line[pos:]
        columns = [" ".join(m.group().split()) for m in _COLUMN_RE.finditer(rest)]
        leftover = _COLUMN_RE.sub(" ", rest).strip()
        if leftover:
            word = leftover.split()[0]
            raise self.err(
                i + 1,
                f"header: {word!r} is neither a device (GPU0, NIC0, mlx5_0) nor an affinity"
                " column (CPU Affinity, NUMA Affinity, GPU NUMA ID)",
            )
        if len(set(columns)) != len(columns):
            raise self.err(i + 1, "header: an affinity column appears twice")
        return labels, columns

    def _rows(
        self, start: int, labels: list[str], columns: list[str]
    ) -> tuple[list[list[str]], list[dict[str, str]], list[int], int]:
        n = len(labels)
        cells: list[list[str]] = []
        affinity: list[dict[str, str]] = []
        row_lines: list[int] = []
        i = start + 1
        for r, label in enumerate(labels):
            while i < len(self.lines) and not self.lines[i].strip():
                i += 1
            if i >= len(self.lines):
                raise self.err(
                    max(len(self.lines), 1),
                    f"end of file after {r} of {n} matrix rows (no row for {label})",
                )
            tokens = self.lines[i].split()
            lineno = i + 1
            if tokens[0] != label:
                raise self.err(
                    lineno,
                    f"expected the row of {label} (row {r + 1} of {n}), found {tokens[0][:40]!r}",
                )
            row = tokens[1 : n + 1]
            count = 0
            for token in row:
                if not (token in KNOWN_CELLS or is_nvlink(token) or _UNKNOWN_CELL_RE.match(token)):
                    break
                count += 1
            if count < n and (count == len(row) or row[count][:1].isdigit()):
                row = row[:count]
            if len(row) < n:
                raise self.err(
                    lineno, f"row {label} has {len(row)} cells, the header names {n} devices"
                )
            for c, cell in enumerate(row):
                self._check_cell(lineno, label, labels[c], cell, r == c)
            values = tokens[n + 1 :]
            if len(values) > len(columns):
                raise self.err(
                    lineno,
                    f"row {label} has {len(values)} values after the matrix, the header names"
                    f" {len(columns)} affinity column(s)",
                )
            for column, value in zip(columns, values, strict=False):
                self._check_value(lineno, label, column, value)
            cells.append(row)
            affinity.append(dict(zip(columns, values, strict=False)))
            row_lines.append(lineno)
            i += 1
        return cells, affinity, row_lines, i

    def _check_cell(self, lineno: int, row: str, col: str, cell: str, diagonal: bool) -> None:
        if diagonal:
            if cell != "X":
                raise self.err(lineno, f"row {row}, column {col}: expected X, found {cell[:20]!r}")
            return
        if cell == "X":
            raise self.err(lineno, f"row {row}, column {col}: X off the diagonal")
        if cell in KNOWN_CELLS or is_nvlink(cell):
            return
        if _UNKNOWN_CELL_RE.match(cell):
            self.notes.append(f"line {lineno}: unknown label {cell} ({row}, {col})")
            return
        raise self.err(
            lineno,
            f"row {row}, column {col}: {cell[:20]!r} is not a topology label"
            " (X, PIX, PXB, PHB, NODE, SYS, SOC, NV#)",
        )

    def _check_value(self, lineno: int, row: str, column: str, value: str) -> None:
        if value == "N/A":
            return
        pattern = _NUMA_ID_RE if column == "GPU NUMA ID" else _LIST_RE
        ok = pattern.match(value)
        if not ok:
            raise self.err(lineno, f"row {row}, {column}: {value[:40]!r} is not a CPU/node list")
        if column != "GPU NUMA ID":
            for part in value.split(","):
                lo, hi = _range(part)
                if lo > hi:
                    raise self.err(lineno, f"row {row}, {column}: range {part} runs backwards")

    def _tail(
        self, start: int, end: int, labels: list[str]
    ) -> tuple[dict[str, str], dict[str, int], dict[str, str], dict[str, BDF]]:
        """Legend, NIC Legend and bus-ID lines outside the matrix."""
        legend: dict[str, str] = {}
        legend_lines: dict[str, int] = {}
        nic_names: dict[str, str] = {}
        bdfs: dict[str, BDF] = {}
        gpus = [x for x in labels if _GPU_RE.match(x)]
        section = ""
        for i, line in enumerate(self.lines):
            if start <= i < end:
                continue
            lineno = i + 1
            stripped = line.strip()
            tokens = stripped.split()
            if i >= end and _is_header(tokens) and _strict_header(tokens):
                raise self.err(
                    lineno, "a second matrix: give one 'nvidia-smi topo -m' output per file"
                )
            if stripped in ("Legend:", "NIC Legend:"):
                section = stripped
                continue
            if not stripped:
                continue
            bus = _BUS_ID_RE.match(line)
            if bus is not None:
                section = ""
                self._bus_id(lineno, bus, gpus, bdfs)
                continue
            if section == "Legend:":
                m = _LEGEND_RE.match(line)
                if m is not None:
                    legend[m[1]] = m[2]
                    legend_lines.setdefault(m[1], lineno)
                    continue
            elif section == "NIC Legend:":
                m = _NIC_LEGEND_RE.match(line)
                if m is not None:
                    self._nic_name(lineno, m[1], m[2], labels, nic_names)
                    continue
            section = ""
        return legend, legend_lines, nic_names, bdfs

    def _bus_id(self, lineno: int, m: re.Match[str], gpus: list[str], bdfs: dict[str, BDF]) -> None:
        label = f"GPU{int(m[1])}"
        if label not in gpus:
            raise self.err(lineno, f"bus ID line for {label}, which is not in the matrix")
        try:
            bdf = BDF.parse(m[2])
        except AddressError as exc:
            raise self.err(lineno, str(exc)) from None
        if label in bdfs and bdfs[label] != bdf:
            raise self.err(lineno, f"{label} is given two bus IDs ({bdfs[label]} and {bdf})")
        if bdf in bdfs.values() and bdfs.get(label) != bdf:
            raise self.err(lineno, f"bus ID {bdf} is given to two GPUs")
        bdfs[label] = bdf

    def _nic_name(
        self, lineno: int, nic: str, name: str, labels: list[str], names: dict[str, str]
    ) -> None:
        if nic not in labels:
            raise self.err(lineno, f"NIC Legend names {nic}, which is not in the matrix")
        if nic in names and names[nic] != name:
            raise self.err(lineno, f"NIC Legend gives {nic} two names ({names[nic]} and {name})")
        if name in names.values() and names.get(nic) != name:
            raise self.err(lineno, f"NIC Legend gives the name {name[:40]} to two NICs")
        names[nic] = name

    def _form(
        self,
        labels: list[str],
        cells: list[list[str]],
        row_lines: list[int],
        legend: dict[str, str],
        legend_lines: dict[str, int],
    ) -> LegendForm:
        old: tuple[int, str] | None = None
        new: tuple[int, str] | None = None
        for r, row in enumerate(cells):
            for cell in row:
                if cell == "SOC" and old is None:
                    old = (row_lines[r], f"{labels[r]}'s row has SOC")
                if cell in ("SYS", "NODE") and new is None:
                    new = (row_lines[r], f"{labels[r]}'s row has {cell}")
        for key, lineno in legend_lines.items():
            if key == "SOC" and old is None:
                old = (lineno, "the legend lists SOC")
            if key in ("SYS", "NODE") and new is None:
                new = (lineno, f"the legend lists {key}")
        if old is not None and new is not None:
            later, earlier = (old, new) if old[0] > new[0] else (new, old)
            raise self.err(
                later[0],
                f"mixes the old legend (SOC) and the current one (SYS/NODE): {later[1]},"
                f" but {earlier[1]} (line {earlier[0]})",
            )
        if old is not None:
            return LegendForm.OLD
        if new is not None:
            return LegendForm.CURRENT
        return LegendForm.UNKNOWN

    def _symmetry(self, labels: list[str], cells: list[list[str]]) -> None:
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                if cells[i][j] != cells[j][i]:
                    self.notes.append(
                        f"{labels[i]}/{labels[j]}: {cells[i][j]} in {labels[i]}'s row but"
                        f" {cells[j][i]} in {labels[j]}'s; the row of the first is used"
                    )


def parse_nvsmi_topo(text: str, path: str) -> NvsmiMatrix:
    """Parse ``nvidia-smi topo -m`` output.

    Raises:
        SourceError: malformed input; the message starts with ``path`` and
            names the line.
    """
    return _Parser(text, path).run()
