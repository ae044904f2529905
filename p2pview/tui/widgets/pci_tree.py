"""The PCIe hierarchy as a Tree: host bridges, ports and functions, with badges.

Each node's ``data`` is its :class:`~p2pview.model.BDF` (a function) or
:class:`~p2pview.model.RootBus` (a host bridge). A row is a tuple of
:data:`~p2pview.tui.presenters.pci_labels.Part`; the node's label holds the plain
text (so device names are never read as markup) and :meth:`PciTree.
render_label` colours each part through a ``pci-tree--<style>`` component
class, so every colour comes from the theme.

Big trees are added in chunks, one chunk per refresh, so that the first rows
show at once and the UI never stalls (the way Textual's DirectoryTree loads
big directories).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from p2pview.model import BDF, Topology
from p2pview.tui.presenters.pci_labels import NodeKey, Part, parts_text

#: Nodes added per chunk: small enough for a frame, big enough to be done quickly.
CHUNK = 400
#: Trees up to this many rows are added at once (no visible build-up).
ALL_AT_ONCE = 600
#: At most this many rows are visible after the default expansion of a big tree.
DEFAULT_VISIBLE_ROWS = 400

#: Every style a part may name, drawn by the ``pci-tree--<style>`` component class.
PART_STYLES = (
    "bdf",
    "host",
    "role",
    "kind",
    "label",
    "name",
    "muted",
    "acs-redirect",
    "acs-off",
    "acs-unknown",
    "p2pmem",
    "p2pmem-unpublished",
    "group",
    "link",
    "link-degraded",
    "whitelist-pass",
    "whitelist-fail",
    "peer",
)

PEER_PART: Part = (" peer ", "peer")


@dataclass(frozen=True, slots=True)
class TreePlan:
    """What to add: the rows, the order (parents first) and which nodes start expanded."""

    rows: Mapping[NodeKey, tuple[Part, ...]]
    order: tuple[tuple[NodeKey, NodeKey | None], ...]
    expandable: frozenset[NodeKey]
    expanded: frozenset[NodeKey]


def plan_tree(
    topology: Topology,
    rows: Mapping[NodeKey, tuple[Part, ...]],
    visible_rows: int = DEFAULT_VISIBLE_ROWS,
    reveal: Iterable[BDF] = (),
) -> TreePlan:
    """Order the nodes depth first and choose how deep to expand by default.

    Every level is expanded while the rows then visible stay within
    ``visible_rows`` (host bridges always are); the ancestors of ``reveal``
    are expanded too, so that those functions are on screen.
    """
    order: list[tuple[NodeKey, NodeKey | None]] = []
    depth: dict[NodeKey, int] = {}
    expandable: set[NodeKey] = set()
    stack: list[tuple[NodeKey, NodeKey | None, int]] = [
        (hb.root, None, 0) for hb in reversed(topology.host_bridges)
    ]
    while stack:
        key, parent, level = stack.pop()
        order.append((key, parent))
        depth[key] = level
        kids = topology.children(key)
        if kids:
            expandable.add(key)
        stack.extend((kid, key, level + 1) for kid in reversed(kids))
    per_level: dict[int, int] = {}
    for level in depth.values():
        per_level[level] = per_level.get(level, 0) + 1
    # Expanding level L shows the nodes of level L + 1.
    expand_to = 0
    shown = per_level.get(0, 0) + per_level.get(1, 0)
    while expand_to + 2 in per_level and shown + per_level[expand_to + 2] <= visible_rows:
        expand_to += 1
        shown += per_level[expand_to + 1]
    expanded = {key for key in expandable if depth[key] <= expand_to}
    for bdf in reveal:
        if bdf in topology:
            expanded.update(topology.upstream_chain(bdf)[1:])
            expanded.add(topology.root_bus_of(bdf))
    return TreePlan(rows, tuple(order), frozenset(expandable), frozenset(expanded))


class PciTree(Tree[NodeKey]):
    """A Tree of host bridges and PCI functions with styled badges."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # enter asks for the pair's explanation instead of toggling (space toggles)
        Binding("enter", "explain_cursor", "Explain pair", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"pci-tree--{s}" for s in PART_STYLES}

    DEFAULT_CSS = """
    PciTree {
        & > .pci-tree--bdf { text-style: bold; }
        & > .pci-tree--host { text-style: bold; color: $text-primary; }
        & > .pci-tree--role { color: $foreground 60%; }
        & > .pci-tree--kind { color: $text-accent; text-style: bold; }
        & > .pci-tree--label { color: $text-secondary; text-style: bold; }
        & > .pci-tree--name { }
        & > .pci-tree--muted { color: $foreground 60%; }
        & > .pci-tree--acs-redirect { color: $text-warning; text-style: bold; }
        & > .pci-tree--acs-off { color: $foreground 60%; }
        & > .pci-tree--acs-unknown { color: $text-error; }
        & > .pci-tree--p2pmem { color: $text-success; text-style: bold; }
        & > .pci-tree--p2pmem-unpublished { color: $text-warning; }
        & > .pci-tree--group { color: $foreground 60%; }
        & > .pci-tree--link { color: $foreground 60%; }
        & > .pci-tree--link-degraded { color: $text-warning; }
        & > .pci-tree--whitelist-pass { color: $text-success; }
        & > .pci-tree--whitelist-fail { color: $text-error; }
        & > .pci-tree--peer { color: $text-accent; background: $accent-muted; text-style: bold; }
    }
    """

    class ExplainRequested(Message):
        """``enter`` on a node: explain the pair (highlighted function, peer)."""

        def __init__(self, key: NodeKey | None) -> None:
            super().__init__()
            self.key = key

    class Populated(Message):
        """Every node of the current plan has been added."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("PCI", id=id, classes=classes)
        self.show_root = False
        self.guide_depth = 3
        # enter explains; only space (and a click on the arrow) expands or collapses
        self.auto_expand = False
        self._rows: dict[NodeKey, tuple[Part, ...]] = {}
        self._node_of: dict[NodeKey, TreeNode[NodeKey]] = {}
        self._styles: dict[str, Style] = {}
        self._peer: BDF | None = None
        self._generation = 0
        self._pending: list[tuple[NodeKey, NodeKey | None]] = []
        self._plan: TreePlan | None = None
        self._on_done: Callable[[], None] | None = None
        #: True while nodes of a plan are still being added.
        self.populating = False

    # -- building -----------------------------------------------------------------

    def populate(self, plan: TreePlan, on_done: Callable[[], None] | None = None) -> None:
        """Replace every node by the plan's; big plans are added a chunk per refresh."""
        self._generation += 1
        self.clear()
        self._node_of.clear()
        self._rows = dict(plan.rows)
        self._plan = plan
        self._pending = list(reversed(plan.order))
        self._on_done = on_done
        self.populating = True
        if len(plan.order) <= ALL_AT_ONCE:
            self._add_chunk(self._generation, len(plan.order))
        else:
            self._add_chunk(self._generation, CHUNK)

    def _add_chunk(self, generation: int, size: int) -> None:
        if generation != self._generation or self._plan is None:
            return  # a newer populate() replaced this one
        plan = self._plan
        pending = self._pending
        for _ in range(min(size, len(pending))):
            key, parent = pending.pop()
            parent_node = self.root if parent is None else self._node_of[parent]
            node = parent_node.add(
                self._plain_label(key),
                key,
                expand=key in plan.expanded,
                allow_expand=key in plan.expandable,
            )
            self._node_of[key] = node
        if pending:
            self.call_after_refresh(self._add_chunk, generation, CHUNK)
            return
        self.populating = False
        if self._on_done is not None:
            self._on_done()
        self.post_message(self.Populated())

    def set_rows(self, rows: Mapping[NodeKey, tuple[Part, ...]]) -> None:
        """New labels for existing nodes (what-if edits change badges, not the tree)."""
        for key, parts in rows.items():
            if self._rows.get(key) == parts:
                continue
            self._rows[key] = parts
            node = self._node_of.get(key)
            if node is not None:
                node.set_label(self._plain_label(key))

    @property
    def peer(self) -> BDF | None:
        """The function marked as the peer."""
        return self._peer

    @peer.setter
    def peer(self, bdf: BDF | None) -> None:
        old, self._peer = self._peer, bdf
        for key in (old, bdf):
            node = None if key is None else self._node_of.get(key)
            if node is not None and key is not None:
                node.set_label(self._plain_label(key))

    def _parts(self, key: NodeKey) -> tuple[Part, ...]:
        parts = self._rows.get(key, ((str(key), "bdf"),))
        if key == self._peer:
            return (*parts[:2], PEER_PART, *parts[2:])
        return parts

    def _plain_label(self, key: NodeKey) -> Text:
        return Text(parts_text(self._parts(key)), no_wrap=True, end="")

    # -- lookup -------------------------------------------------------------------

    def node_for(self, key: NodeKey) -> TreeNode[NodeKey] | None:
        """The node of a host bridge or function (``None`` until it is added)."""
        return self._node_of.get(key)

    def row_text(self, key: NodeKey) -> str:
        """A node's row as plain text."""
        return parts_text(self._parts(key))

    def reveal(self, key: NodeKey) -> bool:
        """Expand the node's ancestors and put the cursor on it."""
        node = self._node_of.get(key)
        if node is None:
            return False
        parent = node.parent
        while parent is not None and parent is not self.root:
            if not parent.is_expanded:
                parent.expand()
            parent = parent.parent
        self._move_to(node)
        return True

    def on_resize(self, _event: events.Resize) -> None:
        """Keep the cursor in view when the tree's own height changes.

        The screen's resize handler covers a smaller terminal; this covers the
        layout inside it: the tree scrolls to the first selection while it still
        has the whole screen, then the detail panel takes its lower part.
        """
        if self.cursor_line >= 0:
            self.call_after_refresh(self.scroll_to_line, self.cursor_line, False)

    def _move_to(self, node: TreeNode[NodeKey]) -> None:
        """Cursor to ``node``; scroll once the tree's lines and size are known."""
        # last_line rebuilds the lines if an expand made them stale (node.line too)
        if self.last_line < 0 or node.line < 0 or self.size.height == 0:
            # the lines are rebuilt lazily (and an unmounted tree has no size):
            # scrolling now would put the row at the top instead of just in view
            self.call_after_refresh(self._move_to, node)
            return
        self.cursor_line = node.line
        self.scroll_to_node(node, animate=False)

    @property
    def cursor_key(self) -> NodeKey | None:
        """The host bridge or function under the cursor."""
        node = self.cursor_node
        return None if node is None else node.data

    # -- drawing ------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """The theme changed: forget the resolved part styles."""
        self._styles.clear()
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            component = f"pci-tree--{name}"
            style = self.get_component_rich_style(component, partial=True)
            styles = self.get_component_styles(component)
            if styles.has_rule("color"):
                # A partial style drops the colour's alpha (and an "auto" colour has
                # no background to contrast with): blend it over the tree's own.
                # Muted parts use "$foreground 60%", not $text-muted ("auto 60%"),
                # which resolves against no background, to white on light themes.
                color = styles.color
                background = self.background_colors[1]
                if color.auto:
                    color = background.get_contrast_text(color.a)
                style += Style(color=(background + color).rich_color)
            self._styles[name] = style
        return style

    def render_label(self, node: TreeNode[NodeKey], base_style: Style, style: Style) -> Text:
        """The row with each part in its own style; the toggle arrow for bridges."""
        key = node.data
        if key is None or not self.is_mounted:
            return super().render_label(node, base_style, style)
        text = Text(no_wrap=True, end="")
        if node.allow_expand:
            icon = self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE
            text.append(icon, base_style + Style(meta={"toggle": True}))
        for index, (piece, part_style) in enumerate(self._parts(key)):
            if index:
                text.append(" ")
            text.append(piece, self._style(part_style))
        # The cursor and hover styles go over the parts' colours, as Tree does.
        text.stylize(style, 2 if node.allow_expand else 0)
        return text

    def get_label_width(self, node: TreeNode[NodeKey]) -> int:
        """The row's width without drawing it (the tree asks for every row)."""
        width = node.label.cell_len if isinstance(node.label, Text) else len(str(node.label))
        return width + (2 if node.allow_expand else 0)

    # -- actions ------------------------------------------------------------------

    def action_explain_cursor(self) -> None:
        """Ask the screen to explain (highlighted function, peer)."""
        self.post_message(self.ExplainRequested(self.cursor_key))
