"""Write a topology as a p2pview topology file (TOML or JSON).

The output reads back into an equal topology (``tests/test_topofile.py``
holds that round trip for every bundled topology and capture).
"""

from __future__ import annotations

import json
from typing import Any

from p2pview.model import READ, AcsPresence, BarKind, Fact, PciDevice, Topology
from p2pview.model.provenance import DEVICE_FACTS, PLATFORM_FACTS
from p2pview.sources.topofile import FORMAT_TAG

_HEX_KEYS = {"class", "cap", "ctrl", "fw_ctrl", "start", "bus_address", "mem_offset"}


def _device_map(dev: PciDevice) -> dict[str, Any]:
    out: dict[str, Any] = {"bdf": str(dev.bdf), "id": dev.ids}
    if dev.label:
        out["label"] = dev.label
    if dev.subsystem_vendor is not None and dev.subsystem_device is not None:
        out["subsystem"] = f"{dev.subsystem_vendor:04x}:{dev.subsystem_device:04x}"
    out["class"] = dev.class_code
    if dev.revision:
        out["revision"] = dev.revision
    if dev.header_type is not None:
        out["header_type"] = {0: "normal", 1: "bridge", 2: "cardbus"}[dev.header_type]
    if dev.multifunction:
        out["multifunction"] = True
    if dev.pcie_type is not None:
        out["pcie_type"] = dev.pcie_type.token
    if dev.parent is not None:
        out["parent"] = str(dev.parent)
    if dev.physfn is not None:
        out["physfn"] = str(dev.physfn)
    if dev.acs.presence is AcsPresence.PRESENT:
        acs: dict[str, int] = {"cap": dev.acs.cap or 0, "ctrl": dev.acs.ctrl or 0}
        if dev.acs.fw_ctrl is not None:
            acs["fw_ctrl"] = dev.acs.fw_ctrl
        out["acs"] = acs
    else:
        out["acs"] = dev.acs.presence.value
    for key in ("driver", "numa_node", "iommu_group"):
        value = getattr(dev, key)
        if value is not None:
            out[key] = value
    link = {k: getattr(dev.link, k) for k in ("speed", "width", "max_speed", "max_width")}
    link = {k: v for k, v in link.items() if v is not None}
    if link:
        out["link"] = link
    if dev.bars:
        bars = []
        for bar in dev.bars:
            b: dict[str, Any] = {"index": bar.index, "start": bar.start, "size": bar.size}
            if bar.kind is not BarKind.MEM:
                b["kind"] = bar.kind.value
            if bar.prefetchable:
                b["prefetchable"] = True
            if bar.is_64bit:
                b["is_64bit"] = True
            if bar.bus_address is not None:
                b["bus_address"] = bar.bus_address
            bars.append(b)
        out["bars"] = bars
    if dev.p2pmem is not None:
        mem: dict[str, Any] = {
            "size": dev.p2pmem.size,
            "available": dev.p2pmem.available,
            "published": dev.p2pmem.published,
        }
        if dev.p2pmem.bar is not None:
            mem["bar"] = dev.p2pmem.bar
        if dev.p2pmem.bar_inferred:
            mem["bar_inferred"] = True
        out["p2pmem"] = mem
    if dev.notes:
        out["notes"] = list(dev.notes)
    if dev.placeholder:
        out["placeholder"] = True
    facts = _facts_map({name: dev.facts.get(name) for name in DEVICE_FACTS})
    if facts:
        out["facts"] = facts
    return out


def _facts_map(facts: dict[str, Fact]) -> dict[str, str]:
    """The facts that are not plainly read, as topology files keep them."""
    return {name: fact.to_text() for name, fact in facts.items() if fact != READ}


def to_mapping(topo: Topology) -> dict[str, Any]:
    """The document as plain data (the JSON form)."""
    plat = topo.platform
    platform: dict[str, Any] = {
        "arch": plat.arch,
        "cpu_vendor": plat.cpu_vendor,
        "cpu_family": plat.cpu_family,
    }
    if plat.cpu_model_name:
        platform["cpu_model"] = plat.cpu_model_name
    if plat.kernel:
        platform["kernel"] = plat.kernel
    platform["iommu"] = plat.iommu.value
    platform["cmdline"] = plat.cmdline
    if plat.hostname:
        platform["hostname"] = plat.hostname
    facts = _facts_map({name: plat.facts.get(name) for name in PLATFORM_FACTS})
    if facts:
        platform["facts"] = facts
    hbs = []
    for hb in topo.host_bridges:
        entry: dict[str, Any] = {"root": f"{hb.root.domain:04x}:{hb.root.bus:02x}"}
        if hb.mem_offset:
            entry["mem_offset"] = hb.mem_offset
        if hb.numa_node is not None:
            entry["numa_node"] = hb.numa_node
        if hb.label:
            entry["label"] = hb.label
        if hb.root_functions != READ:
            entry["root_functions"] = hb.root_functions.to_text()
        hbs.append(entry)
    return {
        "format": FORMAT_TAG,
        "name": topo.name,
        "description": topo.description,
        "platform": platform,
        "host_bridge": hbs,
        "device": [_device_map(d) for d in topo.devices],
    }


def to_json(topo: Topology) -> str:
    """The JSON form, indented."""
    return json.dumps(to_mapping(topo), indent=1) + "\n"


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if key in _HEX_KEYS or (key in ("size", "available") and value >= 0x10000):
            return hex(value) if value >= 0 else str(value)
        return str(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(k, v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(topo: Topology, header: str = "") -> str:
    """The TOML form, one ``[[device]]`` table per function; ``header`` becomes comments."""
    doc = to_mapping(topo)
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    lines.append(f"format = {_toml_str(doc['format'])}")
    lines.append(f"name = {_toml_str(doc['name'])}")
    lines.append(f"description = {_toml_str(doc['description'])}")
    lines.append("")
    lines.append("[platform]")
    lines.extend(f"{k} = {_toml_value(k, v)}" for k, v in doc["platform"].items())
    for hb in doc["host_bridge"]:
        lines.append("")
        lines.append("[[host_bridge]]")
        lines.extend(f"{k} = {_toml_value(k, v)}" for k, v in hb.items())
    for dev in doc["device"]:
        lines.append("")
        lines.append("[[device]]")
        for k, v in dev.items():
            if k == "bars":
                lines.append("bars = [")
                lines.extend(f"  {_toml_value(k, bar)}," for bar in v)
                lines.append("]")
            else:
                lines.append(f"{k} = {_toml_value(k, v)}")
    return "\n".join(lines) + "\n"
