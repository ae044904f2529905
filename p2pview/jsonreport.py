"""JSON documents for ``--json`` (plain data; README documents the fields).

``matrix --json`` is written as a stream (:func:`write_matrix_document`):
the pairs are computed and printed a block of rows at a time, so memory
stays bounded however many functions the topology has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from p2pview.kernel import KernelState, PairMatrix, Verdict
from p2pview.kernel.matrix import CODE_TO_MAP_TYPE
from p2pview.kernel.pairstream import PairRecords
from p2pview.model import (
    BDF,
    DEVICE_FACTS,
    PLATFORM_FACTS,
    AcsPresence,
    Fact,
    PciDevice,
    Topology,
    kind_of,
)
from p2pview.session import Session


def fact_dict(fact: Fact) -> dict[str, str]:
    """``{"basis": "read" | "inferred" | "assumed", "how": ...}``."""
    return {"basis": fact.basis.value, "how": fact.how}


def platform_dict(session: Session) -> dict[str, Any]:
    """The platform as the engine used it, with how each fact is known."""
    plat = session.topology.platform
    return {
        "arch": plat.arch,
        "cpu_vendor": plat.cpu_vendor,
        "cpu_family": plat.cpu_family,
        "cpu_model": plat.cpu_model_name,
        "kernel_release": plat.kernel,
        "kernel_modelled": str(session.target.version),
        "iommu": plat.iommu.value,
        "cmdline": plat.cmdline,
        "cpu_supports_p2pdma": session.state.cpu_supports,
        "facts": {name: fact_dict(plat.facts.get(name)) for name in PLATFORM_FACTS},
    }


def kernel_dict(session: Session) -> dict[str, Any]:
    """The modelled kernel and its profile."""
    target = session.target
    return {
        "version": str(target.version),
        "profile": target.profile.key,
        "profile_title": target.profile.title,
        "acs_params": target.acs_params.value,
        "caveats": list(target.profile.caveats),
    }


def device_dict(state: KernelState, dev: PciDevice) -> dict[str, Any]:
    """One function as the ``devices`` entries of ``matrix --json`` give it."""
    eff = state.acs[dev.bdf]
    present = dev.acs.presence is AcsPresence.PRESENT
    out: dict[str, Any] = {
        "bdf": str(dev.bdf),
        "parent": None if dev.parent is None else str(dev.parent),
        "host_bridge": str(state.topology.root_bus_of(dev.bdf)),
        "vendor": f"{dev.vendor:04x}",
        "device": f"{dev.device:04x}",
        "class": f"{dev.class_code:06x}",
        "kind": kind_of(dev).value,
        "pcie_type": None if dev.pcie_type is None else dev.pcie_type.token,
        "pcie_type_inferred": dev.pcie_type_inferred,
        "acs_cap": f"{dev.acs.cap:04x}" if present and dev.acs.cap is not None else None,
        "acs_ctrl": f"{eff.ctrl:04x}" if eff.ctrl is not None else None,
        "acs_known": eff.known,
        "acs_redirect": bool(eff.redirect),
        "acs_params": list(eff.params),
        "physfn": None if dev.physfn is None else str(dev.physfn),
        "driver": dev.driver,
        "label": dev.label,
        "p2pmem": None
        if dev.p2pmem is None
        else {
            "size": dev.p2pmem.size,
            "available": dev.p2pmem.available,
            "published": dev.p2pmem.published,
        },
    }
    if present and dev.acs.ctrl is not None and eff.ctrl != dev.acs.ctrl:
        out["acs_ctrl_before_params"] = f"{dev.acs.ctrl:04x}"
    out["facts"] = {name: fact_dict(dev.fact(name)) for name in DEVICE_FACTS}
    return out


def matrix_document(session: Session, matrix: PairMatrix) -> dict[str, Any]:
    """``p2pview matrix --json`` as one object (small selections; the CLI streams)."""
    head = _matrix_head(session, matrix.providers, matrix.clients)
    pairs = [json.loads(line) for line in _pair_lines(session, matrix.providers, matrix.clients)]
    return {**head, "pairs": pairs}


def write_matrix_document(
    session: Session, providers: Sequence[BDF], clients: Sequence[BDF], out: TextIO
) -> None:
    """Stream ``p2pview matrix --json`` to ``out``, a block of provider rows at a time.

    Memory is bounded by :data:`p2pview.kernel.pairstream.BLOCK_CELLS` cells
    (and the per-function tables), not by the number of pairs. Pairs are
    written one per line.
    """
    head = _matrix_head(session, providers, clients)
    out.write("{\n")
    for key, value in head.items():
        out.write(f" {json.dumps(key)}: {json.dumps(value, indent=1)},\n")
    out.write(' "pairs": [')
    first = True
    for chunk in _pair_lines(session, providers, clients):
        out.write(("\n  " if first else ",\n  ") + chunk)
        first = False
    out.write("\n ]\n}\n")


def _matrix_head(
    session: Session, providers: Sequence[BDF], clients: Sequence[BDF]
) -> dict[str, Any]:
    state = session.state
    topo: Topology = session.topology
    wanted = set(providers) | set(clients)
    return {
        "kernel": kernel_dict(session),
        "platform": platform_dict(session),
        "source": topo.source,
        "topology": topo.name,
        "notes": session.notes,
        "devices": [device_dict(state, d) for d in topo.devices if d.bdf in wanted],
    }


#: The JSON of a map-type code, for pairs written from a template.
_MAP_JSON = {
    code: json.dumps(None if t is None else t.value) for code, t in CODE_TO_MAP_TYPE.items()
}


def _pair_lines(
    session: Session, providers: Sequence[BDF], clients: Sequence[BDF]
) -> Iterator[str]:
    """Every pair as one line of JSON (a row's plain pairs joined into one chunk)."""
    quoted = [json.dumps(str(c)) for c in clients]
    for row in PairRecords(session.state).rows(providers, clients):
        head = '{"provider": ' + json.dumps(str(row.provider)) + ', "client": '
        codes, dists = row.code.tolist(), row.distance.tolist()
        lines = [
            head
            + quoted[j]
            + ', "map_type": '
            + _MAP_JSON[codes[j]]
            + ', "distance": '
            + str(dists[j])
            + _EMPTY_TAIL
            if j not in row.records
            else json.dumps(row.records[j])
            for j in range(len(quoted))
        ]
        yield ",\n  ".join(lines)


_EMPTY_TAIL = ', "acs_redirect": [], "assumed": [], "assumptions": [], "alternatives": []}'


def verdict_document(session: Session, verdict: Verdict) -> dict[str, Any]:
    """``p2pview explain --json``: the whole verdict."""
    topo = session.topology
    base = verdict.to_dict()
    base.update(
        {
            "kernel": kernel_dict(session),
            "platform": platform_dict(session),
            "path": verdict.path.value,
            "walk_distance": verdict.walk_distance,
            "provider_chain": [str(b) for b in verdict.provider_chain],
            "client_chain": [str(b) for b in verdict.client_chain],
            "provider_host_bridge": str(topo.root_bus_of(verdict.provider)),
            "client_host_bridge": str(topo.root_bus_of(verdict.client)),
            "common_upstream": None if verdict.common is None else str(verdict.common),
            "acs_checks": [
                {
                    "device": str(c.device),
                    "side": c.side,
                    "redirect_bits": c.bits,
                    "known": c.known,
                    "counted": c.counted,
                }
                for c in verdict.acs_checks
            ],
            "acs_list": verdict.acs_list_text,
            "acs_list_truncated": verdict.acs_list_truncated,
            "cpu_supports_p2pdma": verdict.cpu_supports,
            "whitelist_checks": [
                {
                    "host_bridge": str(w.host_bridge),
                    "same_host_bridge": w.same_host_bridge,
                    "device": None if w.device is None else str(w.device),
                    "ids": w.ids,
                    "entry": w.entry,
                    "passed": w.passed,
                    "reason": w.reason,
                    "warned": w.warned,
                }
                for w in verdict.whitelist_checks
            ],
            "messages": [m.to_dict() for m in verdict.messages],
            "boot_messages": [m.to_dict() for m in session.state.boot_messages],
            "inferred": [i.to_dict() for i in verdict.inferred],
            "notes": session.notes,
        }
    )
    return base
