"""The data set tag-header walker, both twins (``walker`` fixture), and their
agreement with each other and with pydicom.

Golden inputs are written in pydicom's spaced-hex style; a line's comment
``# (gggg,eeee) VR len`` describes the element the line holds.
"""

import importlib
import random
import re
import struct
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdicom import _pytagwalk as K
from fastdicom._pytagwalk import (
    W_ELEMENT, W_FRAGMENT, W_ITEM, W_ITEM_END, W_PIXEL_FRAGMENTS, W_SEQUENCE,
    W_SEQUENCE_END, WALK_DEPTH_LIMIT, WALK_ELEMENT_LIMIT, WALK_MALFORMED, WALK_OK,
    WALK_STOPPED, WALK_TRUNCATED,
)

UNDEF = 0xFFFFFFFF
ITEM, ITEM_DELIM, SEQ_DELIM = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
ALL_VRS = sorted(LONG_VRS | {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN",
    "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"})
IMPLICIT, EXPLICIT_LE, EXPLICIT_BE = 0, 1, 2


def V(vr):
    """A VR packed as the walker reports it: ``b0 << 8 | b1``."""
    return (ord(vr[0]) << 8) | ord(vr[1])


_ANNOT = re.compile(r"\((\w{4}),(\w{4})\)\s+(\w\w)\s+(\d+)")


def golden(text):
    """Spaced hex with ``#`` comments -> (bytes, [(offset, line_bytes, tag, VR, len)])
    for every line annotated ``# (gggg,eeee) VR len``."""
    out = bytearray()
    notes = []
    for line in text.strip().splitlines():
        data, _, comment = line.partition("#")
        raw = bytes.fromhex(data)
        m = _ANNOT.search(comment)
        if m:
            tag = int(m.group(1), 16) << 16 | int(m.group(2), 16)
            notes.append((len(out), len(raw), tag, m.group(3), int(m.group(4))))
        out += raw
    return bytes(out), notes


def _cores():
    py = K.walk_dataset
    c = importlib.import_module("fastdicom._core").walk_dataset
    return py, c


# --------------------------------------------------------------------------
# every VR of the standard, in each syntax

EXPLICIT_LE_EVERY_VR = """
08 00 05 00 43 53 0a 00 49 53 4f 5f 49 52 20 31 30 30  # (0008,0005) CS 10
08 00 20 00 44 41 08 00 32 30 32 36 31 31 32 37  # (0008,0020) DA 8
08 00 2a 00 44 54 0e 00 32 30 32 36 31 31 32 37 31 32 30 30 30 30  # (0008,002A) DT 14
08 00 30 00 54 4d 06 00 31 32 30 30 30 30  # (0008,0030) TM 6
08 00 50 00 53 48 04 00 41 43 43 31  # (0008,0050) SH 4
08 00 54 00 41 45 08 00 53 54 4f 52 45 53 43 50  # (0008,0054) AE 8
08 00 81 00 53 54 08 00 4d 61 69 6e 20 53 74 20  # (0008,0081) ST 8
08 00 90 00 50 4e 08 00 44 6f 65 5e 4a 61 6e 65  # (0008,0090) PN 8
08 00 19 01 55 43 00 00 0a 00 00 00 4c 4f 4e 47 20 43 4f 44 45 20  # (0008,0119) UC 10
08 00 20 01 55 52 00 00 0a 00 00 00 68 74 74 70 3a 2f 2f 78 2f 20  # (0008,0120) UR 10
08 00 0e 03 55 54 00 00 04 00 00 00 74 65 78 74  # (0008,030E) UT 4
08 00 0c 04 55 56 00 00 08 00 00 00 05 00 00 00 00 00 00 00  # (0008,040C) UV 8
08 00 30 10 4c 4f 04 00 48 45 41 44  # (0008,1030) LO 4
08 00 40 11 53 51 00 00 00 00 00 00  # (0008,1140) SQ 0
08 00 61 11 55 4c 08 00 01 00 00 00 02 00 00 00  # (0008,1161) UL 8
08 00 59 94 46 4c 04 00 00 00 c0 3f  # (0008,9459) FL 4
10 00 10 10 41 53 04 00 30 34 32 59  # (0010,1010) AS 4
10 00 00 40 4c 54 08 00 63 6f 6d 6d 65 6e 74 73  # (0010,4000) LT 8
18 00 50 00 44 53 04 00 32 2e 35 20  # (0018,0050) DS 4
18 00 38 16 4f 46 00 00 08 00 00 00 00 00 80 3f 00 00 00 40  # (0018,1638) OF 8
18 00 20 60 53 4c 04 00 fd ff ff ff  # (0018,6020) SL 4
18 00 87 90 46 44 08 00 00 00 00 00 00 40 8f 40  # (0018,9087) FD 8
18 00 19 92 53 53 02 00 fe ff  # (0018,9219) SS 2
20 00 0d 00 55 49 06 00 31 2e 32 2e 33 00  # (0020,000D) UI 6
20 00 13 00 49 53 02 00 37 20  # (0020,0013) IS 2
28 00 09 00 41 54 04 00 18 00 63 10  # (0028,0009) AT 4
28 00 10 00 55 53 02 00 00 02  # (0028,0010) US 2
28 00 01 12 4f 57 00 00 04 00 00 00 01 00 02 00  # (0028,1201) OW 4
42 00 11 00 4f 42 00 00 04 00 00 00 25 50 44 46  # (0042,0011) OB 4
66 00 40 00 4f 4c 00 00 04 00 00 00 07 00 00 00  # (0066,0040) OL 4
70 00 0d 15 4f 44 00 00 08 00 00 00 00 00 00 00 00 00 e0 3f  # (0070,150D) OD 8
72 00 6d 00 55 4e 00 00 02 00 00 00 01 02  # (0072,006D) UN 2
72 00 81 00 4f 56 00 00 08 00 00 00 09 00 00 00 00 00 00 00  # (0072,0081) OV 8
72 00 82 00 53 56 00 00 08 00 00 00 f7 ff ff ff ff ff ff ff  # (0072,0082) SV 8
"""

EXPLICIT_BE_EVERY_VR = """
00 08 00 05 43 53 00 0a 49 53 4f 5f 49 52 20 31 30 30  # (0008,0005) CS 10
00 08 00 20 44 41 00 08 32 30 32 36 31 31 32 37  # (0008,0020) DA 8
00 08 00 2a 44 54 00 0e 32 30 32 36 31 31 32 37 31 32 30 30 30 30  # (0008,002A) DT 14
00 08 00 30 54 4d 00 06 31 32 30 30 30 30  # (0008,0030) TM 6
00 08 00 50 53 48 00 04 41 43 43 31  # (0008,0050) SH 4
00 08 00 54 41 45 00 08 53 54 4f 52 45 53 43 50  # (0008,0054) AE 8
00 08 00 81 53 54 00 08 4d 61 69 6e 20 53 74 20  # (0008,0081) ST 8
00 08 00 90 50 4e 00 08 44 6f 65 5e 4a 61 6e 65  # (0008,0090) PN 8
00 08 01 19 55 43 00 00 00 00 00 0a 4c 4f 4e 47 20 43 4f 44 45 20  # (0008,0119) UC 10
00 08 01 20 55 52 00 00 00 00 00 0a 68 74 74 70 3a 2f 2f 78 2f 20  # (0008,0120) UR 10
00 08 03 0e 55 54 00 00 00 00 00 04 74 65 78 74  # (0008,030E) UT 4
00 08 04 0c 55 56 00 00 00 00 00 08 00 00 00 00 00 00 00 05  # (0008,040C) UV 8
00 08 10 30 4c 4f 00 04 48 45 41 44  # (0008,1030) LO 4
00 08 11 40 53 51 00 00 00 00 00 00  # (0008,1140) SQ 0
00 08 11 61 55 4c 00 08 00 00 00 01 00 00 00 02  # (0008,1161) UL 8
00 08 94 59 46 4c 00 04 3f c0 00 00  # (0008,9459) FL 4
00 10 10 10 41 53 00 04 30 34 32 59  # (0010,1010) AS 4
00 10 40 00 4c 54 00 08 63 6f 6d 6d 65 6e 74 73  # (0010,4000) LT 8
00 18 00 50 44 53 00 04 32 2e 35 20  # (0018,0050) DS 4
00 18 16 38 4f 46 00 00 00 00 00 08 3f 80 00 00 40 00 00 00  # (0018,1638) OF 8
00 18 60 20 53 4c 00 04 ff ff ff fd  # (0018,6020) SL 4
00 18 90 87 46 44 00 08 40 8f 40 00 00 00 00 00  # (0018,9087) FD 8
00 18 92 19 53 53 00 02 ff fe  # (0018,9219) SS 2
00 20 00 0d 55 49 00 06 31 2e 32 2e 33 00  # (0020,000D) UI 6
00 20 00 13 49 53 00 02 37 20  # (0020,0013) IS 2
00 28 00 09 41 54 00 04 00 18 10 63  # (0028,0009) AT 4
00 28 00 10 55 53 00 02 02 00  # (0028,0010) US 2
00 28 12 01 4f 57 00 00 00 00 00 04 00 01 00 02  # (0028,1201) OW 4
00 42 00 11 4f 42 00 00 00 00 00 04 25 50 44 46  # (0042,0011) OB 4
00 66 00 40 4f 4c 00 00 00 00 00 04 00 00 00 07  # (0066,0040) OL 4
00 70 15 0d 4f 44 00 00 00 00 00 08 3f e0 00 00 00 00 00 00  # (0070,150D) OD 8
00 72 00 6d 55 4e 00 00 00 00 00 02 01 02  # (0072,006D) UN 2
00 72 00 81 4f 56 00 00 00 00 00 08 00 00 00 00 00 00 00 09  # (0072,0081) OV 8
00 72 00 82 53 56 00 00 00 00 00 08 ff ff ff ff ff ff ff f7  # (0072,0082) SV 8
"""

# implicit: the comment gives the dictionary VR; the bytes carry none
IMPLICIT_LE_EVERY_VR = """
08 00 05 00 0a 00 00 00 49 53 4f 5f 49 52 20 31 30 30  # (0008,0005) CS 10
08 00 20 00 08 00 00 00 32 30 32 36 31 31 32 37  # (0008,0020) DA 8
08 00 2a 00 0e 00 00 00 32 30 32 36 31 31 32 37 31 32 30 30 30 30  # (0008,002A) DT 14
08 00 30 00 06 00 00 00 31 32 30 30 30 30  # (0008,0030) TM 6
08 00 50 00 04 00 00 00 41 43 43 31  # (0008,0050) SH 4
08 00 54 00 08 00 00 00 53 54 4f 52 45 53 43 50  # (0008,0054) AE 8
08 00 81 00 08 00 00 00 4d 61 69 6e 20 53 74 20  # (0008,0081) ST 8
08 00 90 00 08 00 00 00 44 6f 65 5e 4a 61 6e 65  # (0008,0090) PN 8
08 00 19 01 0a 00 00 00 4c 4f 4e 47 20 43 4f 44 45 20  # (0008,0119) UC 10
08 00 20 01 0a 00 00 00 68 74 74 70 3a 2f 2f 78 2f 20  # (0008,0120) UR 10
08 00 0e 03 04 00 00 00 74 65 78 74  # (0008,030E) UT 4
08 00 0c 04 08 00 00 00 05 00 00 00 00 00 00 00  # (0008,040C) UV 8
08 00 30 10 04 00 00 00 48 45 41 44  # (0008,1030) LO 4
08 00 40 11 00 00 00 00  # (0008,1140) SQ 0
08 00 61 11 08 00 00 00 01 00 00 00 02 00 00 00  # (0008,1161) UL 8
08 00 59 94 04 00 00 00 00 00 c0 3f  # (0008,9459) FL 4
10 00 10 10 04 00 00 00 30 34 32 59  # (0010,1010) AS 4
10 00 00 40 08 00 00 00 63 6f 6d 6d 65 6e 74 73  # (0010,4000) LT 8
18 00 50 00 04 00 00 00 32 2e 35 20  # (0018,0050) DS 4
18 00 38 16 08 00 00 00 00 00 80 3f 00 00 00 40  # (0018,1638) OF 8
18 00 20 60 04 00 00 00 fd ff ff ff  # (0018,6020) SL 4
18 00 87 90 08 00 00 00 00 00 00 00 00 40 8f 40  # (0018,9087) FD 8
18 00 19 92 02 00 00 00 fe ff  # (0018,9219) SS 2
20 00 0d 00 06 00 00 00 31 2e 32 2e 33 00  # (0020,000D) UI 6
20 00 13 00 02 00 00 00 37 20  # (0020,0013) IS 2
28 00 09 00 04 00 00 00 18 00 63 10  # (0028,0009) AT 4
28 00 10 00 02 00 00 00 00 02  # (0028,0010) US 2
28 00 01 12 04 00 00 00 01 00 02 00  # (0028,1201) OW 4
42 00 11 00 04 00 00 00 25 50 44 46  # (0042,0011) OB 4
66 00 40 00 04 00 00 00 07 00 00 00  # (0066,0040) OL 4
70 00 0d 15 08 00 00 00 00 00 00 00 00 00 e0 3f  # (0070,150D) OD 8
72 00 6d 00 02 00 00 00 01 02  # (0072,006D) UN 2
72 00 81 00 08 00 00 00 09 00 00 00 00 00 00 00  # (0072,0081) OV 8
72 00 82 00 08 00 00 00 f7 ff ff ff ff ff ff ff  # (0072,0082) SV 8
"""


def _expected_every_vr(notes, implicit, sq_known):
    """The tuples the annotations call for: the line's value is its last ``len``
    bytes; an empty SQ opens and closes at once."""
    exp = []
    for off, size, tag, vr, vl in notes:
        vo = off + size - vl
        code = 0 if implicit else V(vr)
        if vr == "SQ" and sq_known:
            exp.append((0, W_SEQUENCE, tag, code, vl, off, vo, vl))
            exp.append((0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, vo, vo, 0))
        else:
            exp.append((0, W_ELEMENT, tag, code, vl, off, vo, vl))
    return exp


@pytest.mark.parametrize("text,syntax", [
    (EXPLICIT_LE_EVERY_VR, EXPLICIT_LE), (EXPLICIT_BE_EVERY_VR, EXPLICIT_BE)])
def test_every_vr_explicit(walker, text, syntax):
    buf, notes = golden(text)
    assert {vr for *_, vr, _ in notes} == set(ALL_VRS)  # the block covers them all
    els, status, off = walker(buf, syntax)
    assert (status, off) == (WALK_OK, len(buf))
    assert els == _expected_every_vr(notes, False, True)


def test_every_vr_implicit(walker):
    buf, notes = golden(IMPLICIT_LE_EVERY_VR)
    els, status, off = walker(buf, IMPLICIT, sq_tags=frozenset({0x00081140}))
    assert (status, off) == (WALK_OK, len(buf))
    assert els == _expected_every_vr(notes, True, True)
    # without the dictionary the empty SQ is just an empty value
    els, status, _ = walker(buf, IMPLICIT)
    assert status == WALK_OK
    assert els == _expected_every_vr(notes, True, False)


def test_golden_bytes_read_by_pydicom():
    """The golden blocks are what pydicom itself reads."""
    from pydicom.filereader import read_dataset
    for text, implicit, little in ((EXPLICIT_LE_EVERY_VR, False, True),
                                   (EXPLICIT_BE_EVERY_VR, False, False),
                                   (IMPLICIT_LE_EVERY_VR, True, True)):
        buf, notes = golden(text)
        ds = read_dataset(BytesIO(buf), implicit, little)
        got = [(int(t), ds.get_item(t).length if ds.get_item(t).VR != "SQ"
                else len(ds.get_item(t).value)) for t in ds.keys()]
        assert got == [(tag, vl) for _, _, tag, _, vl in notes]
        for _, _, tag, vr, _ in notes:
            assert ds[tag].VR == vr


@pytest.mark.parametrize("vr", ALL_VRS)
@pytest.mark.parametrize("syntax", [EXPLICIT_LE, EXPLICIT_BE])
def test_zero_length_every_vr(walker, vr, syntax):
    big = syntax == EXPLICIT_BE
    e = ">" if big else "<"
    tag = struct.pack(e + "HH", 0x0009, 0x1001)
    if vr in LONG_VRS:
        hdr = tag + vr.encode() + b"\0\0" + struct.pack(e + "I", 0)
    else:
        hdr = tag + vr.encode() + struct.pack(e + "H", 0)
    els, status, off = walker(hdr, syntax)
    assert (status, off) == (WALK_OK, len(hdr))
    if vr == "SQ":
        assert els == [(0, W_SEQUENCE, 0x00091001, V(vr), 0, 0, len(hdr), 0),
                       (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, len(hdr), len(hdr), 0)]
    else:
        assert els == [(0, W_ELEMENT, 0x00091001, V(vr), 0, 0, len(hdr), 0)]


def test_empty_buffer(walker):
    assert walker(b"", 1) == ([], WALK_OK, 0)
    assert walker(bytearray(), 0) == ([], WALK_OK, 0)
    assert walker(memoryview(b""), 2) == ([], WALK_OK, 0)


def test_constants_identical():
    c = importlib.import_module("fastdicom._core")
    for name in ("W_ELEMENT", "W_SEQUENCE", "W_ITEM", "W_ITEM_END", "W_SEQUENCE_END",
                 "W_PIXEL_FRAGMENTS", "W_FRAGMENT", "WALK_OK", "WALK_TRUNCATED",
                 "WALK_MALFORMED", "WALK_DEPTH_LIMIT", "WALK_ELEMENT_LIMIT",
                 "WALK_STOPPED"):
        assert getattr(c, name) == getattr(K, name), name
    assert len({K.W_ELEMENT, K.W_SEQUENCE, K.W_ITEM, K.W_ITEM_END, K.W_SEQUENCE_END,
                K.W_PIXEL_FRAGMENTS, K.W_FRAGMENT}) == 7


# --------------------------------------------------------------------------
# sequences and items

SQ_UNDEFINED = """
08 00 15 11 53 51 00 00 ff ff ff ff  # (0008,1115) SQ undefined          @0
fe ff 00 e0 ff ff ff ff              # (FFFE,E000) item, undefined      @12
08 00 50 11 55 49 04 00 31 2e 32 00  # (0008,1150) UI 4                 @20
fe ff 0d e0 00 00 00 00              # (FFFE,E00D) item delimitation    @32
fe ff 00 e0 0c 00 00 00              # (FFFE,E000) item, 12             @40
08 00 55 11 55 49 04 00 31 2e 33 00  # (0008,1155) UI 4                 @48
fe ff dd e0 00 00 00 00              # (FFFE,E0DD) sequence delimitation @60
10 00 10 00 50 4e 04 00 41 5e 42 20  # (0010,0010) PN 4                 @68
"""


def test_sequence_undefined_length(walker):
    buf, _ = golden(SQ_UNDEFINED)
    els, status, off = walker(buf, EXPLICIT_LE)
    assert (status, off) == (WALK_OK, 80)
    assert els == [
        (0, W_SEQUENCE, 0x00081115, V("SQ"), UNDEF, 0, 12, 48),
        (1, W_ITEM, ITEM, 0, UNDEF, 12, 20, 12),
        (1, W_ELEMENT, 0x00081150, V("UI"), 4, 20, 28, 4),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 32, 40, 0),
        (1, W_ITEM, ITEM, 0, 12, 40, 48, 12),
        (1, W_ELEMENT, 0x00081155, V("UI"), 4, 48, 56, 4),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 60, 60, 0),  # the defined item's end
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 60, 68, 0),
        (0, W_ELEMENT, 0x00100010, V("PN"), 4, 68, 76, 4),
    ]


SQ_NESTED_DEFINED = """
40 00 75 02 53 51 00 00 2e 00 00 00  # (0040,0275) SQ 46                @0
fe ff 00 e0 26 00 00 00              # (FFFE,E000) item, 38             @12
40 00 07 00 4c 4f 02 00 41 42        # (0040,0007) LO 2                 @20
40 00 08 00 53 51 00 00 10 00 00 00  # (0040,0008) SQ 16                @30
fe ff 00 e0 08 00 00 00              # (FFFE,E000) item, 8              @42
08 00 00 01 53 48 00 00              # (0008,0100) SH 0                 @50
40 00 80 02 53 54 00 00              # (0040,0280) ST 0                 @58
"""


def test_nested_defined_lengths(walker):
    buf, _ = golden(SQ_NESTED_DEFINED)
    els, status, off = walker(buf, EXPLICIT_LE)
    assert (status, off) == (WALK_OK, 66)
    assert els == [
        (0, W_SEQUENCE, 0x00400275, V("SQ"), 46, 0, 12, 46),
        (1, W_ITEM, ITEM, 0, 38, 12, 20, 38),
        (1, W_ELEMENT, 0x00400007, V("LO"), 2, 20, 28, 2),
        (1, W_SEQUENCE, 0x00400008, V("SQ"), 16, 30, 42, 16),
        (2, W_ITEM, ITEM, 0, 8, 42, 50, 8),
        (2, W_ELEMENT, 0x00080100, V("SH"), 0, 50, 58, 0),
        (2, W_ITEM_END, ITEM_DELIM, 0, 0, 58, 58, 0),  # four containers end at 58
        (1, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 58, 58, 0),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 58, 58, 0),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 58, 58, 0),
        (0, W_ELEMENT, 0x00400280, V("ST"), 0, 58, 66, 0),
    ]


SQ_EMPTY_ITEMS_BE = """
00 08 11 15 53 51 00 00 ff ff ff ff  # (0008,1115) SQ undefined          @0
ff fe e0 00 00 00 00 00              # (FFFE,E000) item, 0              @12
ff fe e0 00 ff ff ff ff              # (FFFE,E000) item, undefined      @20
ff fe e0 0d 00 00 00 00              # (FFFE,E00D) item delimitation    @28
ff fe e0 dd 00 00 00 00              # (FFFE,E0DD) sequence delimitation @36
00 08 11 40 53 51 00 00 ff ff ff ff  # (0008,1140) SQ undefined          @44
ff fe e0 dd 00 00 00 00              # (FFFE,E0DD) no items             @56
"""


def test_empty_items_and_sequence_big_endian(walker):
    buf, _ = golden(SQ_EMPTY_ITEMS_BE)
    els, status, off = walker(buf, EXPLICIT_BE)
    assert (status, off) == (WALK_OK, 64)
    assert els == [
        (0, W_SEQUENCE, 0x00081115, V("SQ"), UNDEF, 0, 12, 24),
        (1, W_ITEM, ITEM, 0, 0, 12, 20, 0),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 20, 20, 0),
        (1, W_ITEM, ITEM, 0, UNDEF, 20, 28, 0),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 28, 36, 0),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 36, 44, 0),
        (0, W_SEQUENCE, 0x00081140, V("SQ"), UNDEF, 44, 56, 0),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 56, 64, 0),
    ]


IMPLICIT_SQ = """
08 00 15 11 14 00 00 00              # (0008,1115) SQ 20                @0
fe ff 00 e0 0c 00 00 00              # (FFFE,E000) item, 12             @8
08 00 50 11 04 00 00 00 31 2e 32 00  # (0008,1150) UI 4                 @16
10 00 10 00 04 00 00 00 41 5e 42 20  # (0010,0010) PN 4                 @28
"""


def test_implicit_defined_sequence_needs_dictionary(walker):
    buf, _ = golden(IMPLICIT_SQ)
    els, status, _ = walker(buf, IMPLICIT, sq_tags=frozenset({0x00081115}))
    assert status == WALK_OK
    assert els == [
        (0, W_SEQUENCE, 0x00081115, 0, 20, 0, 8, 20),
        (1, W_ITEM, ITEM, 0, 12, 8, 16, 12),
        (1, W_ELEMENT, 0x00081150, 0, 4, 16, 24, 4),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 28, 28, 0),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 28, 28, 0),
        (0, W_ELEMENT, 0x00100010, 0, 4, 28, 36, 4),
    ]
    els, status, _ = walker(buf, IMPLICIT)  # unknown to the walker: a plain value
    assert status == WALK_OK
    assert els == [(0, W_ELEMENT, 0x00081115, 0, 20, 0, 8, 20),
                   (0, W_ELEMENT, 0x00100010, 0, 4, 28, 36, 4)]


IMPLICIT_PRIVATE_SQ = """
29 00 10 00 04 00 00 00 41 43 4d 45  # (0029,0010) LO 4  private creator @0
29 00 10 10 14 00 00 00              # (0029,1010) UN 20 (items inside)  @12
fe ff 00 e0 0c 00 00 00              # (FFFE,E000) item, 12             @20
29 00 11 10 04 00 00 00 41 42 43 44  # (0029,1011) UN 4                 @28
29 00 12 10 ff ff ff ff              # (0029,1012) UN undefined          @40
fe ff dd e0 00 00 00 00              # (FFFE,E0DD) sequence delimitation @48
"""


def test_implicit_private_sequences(walker):
    buf, _ = golden(IMPLICIT_PRIVATE_SQ)
    els, status, off = walker(buf, IMPLICIT)
    assert (status, off) == (WALK_OK, 56)
    assert els == [
        (0, W_ELEMENT, 0x00290010, 0, 4, 0, 8, 4),
        (0, W_SEQUENCE, 0x00291010, 0, 20, 12, 20, 20),
        (1, W_ITEM, ITEM, 0, 12, 20, 28, 12),
        (1, W_ELEMENT, 0x00291011, 0, 4, 28, 36, 4),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 40, 40, 0),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 40, 40, 0),
        (0, W_SEQUENCE, 0x00291012, 0, UNDEF, 40, 48, 0),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 48, 56, 0),
    ]


def test_implicit_private_value_not_items(walker):
    # a private value that merely starts like an item whose length does not fit
    buf = bytes.fromhex("29 00 10 10 0c 00 00 00  fe ff 00 e0 08 00 00 00 00 00 00 00")
    els, status, _ = walker(buf, IMPLICIT)
    assert status == WALK_OK
    assert els == [(0, W_ELEMENT, 0x00291010, 0, 12, 0, 8, 12)]
    # and a standard (even group) element is never guessed at
    buf = bytes.fromhex("28 00 01 12 0c 00 00 00  fe ff 00 e0 04 00 00 00 00 00 00 00")
    assert walker(buf, IMPLICIT)[0] == [(0, W_ELEMENT, 0x00281201, 0, 12, 0, 8, 12)]


# --------------------------------------------------------------------------
# encapsulated pixel data, UN of undefined length

ENCAPSULATED = """
e0 7f 10 00 4f 42 00 00 ff ff ff ff  # (7FE0,0010) OB undefined          @0
fe ff 00 e0 04 00 00 00 00 00 00 00  # (FFFE,E000) 4: offset table [0] @12
fe ff 00 e0 06 00 00 00              # (FFFE,E000) fragment, 6          @24
fe ff 00 e0 ff d9                    # (looks like an item: not parsed) @32
fe ff 00 e0 02 00 00 00 ff d9        # (FFFE,E000) fragment, 2          @38
fe ff dd e0 00 00 00 00              # (FFFE,E0DD) sequence delimitation @48
fc ff fc ff 4f 42 00 00 00 00 00 00  # (FFFC,FFFC) OB 0 trailing padding @56
"""


def test_encapsulated_pixel_data(walker):
    buf, _ = golden(ENCAPSULATED)
    els, status, off = walker(buf, EXPLICIT_LE)
    assert (status, off) == (WALK_OK, 68)
    assert els == [
        (0, W_PIXEL_FRAGMENTS, 0x7FE00010, V("OB"), UNDEF, 0, 12, 36),
        (1, W_FRAGMENT, ITEM, 0, 4, 12, 20, 4),
        (1, W_FRAGMENT, ITEM, 0, 6, 24, 32, 6),
        (1, W_FRAGMENT, ITEM, 0, 2, 38, 46, 2),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 48, 56, 0),
        (0, W_ELEMENT, 0xFFFCFFFC, V("OB"), 0, 56, 68, 0),
    ]


def test_encapsulated_ow_and_implicit_pixel_data(walker):
    ow = bytes.fromhex("e0 7f 10 00 4f 57 00 00 ff ff ff ff"
                       "fe ff 00 e0 00 00 00 00  fe ff dd e0 00 00 00 00")
    assert walker(ow, EXPLICIT_LE)[0][:2] == [
        (0, W_PIXEL_FRAGMENTS, 0x7FE00010, V("OW"), UNDEF, 0, 12, 8),
        (1, W_FRAGMENT, ITEM, 0, 0, 12, 20, 0)]
    # not allowed in implicit VR, but seen: fragments, not items to parse
    imp = bytes.fromhex("e0 7f 10 00 ff ff ff ff  fe ff 00 e0 04 00 00 00 08 00 05 00"
                        "fe ff dd e0 00 00 00 00")
    els, status, _ = walker(imp, IMPLICIT)
    assert status == WALK_OK
    assert [e[1] for e in els] == [W_PIXEL_FRAGMENTS, W_FRAGMENT, W_SEQUENCE_END]


UN_UNDEFINED_BE = """
00 09 10 10 55 4e 00 00 ff ff ff ff  # (0009,1010) UN undefined: implicit LE inside @0
fe ff 00 e0 ff ff ff ff              # (FFFE,E000) item, undefined (LE)  @12
09 00 11 10 04 00 00 00 41 42 43 44  # (0009,1011) 4, implicit LE        @20
fe ff 0d e0 00 00 00 00              # (FFFE,E00D) item delimitation     @32
fe ff dd e0 00 00 00 00              # (FFFE,E0DD) sequence delimitation @40
00 10 00 10 50 4e 00 04 41 5e 42 20  # (0010,0010) PN 4, big endian again @48
"""


def test_un_undefined_length_is_implicit_sequence(walker):
    buf, _ = golden(UN_UNDEFINED_BE)
    expected = [
        (0, W_SEQUENCE, 0x00091010, V("UN"), UNDEF, 0, 12, 28),
        (1, W_ITEM, ITEM, 0, UNDEF, 12, 20, 12),
        (1, W_ELEMENT, 0x00091011, 0, 4, 20, 28, 4),
        (1, W_ITEM_END, ITEM_DELIM, 0, 0, 32, 40, 0),
        (0, W_SEQUENCE_END, SEQ_DELIM, 0, 0, 40, 48, 0),
        (0, W_ELEMENT, 0x00100010, V("PN"), 4, 48, 56, 4),
    ]
    assert walker(buf, EXPLICIT_BE) == (expected, WALK_OK, 60)
    # the same in explicit LE: only the last element's header differs
    le = buf[:48] + bytes.fromhex("10 00 10 00 50 4e 04 00 41 5e 42 20")
    le = bytes.fromhex("09 00 10 10") + le[4:]
    assert walker(le, EXPLICIT_LE) == (expected, WALK_OK, 60)


def test_un_defined_length_is_a_value(walker):
    buf = bytes.fromhex("09 00 10 10 55 4e 00 00 08 00 00 00 fe ff 00 e0 00 00 00 00")
    assert walker(buf, EXPLICIT_LE) == (
        [(0, W_ELEMENT, 0x00091010, V("UN"), 8, 0, 12, 8)], WALK_OK, 20)


# --------------------------------------------------------------------------
# truncated input: the walk stops, the cut element is reported with what is there

def test_truncated_headers(walker):
    full = bytes.fromhex("10 00 10 00 50 4e 04 00 41 5e 42 20"       # (0010,0010) PN 4
                         "e0 7f 10 00 4f 57 00 00 04 00 00 00 01 02 03 04")  # OW 4
    for cut in range(13, 24):  # inside the OW header
        els, status, off = walker(full[:cut], EXPLICIT_LE)
        assert (status, off) == (WALK_TRUNCATED, 12), cut
        assert els == [(0, W_ELEMENT, 0x00100010, V("PN"), 4, 0, 8, 4)]
    assert walker(full[:3], EXPLICIT_LE) == ([], WALK_TRUNCATED, 0)
    assert walker(full[:5], IMPLICIT) == ([], WALK_TRUNCATED, 0)
    assert walker(full[:7], EXPLICIT_BE) == ([], WALK_TRUNCATED, 0)


def test_truncated_value(walker):
    buf = bytes.fromhex("10 00 10 00 50 4e 08 00 44 6f 65")  # (0010,0010) PN 8, 3 present
    assert walker(buf, EXPLICIT_LE) == (
        [(0, W_ELEMENT, 0x00100010, V("PN"), 8, 0, 8, 3)], WALK_TRUNCATED, 0)


def test_truncated_inside_sequences(walker):
    buf, _ = golden(SQ_UNDEFINED)
    els, status, off = walker(buf[:30], EXPLICIT_LE)  # cut inside (0008,1150)
    assert (status, off) == (WALK_TRUNCATED, 20)
    assert els == [
        (0, W_SEQUENCE, 0x00081115, V("SQ"), UNDEF, 0, 12, 18),  # what is left
        (1, W_ITEM, ITEM, 0, UNDEF, 12, 20, 10),
        (1, W_ELEMENT, 0x00081150, V("UI"), 4, 20, 28, 2),
    ]
    # the buffer ends where an element ends, but the sequence never closed
    assert walker(buf[:32], EXPLICIT_LE)[1:] == (WALK_TRUNCATED, 32)
    # a defined-length sequence longer than the buffer: walked into, then cut
    buf, _ = golden(SQ_NESTED_DEFINED)
    assert walker(buf[:48], EXPLICIT_LE) == ([
        (0, W_SEQUENCE, 0x00400275, V("SQ"), 46, 0, 12, 36),
        (1, W_ITEM, ITEM, 0, 38, 12, 20, 28),
        (1, W_ELEMENT, 0x00400007, V("LO"), 2, 20, 28, 2),
        (1, W_SEQUENCE, 0x00400008, V("SQ"), 16, 30, 42, 6),
    ], WALK_TRUNCATED, 42)  # the inner item's header is cut


def test_truncated_fragment(walker):
    buf, _ = golden(ENCAPSULATED)
    assert walker(buf[:34], EXPLICIT_LE) == ([
        (0, W_PIXEL_FRAGMENTS, 0x7FE00010, V("OB"), UNDEF, 0, 12, 22),
        (1, W_FRAGMENT, ITEM, 0, 4, 12, 20, 4),
        (1, W_FRAGMENT, ITEM, 0, 6, 24, 32, 2),
    ], WALK_TRUNCATED, 24)


# --------------------------------------------------------------------------
# malformed input: the walk stops where the structure breaks

PN_4 = "10 00 10 00 50 4e 04 00 41 5e 42 20"  # (0010,0010) PN 4
SQ_U = "08 00 15 11 53 51 00 00 ff ff ff ff"  # (0008,1115) SQ undefined
ITEM_U = "fe ff 00 e0 ff ff ff ff"  # (FFFE,E000) item, undefined
PIX_U = "e0 7f 10 00 4f 42 00 00 ff ff ff ff"  # (7FE0,0010) OB undefined


@pytest.mark.parametrize("hexdata,n_before,offset", [
    (PN_4 + "10 00 20 00 78 78 02 00 41 42", 1, 12),   # VR 'xx'
    (PN_4 + "10 00 20 00 00 00 02 00 41 42", 1, 12),   # VR NUL NUL
    (PN_4 + "10 00 20 00 4c 6f 02 00 41 42", 1, 12),   # VR 'Lo'
    (PN_4 + "10 00 20 00 51 51 02 00 41 42", 1, 12),   # VR 'QQ': not in the standard
    ("fe ff 00 e0 00 00 00 00", 0, 0),                 # item at the top level
    ("fe ff dd e0 00 00 00 00", 0, 0),                 # sequence delimiter at the top
    (SQ_U + "08 00 50 11 55 49 00 00", 1, 12),         # element where an item belongs
    (SQ_U + "fe ff 0d e0 00 00 00 00", 1, 12),         # item delimiter in a sequence
    ("08 00 15 11 53 51 00 00 08 00 00 00 fe ff dd e0 00 00 00 00", 1, 12),
    # ^ sequence delimiter inside a defined-length sequence
    (SQ_U + "fe ff 00 e0 08 00 00 00 fe ff 0d e0 00 00 00 00", 2, 20),
    # ^ item delimiter inside a defined-length item
    (SQ_U + ITEM_U + "fe ff dd e0 00 00 00 00", 2, 20),  # sequence delimiter in an item
    (SQ_U + ITEM_U + "fe ff 00 e0 00 00 00 00", 2, 20),  # item in an item
    (SQ_U + ITEM_U + "fe ff 00 00 00 00 00 00", 2, 20),  # (FFFE,0000)
    (SQ_U + "fe ff 00 e0 04 00 00 00 08 00 50 11", 2, 20),
    # ^ a header crossing the end of its item
    ("08 00 0e 03 55 54 00 00 ff ff ff ff", 0, 0),     # UT of undefined length
    ("08 00 19 01 55 43 00 00 ff ff ff ff", 0, 0),     # UC of undefined length
    (PIX_U + ITEM_U, 1, 12),                           # fragment of undefined length
    (PIX_U + PN_4, 1, 12),                             # element among fragments
    (PIX_U + "fe ff 0d e0 00 00 00 00", 1, 12),        # item delimiter among fragments
])
def test_malformed(walker, hexdata, n_before, offset):
    buf = bytes.fromhex(hexdata)
    els, status, off = walker(buf, EXPLICIT_LE)
    assert (status, off) == (WALK_MALFORMED, offset)
    assert len(els) == n_before


def test_length_overrunning_container(walker):
    # (0008,1150) UI 4 in an item of 8: reported with the bytes its item holds
    buf = bytes.fromhex(SQ_U + "fe ff 00 e0 08 00 00 00"
                        "08 00 50 11 55 49 04 00 31 2e 32 00")
    assert walker(buf, EXPLICIT_LE) == ([
        (0, W_SEQUENCE, 0x00081115, V("SQ"), UNDEF, 0, 12, 20),
        (1, W_ITEM, ITEM, 0, 8, 12, 20, 8),
        (1, W_ELEMENT, 0x00081150, V("UI"), 4, 20, 28, 0),
    ], WALK_MALFORMED, 20)
    # an item of 8 in a sequence of 8
    buf = bytes.fromhex("08 00 15 11 53 51 00 00 08 00 00 00"
                        "fe ff 00 e0 08 00 00 00 00 00 00 00 00 00 00 00")
    assert walker(buf, EXPLICIT_LE) == ([
        (0, W_SEQUENCE, 0x00081115, V("SQ"), 8, 0, 12, 8),
        (1, W_ITEM, ITEM, 0, 8, 12, 20, 0),
    ], WALK_MALFORMED, 12)
    # implicit: a value longer than its item
    buf = bytes.fromhex("08 00 15 11 14 00 00 00 fe ff 00 e0 0c 00 00 00"
                        "08 00 50 11 64 00 00 00 31 2e 32 00")
    els, status, off = walker(buf, IMPLICIT, sq_tags=frozenset({0x00081115}))
    assert (status, off) == (WALK_MALFORMED, 16)
    assert els[-1] == (1, W_ELEMENT, 0x00081150, 0, 100, 16, 24, 4)


# --------------------------------------------------------------------------
# limits and stop_tag

NESTED_3 = SQ_U + ITEM_U + "08 00 99 11 53 51 00 00 ff ff ff ff" + ITEM_U \
    + "40 00 75 02 53 51 00 00 ff ff ff ff"


def test_depth_limit(walker):
    buf = bytes.fromhex(NESTED_3)
    els, status, off = walker(buf, EXPLICIT_LE, max_depth=2)
    assert (status, off) == (WALK_DEPTH_LIMIT, 40)
    assert [e[:2] for e in els] == [(0, W_SEQUENCE), (1, W_ITEM), (1, W_SEQUENCE),
                                    (2, W_ITEM)]
    assert walker(buf, EXPLICIT_LE, max_depth=0) == ([], WALK_DEPTH_LIMIT, 0)
    assert walker(buf, EXPLICIT_LE, max_depth=3)[1:] == (WALK_TRUNCATED, 52)
    enc, _ = golden(ENCAPSULATED)
    assert walker(enc, EXPLICIT_LE, max_depth=0) == ([], WALK_DEPTH_LIMIT, 0)


def test_deep_nesting_no_recursion(walker):
    depth = 3000
    buf = bytes.fromhex((SQ_U + ITEM_U) * depth) + bytes.fromhex(
        "fe ff 0d e0 00 00 00 00 fe ff dd e0 00 00 00 00") * depth
    els, status, off = walker(buf, EXPLICIT_LE, max_depth=depth)
    assert (status, off) == (WALK_OK, len(buf))
    assert len(els) == 4 * depth
    assert max(e[0] for e in els) == depth
    assert walker(buf, EXPLICIT_LE, max_depth=depth - 1)[1:] == (
        WALK_DEPTH_LIMIT, 20 * (depth - 1))


def test_element_limit(walker):
    buf, notes = golden(EXPLICIT_LE_EVERY_VR)
    els, status, off = walker(buf, EXPLICIT_LE, max_elements=3)
    assert (status, off) == (WALK_ELEMENT_LIMIT, notes[3][0])
    assert len(els) == 3
    assert walker(buf, EXPLICIT_LE, max_elements=0) == ([], WALK_ELEMENT_LIMIT, 0)
    # the limit also counts the ends of defined-length containers
    buf, _ = golden(SQ_NESTED_DEFINED)
    els, status, off = walker(buf, EXPLICIT_LE, max_elements=7)
    assert (status, off) == (WALK_ELEMENT_LIMIT, 58)
    assert els[-1][1] == W_ITEM_END


def test_stop_tag(walker):
    buf, notes = golden(EXPLICIT_LE_EVERY_VR)
    els, status, off = walker(buf, EXPLICIT_LE, stop_tag=0x00100000)
    first = next(n for n in notes if n[2] >= 0x00100000)
    assert (status, off) == (WALK_STOPPED, first[0])
    assert all(e[2] < 0x00100000 for e in els if e[1] == W_ELEMENT)
    assert els[-1][2] == 0x00089459
    assert walker(buf, EXPLICIT_LE, stop_tag=0x00080005) == ([], WALK_STOPPED, 0)
    assert walker(buf, EXPLICIT_LE, stop_tag=0) == ([], WALK_STOPPED, 0)
    # only top-level tags stop the walk: (0008,1150) inside the sequence does not
    buf, _ = golden(SQ_UNDEFINED)
    els, status, off = walker(buf, EXPLICIT_LE, stop_tag=0x00081116)
    assert (status, off) == (WALK_STOPPED, 68)
    assert len(els) == 8


# --------------------------------------------------------------------------
# properties: both twins agree on anything, and never fail

def _check_invariants(buf, els, status, off, max_depth=64, max_elements=10**6):
    n = len(buf)
    assert status in (WALK_OK, WALK_TRUNCATED, WALK_MALFORMED, WALK_DEPTH_LIMIT,
                      WALK_ELEMENT_LIMIT, WALK_STOPPED)
    assert 0 <= off <= n
    assert len(els) <= max_elements
    last = 0
    open_ = []  # kinds of the open containers
    for depth, kind, tag, vr, vl, ho, vo, vlen in els:
        assert 0 <= ho <= vo <= n and vlen >= 0 and vo + vlen <= n
        assert ho >= last
        last = ho
        assert 0 <= depth <= max(max_depth, 0)
        seqs = sum(1 for k in open_ if k != W_ITEM)
        if kind in (W_SEQUENCE, W_PIXEL_FRAGMENTS):
            assert not open_ or open_[-1] == W_ITEM
            assert depth == seqs
            open_.append(kind)
        elif kind == W_SEQUENCE_END:
            assert depth == seqs - 1
            assert open_ and open_.pop() in (W_SEQUENCE, W_PIXEL_FRAGMENTS)
        elif kind == W_ITEM:
            assert depth == seqs
            assert open_ and open_[-1] == W_SEQUENCE
            open_.append(W_ITEM)
        elif kind == W_ITEM_END:
            assert depth == seqs
            assert open_ and open_.pop() == W_ITEM
        elif kind == W_FRAGMENT:
            assert depth == seqs
            assert open_ and open_[-1] == W_PIXEL_FRAGMENTS
        else:
            assert kind == W_ELEMENT
            assert depth == seqs
            assert not open_ or open_[-1] == W_ITEM
    if status == WALK_OK:
        assert off == n and not open_


def _agree(buf, syntax, **kw):
    py, c = _cores()
    r1 = py(buf, syntax, **kw)
    r2 = c(buf, syntax, **kw)
    assert r1 == r2
    _check_invariants(buf, *r1, max_depth=kw.get("max_depth", 64),
                      max_elements=kw.get("max_elements", 10**6))
    # keep: only those top-level elements are listed, by both twins; the walk,
    # its status and offset are the full walk's
    els, status, off = r1
    top = sorted({e[2] for e in els if e[0] == 0 and e[1] == W_ELEMENT})
    for keep in (frozenset(), frozenset(top[::2]), frozenset(top) | {0x00100010, 0x0020000E}):
        want = ([e for e in els if e[0] == 0 and e[1] == W_ELEMENT and e[2] in keep], status, off)
        assert py(buf, syntax, keep=keep, **kw) == want
        assert c(buf, syntax, keep=keep, **kw) == want
    return r1


SQ_SOME = frozenset({0x00081115, 0x00081140, 0x00400275, 0x00081199})


@st.composite
def token_soup(draw):
    """Bytes made of plausible headers (items, delimiters, elements of any VR,
    invalid VRs), lengths small or undefined, and junk, in any order."""
    big = draw(st.booleans())
    e = ">" if big else "<"
    out = bytearray()
    for _ in range(draw(st.integers(0, 24))):
        k = draw(st.integers(0, 6))
        ln = draw(st.one_of(st.integers(0, 24), st.just(UNDEF)))
        if k == 0:
            el = draw(st.sampled_from([0xE000, 0xE00D, 0xE0DD, 0x0000]))
            out += struct.pack(e + "HHI", 0xFFFE, el, ln)
        elif k in (1, 2):
            vr = draw(st.sampled_from(ALL_VRS + ["xx", "\0\0", "QQ"]))
            tag = draw(st.sampled_from([0x00081115, 0x00100010, 0x7FE00010,
                                        0x00291010, 0x00090010]))
            t = struct.pack(e + "HH", tag >> 16, tag & 0xFFFF)
            if vr in LONG_VRS:
                out += t + vr.encode("latin-1") + b"\0\0" + struct.pack(e + "I", ln)
            else:
                out += t + vr.encode("latin-1") + struct.pack(e + "H", ln & 0xFFFF)
        elif k == 3:  # implicit header
            tag = draw(st.sampled_from([0x00081115, 0x00100010, 0x00291010]))
            out += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, ln)
        else:
            out += draw(st.binary(max_size=12))
    return bytes(out)


_LIMITS = dict(
    max_depth=st.sampled_from([0, 1, 2, 3, 64]),
    max_elements=st.sampled_from([0, 1, 5, 10**6]),
    stop_tag=st.sampled_from([0, 0x00100000, 0x7FE00010, 0xFFFFFFFF]),
)


@settings(max_examples=400, deadline=None)
@given(buf=st.binary(max_size=300), syntax=st.sampled_from([0, 1, 2]), **_LIMITS)
def test_random_bytes_twins_agree(buf, syntax, max_depth, max_elements, stop_tag):
    _agree(buf, syntax, sq_tags=SQ_SOME, max_depth=max_depth,
           max_elements=max_elements, stop_tag=stop_tag)


@settings(max_examples=600, deadline=None)
@given(buf=token_soup(), syntax=st.sampled_from([0, 1, 2]), **_LIMITS)
def test_token_soup_twins_agree(buf, syntax, max_depth, max_elements, stop_tag):
    _agree(buf, syntax, sq_tags=SQ_SOME, max_depth=max_depth,
           max_elements=max_elements, stop_tag=stop_tag)


# --------------------------------------------------------------------------
# pydicom's test files and data sets pydicom writes

TEST_FILES = {  # name: (implicit, little endian)
    "CT_small.dcm": (False, True),
    "MR_small_bigendian.dcm": (False, False),
    "MR_small_implicit.dcm": (True, True),
    "JPEG2000.dcm": (False, True),
    "examples_overlay.dcm": (False, True),
    "rtplan.dcm": (True, True),
    "rtstruct.dcm": (True, True),
    "test-SR.dcm": (False, True),
    "UN_sequence.dcm": (False, True),
    "priv_SQ.dcm": (True, True),
    "nested_priv_SQ.dcm": (True, True),
    "liver_expb_1frame.dcm": (False, False),
    "waveform_ecg.dcm": (False, True),
    "reportsi.dcm": (False, True),
    "JPEG2000-embedded-sequence-delimiter.dcm": (False, True),
}


def dataset_bytes(name):
    """The data set of one of pydicom's test files (preamble and meta removed)."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    path = get_testdata_file(name)
    raw = Path(path).read_bytes()
    if raw[128:132] != b"DICM":
        return raw  # no preamble nor meta: the file is the data set
    meta = dcmread(path, stop_before_pixels=True).file_meta
    return raw[132 + 12 + meta.FileMetaInformationGroupLength:]


def _dict_sq_tags():
    from pydicom.datadict import DicomDictionary
    return frozenset(t for t, e in DicomDictionary.items() if e[0] == "SQ")


def _walk_tree(els):
    """Flat tuples -> [(tag, vl, value_offset, children or None)]; an item is a list."""
    root = []
    stack = [root]
    for depth, kind, tag, vr, vl, ho, vo, vlen in els:
        cur = stack[-1]
        if kind in (W_ELEMENT, W_FRAGMENT):
            if kind == W_ELEMENT:
                cur.append((tag, vl, vo, None))
        elif kind in (W_SEQUENCE, W_PIXEL_FRAGMENTS):
            node = (tag, vl, vo, [])
            cur.append(node)
            stack.append(node[3])
        elif kind == W_ITEM:
            item = []
            cur.append(item)
            stack.append(item)
        else:
            stack.pop()
    return root


def _pydicom_tree(ds, base=0):
    """pydicom's reading, as [(tag, length or None, value offset, items or None)].

    pydicom parses a defined-length sequence from its value's own bytes, so
    offsets inside it count from that value's start (``base``)."""
    from pydicom.datadict import dictionary_VR
    out = []
    for tag in ds.keys():
        raw = ds.get_item(tag)
        converted = not hasattr(raw, "value_tell")
        vr = raw.VR
        if vr is None:
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                vr = "UN"
        if vr == "SQ":
            inner = base if converted else base + raw.value_tell
            items = ds[tag].value
            out.append((int(tag), None, None, [_pydicom_tree(i, inner) for i in items]))
        elif converted:  # e.g. Specific Character Set, converted while reading
            out.append((int(tag), None, base + raw.file_tell, None))
        else:
            out.append((int(tag), raw.length, base + raw.value_tell, None))
    return out


def _same_tree(walked, read):
    """Every element pydicom read is where the walker found it, with its length."""
    assert [n[0] for n in walked] == [n[0] for n in read]
    for w, r in zip(walked, read):
        tag, vl, vo, children = w
        if r[3] is None:  # a value for pydicom (perhaps a private SQ for us)
            assert vo == r[2], hex(tag)
            assert r[1] is None or vl == r[1], hex(tag)
        else:
            assert children is not None, hex(tag)
            assert len(children) == len(r[3]), hex(tag)
            for wi, ri in zip(children, r[3]):
                _same_tree(wi, ri)


@pytest.mark.parametrize("name", sorted(TEST_FILES))
def test_pydicom_test_files(walker, name):
    from pydicom.filereader import read_dataset
    implicit, little = TEST_FILES[name]
    buf = dataset_bytes(name)
    syntax = IMPLICIT if implicit else EXPLICIT_LE if little else EXPLICIT_BE
    els, status, off = walker(buf, syntax, sq_tags=_dict_sq_tags())
    assert (status, off) == (WALK_OK, len(buf))
    _check_invariants(buf, els, status, off)
    ds = read_dataset(BytesIO(buf), implicit, little)
    _same_tree(_walk_tree(els), _pydicom_tree(ds))


def test_pydicom_test_files_twins_agree_when_cut():
    rnd = random.Random(7)
    for name in sorted(TEST_FILES):
        implicit, little = TEST_FILES[name]
        buf = dataset_bytes(name)
        syntax = IMPLICIT if implicit else EXPLICIT_LE if little else EXPLICIT_BE
        for cut in sorted(rnd.sample(range(len(buf)), min(40, len(buf)))):
            _agree(buf[:cut], syntax, sq_tags=_dict_sq_tags())


def test_encapsulated_test_file_fragments(walker):
    buf = dataset_bytes("JPEG2000.dcm")
    els, status, _ = walker(buf, EXPLICIT_LE)
    assert status == WALK_OK
    i = next(k for k, e in enumerate(els) if e[1] == W_PIXEL_FRAGMENTS)
    frags = [e for e in els[i + 1:] if e[1] == W_FRAGMENT]
    assert frags[0][4] == 0  # empty basic offset table
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.encaps import generate_fragments
    px = dcmread(get_testdata_file("JPEG2000.dcm")).PixelData
    assert [len(f) for f in generate_fragments(px)] == [e[7] for e in frags]


@st.composite
def mutated_dataset(draw):
    name = draw(st.sampled_from(sorted(TEST_FILES)))
    buf = bytearray(dataset_bytes(name)[:4000])
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 2))
        k = draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == 0 and buf:
            buf[k] = draw(st.integers(0, 255))
        elif op == 1:
            del buf[k:k + draw(st.integers(1, 16))]
        else:
            buf[k:k] = draw(st.sampled_from([b"\xfe\xff\x00\xe0\xff\xff\xff\xff",
                                             b"\xfe\xff\xdd\xe0\x00\x00\x00\x00",
                                             b"\xff\xff\xff\xff", b"SQ\0\0"]))
    implicit, little = TEST_FILES[name]
    return bytes(buf), IMPLICIT if implicit else EXPLICIT_LE if little else EXPLICIT_BE


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=mutated_dataset(), max_depth=st.sampled_from([1, 2, 64]))
def test_mutated_datasets_twins_agree(case, max_depth):
    buf, syntax = case
    _agree(buf, syntax, sq_tags=_dict_sq_tags(), max_depth=max_depth)
    _agree(buf, (syntax + 1) % 3, sq_tags=_dict_sq_tags(), max_depth=max_depth)


# data sets built at random and written by pydicom in each syntax
VR_TAGS = {  # one attribute per VR (from the every-VR block)
    vr: tag for _, _, tag, vr, _ in golden(EXPLICIT_LE_EVERY_VR)[1]}
VR_TAGS["CS"] = 0x00080060  # Modality: random text is no Specific Character Set
SQ_TAGS = [0x00081115, 0x00081140, 0x00081199, 0x00400275]
_text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", max_size=12)


def _value(vr):
    if vr in ("AE", "CS", "LO", "SH", "PN", "UC", "ST", "LT", "UT"):
        return _text.map(str.strip)
    if vr == "UR":
        return st.sampled_from(["", "http://example.com/a", "urn:oid:1.2.3"])
    if vr == "AS":
        return st.just("042Y")
    if vr == "DA":
        return st.sampled_from(["", "20261127"])
    if vr == "DT":
        return st.sampled_from(["", "20261127120000"])
    if vr == "TM":
        return st.sampled_from(["", "120000", "120000.123"])
    if vr in ("DS", "IS"):
        return st.sampled_from(["", "1", "7", "12"])
    if vr == "UI":
        return st.sampled_from(["", "1.2.3", "1.2.840.10008.5.1.4.1.1.2"])
    if vr in ("OB", "UN"):
        return st.binary(max_size=20).map(lambda b: b + b"\0" * (len(b) % 2))
    if vr in ("OW", "OF", "OL", "OD", "OV"):
        w = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}[vr]
        return st.integers(0, 4).map(lambda k: bytes(range(k * w)))
    ints = {"US": (0, 65535), "SS": (-32768, 32767), "UL": (0, 2**32 - 1),
            "SL": (-2**31, 2**31 - 1), "UV": (0, 2**64 - 1), "SV": (-2**63, 2**63 - 1),
            "AT": (0, 2**32 - 1)}
    if vr in ints:
        return st.lists(st.integers(*ints[vr]), min_size=1, max_size=3)
    return st.lists(st.floats(allow_nan=False, width=32 if vr == "FL" else 64),
                    min_size=1, max_size=3)


@st.composite
def pydicom_dataset(draw, depth=0):
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    ds = Dataset()
    vrs = draw(st.lists(st.sampled_from(sorted(set(VR_TAGS) - {"SQ"})), unique=True,
                        max_size=8))
    for vr in vrs:
        ds.add(DataElement(VR_TAGS[vr], vr, draw(_value(vr))))
    if depth < 3:
        for tag in draw(st.lists(st.sampled_from(SQ_TAGS), unique=True, max_size=2)):
            items = draw(st.lists(pydicom_dataset(depth + 1), max_size=3))
            for item in items:
                item.is_undefined_length_sequence_item = draw(st.booleans())
            elem = DataElement(tag, "SQ", Sequence(items))
            elem.is_undefined_length = draw(st.booleans())
            ds.add(elem)
    return ds


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(ds=pydicom_dataset(), syntax=st.sampled_from([0, 1, 2]))
def test_pydicom_written_round_trip(ds, syntax):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset
    from pydicom.filewriter import write_dataset
    implicit, little = syntax == IMPLICIT, syntax != EXPLICIT_BE
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    buf = fp.getvalue()
    els, status, off = _agree(buf, syntax, sq_tags=_dict_sq_tags())
    assert (status, off) == (WALK_OK, len(buf))
    _same_tree(_walk_tree(els), _pydicom_tree(read_dataset(BytesIO(buf), implicit,
                                                           little)))
