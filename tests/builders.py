"""Small helpers to write test topologies the way the spec draws them."""

from __future__ import annotations

from p2pview.kernel import KernelState, KernelTarget, Verdict, calc_map_type_and_dist, prepare
from p2pview.model import BDF, Acs, PciDevice, PcieType, Platform, Topology

ACS_ON = Acs.present(0x005F, 0x001D)  # SV|RR|CR|UF: what Linux programs with an IOMMU on
ACS_CAP_ONLY = Acs.present(0x005F, 0x0000)
INTEL = Platform(arch="x86_64", cpu_vendor="GenuineIntel", cpu_family=6)
ZEN = Platform(arch="x86_64", cpu_vendor="AuthenticAMD", cpu_family=0x17)


def B(text: str) -> BDF:
    return BDF.parse(text)


def dev(
    bdf: str,
    ids: str = "144d:a808",
    parent: str | None = None,
    *,
    bridge: bool = False,
    acs: Acs | None = None,
    pcie: PcieType | None = None,
    physfn: str | None = None,
    class_code: int | None = None,
    **kw: object,
) -> PciDevice:
    vendor, device = (int(x, 16) for x in ids.split(":"))
    if pcie is None:
        pcie = (
            PcieType.DOWNSTREAM
            if bridge and parent
            else PcieType.ROOT_PORT
            if bridge
            else PcieType.ENDPOINT
        )
    return PciDevice(
        B(bdf),
        vendor,
        device,
        class_code=class_code if class_code is not None else 0x060400 if bridge else 0x010802,
        header_type=1 if bridge else 0,
        pcie_type=pcie,
        parent=B(parent) if parent else None,
        acs=acs or Acs.absent(),
        physfn=B(physfn) if physfn else None,
        **kw,  # type: ignore[arg-type]
    )


def host(bdf: str = "00:00.0", ids: str = "8086:2020") -> PciDevice:
    vendor, device = (int(x, 16) for x in ids.split(":"))
    return PciDevice(B(bdf), vendor, device, class_code=0x060000, header_type=0)


def topo(*devices: PciDevice, platform: Platform = INTEL) -> Topology:
    return Topology(devices, platform=platform, name="test")


def state(t: Topology, kernel: str = "6.12") -> KernelState:
    return prepare(t, KernelTarget.parse(kernel))


def calc(t: Topology, provider: str, client: str, kernel: str = "6.12") -> Verdict:
    return calc_map_type_and_dist(state(t, kernel), B(provider), B(client))


def result(t: Topology, provider: str, client: str, kernel: str = "6.12") -> tuple[str | None, int]:
    v = calc(t, provider, client, kernel)
    return (None if v.map_type is None else v.map_type.value, v.distance)
