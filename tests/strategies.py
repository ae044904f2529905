"""Hypothesis strategies: random but well-formed PCIe topologies and platforms."""

from __future__ import annotations

from hypothesis import strategies as st

from p2pview.kernel.whitelist import ALL_ENTRIES, PCI_ANY_ID
from p2pview.model import (
    BDF,
    Acs,
    DeviceFacts,
    Fact,
    HostBridge,
    P2pMem,
    PciDevice,
    PcieType,
    Platform,
    PlatformFacts,
    Topology,
)

KERNELS = [
    "4.20",
    "5.1",
    "5.4",
    "5.9",
    "5.15",
    "5.18",
    "5.19",
    "6.2",
    "6.12",
    "6.12.117",
    "6.15",
    "7.1",
    "7.2",
    "next",
]

HOST_IDS = sorted(
    {(e.vendor, 0x1234 if e.device == PCI_ANY_ID else e.device) for e in ALL_ENTRIES}
    | {(0x8086, 0x1234), (0x1022, 0x1480), (0x8086, 0x29C0)}
)

PLATFORMS = [
    Platform(arch="x86_64", cpu_vendor="GenuineIntel", cpu_family=6),
    Platform(arch="x86_64", cpu_vendor="AuthenticAMD", cpu_family=0x17),
    Platform(arch="x86_64", cpu_vendor="AuthenticAMD", cpu_family=0x0F),
    Platform(arch="x86_64", cpu_vendor="HygonGenuine", cpu_family=0x18),
    Platform(arch="aarch64", cpu_vendor="ARM", cpu_family=0),
]

#: Provenance: mostly read, sometimes inferred or assumed.
facts = st.sampled_from(
    [Fact.read(), Fact.read(), Fact.read(), Fact.inferred("a test"), Fact.assumed("a test")]
)
device_facts = st.builds(DeviceFacts, ids=facts, pcie_type=facts, parent=facts, acs=facts)
platform_facts = st.builds(PlatformFacts, cpu=facts, kernel=facts)

acs_states = st.one_of(
    st.just(Acs.absent()),
    st.just(Acs.unknown()),
    st.builds(
        Acs.present,
        st.integers(0, 0x7F),
        st.integers(0, 0x7F),
        st.one_of(st.none(), st.integers(0, 0x7F)),
    ),
)


@st.composite
def topologies(draw: st.DrawFn, max_devices: int = 24) -> Topology:
    """A forest of host bridges, ports, switches, multi-function endpoints and VFs."""
    devices: list[PciDevice] = []
    next_bus = [1]
    n_roots = draw(st.integers(1, 3))
    root_buses = draw(
        st.lists(
            st.sampled_from([0x00, 0x20, 0x40, 0x80, 0xC0]),
            min_size=n_roots,
            max_size=n_roots,
            unique=True,
        )
    )
    next_bus[0] = max(root_buses) + 1
    domain_of = dict.fromkeys(root_buses, 0)
    if draw(st.booleans()) and len(root_buses) < 3:
        root_buses.append(0x00)
        domain_of = {b: 0 for b in root_buses[:-1]}
    budget = [max_devices]

    def add_bus(domain: int, bus: int, parent: BDF | None, depth: int) -> None:
        slots = draw(st.lists(st.integers(0, 31), min_size=1, max_size=4, unique=True))
        for slot in sorted(slots):
            if budget[0] <= 0:
                return
            nfn = draw(st.integers(1, 3))
            for fn in range(nfn):
                if budget[0] <= 0:
                    return
                budget[0] -= 1
                bdf = BDF(domain, bus, slot, fn)
                is_bridge = depth < 4 and fn == 0 and draw(st.booleans())
                if parent is None and slot == 0 and fn == 0 and draw(st.booleans()):
                    vendor, device = draw(st.sampled_from(HOST_IDS))
                    devices.append(
                        PciDevice(
                            bdf,
                            vendor,
                            device,
                            class_code=0x060000,
                            header_type=0,
                            acs=draw(acs_states),
                            facts=draw(device_facts),
                        )
                    )
                    continue
                if is_bridge:
                    vendor, device = draw(st.sampled_from([*HOST_IDS, (0x10B5, 0x8747)]))
                    ptype = draw(
                        st.sampled_from(
                            [PcieType.ROOT_PORT, PcieType.UPSTREAM, PcieType.DOWNSTREAM, None]
                        )
                    )
                    devices.append(
                        PciDevice(
                            bdf,
                            vendor,
                            device,
                            class_code=0x060400,
                            header_type=1,
                            pcie_type=ptype,
                            acs=draw(acs_states),
                            parent=parent,
                            facts=draw(device_facts),
                        )
                    )
                    child_bus = next_bus[0]
                    next_bus[0] += 1
                    if child_bus <= 0xFF:
                        add_bus(domain, child_bus, bdf, depth + 1)
                    continue
                mem = None
                if draw(st.booleans()):
                    size = draw(st.sampled_from([0, 1 << 20, 1 << 26]))
                    mem = P2pMem(size, size, draw(st.booleans()))
                devices.append(
                    PciDevice(
                        bdf,
                        0x144D,
                        0xA808,
                        class_code=0x010802,
                        header_type=0,
                        pcie_type=PcieType.ENDPOINT,
                        acs=draw(acs_states),
                        parent=parent,
                        multifunction=nfn > 1,
                        p2pmem=mem,
                        facts=draw(device_facts),
                    )
                )
                if fn == 0 and draw(st.integers(0, 4)) == 0 and budget[0] > 0:
                    vf = BDF(domain, bus, slot, 7) if nfn < 7 else None
                    if vf is not None:
                        budget[0] -= 1
                        devices.append(
                            PciDevice(
                                vf,
                                0x144D,
                                0xA809,
                                class_code=0x010802,
                                header_type=0,
                                pcie_type=PcieType.ENDPOINT,
                                acs=draw(acs_states),
                                parent=parent,
                                physfn=bdf,
                            )
                        )

    for i, bus in enumerate(root_buses):
        domain = 0 if i < len(domain_of) else 0x10000
        add_bus(domain, bus, None, 0)
    platform = draw(st.sampled_from(PLATFORMS)).replace(facts=draw(platform_facts))
    cmdline = draw(st.one_of(st.just(""), _acs_cmdline(devices)))
    roots = sorted({d.bdf.root_bus for d in devices if d.parent is None})
    host_bridges = [HostBridge(root, root_functions=draw(facts)) for root in roots]
    return Topology(
        devices, host_bridges, platform=platform.replace(cmdline=cmdline), name="generated"
    )


@st.composite
def _acs_cmdline(draw: st.DrawFn, devices: list[PciDevice]) -> str:
    if not devices:
        return ""
    picked = draw(st.lists(st.sampled_from(devices), min_size=1, max_size=3))
    names = ";".join(str(d.bdf) for d in picked)
    options = []
    if draw(st.booleans()):
        options.append(f"disable_acs_redir={names}")
    if draw(st.booleans()):
        flags = draw(st.text(alphabet="01x", min_size=1, max_size=7))
        options.append(f"config_acs={flags}@{picked[0].bdf}")
    if draw(st.booleans()):
        options.append("config_acs=xx0000x@pci:0:0")
    return "pci=" + ",".join(options) if options else ""
