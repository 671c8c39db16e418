"""The plain-text tables of the summary: widths, alignment, colour, escaping."""

import io

from fastdicom.show import safe_text
from fastdicom.texttable import Styled, Table, cell_width


def test_columns_sized_to_the_widest_cell():
    t = Table("Title")
    t.add_column("name")
    t.add_column("n", justify="right")
    t.add_row("a", "1")
    t.add_row("longer", "1234")
    assert list(t.lines()) == [
        "Title",
        "name       n",
        "──────  ────",
        "a          1",
        "longer  1234",
    ]


def test_wide_and_combining_characters():
    assert cell_width("abc") == 3
    assert cell_width("医院") == 4  # East Asian wide: two columns each
    assert cell_width("e\u0301") == 1  # a combining accent takes no column
    t = Table(rule=False)
    t.add_column("ae")
    t.add_column("x")
    t.add_row("医院", "1")
    t.add_row("ab", "2")
    assert list(t.lines()) == ["ae    x", "医院  1", "ab    2"]


def test_colour_only_when_asked_and_escaped_cells():
    t = Table("T\x1b[2J", escape=safe_text)
    t.add_column("result")
    t.add_row(Styled("accepted\x1b]0;x\x07", "green"))
    plain = "\n".join(t.lines(color=False))
    assert "\x1b" not in plain and "\\x1b[2J" in plain and "\\x1b]0;x\\x07" in plain
    coloured = "\n".join(t.lines(color=True))
    assert "\x1b[32maccepted\\x1b]0;x\\x07\x1b[0m" in coloured
    assert coloured.count("\x1b[") == 6  # bold title, bold header, the green cell: on and off


def test_write_and_row_length_checked():
    t = Table()
    t.add_column("a")
    buf = io.StringIO()
    t.add_row("x")
    t.write(buf)
    assert buf.getvalue() == "a\n─\nx\n"
    try:
        t.add_row("x", "y")
    except ValueError as e:
        assert "2 cells for 1 columns" in str(e)
    else:
        raise AssertionError("a row of the wrong length was accepted")
