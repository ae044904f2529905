"""JSON documents for ``--json`` (plain data; README documents the fields).

The pieces every document shares (the platform, the kernel, a function) and
``explain --json``'s verdict. ``matrix --json``, which needs the vectorised
matrix and so numpy, is streamed by :mod:`p2pview.matrixjson`; ``explain``
and ``compare`` import this module without it.
"""

from __future__ import annotations

from typing import Any

from p2pview.kernel import KernelState, Verdict
from p2pview.model import (
    DEVICE_FACTS,
    PLATFORM_FACTS,
    AcsPresence,
    Fact,
    PciDevice,
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
