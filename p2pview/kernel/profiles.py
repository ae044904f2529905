"""One behaviour profile per kernel era of ``drivers/pci/p2pdma.c``.

The eras and what changes between them follow the spec's timeline (section
0.2) and sections 2-3. ``--kernel X.Y`` picks the profile whose range holds
X.Y; ``next`` picks the newest tree modelled (the PCI maintainer tree, whose
extra whitelist rows are [UNVERIFIED]).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from p2pview.kernel.version import KernelVersion, VersionError
from p2pview.kernel.whitelist import WhitelistEntry, whitelist_for

#: ``PAGE_SIZE`` on the x86-64 build the spec describes.
PAGE_SIZE = 4096


class HostBridgeDevRule(StrEnum):
    """How the function whose IDs the whitelist checks is found (spec section 2.2)."""

    #: ``pci_get_slot(host->bus, PCI_DEVFN(0, 0))`` (v4.20-v5.14).
    SLOT_00_0 = "slot 00.0"
    #: ``pci_host_bridge_dev()``: first device on the root bus if devfn 00.0 (v5.15-v5.18).
    FIRST_IF_DEVFN_0 = "first device, if devfn 00.0"
    #: ... or if it is a Root Port (1af7c26c59eb, v5.19+).
    FIRST_IF_DEVFN_0_OR_ROOT_PORT = "first device, if devfn 00.0 or a Root Port"


@dataclass(frozen=True, slots=True)
class Profile:
    """What one kernel era does when it decides a P2PDMA pair.

    Attributes:
        key: short name (``"5.15"``), also the first release of the era.
        title: the release range, e.g. ``"v5.15-v5.17"``.
        first, last: the range (``last`` is ``None`` for open-ended eras).
        int_distance: v4.20-v5.3 return an int (-1, -2 or a distance), no map type.
        amd_penalty: v5.1-v5.3 ``root_complex_whitelist()`` (AMD 0x1450, +0x1000).
        host_bridge_dev: the whitelist lookup rule.
        cpu_check: ``cpu_supports_p2pdma()`` exists (v5.9+).
        whitelist_warning: "Host bridge not in P2PDMA whitelist" is printed (v5.15+).
        acs_list_size: bytes of the ACS list buffer (PAGE_SIZE before v5.15, 128 after).
        wildcard_ids: whitelist device ``PCI_ANY_ID`` matches any device (7.1+).
        sources: where the behaviour was read (spec source tags).
        caveats: what is inferred or [UNVERIFIED] in this profile.
    """

    key: str
    title: str
    first: KernelVersion
    last: KernelVersion | None
    int_distance: bool
    amd_penalty: bool
    host_bridge_dev: HostBridgeDevRule | None
    cpu_check: bool
    whitelist_warning: bool
    acs_list_size: int
    wildcard_ids: bool
    sources: str
    caveats: tuple[str, ...] = ()

    def covers(self, version: KernelVersion) -> bool:
        """Whether ``version`` falls in this era."""
        if version.is_next:
            return self.key == "next"
        if self.key == "next":
            return False
        if version.series < self.first.series:
            return False
        return self.last is None or version.series <= self.last.series


_V = KernelVersion.parse


def _profile(
    key: str,
    title: str,
    first: str,
    last: str | None,
    *,
    hb_rule: HostBridgeDevRule | None,
    cpu_check: bool,
    warning: bool,
    sources: str,
    int_distance: bool = False,
    amd_penalty: bool = False,
    wildcard: bool = False,
    caveats: tuple[str, ...] = (),
) -> Profile:
    return Profile(
        key=key,
        title=title,
        first=_V(first),
        last=_V(last) if last else None,
        int_distance=int_distance,
        amd_penalty=amd_penalty,
        host_bridge_dev=hb_rule,
        cpu_check=cpu_check,
        whitelist_warning=warning,
        acs_list_size=128 if warning else PAGE_SIZE,
        wildcard_ids=wildcard,
        sources=sources,
        caveats=caveats,
    )


_H = HostBridgeDevRule

PROFILES: tuple[Profile, ...] = (
    _profile(
        "4.20",
        "v4.20-v5.0",
        "4.20",
        "5.0",
        int_distance=True,
        hb_rule=None,
        cpu_check=False,
        warning=False,
        sources="S-4.20 (torvalds/linux drivers/pci/p2pdma.c @ 02917e9f) [read]",
    ),
    _profile(
        "5.1",
        "v5.1-v5.3",
        "5.1",
        "5.3",
        int_distance=True,
        amd_penalty=True,
        hb_rule=_H.SLOT_00_0,
        cpu_check=False,
        warning=False,
        sources="S-5.1 (torvalds/linux drivers/pci/p2pdma.c @ 3306e99e) [read]",
    ),
    _profile(
        "5.4",
        "v5.4-v5.8",
        "5.4",
        "5.8",
        hb_rule=_H.SLOT_00_0,
        cpu_check=False,
        warning=False,
        sources="same shape as the v5.9-v5.14 copy (search-store id 51190679) [recalled]",
        caveats=(
            "v5.4-v5.8 is recalled, not read: the same walk as v5.9-v5.14 with the AMD"
            " whitelist rows instead of cpu_supports_p2pdma()",
            "the release that added AMD 0x15d0 and 0x1630 was not established; all three"
            " AMD rows are modelled for the whole era",
        ),
    ),
    _profile(
        "5.9",
        "v5.9-v5.14",
        "5.9",
        "5.14",
        hb_rule=_H.SLOT_00_0,
        cpu_check=True,
        warning=False,
        sources="v5.9-v5.14-era p2pdma.c (search-store id 51190679) [read]",
        caveats=("v5.9 for dea286bb71ba (AMD Zen CPU check) is inferred",),
    ),
    _profile(
        "5.15",
        "v5.15-v5.17",
        "5.15",
        "5.17",
        hb_rule=_H.FIRST_IF_DEVFN_0,
        cpu_check=True,
        warning=True,
        sources="S-5.15 (xzhan34/linux-intel-lts2021 @ a745a76e), S-5.17 non-hacked parts [read]",
    ),
    _profile(
        "5.18",
        "v5.18",
        "5.18",
        "5.18",
        hb_rule=_H.FIRST_IF_DEVFN_0,
        cpu_check=True,
        warning=True,
        sources="feaea1fe8b36 (Intel 0x09a2) in S-6.2 [read]",
        caveats=("the 0x09a2 row's release (v5.18) is inferred from the pci-v5.18 pull",),
    ),
    _profile(
        "5.19",
        "v5.19-v7.0",
        "5.19",
        "7.0",
        hb_rule=_H.FIRST_IF_DEVFN_0_OR_ROOT_PORT,
        cpu_check=True,
        warning=True,
        sources="S-6.2 (l1k/linux @ ee164f2d) and S-new, same decision code [read]",
        caveats=(
            "v5.19 for 1af7c26c59eb (Root Port at any devfn) is inferred",
            "pci=config_acs= is modelled from v6.11 on (47c8846a49ba)",
        ),
    ),
    _profile(
        "7.1",
        "v7.1+",
        "7.1",
        None,
        hb_rule=_H.FIRST_IF_DEVFN_0_OR_ROOT_PORT,
        cpu_check=True,
        warning=True,
        wildcard=True,
        sources="S-new (pci.git @ cd2698d7) and a 7.1.y-stable diff for the table [read]",
        caveats=(
            "the Google (1ae0:*) row and the PCI_ANY_ID wildcard are dated v7.1 by"
            " inference; the Intel accelerator rows by a 7.1.y-stable backport (mainline"
            " v7.2), patch level not established",
            "the root-device lookup is unchanged: an accelerator row matches when the"
            " accelerator is devfn 00.0 of its own root bus (0ba76b19fd4c)",
        ),
    ),
    _profile(
        "next",
        "newest tree (pci.git)",
        "7.2",
        None,
        hb_rule=_H.FIRST_IF_DEVFN_0_OR_ROOT_PORT,
        cpu_check=True,
        warning=True,
        wildcard=True,
        sources="S-new (kernelorg-mirror/linux_kernel_git_pci_pci @ cd2698d7) [read]",
        caveats=(
            "[UNVERIFIED] the NVIDIA 10de:2f95-2f98 and Zhaoxin 1d17:1003-1008 rows were"
            " seen only in the PCI maintainer tree; no release is known to carry them, so"
            " only this profile has them",
        ),
    ),
)

_BY_KEY = {p.key: p for p in PROFILES}

#: The release used when neither the command line nor the source names a kernel.
DEFAULT_KERNEL = "6.12"

_OLD_ENUM = {"UNKNOWN": 0, "NOT_SUPPORTED": 1, "BUS_ADDR": 2, "THRU_HOST_BRIDGE": 3}
_NEW_ENUM = {"UNKNOWN": 0, "NONE": 1, "NOT_SUPPORTED": 2, "BUS_ADDR": 3, "THRU_HOST_BRIDGE": 4}


def profile_for(version: KernelVersion | str) -> Profile:
    """The profile whose era holds ``version``.

    Raises:
        VersionError: for releases before v4.20, which have no P2PDMA.
    """
    if isinstance(version, str):
        version = KernelVersion.parse(version)
    if not version.is_next and version.series < (4, 20):
        raise VersionError(
            f"kernel {version}: P2PDMA (drivers/pci/p2pdma.c) was merged in v4.20; nothing to model"
        )
    for profile in PROFILES:
        if profile.covers(version):
            return profile
    raise VersionError(f"kernel {version}: no profile covers it")  # pragma: no cover


def profile_by_key(key: str) -> Profile:
    """A profile by its key (``"5.15"``, ``"next"`` ...)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise VersionError(f"no profile {key!r} (one of {', '.join(_BY_KEY)})") from None


@dataclass(frozen=True, slots=True)
class KernelTarget:
    """A release and its era profile; release-level details live here.

    Within one era a few things still change with the release: the
    whitelist rows, how the ACS command-line parameters apply (v6.11 and its
    fix) and the map-type enum values (v6.16, a25e7962db0d [inferred]).
    """

    version: KernelVersion
    profile: Profile

    @classmethod
    def parse(cls, text: str) -> KernelTarget:
        """Resolve ``6.12``, ``5.15.0-91-generic``, ``next`` ... to a target."""
        version = KernelVersion.parse(text)
        return cls(version, profile_for(version))

    @property
    def acs_params(self) -> AcsParamForm:
        """How ``disable_acs_redir=`` and ``config_acs=`` are applied."""
        return acs_param_form(self.version)

    @property
    def whitelist(self) -> tuple[WhitelistEntry, ...]:
        """``pci_p2pdma_whitelist[]`` of this release (empty before v5.4)."""
        if self.profile.int_distance:
            return ()
        return whitelist_for(self.version)

    @property
    def map_type_values(self) -> dict[str, int]:
        """``enum pci_p2pdma_map_type`` values (spec section 1.1); empty before v5.4."""
        if self.profile.int_distance:
            return {}
        if self.version.is_next or self.version.series >= (6, 16):
            return dict(_NEW_ENUM)
        return dict(_OLD_ENUM)

    def __str__(self) -> str:
        return f"{self.version} ({self.profile.title} profile)"


class AcsParamForm(StrEnum):
    """How the kernel applies ``pci=disable_acs_redir=`` / ``pci=config_acs=``."""

    #: v4.20-v6.10 ``pci_disable_acs_redir()``: clear RR|CR|EC; no config_acs.
    LEGACY = "legacy"
    #: 47c8846a49ba as first merged (v6.11-v6.14): ``ctrl = (ctrl & ~mask) |
    #: (fw_ctrl & mask); ctrl |= flags``.
    CONFIG_ACS_V1 = "config_acs, as merged in v6.11"
    #: after 9cf8a952d57b "PCI/ACS: Fix 'pci=config_acs=' parameter":
    #: ``ctrl = (fw_ctrl & ~mask) | (flags & mask)``.
    CONFIG_ACS_FIXED = "config_acs, fixed (9cf8a952d57b)"


#: Stable releases that carry 9cf8a952d57b, [inferred] from the 8 April 2025
#: stable review series that backported it (the 6.13 copy was read).
_CONFIG_ACS_FIX_STABLE = {(6, 12): 23, (6, 13): 11, (6, 14): 2}


def acs_param_form(version: KernelVersion) -> AcsParamForm:
    """Which ACS command-line code a release runs (see :class:`AcsParamForm`)."""
    if version.is_next or version.series >= (6, 15):
        return AcsParamForm.CONFIG_ACS_FIXED
    if version.series < (6, 11):
        return AcsParamForm.LEGACY
    fixed_at = _CONFIG_ACS_FIX_STABLE.get(version.series)
    if fixed_at is not None and version.patch >= fixed_at:
        return AcsParamForm.CONFIG_ACS_FIXED
    return AcsParamForm.CONFIG_ACS_V1
