"""A row-keyed table on Textual's Line API: repaints only the lines whose rows changed.

DataTable repaints the whole visible table on every ``update_cell``; at 10 refreshes a second
over hundreds of quotes that is most of the console's CPU and terminal bandwidth. This table
renders one line at a time from the store, so a refresh of one row costs one line.
Subclasses say what a cell holds (:meth:`cell`); columns that do not fit are dropped by priority.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click, MouseScrollDown, MouseScrollUp
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

HEADER_STYLE = Style(bold=True, color="rgb(150,160,175)")
CURSOR_FOCUSED = Style(bgcolor="rgb(38,79,120)", bold=True)
CURSOR_BLURRED = Style(bgcolor="rgb(45,50,58)")
PLACEHOLDER_STYLE = Style(color="rgb(110,118,129)", italic=True)
PLAIN = Style()


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    align: str = "left"  # "left" | "right"
    priority: int = 0  # columns with higher numbers are dropped first when space runs out
    #: Where a too-long text is cut: "end" (``삼성전…``) or "middle" (``에코…비엠``), for
    #: names that share a long prefix (에코프로비엠, 에코프로에이치엔) and must stay distinct.
    cut: str = "end"
    #: Up to this many more cells when the table is wider than its columns need (spare width
    #: goes to such columns in order): a text that is often long gets room on a wide screen.
    grow: int = 0


Cell = tuple[str, Style]


class KeyedTable(Widget, can_focus=True):
    """Rows are keys (codes, order ids); the cursor follows its key when rows move."""

    DEFAULT_CSS = """
    KeyedTable { height: 1fr; width: 1fr; }
    """

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    columns: tuple[Column, ...] = ()
    placeholder = "nothing yet"

    class Highlighted(Message):
        def __init__(self, table: KeyedTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.keys: list[str] = []
        self.row_of: dict[str, int] = {}
        self.cursor = 0
        self.top = 0
        self._layout: list[tuple[Column, int]] = []  # visible columns and their x
        self._layout_width = -1
        self.lines_rendered = 0

    # --- to override ---------------------------------------------------------------------------

    def cell(self, key: str, column: Column) -> Cell:
        raise NotImplementedError

    def row_style(self, key: str) -> Style | None:
        return None

    # --- rows ----------------------------------------------------------------------------------

    @property
    def cursor_key(self) -> str | None:
        if 0 <= self.cursor < len(self.keys):
            return self.keys[self.cursor]
        return None

    @property
    def visible_rows(self) -> int:
        return max(0, self.size.height - 1)

    def set_keys(self, keys: list[str]) -> None:
        """Replace the rows; the cursor stays on its key if that row is still there."""
        if keys == self.keys:
            return
        current = self.cursor_key
        self.keys = list(keys)
        self.row_of = {k: i for i, k in enumerate(self.keys)}
        if current is not None and current in self.row_of:
            self.cursor = self.row_of[current]
        else:
            self.cursor = min(self.cursor, max(0, len(self.keys) - 1))
        self._scroll_to_cursor()
        self.refresh()
        if self.cursor_key != current:
            self.post_message(self.Highlighted(self, self.cursor_key))

    def refresh_keys(self, keys: set[str] | list[str]) -> int:
        """Repaint the visible lines of these rows; returns how many lines were asked for."""
        if not keys:
            return 0
        width = self.size.width
        first, last = self.top, self.top + self.visible_rows
        n = 0
        row_of = self.row_of
        if len(keys) > last - first:
            for i in range(first, min(last, len(self.keys))):
                if self.keys[i] in keys:
                    self.refresh(Region(0, i - self.top + 1, width, 1))
                    n += 1
            return n
        for key in keys:
            i = row_of.get(key)
            if i is not None and first <= i < last:
                self.refresh(Region(0, i - self.top + 1, width, 1))
                n += 1
        return n

    def refresh_column(self, key: str) -> None:
        """Repaint one column of the visible rows (ages and clocks)."""
        for col, x in self._columns_for(self.size.width):
            if col.key == key:
                rows = min(self.visible_rows, max(0, len(self.keys) - self.top))
                if rows:
                    self.refresh(Region(x, 1, col.width, rows))
                return

    def select_key(self, key: str) -> bool:
        i = self.row_of.get(key)
        if i is None:
            return False
        self._move_to(i)
        return True

    # --- cursor --------------------------------------------------------------------------------

    def _scroll_to_cursor(self) -> None:
        rows = max(1, self.visible_rows)
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + rows:
            self.top = self.cursor - rows + 1
        self.top = max(0, min(self.top, max(0, len(self.keys) - rows)))

    def _move_to(self, index: int) -> None:
        if not self.keys:
            return
        index = max(0, min(len(self.keys) - 1, index))
        if index == self.cursor:
            return
        self.cursor = index
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self, self.cursor_key))

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor + direction * max(1, self.visible_rows - 1))

    def action_jump(self, where: int) -> None:
        self._move_to(len(self.keys) - 1 if where < 0 else where)

    def on_click(self, event: Click) -> None:
        """Select the clicked row. ``event.y`` counts from the border's top edge, so the click
        is first made relative to the content (``None`` on the border); line 0 is the header."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = self.top + offset.y - 1
        if index < len(self.keys):
            self._move_to(index)

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        self._move_to(self.cursor + 3)
        event.stop()

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self._move_to(self.cursor - 3)
        event.stop()

    def on_resize(self) -> None:
        self._scroll_to_cursor()
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # --- rendering -----------------------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.keys) + 1

    def _columns_for(self, width: int) -> list[tuple[Column, int]]:
        if width == self._layout_width:
            return self._layout
        chosen = list(self.columns)
        while chosen and sum(c.width for c in chosen) + len(chosen) - 1 > width:
            worst = max(chosen, key=lambda c: c.priority)
            if worst.priority <= 0:
                break
            chosen.remove(worst)
        # one cell stays free: at 80 columns the panels have no borders, and the gap is what
        # separates a table from its neighbour
        spare = width - (sum(c.width for c in chosen) + len(chosen) - 1) - 1
        for i, col in enumerate(chosen):
            if spare > 0 and col.grow:
                extra = min(spare, col.grow)
                chosen[i] = replace(col, width=col.width + extra)
                spare -= extra
        layout: list[tuple[Column, int]] = []
        x = 0
        for col in chosen:
            layout.append((col, x))
            x += col.width + 1
        self._layout, self._layout_width = layout, width
        return layout

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        layout = self._columns_for(width)
        self.lines_rendered += 1
        if y == 0:
            segs = self._segments([(c.label, HEADER_STYLE) for c, _ in layout], layout)
            return Strip(segs).adjust_cell_length(width, HEADER_STYLE)
        index = self.top + y - 1
        if index >= len(self.keys):
            if index == 0 and not self.keys:
                return Strip(
                    [Segment(" " + self.placeholder, PLACEHOLDER_STYLE)]
                ).adjust_cell_length(width)
            return Strip.blank(width)
        key = self.keys[index]
        cells = [self.cell(key, c) for c, _ in layout]
        segs = self._segments(cells, layout)
        base = self.row_style(key)
        if index == self.cursor:
            cursor = CURSOR_FOCUSED if self.has_focus else CURSOR_BLURRED
            base = cursor if base is None else base + cursor
        strip = Strip(segs)
        if base is not None:
            strip = strip.apply_style(base)
        return strip.adjust_cell_length(width, base or PLAIN)

    @staticmethod
    def _segments(cells: list[Cell], layout: list[tuple[Column, int]]) -> list[Segment]:
        segs: list[Segment] = []
        space = Segment(" ")
        for (text, style), (col, _) in zip(cells, layout):
            if segs:
                segs.append(space)
            w = col.width
            n = cell_len(text)
            if n > w:
                text = cut_text(text, w, col.cut)
            elif n < w:
                pad = " " * (w - n)
                text = pad + text if col.align == "right" else text + pad
            segs.append(Segment(text, style))
        return segs


def cut_text(text: str, width: int, where: str = "end") -> str:
    """``text`` in at most ``width`` cells, with ``…`` where it was cut (padded to ``width``)."""
    if width <= 1:
        return set_cell_size(text, width)
    if where != "middle" or width < 5:
        return set_cell_size(text, width - 1) + "…"
    tail_w = (width - 1) // 2
    head_w = width - 1 - tail_w
    head, tail = "", ""
    for ch in text:
        if cell_len(head + ch) > head_w:
            break
        head += ch
    for ch in reversed(text):
        if cell_len(ch + tail) > tail_w:
            break
        tail = ch + tail
    return set_cell_size(head + "…" + tail, width)
