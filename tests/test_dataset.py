"""fastdicom.dataset: names, VRs and values against pydicom's own reading of the
same bytes; character sets, private creators, deflate, limits, leading values."""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from fastdicom import dataset as D
from fastdicom.dataset import Binary, decode, format_value, leading_values

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG2000 = "1.2.840.10008.1.2.4.91"
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def el(tag, vr, value, ts=EXPLICIT):
    """One element encoded in ``ts`` (no padding added)."""
    if isinstance(value, str):
        value = value.encode("latin-1")
    big = ts == BIG
    e = ">" if big else "<"
    t = struct.pack(e + "HH", tag >> 16, tag & 0xFFFF)
    if ts == IMPLICIT:
        return t + struct.pack("<I", len(value)) + value
    if vr in LONG_VRS:
        return t + vr.encode() + b"\0\0" + struct.pack(e + "I", len(value)) + value
    return t + vr.encode() + struct.pack(e + "H", len(value)) + value


def item(content, ts=EXPLICIT):
    e = ">" if ts == BIG else "<"
    return struct.pack(e + "HHI", 0xFFFE, 0xE000, len(content)) + content


def sample_path(name):
    from pydicom.data import get_charset_files, get_testdata_file
    return get_testdata_file(name) or get_charset_files(name)[0]


def file_dataset(name):
    """(data set bytes, transfer syntax UID) of one of pydicom's test files."""
    from pydicom import dcmread
    path = sample_path(name)
    raw = Path(path).read_bytes()
    if raw[128:132] != b"DICM":
        return raw, IMPLICIT
    meta = dcmread(path, stop_before_pixels=True).file_meta
    return (raw[132 + 12 + meta.FileMetaInformationGroupLength:],
            str(meta.TransferSyntaxUID))


# --------------------------------------------------------------------------
# against pydicom

def _pydicom_value(elem):
    """pydicom's value in the shapes fastdicom gives (str, list of str, numbers)."""
    from pydicom.multival import MultiValue
    v = elem.value
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, MultiValue) or isinstance(v, list):
        vals = list(v)
        return [str(x) if not isinstance(x, (int, float)) else x for x in vals] \
            if elem.VR not in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT") \
            else [int(x) if elem.VR == "AT" else x for x in vals]
    if v is None:
        return "" if elem.VR in ("DS", "IS") else None  # empty: text for us
    if elem.VR in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return v
    if elem.VR == "AT":
        return int(v)
    return str(v)


def _compare(ours, theirs, path=""):
    """Every element pydicom reads, with the same name, VR and value."""
    from pydicom.datadict import dictionary_VR
    ours_by_tag = {e.tag: e for e in ours}
    assert sorted(ours_by_tag) == sorted(int(t) for t in theirs.keys()), path
    for pe in theirs:
        e = ours_by_tag[int(pe.tag)]
        where = f"{path}{e.tag_str}"
        if not pe.tag.is_private:
            assert e.name == pe.name, where
            if pe.keyword:  # pydicom has none for repeating groups (60xx)
                assert e.keyword == pe.keyword, where
            try:
                ambiguous = " or " in dictionary_VR(pe.tag)
            except KeyError:
                ambiguous = True
            if not ambiguous:
                assert e.vr == pe.VR, where
        elif pe.private_creator and not pe.tag.is_private_creator:
            assert e.private_creator == pe.private_creator, where
            if pe.name != "Private tag data":
                assert e.name == pe.name[1:-1], where  # pydicom writes "[name]"
                assert e.vr == pe.VR, where
        if pe.VR == "SQ":
            assert e.vr == "SQ", where
            assert len(e.children) == len(pe.value), where
            for k, (ours_item, their_item) in enumerate(zip(e.children, pe.value)):
                _compare(ours_item, their_item, f"{where}[{k}]")
            continue
        if e.vr != pe.VR:
            continue  # ambiguous VRs, UN: compared by bytes below
        want = _pydicom_value(pe)
        if isinstance(want, bytes):
            if e.children is not None:  # encapsulated: pydicom keeps the items' bytes
                assert e.raw == want, where
            else:
                assert isinstance(e.value, Binary) and e.raw == want, where
        elif isinstance(want, float) and want != want:
            assert e.value != e.value, where
        else:
            assert e.value == want, where
        assert e.status is None, (where, e.status)


FILES = ["CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
         "JPEG2000.dcm", "examples_overlay.dcm", "rtplan.dcm", "test-SR.dcm",
         "liver_expb_1frame.dcm", "waveform_ecg.dcm", "UN_sequence.dcm",
         "image_dfl.dcm", "chrFren.dcm", "chrH31.dcm", "chrSQEncoding.dcm",
         "chrKoreanMulti.dcm", "chrRuss.dcm", "chrGreek.dcm", "chrX1.dcm"]


@pytest.mark.parametrize("name", FILES)
def test_against_pydicom(name):
    import warnings
    from pydicom import dcmread
    buf, ts = file_dataset(name)
    ds = decode(buf, ts)
    assert ds.complete, ds.problems
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = dcmread(sample_path(name))
        _compare(ds, theirs)


def test_ct_small_details():
    buf, ts = file_dataset("CT_small.dcm")
    ds = decode(buf, ts)
    assert ds.status_text == "complete" and ds.problems == []
    pn = ds["PatientName"]
    assert (pn.tag, pn.vr, pn.name, pn.value) == (
        0x00100010, "PN", "Patient's Name", "CompressedSamples^CT1")
    assert ds[0x00080008].value == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert format_value(ds[0x00080008]) == "ORIGINAL\\PRIMARY\\AXIAL"
    assert format_value(ds["SOPClassUID"]) == \
        "1.2.840.10008.5.1.4.1.1.2 (CT Image Storage)"
    assert ds["Rows"].value == 128
    assert ds["ImagePositionPatient"].value == ["-158.135803", "-179.035797",
                                                "-75.699997"]
    # private elements named through their creator
    ff = ds[0x00091001]
    assert (ff.private_creator, ff.name, ff.vr, ff.value) == (
        "GEMS_IDEN_01", "Full fidelity", "LO", "GE_GENESIS_FF")
    assert ds[0x00090010].name == "Private Creator"
    seq = ds["OtherPatientIDsSequence"]
    assert seq.vr == "SQ" and len(seq.items) == 2
    assert seq.items[1]["PatientID"].value == "1234ABCD"
    assert format_value(seq) == "<2 items>"
    px = ds["PixelData"]
    assert isinstance(px.value, Binary) and px.value.length == 128 * 128 * 2
    assert format_value(px, 24) == f"<32768 bytes> {px.raw[:3].hex(' ')} …"
    assert "(0010,0010) PN Patient's Name: CompressedSamples^CT1" in ds.dump()
    tags = [e.tag for e in ds.walk()]
    assert tags.index(0x00101002) + 1 == tags.index(0x00100020, tags.index(0x00101002))


def test_repeating_groups_and_ambiguous_vrs():
    buf, ts = file_dataset("examples_overlay.dcm")
    ds = decode(buf, ts)
    assert ds[0x60000010].name == "Overlay Rows"
    assert ds[0x60000010].keyword == "OverlayRows"
    assert ds[0x60003000].name == "Overlay Data"
    # implicit VR: "US or SS" follows Pixel Representation
    for pixrep, want in ((0, 65535), (1, -1)):
        data = (el(0x00280103, "US", struct.pack("<H", pixrep), IMPLICIT)
                + el(0x00280106, "", b"\xff\xff", IMPLICIT))
        e = decode(data, IMPLICIT)[0x00280106]
        assert (e.name, e.vr, e.value) == (
            "Smallest Image Pixel Value", "SS" if pixrep else "US", want)
    # repeating group (60xx) in implicit VR
    ds = decode(el(0x60020010, "", b"\x00\x02", IMPLICIT), IMPLICIT)
    assert (ds[0x60020010].name, ds[0x60020010].vr, ds[0x60020010].value) == (
        "Overlay Rows", "US", 512)


def test_private_creator_blocks_implicit():
    data = (el(0x00090010, "", "GEMS_IDEN_01", IMPLICIT)
            + el(0x00090011, "", "GEMS_ACQU_01", IMPLICIT)
            + el(0x00091027, "", struct.pack("<i", 862399669), IMPLICIT)
            + el(0x00091102, "", "XY", IMPLICIT)      # block 11: GEMS_ACQU_01
            + el(0x00091200, "", "??", IMPLICIT))     # block 12: no creator
    ds = decode(data, IMPLICIT)
    e = ds[0x00091027]
    assert (e.private_creator, e.name, e.vr, e.value) == (
        "GEMS_IDEN_01", "Image actual date", "SL", 862399669)
    assert ds[0x00091102].private_creator == "GEMS_ACQU_01"
    e = ds[0x00091200]
    assert (e.private_creator, e.name, e.vr) == (None, "Private tag data", "UN")
    assert e.value == Binary(2, b"??")


def test_private_sequence_implicit():
    buf, ts = file_dataset("priv_SQ.dcm")
    ds = decode(buf, ts)
    sq = ds[0x3F031001]
    assert sq.vr == "SQ" and len(sq.items) == 1
    inner = sq.items[0]
    assert inner[0x00080090].value == "111111111111111"
    assert inner[0x3F031002].private_creator == "123456789 1234567 1234567"


def test_un_with_known_vr():
    # explicit UN for a known tag: decoded with the dictionary's VR, little endian
    data = el(0x00100010, "UN", "Doe^John", BIG) + el(0x00280010, "UN", b"\x00\x02", BIG)
    ds = decode(data, BIG)
    assert (ds[0x00100010].vr, ds[0x00100010].explicit_vr) == ("PN", "UN")
    assert ds[0x00100010].value == "Doe^John"
    assert ds[0x00280010].value == 512
    # a UN value that is a sequence (implicit VR little endian inside)
    inner = el(0x00081150, "", "1.2.3\0", IMPLICIT) + el(0x00081155, "", "4.5\0", IMPLICIT)
    data = el(0x00081115, "UN", item(inner, IMPLICIT)) + el(0x00100020, "LO", "ID")
    ds = decode(data, EXPLICIT)
    sq = ds[0x00081115]
    assert sq.vr == "SQ" and sq.explicit_vr == "UN"
    assert sq.items[0][0x00081150].value == "1.2.3"
    assert sq.items[0][0x00081150].offset == 12 + 8
    assert ds[0x00100020].value == "ID"


def test_character_sets():
    buf, ts = file_dataset("chrFren.dcm")
    assert decode(buf, ts)["PatientName"].value == "Buc^Jérôme"
    buf, ts = file_dataset("chrH31.dcm")
    assert decode(buf, ts)["PatientName"].value == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    # an item's own Specific Character Set applies inside it
    buf, ts = file_dataset("chrSQEncoding.dcm")
    ds = decode(buf, ts)
    name = ds["RequestedProcedureCodeSequence"].items[0]["PatientName"]
    assert name.value == "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"
    # Latin-1 and UTF-8 built by hand
    data = el(0x00080005, "CS", "ISO_IR 100") + el(0x00100010, "PN", "M\xfcller^J\xfcrgen")
    assert decode(data, EXPLICIT)["PatientName"].value == "Müller^Jürgen"
    data = el(0x00080005, "CS", "ISO_IR 192") + el(0x00100010, "PN",
                                                     "Wang^XiaoDong=王^小東".encode())
    assert decode(data, EXPLICIT)["PatientName"].value == "Wang^XiaoDong=王^小東"


def test_undecodable_text_is_reported_not_raised():
    data = el(0x00080005, "CS", "ISO_IR 192") + el(0x00100010, "PN", b"Bad\xff\xfeName")
    ds = decode(data, EXPLICIT)
    e = ds["PatientName"]
    assert e.value.startswith("Bad") and "\ufffd" in e.value
    assert "cannot decode" in e.status
    assert any("Patient's Name" in p for p in ds.problems)
    # an unknown character set: a problem on (0008,0005), text still shown
    data = el(0x00080005, "CS", "ISO_IR 999 ") + el(0x00100010, "PN", "Doe^John")
    ds = decode(data, EXPLICIT)
    assert ds["PatientName"].value == "Doe^John"
    assert ds["SpecificCharacterSet"].status
    # ISO 2022 escape to a set not declared
    data = el(0x00080005, "CS", "ISO 2022 IR 100") + el(0x00100010, "PN",
                                                          b"\x1b$B;3ED\x1b(B")
    ds = decode(data, EXPLICIT)
    assert isinstance(ds["PatientName"].value, str)
    assert "unknown escape sequence" in ds["PatientName"].status


def test_padding_and_values_per_vr():
    data = (el(0x00080005, "CS", "ISO_IR 100")
            + el(0x00080018, "UI", "1.2.3\0")
            + el(0x00080060, "CS", " CT ")
            + el(0x00081030, "LO", " lead kept? no ")
            + el(0x00100010, "PN", "Doe^John ")
            + el(0x00104000, "LT", "  indented\\not split  ")
            + el(0x00180050, "DS", "2.5\\3 ")
            + el(0x00280009, "AT", struct.pack("<HHHH", 0x0018, 0x1063, 0x0018, 0x1065))
            + el(0x00280030, "DS", "")
            + el(0x00281052, "DS", "-1024 ")
            + el(0x00189219, "SS", struct.pack("<hh", -2, 3))
            + el(0x00189459, "FL", struct.pack("<f", 0.1))
            + el(0x0072006D, "UN", b"\x01\x02\x03")
            + el(0x00720082, "SV", struct.pack("<q", -(2 ** 40))))
    ds = decode(data, EXPLICIT)
    assert ds["SOPInstanceUID"].value == "1.2.3"
    assert ds["Modality"].value == "CT"
    assert ds["StudyDescription"].value == "lead kept? no"
    assert ds["PatientName"].value == "Doe^John"
    assert ds["PatientComments"].value == "  indented\\not split"
    assert ds["SliceThickness"].value == ["2.5", "3"]
    assert ds[0x00280009].value == [0x00181063, 0x00181065]
    assert format_value(ds[0x00280009]) == "(0018,1063)\\(0018,1065)"
    assert ds["PixelSpacing"].value == ""
    assert ds[0x00189219].value == [-2, 3]
    assert format_value(ds[0x00189219]) == "-2\\3"
    assert format_value(ds[0x00189459]) == "0.1"
    assert ds[0x0072006D].value == Binary(3, b"\x01\x02\x03")
    assert ds[0x00720082].value == -(2 ** 40)


def test_format_value_cuts():
    data = el(0x00104000, "LT", "x" * 100)
    e = decode(data, EXPLICIT)[0x00104000]
    assert format_value(e, 10) == "x" * 9 + "…"
    assert format_value(e, 0) == "x" * 100
    assert len(format_value(e)) == 64


def test_numbers_big_endian_and_odd_lengths():
    data = el(0x00280010, "US", b"\x02\x00", BIG) + el(0x00281161, "UL", b"\x00\x00\x00\x01\x00", BIG)
    ds = decode(data, BIG)
    assert ds["Rows"].value == 512
    e = ds[0x00281161]
    assert e.value == 1 and "not a multiple of 4" in e.status


def test_command_set():
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    cmd = Dataset()
    cmd.CommandGroupLength = 56
    cmd.AffectedSOPClassUID = "1.2.840.10008.1.1"
    cmd.CommandField = 0x0030
    cmd.MessageID = 7
    cmd.CommandDataSetType = 0x0101
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, cmd)
    ds = D.decode_command_set(fp.getvalue())
    assert ds.complete
    assert [(e.keyword, e.vr) for e in ds] == [
        ("CommandGroupLength", "UL"), ("AffectedSOPClassUID", "UI"),
        ("CommandField", "US"), ("MessageID", "US"), ("CommandDataSetType", "US")]
    assert ds["CommandField"].value == 0x30
    assert format_value(ds["AffectedSOPClassUID"]) == "1.2.840.10008.1.1 (Verification SOP Class)"


def test_truncated_and_malformed():
    buf, ts = file_dataset("MR_truncated.dcm")
    ds = decode(buf, ts)
    assert not ds.complete and ds.status == D.WALK_TRUNCATED
    last = ds.elements[-1]
    assert last.status.startswith("truncated") and last.length < last.vl
    assert ds.problems[0].startswith("data set truncated at offset")
    # a bad VR: what came before is kept
    data = el(0x00100010, "PN", "Doe^John") + b"\x10\x00\x20\x00xx\x02\x00AB"
    ds = decode(data, EXPLICIT)
    assert ds.status == D.WALK_MALFORMED and ds.status_offset == 16
    assert [e.tag for e in ds] == [0x00100010]
    # random garbage never raises
    import random
    rnd = random.Random(3)
    for _ in range(300):
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(64)))
        for ts in (IMPLICIT, EXPLICIT, BIG, DEFLATED):
            decode(junk, ts).dump()


def test_stop_tag_and_depth():
    buf, ts = file_dataset("CT_small.dcm")
    ds = decode(buf, ts, stop_tag=0x00100000)
    assert ds.status == D.WALK_STOPPED and ds.complete
    assert max(e.tag for e in ds) < 0x00100000
    buf, ts = file_dataset("JPEG2000.dcm")
    ds = decode(buf, ts, max_depth=1)
    assert ds.status == D.WALK_DEPTH_LIMIT and not ds.complete


def test_encapsulated_pixel_data():
    buf, ts = file_dataset("JPEG2000.dcm")
    ds = decode(buf, ts)
    px = ds["PixelData"]
    assert px.vr == "OB" and px.is_undefined_length
    assert [f.name for f in px.children] == ["Basic Offset Table", "Fragment 1"]
    assert px.children[1].raw[:4] == b"\xff\x4f\xff\x51"  # a JPEG 2000 codestream
    assert format_value(px) == "<encapsulated: 2 fragments, 250 bytes>"


# --------------------------------------------------------------------------
# deflate

def _deflate(data, wbits=-15):
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


def test_transfer_syntax_mapping():
    assert D.walk_syntax(IMPLICIT) == (0, False)
    assert D.walk_syntax("1.2.840.113619.5.2") == (0, False)
    assert D.walk_syntax(EXPLICIT) == (1, False)
    assert D.walk_syntax(BIG) == (2, False)
    assert D.walk_syntax(JPEG2000) == (1, False)
    assert D.walk_syntax(DEFLATED) == (1, True)
    assert D.walk_syntax("1.2.840.10008.1.2.4.95") == (1, True)
    assert D.walk_syntax("1.2.840.10008.1.2.1.99\0") == (1, True)
    assert D.walk_syntax(None) == (0, False)


def test_deflated():
    buf, ts = file_dataset("CT_small.dcm")
    plain = decode(buf, ts)
    ds = decode(_deflate(buf), DEFLATED)
    assert ds.complete and ds.deflated and ds.problems == []
    assert [(e.tag, e.value) for e in ds.walk() if not isinstance(e.value, Binary)] == \
        [(e.tag, e.value) for e in plain.walk() if not isinstance(e.value, Binary)]
    assert ds["PixelData"].raw == plain["PixelData"].raw
    # odd length padded with one NUL: fine
    assert decode(_deflate(buf) + b"\0", DEFLATED).problems == []
    # wrapped in a zlib header: read, and said
    ds = decode(_deflate(buf, 15), DEFLATED)
    assert ds.complete and "zlib header" in ds.problems[0]
    # cut short: the walk says truncated, the inflater says why
    ds = decode(_deflate(buf)[:5000], DEFLATED)
    assert ds.status == D.WALK_TRUNCATED
    assert any("ends before" in p for p in ds.problems)
    # garbage
    ds = decode(b"\xff" * 100, DEFLATED)
    assert not ds.complete and any("deflate error" in p for p in ds.problems)


def test_inflate_cap():
    big = el(0x00100010, "PN", "Doe^John") + el(0x7FE00010, "OB", bytes(4 << 20))
    packed = _deflate(big)
    assert len(packed) < 10000
    ds = decode(packed, DEFLATED, max_inflate=1 << 20)
    assert ds.inflate_capped and not ds.complete
    assert len(ds.data) == 1 << 20
    assert ds.status == D.WALK_TRUNCATED
    assert any("max_inflate" in p for p in ds.problems)
    assert ds["PatientName"].value == "Doe^John"
    out, capped, problem = D.inflate(packed, 1000)
    assert (len(out), capped) == (1000, True) and "max_inflate" in problem
    out, capped, problem = D.inflate(packed)
    assert out == big and not capped and problem is None
    # exactly at the cap: complete, not capped
    out, capped, _ = D.inflate(packed, len(big))
    assert out == big and not capped


# --------------------------------------------------------------------------
# leading values

LEAD = [0x00080016, 0x00080018, 0x00080020, 0x00080050, 0x00080060, 0x00100010,
        0x00100020, 0x0020000D, 0x0020000E]


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm", "chrH31.dcm", "chrFren.dcm",
                                  "image_dfl.dcm"])
def test_leading_values_match_pydicom(name):
    from pydicom import dcmread
    buf, ts = file_dataset(name)
    got = leading_values(buf, ts, LEAD)
    theirs = dcmread(sample_path(name))
    want = {t: str(theirs[t].value) for t in LEAD if t in theirs}
    want = {t: ("\\".join(theirs[t].value) if theirs[t].VM > 1 else v)
            for t, v in want.items()}
    assert got == want
    assert set(leading_values(buf, ts)) >= set(want)


def test_leading_values_stop_early():
    big = (el(0x00080005, "CS", "ISO_IR 100") + el(0x00080060, "CS", "MR")
           + el(0x00100010, "PN", "M\xfcller^Anna") + el(0x00280010, "US", b"\x00\x01")
           + el(0x7FE00010, "OW", bytes(8 << 20)))
    # the walk stops before the pixel data; deflated, only the head is inflated
    assert leading_values(big[:200], EXPLICIT, [0x00100010]) == {0x00100010: "Müller^Anna"}
    packed = _deflate(big)
    assert leading_values(packed, DEFLATED, [0x00100010, 0x00080060],
                          max_inflate=1 << 20) == {0x00100010: "Müller^Anna",
                                                   0x00080060: "MR"}
    assert leading_values(big, EXPLICIT, [0x00280010]) == {0x00280010: "256"}
    assert leading_values(big, EXPLICIT, []) == {}
    assert leading_values(b"", EXPLICIT) == {}
    assert leading_values(b"\x00" * 3, EXPLICIT) == {}


def test_leading_values_remembered_per_character_set_and_syntax():
    """Decoded values are remembered for the next objects of a series, keyed
    by everything they depend on: the same bytes under another Specific
    Character Set or byte order give another text."""
    name = b"M\xfcller^Anna"
    latin = el(0x00080005, "CS", "ISO_IR 100") + el(0x00100010, "PN", name)
    utf8 = el(0x00080005, "CS", "ISO_IR 192") + el(0x00100010, "PN", name)
    rows = el(0x00280010, "US", b"\x00\x01")
    rows_be = el(0x00280010, "US", b"\x00\x01", BIG)
    D._LEADING_CACHE.clear()
    for _ in range(2):  # the second time from what was remembered
        assert leading_values(latin, EXPLICIT, [0x00100010]) == {0x00100010: "Müller^Anna"}
        assert leading_values(utf8, EXPLICIT, [0x00100010]) == {0x00100010: "M\ufffdller^Anna"}
        assert leading_values(rows, EXPLICIT, [0x00280010]) == {0x00280010: "256"}
        assert leading_values(rows_be, BIG, [0x00280010]) == {0x00280010: "1"}
    # a sequence under a wanted tag gives no value, then or later
    seq = struct.pack("<HH", 0x0008, 0x0060) + b"SQ\0\0" + struct.pack("<I", 0)
    assert leading_values(seq, EXPLICIT, [0x00080060]) == {}
    assert leading_values(seq, EXPLICIT, [0x00080060]) == {}
    # bounded: it is emptied when full, never grows past its size
    for k in range(D._LEADING_CACHE_MAX + 10):
        leading_values(el(0x00100020, "LO", f"ID{k:05d}"), EXPLICIT, [0x00100020])
    assert len(D._LEADING_CACHE) <= D._LEADING_CACHE_MAX


def test_leading_values_without_pydicom():
    """The summary's path: no pydicom import for plain character sets."""
    code = (
        "import sys, struct\n"
        "from fastdicom.dataset import leading_values\n"
        "def el(g, e, vr, v):\n"
        "    return struct.pack('<HH', g, e) + vr + struct.pack('<H', len(v)) + v\n"
        "buf = (el(8, 5, b'CS', b'ISO_IR 100') + el(8, 0x60, b'CS', b'CT')"
        " + el(0x10, 0x10, b'PN', b'Doe^J\\xf6rg'))\n"
        "assert leading_values(buf, '1.2.840.10008.1.2.1') == "
        "{0x80060: 'CT', 0x100010: 'Doe^J\\u00f6rg'}\n"
        "imp = struct.pack('<HHI', 0x10, 0x20, 4) + b'ID1 '\n"
        "assert leading_values(imp, '1.2.840.10008.1.2') == {0x100020: 'ID1'}\n"
        "print('pydicom' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=None, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_deep_nesting_without_recursion():
    depth = 2500
    sq_u = bytes.fromhex("08 00 15 11 53 51 00 00 ff ff ff ff")
    item_u = bytes.fromhex("fe ff 00 e0 ff ff ff ff")
    ends = bytes.fromhex("fe ff 0d e0 00 00 00 00 fe ff dd e0 00 00 00 00")
    data = (sq_u + item_u) * depth + el(0x00100010, "PN", "Deep^Est") + ends * depth
    ds = decode(data, EXPLICIT, max_depth=depth)
    assert ds.complete
    deepest = list(ds.walk())[-1]
    assert (deepest.value, deepest.depth) == ("Deep^Est", depth)
    assert ds.dump().splitlines()[-1].strip() == "(0010,0010) PN Patient's Name: Deep^Est"
    shallow = decode(data, EXPLICIT)  # max_depth 64
    assert shallow.status == D.WALK_DEPTH_LIMIT and "nested too deep" in shallow.problems[0]


def test_dataset_access():
    data = el(0x00080060, "CS", "MR") + el(0x00100010, "PN", "A^B")
    ds = decode(data, EXPLICIT)
    assert "Modality" in ds and 0x00100010 in ds and "PatientID" not in ds
    assert ds.get("PatientID") is None and ds.get(0x00080060).value == "MR"
    with pytest.raises(KeyError):
        ds["PatientID"]
    assert [e.keyword for e in ds] == ["Modality", "PatientName"] and len(ds) == 2
    e = ds["PatientName"]
    assert (e.offset, e.value_offset, e.length, e.vl, e.depth) == (10, 18, 3, 3, 0)
    assert e.raw == b"A^B" and e.head(2) == b"A^" and e.tag_str == "(0010,0010)"
    assert repr(e) == "<Element (0010,0010) PN Patient's Name: A^B>"
    made = D.Element(0x00100010, "PN", 3, "Patient's Name", "PatientName", "A^B")
    assert format_value(made) == "A^B"
    ds = decode(data, EXPLICIT, max_elements=1)
    assert ds.status == D.WALK_ELEMENT_LIMIT and len(ds) == 1
