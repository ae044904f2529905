"""The sniff tests detection runs before a topology file's, without their readers.

:data:`p2pview.sources.formats.FORMATS` tries hwloc XML, NCCL XML and
``lstopo -v`` text before a p2pview topology file. Their tests are a few
regular expressions; their readers import an XML parser, the PCI name table
and the sysfs reader. Keeping the tests here lets a command on a topology
file detect it without importing any of that (``tests/test_cli_startup.py``).
:mod:`p2pview.sources.hwloc` and :mod:`p2pview.sources.nccl` export them too.
"""

from __future__ import annotations

import re

__all__ = ["sniff_hwloc_xml", "sniff_lstopo_console", "sniff_nccl_xml", "xml_root_tag"]

_HEAD_SKIP = re.compile(r"(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.DOTALL)
_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)")


def xml_root_tag(text: str) -> str | None:
    """The name of the first element, skipping the prolog, within the first 64 KiB."""
    head = text[:65536].lstrip("\ufeff")
    pos = 0
    while True:
        m = _HEAD_SKIP.match(head, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
    m = _ELEMENT.match(head, pos)
    return m[1] if m else None


def sniff_hwloc_xml(text: str) -> bool:
    """Whether ``text`` is an hwloc XML topology (root element ``<topology>``)."""
    return xml_root_tag(text) == "topology"


def sniff_nccl_xml(text: str) -> bool:
    """Whether ``text`` is an NCCL/RCCL topology dump (root element ``<system>``)."""
    return xml_root_tag(text) == "system"


def sniff_lstopo_console(text: str) -> bool:
    """Whether ``text`` is ``lstopo -v`` console output with PCI objects."""
    head = text[:65536]
    return bool(
        re.match(r"\s*(?:Machine|System)\b", head)
        and re.search(r"^\s*(?:HostBridge|PCIBridge|PCI)\b.*busid=", head, re.MULTILINE)
    )
