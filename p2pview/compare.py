"""``p2pview compare SOURCE TOPO_M``: nvidia-smi's labels beside the kernel's verdicts.

Layer 5 (uses the session, the kernel and the readers; no rich).

For every pair of GPUs and NICs of an ``nvidia-smi topo -m`` matrix that can
be matched to functions of the session's topology, a :class:`PairComparison`
puts side by side: NVIDIA's label, the label p2pview derives from the PCIe
tree (:mod:`p2pview.model.nvlabel`), and the kernel's map type and distance
(``calc_map_type_and_dist()`` with the row device as provider). Two checks
are made:

* **labels**: NVIDIA's label against the derived one. They differ for an
  expected reason with NV# (NVLink is invisible to PCIe); otherwise a
  difference means the matrix and the topology do not describe the same
  machine, or the devices were matched wrongly.
* **kernel**: what the label says about the path against the kernel's
  decision. PIX/PXB say "a switch path", which P2PDMA maps with BUS_ADDR
  unless ACS redirects it to the host bridge (nvidia-smi ignores ACS).
  PHB/NODE/SYS say "through host bridges", which P2PDMA allows
  (THRU_HOST_BRIDGE) only on an AMD Zen CPU or a whitelisted host bridge,
  and across host bridges only for whitelist rows without
  REQ_SAME_HOST_BRIDGE; elsewhere NOT_SUPPORTED is the expected answer.

Matching: GPUs by the BDFs the file gives (``--query-gpu=index,pci.bus_id``
lines), else by order: ``GPUk`` is the k-th NVIDIA (10de) display/3D
controller in BDF order, the order NVML numbers GPUs in. NICs by name when
a function's label equals the NIC Legend name (``mlx5_0``), else by order
among the NIC functions (Mellanox 15b3 ones only when the topology has any:
nvidia-smi lists RDMA devices, which on GPU servers are the mlx5 HCAs).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from p2pview.jsonreport import kernel_dict, platform_dict
from p2pview.kernel import MapType, PathKind, Verdict, calc_map_type_and_dist
from p2pview.kernel.decision import AMD_PENALTY
from p2pview.model import BDF, Kind, PciDevice, Topology, kind_of
from p2pview.model.nvlabel import (
    NVLINK_NOT_DERIVABLE,
    DerivedLabel,
    NvLevel,
    derive_label,
    is_nvlink,
    normalize_label,
)
from p2pview.session import Session
from p2pview.sources.nvsmi import NO_GPU_BDFS, LegendForm, NvsmiMatrix
from p2pview.sources.pciids import ids_text, known_ids

NVIDIA = 0x10DE
MELLANOX = 0x15B3

_SWITCH_LEVELS = (NvLevel.PIX, NvLevel.PXB)


class Agreement(StrEnum):
    """How a comparison came out, best first."""

    AGREE = "agree"
    #: They differ, for a reason p2pview knows (NVLink, ACS, the whitelist, ...).
    EXPECTED = "expected"
    #: nvidia-smi printed N/A or a label p2pview does not know.
    UNKNOWN = "unknown"
    #: They differ and nothing explains it: another machine, or a wrong match.
    UNEXPECTED = "unexpected"

    @property
    def severity(self) -> int:
        """0 (agree) to 3 (unexpected)."""
        return list(Agreement).index(self)


def worst(*items: Agreement) -> Agreement:
    """The most severe of ``items``."""
    return max(items, key=lambda a: a.severity)


@dataclass(frozen=True, slots=True)
class MatchedDevice:
    """A matrix device and the function it was matched to.

    ``method`` is ``"bdf"``, ``"name"``, ``"order"`` or ``"unmatched"``;
    ``note`` says why a device is unmatched, or anything doubtful.
    """

    label: str
    kind: str
    name: str | None
    bdf: BDF | None
    method: str
    note: str = ""

    @property
    def matched(self) -> bool:
        """Has a function."""
        return self.bdf is not None


@dataclass(frozen=True, slots=True)
class PairComparison:
    """One matrix pair (``a``'s row, ``b``'s column; ``a`` is the provider)."""

    a: str
    b: str
    bdf_a: BDF
    bdf_b: BDF
    nvidia: str
    nvidia_level: NvLevel | None
    derived: DerivedLabel
    derived_printed: str
    verdict: Verdict
    label_agreement: Agreement
    label_note: str
    kernel_agreement: Agreement
    kernel_note: str

    @property
    def status(self) -> Agreement:
        """The worse of the two checks."""
        return worst(self.label_agreement, self.kernel_agreement)

    @property
    def nvlink(self) -> bool:
        """NVIDIA printed NV#."""
        return is_nvlink(self.nvidia)

    @property
    def kernel_text(self) -> str:
        """``BUS_ADDR 4``, or the int of v4.20-v5.3."""
        return kernel_result(self.verdict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``pairs`` of ``p2pview compare --json``)."""
        v = self.verdict
        return {
            "a": self.a,
            "b": self.b,
            "bdf_a": str(self.bdf_a),
            "bdf_b": str(self.bdf_b),
            "nvidia": self.nvidia,
            "nvidia_level": None if self.nvidia_level is None else self.nvidia_level.value,
            "p2pview_label": self.derived_printed,
            "p2pview_candidates": [c.value for c in self.derived.candidates],
            "label_rule": self.derived.rule,
            "map_type": None if v.map_type is None else v.map_type.value,
            "distance": v.distance,
            "path": v.path.value,
            "common_upstream": None if v.common is None else str(v.common),
            "acs_redirect": [str(b) for b in v.acs_redirect],
            "label_agreement": self.label_agreement.value,
            "label_note": self.label_note,
            "kernel_agreement": self.kernel_agreement.value,
            "kernel_note": self.kernel_note,
            "status": self.status.value,
        }


@dataclass(frozen=True)
class Comparison:
    """The whole comparison of one matrix with one session."""

    matrix: NvsmiMatrix
    devices: tuple[MatchedDevice, ...]
    pairs: tuple[PairComparison, ...]
    notes: tuple[str, ...]
    #: What was looked for in the topology and what was found there (see :func:`search_report`).
    searched: str = ""

    @property
    def nothing_compared(self) -> str | None:
        """Why no pair was compared (``None`` when some were): the matches and the search."""
        if self.pairs:
            return None
        matched = [d for d in self.devices if d.matched]
        if not self.devices:
            head = "the matrix lists no GPU or NIC"
        elif not matched:
            head = "no device of the matrix was found in the topology"
        else:
            head = (
                f"only {matched[0].label} was found in the topology ({matched[0].bdf}):"
                " a pair needs two"
            )
        return f"0 pairs compared: {head}. {self.searched}"

    @property
    def unmatched(self) -> tuple[MatchedDevice, ...]:
        """Matrix devices no function was found for."""
        return tuple(d for d in self.devices if not d.matched)

    def counts(self) -> dict[Agreement, int]:
        """How many pairs have each status."""
        out = dict.fromkeys(Agreement, 0)
        for pair in self.pairs:
            out[pair.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The comparison part of ``p2pview compare --json``."""
        m = self.matrix
        return {
            "matrix": {
                "path": m.path,
                "legend_form": m.form.value,
                "labels": list(m.labels),
                "affinity_columns": list(m.affinity_columns),
                "nic_names": dict(m.nic_names),
                "gpu_bdfs_given": bool(m.bdfs),
                "notes": list(m.notes),
            },
            "devices": [
                {
                    "label": d.label,
                    "kind": d.kind,
                    "name": d.name,
                    "bdf": None if d.bdf is None else str(d.bdf),
                    "matched_by": d.method,
                    "note": d.note,
                    "affinity": dict(m.affinity[m.index(d.label)])
                    if m.index(d.label) < len(m.affinity)
                    else {},
                }
                for d in self.devices
            ],
            "unmatched": [d.label for d in self.unmatched],
            "pairs": [p.to_dict() for p in self.pairs],
            "summary": {k.value: v for k, v in self.counts().items()},
            "compare_notes": list(self.notes),
            "searched": self.searched,
            "nothing_compared": self.nothing_compared,
        }


def comparison_document(session: Session, comparison: Comparison) -> dict[str, Any]:
    """``p2pview compare --json``: kernel, platform, source, then the comparison."""
    topo = session.topology
    doc: dict[str, Any] = {
        "kernel": kernel_dict(session),
        "platform": platform_dict(session),
        "source": topo.source,
        "topology": topo.name,
        "notes": session.notes,
    }
    doc.update(comparison.to_dict())
    return doc


# -- matching -----------------------------------------------------------------


def nvidia_gpus(topo: Topology) -> list[PciDevice]:
    """NVIDIA display/3D functions (not VFs), in BDF order: what NVML numbers GPU0, GPU1, ...

    The vendor and class may be inferred from names (a plain ``lspci -tv``
    prints ``NVIDIA Corporation AD102GL [RTX 6000 Ada Generation]``: vendor
    from its name, class from the GPU code name); the audio, USB and UCSI
    functions of a card have classes of their own and are not GPUs.
    """
    return [
        d
        for d in topo.devices
        if _nvidia(d) and kind_of(d) is Kind.GPU and not d.is_virtfn and not _class_unknown(d)
    ]


def unclassed_nvidia(topo: Topology) -> list[PciDevice]:
    """NVIDIA function-0 endpoints whose class the source does not give, in BDF order.

    ``NVIDIA Corporation Device 2330`` (a device newer than the pci.ids that
    printed it) has no class word: it may be a GPU, or an NVSwitch.
    """
    return [
        d
        for d in topo.devices
        if _nvidia(d) and _class_unknown(d) and not d.is_bridge and not d.is_virtfn
        and d.bdf.fn == 0
    ]  # fmt: skip


def _nvidia(dev: PciDevice) -> bool:
    return known_ids(dev)[0] == NVIDIA


def _class_unknown(dev: PciDevice) -> bool:
    return dev.fact("class_code").is_assumed


def nic_candidates(topo: Topology) -> tuple[list[PciDevice], str]:
    """NIC functions (not VFs) in BDF order that nvidia-smi would list, and how they were chosen."""
    nics = [d for d in topo.devices if kind_of(d) is Kind.NIC and not d.is_virtfn]
    mellanox = [d for d in nics if known_ids(d)[0] == MELLANOX]
    if mellanox and len(mellanox) < len(nics):
        return mellanox, "the Mellanox (15b3) network/InfiniBand functions"
    return nics, "the network/InfiniBand functions"


def _match(topo: Topology, matrix: NvsmiMatrix, notes: list[str]) -> list[MatchedDevice]:
    found: dict[str, MatchedDevice] = {}
    taken: set[BDF] = set()
    gpus = nvidia_gpus(topo)
    unclassed = unclassed_nvidia(topo)
    if unclassed and len(gpus) < len(matrix.gpus):
        # fewer GPUs than the matrix lists: NVIDIA functions of unknown class stand in
        gpus = sorted([*gpus, *unclassed], key=lambda d: d.bdf)
        listed = ", ".join(f"{d.bdf.short()} ({d.label or ids_text(d)})" for d in unclassed)
        notes.append(
            f"taken as GPUs though the source gives no class: {listed}; an NVSwitch or"
            " another NVIDIA function would be matched wrongly (lspci -nn or a capture"
            " tells them apart)"
        )
    gpu_bdfs = {d.bdf for d in gpus}
    inferred = [d for d in gpus if not d.fact("ids").is_read or not d.fact("class_code").is_read]
    if inferred:
        notes.append(
            f"{len(inferred)} GPU(s) recognised from their names (IDs or class inferred"
            " through pci.ids and the name's words, not read)"
        )
    for label in matrix.gpus:
        bdf = matrix.bdfs.get(label)
        if bdf is None:
            continue
        if bdf not in topo:
            found[label] = MatchedDevice(
                label, "gpu", None, None, "unmatched", f"bus ID {bdf} is not in this topology"
            )
            continue
        dev = topo[bdf]
        note = "" if bdf in gpu_bdfs else f"{bdf} is not an NVIDIA GPU in this topology"
        if note:
            note += f" ({ids_text(dev)})"
        found[label] = MatchedDevice(label, "gpu", None, bdf, "bdf", note)
        taken.add(bdf)
    order_gpus = [label for label in matrix.gpus if label not in found]
    if order_gpus:
        free = [d for d in gpus if d.bdf not in taken]
        for k, label in enumerate(order_gpus):
            if k < len(free):
                found[label] = MatchedDevice(label, "gpu", None, free[k].bdf, "order")
                taken.add(free[k].bdf)
            else:
                found[label] = MatchedDevice(
                    label,
                    "gpu",
                    None,
                    None,
                    "unmatched",
                    f"the topology has only {len(gpus)} NVIDIA GPU(s)",
                )
        if len(matrix.gpus) != len(gpus):
            notes.append(
                f"the matrix lists {len(matrix.gpus)} GPU(s), the topology has {len(gpus)}"
                " NVIDIA display/3D function(s): matching by order is right only if the"
                " missing ones come last in bus order"
            )
        notes.append(NO_GPU_BDFS + "; GPUs were matched by order")

    nics, chosen = nic_candidates(topo)
    by_label: dict[str, list[PciDevice]] = {}
    for d in topo.devices:
        if d.label:
            by_label.setdefault(d.label, []).append(d)
    order_nics: list[str] = []
    for label in matrix.nics:
        name = matrix.name(label)
        named = [d for d in by_label.get(name or "", []) if d.bdf not in taken]
        if name is not None and len(named) == 1:
            found[label] = MatchedDevice(label, "nic", name, named[0].bdf, "name")
            taken.add(named[0].bdf)
        else:
            order_nics.append(label)
    if order_nics:
        free = [d for d in nics if d.bdf not in taken]
        for k, label in enumerate(order_nics):
            name = matrix.name(label)
            if k < len(free):
                found[label] = MatchedDevice(label, "nic", name, free[k].bdf, "order")
                taken.add(free[k].bdf)
            else:
                found[label] = MatchedDevice(
                    label, "nic", name, None, "unmatched", f"no more of {chosen} left to match"
                )
        notes.append(
            f"NIC(s) {', '.join(order_nics)} matched by order among {chosen}; label the"
            " functions with their RDMA names (mlx5_0 ...) to match by name"
        )
    return [found[label] for label in matrix.labels]


def _few(devs: list[PciDevice], limit: int = 4) -> str:
    shown = ", ".join(f"{d.bdf.short()} {d.label or ids_text(d)}" for d in devs[:limit])
    return shown + (f" and {len(devs) - limit} more" if len(devs) > limit else "")


def search_report(topo: Topology, matrix: NvsmiMatrix) -> str:
    """What ``compare`` looked for in ``topo`` for ``matrix``, and what it found.

    Said when nothing could be compared, so that a user sees whether the
    topology lacks the devices, or names them in a way p2pview did not read.
    """
    gpus, nics = nvidia_gpus(topo), nic_candidates(topo)[0]
    nvidia = [d for d in topo.devices if _nvidia(d) and not d.is_bridge]
    others = [d for d in nvidia if d not in gpus]
    unknown_ids = [d for d in topo.devices if known_ids(d)[0] is None and not d.is_bridge]
    unclassed = [d for d in topo.devices if _class_unknown(d) and not d.is_bridge]
    wanted = []
    if matrix.gpus:
        wanted.append(f"{len(matrix.gpus)} GPU(s) ({matrix.gpus[0]}..{matrix.gpus[-1]})")
    if matrix.nics:
        wanted.append(f"{len(matrix.nics)} NIC(s) ({matrix.nics[0]}..{matrix.nics[-1]})")
    parts = [
        f"The matrix lists {' and '.join(wanted) or 'no GPU or NIC'}; looked in"
        f" {topo.name} ({len(topo)} functions) for NVIDIA (10de) display/3D functions"
        f" and network/InfiniBand functions: found {len(gpus)} NVIDIA GPU(s)"
        + (f" ({_few(gpus)})" if gpus else "")
        + f", {len(nics)} NIC function(s)"
        + (f" ({_few(nics)})" if nics else "")
    ]
    if others:
        parts.append(f"NVIDIA functions that are not GPUs: {_few(others)}")
    if unknown_ids:
        parts.append(
            f"{len(unknown_ids)} endpoint(s) of unknown vendor (the source gives no IDs,"
            " and no name that pci.ids knows)"
        )
    if unclassed:
        parts.append(
            f"{len(unclassed)} endpoint(s) of unknown class (the source gives no class and"
            " their names hold no class word); lspci -nn, lspci -vvv or a capture gives both"
        )
    return "; ".join(parts) + "."


# -- judging ------------------------------------------------------------------


def kernel_result(verdict: Verdict) -> str:
    """``BUS_ADDR 4`` or ``upstream_bridge_distance() = -1``."""
    return verdict.text(short=True)


def _host_path_reason(verdict: Verdict) -> str:
    """Why a host-bridge path came out as it did (AMD Zen CPU, whitelist rows, era)."""
    if verdict.map_type is None:
        if verdict.path is PathKind.ACS_REDIRECT:
            return "v4.20-v5.3 refuse any ACS-redirected path (-2)"
        if verdict.distance >= AMD_PENALTY:
            return "both root complexes are AMD 1022:1450 (v5.1-v5.3: 0x1000 + dist)"
        return "v4.20-v5.3 refuse pairs without a common upstream bridge (-1)"
    if verdict.cpu_supports:
        return "cpu_supports_p2pdma() is true (AMD Zen or later)"
    failed = [w for w in verdict.whitelist_checks if not w.passed]
    if failed:
        cpu = "; no AMD Zen CPU" if verdict.cpu_supports is False else ""
        return failed[0].reason + cpu
    if verdict.whitelist_checks:
        return "; ".join(w.reason for w in verdict.whitelist_checks)
    return "the host-bridge path is allowed"


def _judge_labels(
    cell: str, level: NvLevel | None, derived: DerivedLabel, form: LegendForm, how: str
) -> tuple[Agreement, str]:
    if is_nvlink(cell):
        return Agreement.EXPECTED, (
            f"{cell}: {NVLINK_NOT_DERIVABLE}; over PCIe the pair is {derived.text}"
        )
    if level is None:
        return Agreement.UNKNOWN, f"nvidia-smi printed {cell}, which names no PCIe path"
    if form is LegendForm.OLD and derived.level is NvLevel.NODE and level is NvLevel.PHB:
        return Agreement.EXPECTED, (
            "the old legend has no NODE; PHB is assumed for two host bridges of one NUMA"
            f" node ({derived.rule})"
        )
    if derived.matches(level):
        if derived.certain:
            return Agreement.AGREE, derived.rule
        return Agreement.AGREE, f"{cell} is one of the candidates: {derived.rule}"
    return Agreement.UNEXPECTED, (
        f"nvidia-smi says {cell}, the PCIe tree gives {derived.text} ({derived.rule}): the"
        f" matrix may come from another machine or configuration, or the devices were"
        f" matched wrongly ({how})"
    )


def _judge_kernel(cell: str, level: NvLevel | None, verdict: Verdict) -> tuple[Agreement, str]:
    if verdict.path is PathKind.COMMON_UPSTREAM:
        what = f"common upstream bridge {verdict.common}, no ACS redirect"
    elif verdict.path is PathKind.ACS_REDIRECT:
        where = ", ".join(str(b) for b in verdict.acs_redirect)
        what = (
            f"ACS redirect at {where} sends it up to the host bridge: {_host_path_reason(verdict)}"
        )
    else:
        allowed = "allowed" if _host_path_allowed(verdict) else "refused"
        what = (
            f"no common upstream bridge; host-bridge path {allowed}: {_host_path_reason(verdict)}"
        )
    if is_nvlink(cell):
        return Agreement.EXPECTED, f"NVLink carries this pair; P2PDMA decides the PCIe path: {what}"
    if level is None:
        return Agreement.UNKNOWN, what
    if level in _SWITCH_LEVELS:
        if verdict.path is PathKind.COMMON_UPSTREAM:
            return Agreement.AGREE, what
        if verdict.path is PathKind.ACS_REDIRECT:
            return Agreement.EXPECTED, f"{cell} ignores ACS: {what}"
        return Agreement.UNEXPECTED, f"{cell} means a switch path, but here: {what}"
    if verdict.common is not None:
        return Agreement.UNEXPECTED, f"{cell} means a path through a host bridge, but here: {what}"
    if _host_path_allowed(verdict):
        return Agreement.AGREE, what
    return Agreement.EXPECTED, what


def _host_path_allowed(verdict: Verdict) -> bool:
    if verdict.map_type is None:
        return verdict.distance >= AMD_PENALTY
    return verdict.map_type is MapType.THRU_HOST_BRIDGE


def compare(session: Session, matrix: NvsmiMatrix) -> Comparison:
    """Match ``matrix``'s devices to the session's topology and compare every matched pair."""
    topo = session.topology
    notes: list[str] = []
    devices = _match(topo, matrix, notes)
    unmatched = [d for d in devices if not d.matched]
    if unmatched:
        listed = ", ".join(f"{d.label} ({d.note})" for d in unmatched)
        notes.append(f"not compared, no function found: {listed}")
    notes.extend(f"matrix: {n}" for n in matrix.notes)
    matched = [(i, d) for i, d in enumerate(devices) if d.bdf is not None]
    pairs: list[PairComparison] = []
    for x, (i, da) in enumerate(matched):
        for j, db in matched[x + 1 :]:
            assert da.bdf is not None and db.bdf is not None
            cell = matrix.cells[i][j]
            level = normalize_label(cell)
            derived = derive_label(topo, da.bdf, db.bdf)
            verdict = calc_map_type_and_dist(session.state, da.bdf, db.bdf)
            how = f"{da.label} by {da.method}, {db.label} by {db.method}"
            label_ok, label_note = _judge_labels(cell, level, derived, matrix.form, how)
            kernel_ok, kernel_note = _judge_kernel(cell, level, verdict)
            pairs.append(
                PairComparison(
                    a=da.label,
                    b=db.label,
                    bdf_a=da.bdf,
                    bdf_b=db.bdf,
                    nvidia=cell,
                    nvidia_level=level,
                    derived=derived,
                    derived_printed=printed(derived, matrix.form),
                    verdict=verdict,
                    label_agreement=label_ok,
                    label_note=label_note,
                    kernel_agreement=kernel_ok,
                    kernel_note=kernel_note,
                )
            )
    return Comparison(
        matrix, tuple(devices), tuple(pairs), tuple(notes), search_report(topo, matrix)
    )


def printed(derived: DerivedLabel, form: LegendForm) -> str:
    """The derived label as the matrix's legend would print it (``SOC`` in the old one)."""
    if form is not LegendForm.OLD:
        return derived.text
    seen: list[str] = []
    for c in derived.candidates:
        if c.old_legend not in seen:
            seen.append(c.old_legend)
    return "|".join(seen)
