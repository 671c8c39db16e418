"""Plain-text tables for the terminal and for pipes.

Columns are as wide as their widest cell (East Asian wide characters count
twice), separated by two spaces; on a terminal, cells may carry an ANSI
colour.  Nothing is read as markup; every cell and the title pass through
``escape`` (``show.safe_text`` for wire text: no control characters reach
the terminal).  A general layout engine spends
about a millisecond per row; a summary of thousands of associations needs
thousands of rows, and this writes them in milliseconds::

    Associations
    #  client → server          calling → called  result
    ─  ───────────────────────  ────────────────  ────────
    0  10.0.0.1:40001 → ...     SCU → SCP         accepted
"""

from __future__ import annotations

import unicodedata

TYPE_CHECKING = False  # typing is not imported at run time (start-up of every command)
if TYPE_CHECKING:
    from typing import Callable, Iterable, TextIO, Union

__all__ = ["Table", "Styled", "cell_width", "paint"]

_SGR = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


class Styled(str):
    """A cell with a style ("red", "green", "yellow", "cyan", "bold")."""

    style: str = ""

    def __new__(cls, text: str, style: str = "") -> Styled:
        s = super().__new__(cls, text)
        s.style = style
        return s


if TYPE_CHECKING:
    Cell = Union[str, Styled]


def cell_width(s: str) -> int:
    """Columns a string takes on a terminal."""
    if s.isascii():
        return len(s)
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return w


def paint(text: str, style: str, color: bool) -> str:
    code = _SGR.get(style) if color and style else None
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


class Table:
    """Rows of cells under a title and a header; ``rule`` draws a line under
    the header."""

    def __init__(self, title: str | None = None, rule: bool = True,
                 escape: Callable[[str], str] = str) -> None:
        self.escape = escape
        self.title = None if title is None else escape(title)
        self.rule = rule
        self.headers: list[str] = []
        self.right: list[bool] = []
        self.rows: list[tuple[Cell, ...]] = []

    def add_column(self, header: str, justify: str = "left") -> None:
        self.headers.append(header)
        self.right.append(justify == "right")

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{len(cells)} cells for {len(self.headers)} columns")
        esc = self.escape
        self.rows.append(tuple(Styled(esc(c), c.style) if isinstance(c, Styled) else esc(c) for c in cells))

    def lines(self, color: bool = False) -> Iterable[str]:
        widths = [cell_width(h) for h in self.headers]
        for row in self.rows:
            for i, c in enumerate(row):
                w = cell_width(c)
                if w > widths[i]:
                    widths[i] = w
        last = len(widths) - 1

        def line(cells: Iterable[Cell], bold: bool = False) -> str:
            out = []
            for i, c in enumerate(cells):
                pad = " " * (widths[i] - cell_width(c))
                style = "bold" if bold else getattr(c, "style", "")
                text = paint(c, style, color)
                if self.right[i]:
                    out.append(pad + text)
                elif i < last:
                    out.append(text + pad)
                else:
                    out.append(text)  # no trailing blanks
            return "  ".join(out).rstrip(" ")

        if self.title:
            yield paint(self.title, "bold", color)
        yield line(self.headers, bold=True)
        if self.rule:
            yield "  ".join("─" * w for w in widths)
        for row in self.rows:
            yield line(row)

    def write(self, out: TextIO, color: bool = False) -> None:
        out.write("\n".join(self.lines(color)) + "\n")
