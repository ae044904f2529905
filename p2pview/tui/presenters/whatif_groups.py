"""The what-if changes pane's lines on IOMMU groups: what the edits did to them.

The groups come from :func:`p2pview.kernel.iommu_group.group_report`, which
forms them as ``pci_device_group()`` would for the source as loaded and as
edited. The source's own groups are the check: when p2pview's grouping of the
source as loaded differs from the groups it read, the pane says so instead of
showing a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content

from p2pview.kernel.iommu_group import GroupReport, IommuGroups
from p2pview.model import BDF
from p2pview.tui.presenters.explain_content import MUTED

#: How many changed groups the pane lists.
GROUPS_SHOWN = 4
#: How many functions of one group are named.
MEMBERS_SHOWN = 6
_RULE = "as pci_device_group() forms them"


def _members(group: Sequence[BDF]) -> str:
    names = " ".join(b.short() for b in group[:MEMBERS_SHOWN])
    if len(group) > MEMBERS_SHOWN:
        names += f" +{len(group) - MEMBERS_SHOWN}"
    return names


def _unknown_line(groups: IommuGroups) -> list[Content]:
    if not groups.unknown:
        return []
    first = next(iter(groups.unknown.values()))
    n = len(groups.unknown)
    text = f"  {n} function{'s' if n != 1 else ''}' groups not known: {first}"
    return [Content.styled(text, MUTED)]


def group_lines(report: GroupReport | None) -> list[Content]:
    """Lines for the changes pane (none when neither side has IOMMU groups)."""
    if report is None:
        return []
    before, after = report.before, report.after
    if not after.groups and not after.unknown:
        if before.groups or before.unknown:
            return [Content.styled("IOMMU groups: none (no IOMMU, no groups).", MUTED)]
        return []
    if not report.check.agrees:
        number, members, mine = report.check.differing[0]
        theirs = "alone" if mine is None else _members(mine)
        return [
            Content.styled("IOMMU groups: not recomputed.", "bold"),
            Content.styled(
                f"  The source's group {number} ({_members(members)}) is not what"
                f" pci_device_group() makes of it ({theirs}): a quirk or IOMMU driver"
                " p2pview does not model.",
                MUTED,
            ),
        ]
    if not before.groups and not before.unknown:
        shared = [g for g in after.groups if len(g) > 1]
        lines = [
            Content.assemble(
                ("IOMMU groups", "bold"),
                f" with the IOMMU on, {_RULE}: {len(after.groups)},"
                f" {len(shared)} shared by several functions",
                (":" if shared else ".", ""),
            )
        ]
        lines.extend(Content(f"  {_members(g)}") for g in shared[:GROUPS_SHOWN])
        return lines + _unknown_line(after)
    if not report.changes:
        return [Content.styled(f"IOMMU groups: unchanged, {_RULE}.", MUTED), *_unknown_line(after)]
    n = len(report.changes)
    lines = [Content.assemble(("IOMMU groups", "bold"), f": {n} changed, {_RULE}:")]
    for change in report.changes[:GROUPS_SHOWN]:
        if change.joined:
            what = f"now one group (were {len(change.before)}):"
        else:
            what = f"split from a group of {len(change.before[0])}:"
        lines.append(Content.assemble("  ", (what, "$text-warning"), f" {_members(change.after)}"))
        why = after.reasons.get(change.after[-1])
        if why:
            lines.append(Content.styled(f"    {change.after[-1].short()} {why}", MUTED))
    if n > GROUPS_SHOWN:
        lines.append(Content.styled(f"  ... {n - GROUPS_SHOWN} more", MUTED))
    return lines + _unknown_line(after)
