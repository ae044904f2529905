"""``p2pview find``: every published provider's total distance, the pick, and the kernel's lines."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from p2pview.kernel.many import FindMany
from p2pview.session import Session


def candidates_table(found: FindMany) -> Table:
    """``pci_p2pdma_distance_many()`` of each published provider; the tied ones in green."""
    table = Table(title="pci_p2pdma_distance_many() per published provider")
    table.add_column("provider", no_wrap=True)
    table.add_column("total distance", justify="right", no_wrap=True)
    for provider, total in found.candidates:
        style = (
            "verdict.bus_addr" if provider in found.tied else ("check.fail" if total < 0 else "")
        )
        table.add_row(Text(str(provider), style=style), Text(str(total), style=style))
    return table


def pick_text(found: FindMany) -> Text:
    """What ``pci_p2pmem_find_many()`` returns."""
    if not found.tied:
        return Text("pci_p2pmem_find_many() returns NULL: no provider reaches every client.")
    if len(found.tied) == 1:
        return Text(f"pci_p2pmem_find_many() returns {found.tied[0]} (distance {found.best}).")
    tied = ", ".join(str(b) for b in found.tied)
    return Text(
        f"{len(found.tied)} providers tie at distance {found.best}: {tied}; the kernel picks"
        " one at random."
    )


def messages_text(found: FindMany) -> Text:
    """The lines the kernel prints meanwhile: only what the quiet distance calls print."""
    text = Text(
        "Kernel messages (pci_p2pmem_find_many() calls pci_p2pdma_distance_many() with"
        " verbose false):",
        style="bold",
    )
    if not found.messages:
        text.append(" none", style="")
    for msg in found.messages:
        text.append(f"\n  {msg.dmesg()}", style="")
    text.append(
        "\n'p2pview explain SOURCE PROVIDER CLIENT' shows the lines of the verbose"
        " calculation for one pair.",
        style="muted",
    )
    return text


def find_view(session: Session, found: FindMany) -> RenderableType:
    """The whole ``p2pview find`` output."""
    if not found.candidates:
        return Text("No published p2pmem provider in this topology (p2pmem/published = 1).")
    return Group(candidates_table(found), pick_text(found), messages_text(found))
