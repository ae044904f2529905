"""One behaviour profile per kernel era of ``drivers/pci/p2pdma.c``.

The eras and what changes between them follow the spec's timeline (section
0.2) and sections 2-3. ``--kernel X.Y`` picks the profile whose range holds
X.Y; ``next`` picks the newest tree modelled (the PCI maintainer tree, whose
extra whitelist rows are [UNVERIFIED]).

``sources`` and ``caveats`` are shown to users (``p2pview profiles``, the JSON
``kernel.caveats``): they name what a user can open (a release and file, a
commit, a public repository at a commit) and say in words what was read, what is
inferred and what is recalled; never the spec's internal source tags. Five eras
were read in whole released trees, Debian's ``linux-source`` packages 5.10.223,
6.1.176, 6.12.117, 7.2.13 and 7.3~rc7, and each of those kernels was booted
under QEMU against p2pview (README, "Checked against real kernels").
docs/kernel-model.md tells the same per era in prose.
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

    #: ``pci_get_slot(host->bus, PCI_DEVFN(0, 0))`` (mainline v4.20-v5.13 [recalled]).
    SLOT_00_0 = "slot 00.0"
    #: ``pci_host_bridge_dev()``: first device on the root bus if devfn 00.0
    #: ("PCI/P2PDMA: Avoid pci_get_slot(), which may sleep": mainline v5.14
    #: [inferred], stable 5.10.52 [read in 5.10.223 and Debian's changelog]; v5.15-v5.18
    #: [read S-5.15, S-5.17]).
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

_NOT_READ = "recalled, not read in a released tree"

PROFILES: tuple[Profile, ...] = (
    # S-4.20 [read]
    _profile(
        "4.20",
        "v4.20-v5.0",
        "4.20",
        "5.0",
        int_distance=True,
        hb_rule=None,
        cpu_check=False,
        warning=False,
        sources="read: torvalds/linux drivers/pci/p2pdma.c at commit 02917e9f (the first"
        " upstream form)",
        caveats=("no released tree of this era was read or booted: the source is a commit",),
    ),
    # S-5.1 [read]
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
        sources="read: torvalds/linux drivers/pci/p2pdma.c at commit 3306e99e",
        caveats=("no released tree of this era was read or booted: the source is a commit",),
    ),
    # [recalled]: the v5.9-v5.14 shape (read in 5.10.223) with the AMD rows
    _profile(
        "5.4",
        "v5.4-v5.8",
        "5.4",
        "5.8",
        hb_rule=_H.SLOT_00_0,
        cpu_check=False,
        warning=False,
        sources=f"{_NOT_READ}: the Linux 5.10.223 code with AMD whitelist rows in place of"
        " the AMD CPU check (commit dea286bb71ba swapped them)",
        caveats=(
            f"v5.4-v5.8 is {_NOT_READ}: the same walk as Linux 5.10.223 with the AMD"
            " whitelist rows instead of cpu_supports_p2pdma()",
            "the release that added AMD 0x15d0 and 0x1630 was not established; all three"
            " AMD rows are modelled for the whole era",
        ),
    ),
    # [read] in Debian's linux-source-5.10 (5.10.223) and booted under QEMU
    _profile(
        "5.9",
        "v5.9-v5.14",
        "5.9",
        "5.14",
        hb_rule=_H.SLOT_00_0,
        cpu_check=True,
        warning=False,
        sources="read and booted: Linux 5.10.223 (Debian linux-source-5.10), drivers/pci/p2pdma.c",
        caveats=(
            "v5.9 as the release of commit dea286bb71ba (the AMD Zen CPU check) is inferred;"
            " Linux 5.10.223 has it",
            "the whitelist device: the function at devfn 00.0 of the root bus; from 5.10.52"
            " (and, inferred, mainline v5.14) pci_host_bridge_dev() asks that it also be the"
            " first function there, which it is whenever it exists at boot",
        ),
    ),
    # S-5.15, S-5.17 (without the Ubuntu tree's local changes) [read]
    _profile(
        "5.15",
        "v5.15-v5.17",
        "5.15",
        "5.17",
        hb_rule=_H.FIRST_IF_DEVFN_0,
        cpu_check=True,
        warning=True,
        sources="read: xzhan34/linux-intel-lts2021 (Intel's 5.15 LTS) at commit a745a76e and"
        " blanshard/linux-oem-5.17_5.17.0-1026-p2p (Ubuntu OEM 5.17) at commit 7d0487da,"
        " drivers/pci/p2pdma.c, without the Ubuntu tree's local changes",
        caveats=(
            "no released mainline tree of this era was read or booted; the two vendor trees"
            " agree on the decision code",
        ),
    ),
    # feaea1fe8b36 in S-6.2 [read]
    _profile(
        "5.18",
        "v5.18",
        "5.18",
        "5.18",
        hb_rule=_H.FIRST_IF_DEVFN_0,
        cpu_check=True,
        warning=True,
        sources="read: commit feaea1fe8b36 (Intel 0x09a2) in l1k/linux at commit ee164f2d;"
        " otherwise as v5.15-v5.17",
        caveats=(
            "v5.18 as the release of the 0x09a2 row is inferred from the pci-v5.18 pull;"
            " Linux 6.1.176 has the row, 5.10.223 does not",
        ),
    ),
    # [read] in Debian's 6.1.176 and 6.12.117, both booted; S-6.2 and S-new agree
    _profile(
        "5.19",
        "v5.19-v7.0",
        "5.19",
        "7.0",
        hb_rule=_H.FIRST_IF_DEVFN_0_OR_ROOT_PORT,
        cpu_check=True,
        warning=True,
        sources="read and booted: Linux 6.1.176 and 6.12.117 (Debian linux-source-6.1,"
        " linux-source-6.12), drivers/pci/p2pdma.c and drivers/pci/pci.c",
        caveats=(
            "v5.19 as the release of commit 1af7c26c59eb (a Root Port at any devfn) is"
            " inferred; Linux 6.1.176 has it",
            "pci=config_acs= is modelled from v6.11 on (commit 47c8846a49ba); its fix"
            " reached 6.12.23 (Debian's changelog) and Linux 6.12.117 has the fixed form",
        ),
    ),
    # [read] in Debian's 7.2.13 and 7.3~rc7, both booted; the 7.1.y-stable diff
    _profile(
        "7.1",
        "v7.1+",
        "7.1",
        None,
        hb_rule=_H.FIRST_IF_DEVFN_0_OR_ROOT_PORT,
        cpu_check=True,
        warning=True,
        wildcard=True,
        sources="read and booted: Linux 7.2.13 and 7.3-rc7 (Debian linux-source-7.2,"
        " linux-source-7.3), drivers/pci/p2pdma.c",
        caveats=(
            "v7.1 as the first release with the Google (1ae0:*) row and PCI_ANY_ID"
            " matching is inferred; Linux 7.2.13 has both",
            "the Intel accelerator rows (DSA, IAA, QAT) are in mainline 7.2 and in stable"
            " 7.1.3 (Debian's changelog lists the backport)",
            "the root-device lookup is unchanged in 7.2.13 and 7.3-rc7: an accelerator row"
            " matches only when the accelerator is the first function of its own root bus,"
            " at devfn 00.0 or a Root Port",
            "the NVIDIA rows 10de:2f95-2f98 were read in 7.3-rc7 (not in 7.2.13); that the"
            " final 7.3 keeps them is inferred",
        ),
    ),
    # S-new (pci.git) [read]; the Zhaoxin rows no release is known to carry
    _profile(
        "next",
        "newest tree (pci.git)",
        "7.2",
        None,
        hb_rule=_H.FIRST_IF_DEVFN_0_OR_ROOT_PORT,
        cpu_check=True,
        warning=True,
        wildcard=True,
        sources="read: the PCI maintainer tree, kernelorg-mirror/linux_kernel_git_pci_pci"
        " drivers/pci/p2pdma.c at commit cd2698d7",
        caveats=(
            "UNVERIFIED: the Zhaoxin rows 1d17:1003-1008 were seen only in the PCI"
            " maintainer tree (not in 7.3-rc7); no release is known to carry them, so only"
            " this profile has them",
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
    def host_bridge_dev(self) -> HostBridgeDevRule | None:
        """How this release finds the function the whitelist checks (spec section 2.2).

        The era's rule, except that ``pci_host_bridge_dev()`` replaced
        ``pci_get_slot()`` before v5.15: mainline v5.14 [inferred] and stable
        5.10.52 [read: Debian's 5.10.223 changelog lists "PCI/P2PDMA: Avoid
        pci_get_slot(), which may sleep" under ChangeLog-5.10.52, and 5.10.223's
        drivers/pci/p2pdma.c has it]. Both find the same function whenever
        devfn 00.0 exists at boot.
        """
        rule = self.profile.host_bridge_dev
        if rule is HostBridgeDevRule.SLOT_00_0 and not self.profile.int_distance:
            v = self.version
            fixed_at = _HOST_BRIDGE_DEV_STABLE.get(v.series)
            if v.series >= (5, 14) or (fixed_at is not None and v.patch >= fixed_at):
                return HostBridgeDevRule.FIRST_IF_DEVFN_0
        return rule

    @property
    def p2pmem_needs_pool(self) -> bool:
        """``pci_has_p2pmem()`` also wants a pool (``p2pmem/size`` above 0).

        From v6.19 and in the newest tree: ``pcim_p2pdma_init()`` providers
        have no pool, and ``pci_p2pmem_find_many()`` does not pick them
        [inferred: the release as the engine has modelled it since the
        multi-provider search; not read in a 6.19 tree].
        """
        return self.profile.key == "next" or self.version.series >= (6, 19)

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
#: stable review series that backported it (the 6.13 copy was read). 6.12.23 is
#: [read]: Debian's 6.12.117 changelog lists "PCI/ACS: Fix 'pci=config_acs='
#: parameter" under ChangeLog-6.12.23, and 6.12.117's drivers/pci/pci.c has the
#: fixed ``caps->ctrl = (caps->fw_ctrl & ~mask) | (flags & mask)`` and
#: "Configured ACS to %#06x".
_CONFIG_ACS_FIX_STABLE = {(6, 12): 23, (6, 13): 11, (6, 14): 2}

#: Stable series that got ``pci_host_bridge_dev()`` before v5.15, and from which
#: patch level (see :attr:`KernelTarget.host_bridge_dev`).
_HOST_BRIDGE_DEV_STABLE = {(5, 10): 52}


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
