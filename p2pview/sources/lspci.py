"""Readers for lspci output: hex dumps, ``-t`` trees and ``-vvv`` text.

=====================  =========================================================
``lspci -xxxx`` etc.   :func:`sniff_lspci_hex`, :func:`parse_lspci_hex`
                       (:mod:`p2pview.sources.lspci_hex`)
``lspci -tv`` etc.     :func:`sniff_lspci_tree`, :func:`parse_lspci_tree`
                       (:mod:`p2pview.sources.lspci_tree`)
``lspci -vvv`` etc.    :func:`sniff_lspci_verbose`, :func:`parse_lspci_verbose`
                       (:mod:`p2pview.sources.lspci_verbose`)
=====================  =========================================================

A ``-vvxxxx`` dump is both verbose text and a hex dump; try the sniffers in
the order hex, tree, verbose. Every parser raises
:class:`~p2pview.sources.checks.SourceError` with a message that starts
with the file name and names the line.
"""

from __future__ import annotations

from p2pview.sources.lspci_hex import parse_lspci_hex, sniff_lspci_hex
from p2pview.sources.lspci_tree import parse_lspci_tree, sniff_lspci_tree
from p2pview.sources.lspci_verbose import parse_lspci_verbose, sniff_lspci_verbose

__all__ = [
    "parse_lspci_hex",
    "parse_lspci_tree",
    "parse_lspci_verbose",
    "sniff_lspci",
    "sniff_lspci_hex",
    "sniff_lspci_tree",
    "sniff_lspci_verbose",
]


def sniff_lspci(text: str) -> str | None:
    """Which lspci format ``text`` is: ``"hex"``, ``"tree"``, ``"verbose"`` or ``None``."""
    if sniff_lspci_hex(text):
        return "hex"
    if sniff_lspci_tree(text):
        return "tree"
    if sniff_lspci_verbose(text):
        return "verbose"
    return None
