"""Decode an encoded data set (or command set) into elements people read.

``decode`` walks the element headers with ``fastdicom.core.walk_dataset`` (the
compiled walker, or its pure-Python twin with FASTDICOM_PURE_PYTHON=1), then
names each element from pydicom's dictionaries and decodes its value::

    ds = decode(buf, "1.2.840.10008.1.2.1")
    ds[0x00100010].value          # 'Doe^John'
    ds["PatientName"].name        # "Patient's Name"
    print(ds.dump())

The tree: a ``Dataset`` holds ``Element``s; a sequence element's ``children``
are ``Item``s (each a ``Dataset``); encapsulated pixel data's ``children`` are
its fragments (``Element``s, the first one the basic offset table).

Malformed input never raises: the walk stops where the structure breaks and
``Dataset.status``/``problems`` say why; an element that cannot be fully
decoded carries a ``status`` text.

pydicom is imported lazily: ``leading_values`` (run on data set heads by the
summary) needs it only for character sets beyond the single-byte and UTF-8 ones,
or for tags outside its small built-in table.
"""

from __future__ import annotations

import array
import struct
import sys
import zlib
from functools import lru_cache

from . import limits as _limits
from .core import walk_dataset
from ._pytagwalk import (
    W_ELEMENT, W_FRAGMENT, W_ITEM, W_ITEM_END, W_PIXEL_FRAGMENTS, W_SEQUENCE,
    W_SEQUENCE_END, WALK_DEPTH_LIMIT, WALK_ELEMENT_LIMIT, WALK_MALFORMED, WALK_OK,
    WALK_STOPPED, WALK_TRUNCATED,
)

__all__ = [
    "Binary", "Dataset", "DecodedDataset", "Element", "Item", "decode",
    "decode_command_set", "format_value", "inflate", "leading_values",
    "walk_syntax", "DEFAULT_LEADING_TAGS", "DEFAULT_MAX_INFLATE", "check_limits", "inflated_size",
]

# --- transfer syntaxes (PS3.5 Annex A) -------------------------------------
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
# the data set itself is deflated (RFC 1951, no zlib header): A.5, A.7 (JPIP)
DEFLATED_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.1.99",   # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.95",   # JPIP Referenced Deflate
    "1.2.840.10008.1.2.4.205",  # JPIP HTJ2K Referenced Deflate
})
IMPLICIT_SYNTAXES = frozenset({
    IMPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.113619.5.2",   # GE Private Implicit VR Little Endian (big endian pixels)
    "1.2.840.10008.1.20",   # Papyrus 3 Implicit VR Little Endian (retired)
})
DEFAULT_MAX_INFLATE = _limits.DEFAULT_MAX_INFLATE

SYNTAX_IMPLICIT_LE, SYNTAX_EXPLICIT_LE, SYNTAX_EXPLICIT_BE = 0, 1, 2

STATUS_TEXT = {
    WALK_OK: "complete",
    WALK_TRUNCATED: "truncated",
    WALK_MALFORMED: "malformed",
    WALK_DEPTH_LIMIT: "sequences nested too deep",
    WALK_ELEMENT_LIMIT: "too many elements",
    WALK_STOPPED: "stopped at the requested tag",
}

SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_REPRESENTATION = 0x00280103

DEFAULT_LEADING_TAGS = (
    0x00080016,  # SOP Class UID
    0x00080018,  # SOP Instance UID
    0x00080020,  # Study Date
    0x00080050,  # Accession Number
    0x00080060,  # Modality
    0x00081030,  # Study Description
    0x0008103E,  # Series Description
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x0020000D,  # Study Instance UID
    0x0020000E,  # Series Instance UID
)

# VRs of the leading tags, so that implicit VR needs no dictionary for them
_KNOWN_VR = {
    0x00080005: "CS", 0x00080008: "CS", 0x00080016: "UI", 0x00080018: "UI",
    0x00080020: "DA", 0x00080021: "DA", 0x00080030: "TM", 0x00080031: "TM",
    0x00080050: "SH", 0x00080060: "CS", 0x00080070: "LO", 0x00080080: "LO",
    0x00080090: "PN", 0x00081030: "LO", 0x0008103E: "LO", 0x00100010: "PN",
    0x00100020: "LO", 0x00100030: "DA", 0x00100040: "CS", 0x0020000D: "UI",
    0x0020000E: "UI", 0x00200010: "SH", 0x00200011: "IS", 0x00200013: "IS",
}

# --- value representations (PS3.5 6.2) -------------------------------------
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
                      "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})  # 6.1.2.3
SINGLE_VALUED_TEXT = frozenset({"LT", "ST", "UT", "UR"})  # backslash is text
LEADING_SPACE_INSIGNIFICANT = frozenset({"AE", "CS", "DS", "IS", "LO", "SH"})
NUMERIC_VRS = {  # VR: (array type code, size)
    "US": ("H", 2), "SS": ("h", 2), "UL": ("I", 4), "SL": ("i", 4),
    "FL": ("f", 4), "FD": ("d", 8), "UV": ("Q", 8), "SV": ("q", 8), "AT": ("H", 2),
}
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})

# single-byte and UTF-8 character sets decodable without pydicom (PS3.3 C.12.1.1.2);
# no Specific Character Set means the default repertoire, read as Latin-1 as
# pydicom does, so stray 8-bit bytes still show
_PLAIN_CHARSETS = {
    "": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3", "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5", "ISO_IR 127": "iso8859_6", "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8", "ISO_IR 148": "iso8859_9", "ISO_IR 203": "iso8859_15",
    "ISO_IR 166": "tis_620", "ISO_IR 13": "shift_jis", "ISO_IR 192": "utf_8",
    "GB18030": "gb18030", "GBK": "gbk",
}
_ESC = 0x1B


# --- element classes -----------------------------------------------------------

class Binary:
    """A binary value (OB OD OF OL OV OW UN), summarised: its length and first bytes.
    The element's ``raw`` has all the bytes present."""

    __slots__ = ("length", "head")

    def __init__(self, length, head):
        self.length = length
        self.head = head

    def __eq__(self, other):
        return (isinstance(other, Binary) and self.length == other.length
                and self.head == other.head)

    def __repr__(self):
        return f"Binary({self.length}, {self.head!r})"

    def __str__(self):
        if not self.length:
            return "<0 bytes>"
        more = " …" if self.length > len(self.head) else ""
        return f"<{self.length} bytes> {self.head.hex(' ')}{more}"


class Element:
    """One data element.

    ``tag``: group << 16 | element; ``vr``: the VR used to decode the value (the
    dictionary's in implicit VR, and for an explicit UN the dictionary knows);
    ``explicit_vr``: the VR written in the data ("" when implicit); ``vl``: the
    length field (0xFFFFFFFF undefined); ``offset``: where its header starts;
    ``value_offset``/``length``: where its value starts and how many of its
    bytes are present; ``value``: str or list of str (text), int/float or list
    (numbers), list of int tags (AT), ``Binary``, or None (sequences, empty
    numbers); ``children``: ``Item``s of a sequence, fragments of encapsulated
    pixel data, else None; ``private_creator``: the creator of a private
    element; ``status``: None, or why the value is incomplete or doubtful.
    """

    __slots__ = ("tag", "vr", "explicit_vr", "vl", "name", "keyword", "value",
                 "offset", "value_offset", "length", "children", "private_creator",
                 "status", "depth", "_buf")

    def __init__(self, tag, vr="", vl=0, name="", keyword="", value=None, offset=0,
                 children=None, private_creator=None, status=None, *,
                 explicit_vr="", value_offset=0, length=0, depth=0, buf=None):
        self.tag = tag
        self.vr = vr
        self.explicit_vr = explicit_vr
        self.vl = vl
        self.name = name
        self.keyword = keyword
        self.value = value
        self.offset = offset
        self.value_offset = value_offset
        self.length = length
        self.children = children
        self.private_creator = private_creator
        self.status = status
        self.depth = depth
        self._buf = buf

    @property
    def group(self):
        return self.tag >> 16

    @property
    def element(self):
        return self.tag & 0xFFFF

    @property
    def tag_str(self):
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"

    @property
    def is_private(self):
        return bool((self.tag >> 16) & 1)

    @property
    def is_sequence(self):
        return self.vr == "SQ"

    @property
    def is_undefined_length(self):
        return self.vl == 0xFFFFFFFF

    @property
    def items(self):
        """The items of a sequence (empty for anything else)."""
        return self.children if self.vr == "SQ" and self.children else []

    @property
    def raw(self):
        """The value's bytes present in the data set."""
        return self.head(self.length)

    def head(self, n):
        """The first ``n`` bytes of the value (fewer if fewer are present)."""
        if self._buf is None:
            return b""
        return bytes(self._buf[self.value_offset:self.value_offset + min(n, self.length)])

    def __repr__(self):
        return f"<Element {self.tag_str} {self.vr} {self.name}: {format_value(self)}>"


class Dataset:
    """An ordered list of elements: a whole data set, or one sequence item.
    Index it by int tag or keyword."""

    __slots__ = ("elements", "offset", "length")

    def __init__(self, elements=None, offset=0, length=0):
        self.elements = elements if elements is not None else []
        self.offset = offset  # where its first element starts
        self.length = length  # bytes of content present

    def __iter__(self):
        return iter(self.elements)

    def __len__(self):
        return len(self.elements)

    def _find(self, key):
        if isinstance(key, str):
            for e in self.elements:
                if e.keyword == key:
                    return e
        else:
            for e in self.elements:
                if e.tag == key:
                    return e
        return None

    def __getitem__(self, key):
        e = self._find(key)
        if e is None:
            raise KeyError(key)
        return e

    def __contains__(self, key):
        return self._find(key) is not None

    def get(self, key, default=None):
        e = self._find(key)
        return default if e is None else e

    def walk(self):
        """Every element, depth first, in data set order (items' elements included)."""
        stack = [iter(self.elements)]
        while stack:
            e = next(stack[-1], None)
            if e is None:
                stack.pop()
                continue
            yield e
            if e.vr == "SQ" and e.children:
                for item in reversed(e.children):
                    stack.append(iter(item.elements))

    def dump(self, max_len=64, indent="  "):
        """A text listing, one element a line, items indented."""
        lines = []
        stack = [(iter(self.elements), 0)]  # no recursion: nesting is data's choice
        while stack:
            it, level = stack[-1]
            e = next(it, None)
            if e is None:
                stack.pop()
                continue
            if isinstance(e, Item):
                lines.append(f"{indent * level}Item {e.index + 1}")
                stack.append((iter(e.elements), level + 1))
                continue
            note = f"  ! {e.status}" if e.status else ""
            lines.append(f"{indent * level}{e.tag_str} {e.vr or '--'} "
                         f"{e.name or 'Unknown'}: {format_value(e, max_len)}{note}")
            if e.vr == "SQ" and e.children:
                stack.append((iter(e.children), level + 1))
        return "\n".join(lines)


class Item(Dataset):
    """One item of a sequence: ``index`` (0-based), its header's ``header_offset``
    and length field ``vl`` (0xFFFFFFFF undefined)."""

    __slots__ = ("index", "header_offset", "vl")

    def __init__(self, index, header_offset, vl, offset, length):
        super().__init__([], offset, length)
        self.index = index
        self.header_offset = header_offset
        self.vl = vl


class DecodedDataset(Dataset):
    """The top level of a decoded data set, with how the decoding went.

    ``status``: a WALK_* code, ``status_offset`` where the walk ended,
    ``status_text`` in words; ``problems``: every doubt found (walk, inflate,
    character sets, lengths); ``data``: the bytes walked (inflated if deflated);
    ``inflate_capped``: the inflated size hit ``max_inflate``;
    ``inflate_failed``: the deflate stream is broken or cut short.
    """

    __slots__ = ("transfer_syntax_uid", "syntax", "status", "status_offset",
                 "problems", "data", "deflated", "inflate_capped", "inflate_failed")

    def __init__(self):
        super().__init__()
        self.transfer_syntax_uid = None
        self.syntax = SYNTAX_IMPLICIT_LE
        self.status = WALK_OK
        self.status_offset = 0
        self.problems = []
        self.data = b""
        self.deflated = False
        self.inflate_capped = False
        self.inflate_failed = False

    @property
    def complete(self):
        """The whole data set was walked (or up to the requested stop tag)."""
        return (self.status in (WALK_OK, WALK_STOPPED) and not self.inflate_capped
                and not self.inflate_failed)

    @property
    def status_text(self):
        text = STATUS_TEXT.get(self.status, "unknown")
        if self.status == WALK_OK:
            return text
        return f"{text} at offset {self.status_offset}"


# --- transfer syntax and inflation ---------------------------------------------

def walk_syntax(transfer_syntax_uid):
    """(walk syntax, deflated) for a transfer syntax UID: 0 implicit VR LE,
    1 explicit VR LE, 2 explicit VR BE.  ``None`` (a command set) is implicit."""
    uid = (transfer_syntax_uid or IMPLICIT_VR_LITTLE_ENDIAN).rstrip("\0 ")
    if uid in IMPLICIT_SYNTAXES:
        return SYNTAX_IMPLICIT_LE, False
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return SYNTAX_EXPLICIT_BE, False
    return SYNTAX_EXPLICIT_LE, uid in DEFLATED_SYNTAXES


class _Inflater:
    """Raw DEFLATE (RFC 1951) inflated on demand, never past ``cap`` bytes."""

    CHUNK = 64 * 1024

    def __init__(self, data, cap):
        self.src = memoryview(data)
        self.pos = 0
        self.cap = max(int(cap), 0)
        self.out = bytearray()
        self.done = False  # nothing more will come
        self.capped = False
        self.failed = False  # a deflate error, or the stream ends early
        self.problem = None
        self.zlib_wrapped = False
        self.d = zlib.decompressobj(-15)
        self.tail = b""

    def read_until(self, size):
        """Inflate until ``size`` bytes are out, the cap is hit, or the input ends."""
        while not self.done and len(self.out) < size:
            room = self.cap - len(self.out)
            if room <= 0:
                self.capped = True
                self.done = True
                break
            if self.tail:
                chunk, self.tail = self.tail, b""
            elif self.pos < len(self.src):
                chunk = bytes(self.src[self.pos:self.pos + self.CHUNK])
                self.pos += len(chunk)
            else:
                if not self.d.eof:
                    piece = self.d.decompress(b"", room)  # output held back by the cap
                    if piece:
                        self.out += piece
                        continue
                    self.problem = "deflated data set ends before its deflate stream does"
                    self.failed = True
                self.done = True
                break
            try:
                piece = self.d.decompress(chunk, min(room, max(size - len(self.out), 1 << 16)))
            except zlib.error as exc:
                if not self.out and not self.zlib_wrapped and self._looks_zlib():
                    # some senders wrap the stream in a zlib header: read it anyway
                    self.zlib_wrapped = True
                    self.d = zlib.decompressobj(15)
                    self.pos = 0
                    self.tail = b""
                    continue
                self.problem = f"deflate error after {len(self.out)} bytes: {exc}"
                self.failed = True
                self.done = True
                break
            self.out += piece
            self.tail = self.d.unconsumed_tail
            if self.d.eof:
                self.done = True
                extra = len(self.d.unused_data) + len(self.src) - self.pos
                if extra > 1 or (extra == 1 and self.src[-1] != 0):
                    # (one NUL may pad an odd length: PS3.5 A.5)
                    self.problem = f"{extra} bytes after the end of the deflate stream"
        return self.out

    def _looks_zlib(self):
        s = self.src
        return len(s) >= 2 and (s[0] & 0x0F) == 8 and ((s[0] << 8) | s[1]) % 31 == 0


def inflate(data, max_output=None):
    """Inflate a deflated data set: ``(bytes, capped, problem or None)``."""
    if max_output is None:
        max_output = _limits.max_inflate
    inf = _Inflater(data, max_output)
    out = bytes(inf.read_until(max_output + 1))
    problems = _inflate_problems(inf)
    return out, inf.capped, "; ".join(problems) or None


def inflated_size(data, cap) -> int:
    """How many bytes a deflated data set inflates to, counted without keeping
    them (memory stays flat whatever the ratio): at most ``cap + 1``, so a
    result above ``cap`` means "beyond the cap".  A zlib-wrapped stream is
    read too; a broken stream counts what came out before the break."""
    cap = max(int(cap), 0)
    src = memoryview(data)
    for wbits in (-15, 15):
        d = zlib.decompressobj(wbits)
        total = 0
        pos = 0
        try:
            while total <= cap and not d.eof:
                if d.unconsumed_tail:
                    chunk = d.unconsumed_tail
                elif pos < len(src):
                    chunk = bytes(src[pos:pos + 65536])
                    pos += len(chunk)
                else:
                    rest = d.flush()  # the input ended: what is still held back
                    total += len(rest)
                    break
                got = len(d.decompress(chunk, min(cap + 1 - total, 1 << 20) or 1))
                if not got and d.unconsumed_tail == chunk:
                    break  # no progress (cannot happen with zlib, but never spin)
                total += got
            return min(total, cap + 1)
        except zlib.error:
            if total or wbits == 15 or not (len(src) >= 2 and (src[0] & 0x0F) == 8
                                            and ((src[0] << 8) | src[1]) % 31 == 0):
                return min(total, cap + 1)
    return 0


def check_limits(head, transfer_syntax_uid, max_depth=None, max_inflate=None):
    """Does decoding this data set head hit a bound?  ``(offset, capped)``:
    the offset where sequences nest deeper than ``max_depth`` (None if they do
    not), and whether a deflated head inflates beyond ``max_inflate``.  Cheap:
    the compiled walker without the dictionary (sequences of implicit VR with
    a defined length are not descended), and counting inflation."""
    if max_depth is None:
        max_depth = _limits.max_depth
    if max_inflate is None:
        max_inflate = _limits.max_inflate
    syntax, deflated = walk_syntax(transfer_syntax_uid)
    if deflated:
        return None, inflated_size(head, max_inflate) > max_inflate
    _none, status, off = walk_dataset(head, syntax, (), max_depth, 1_000_000, 0xFFFFFFFF, _NO_TAGS)
    return (off if status == WALK_DEPTH_LIMIT else None), False


_NO_TAGS = frozenset()  # check_limits needs the walk's end, not its elements


def _inflate_problems(inf):
    out = []
    if inf.zlib_wrapped:
        out.append("deflated data set has a zlib header (PS3.5 A.5 wants raw deflate)")
    if inf.capped:
        out.append(f"inflated data set cut at {inf.cap} bytes (max_inflate)")
    if inf.problem:
        out.append(inf.problem)
    return out


def _walk(buf, syntax, inflater, *, sq_tags, max_depth, max_elements, stop_tag, keep=None):
    """Walk ``buf``, or what ``inflater`` (an ``_Inflater`` over ``buf``, or None)
    gives: only as far as ``stop_tag`` needs (``keep``: as walk_dataset's).
    Returns (data, elements, status, offset, inflate problems)."""
    if inflater is None:
        els, status, off = walk_dataset(buf, syntax, sq_tags, max_depth, max_elements,
                                        stop_tag, keep)
        return buf, els, status, off, []
    want = 64 * 1024 if stop_tag < 0xFFFFFFFF else inflater.cap + 1
    while True:
        data = inflater.read_until(want)
        els, status, off = walk_dataset(data, syntax, sq_tags, max_depth, max_elements,
                                        stop_tag, keep)
        if status != WALK_TRUNCATED or inflater.done:
            break
        want *= 4
    return bytes(data), els, status, off, _inflate_problems(inflater)


# --- dictionaries (pydicom, lazily) ---------------------------------------------

@lru_cache(maxsize=1)
def _sq_tags():
    """Tags the dictionary says are SQ: what an implicit VR walk needs."""
    from pydicom.datadict import DicomDictionary
    return frozenset(t for t, e in DicomDictionary.items() if e[0] == "SQ")


@lru_cache(maxsize=8192)
def _public_entry(tag):
    """(VR, name, keyword) of a public tag, including repeating groups (50xx, 60xx)."""
    from pydicom.datadict import get_entry
    try:
        vr, _vm, name, _retired, keyword = get_entry(tag)
        return vr, name, keyword
    except KeyError:
        if tag & 0xFFFF == 0:
            return "UL", "Group Length", ""
        return "UN", "Unknown", ""


@lru_cache(maxsize=8192)
def _private_entry(tag, creator):
    """(VR, name) of a private element from pydicom's private dictionary, or None."""
    if not creator:
        return None
    from pydicom.datadict import get_private_entry
    with _quiet():
        try:
            vr, _vm, name, _retired = get_private_entry(tag, creator)
        except (KeyError, ValueError):
            return None
    return vr, name


def _entry(tag, creator):
    """(VR, name, keyword) for any tag (the VR may be ambiguous: "US or SS")."""
    group, elem = tag >> 16, tag & 0xFFFF
    if group & 1 and group > 0x0008 and group != 0xFFFF:  # private group (PS3.5 7.8)
        if elem == 0:
            return "UL", "Private Group Length", ""
        if 0x0010 <= elem <= 0x00FF:
            return "LO", "Private Creator", ""
        entry = _private_entry(tag, creator) if elem > 0x00FF else None
        if entry:
            return entry[0], entry[1], ""
        return "UN", "Private tag data", ""
    return _public_entry(tag)


@lru_cache(maxsize=1)
def _uid_names():
    from pydicom._uid_dict import UID_dictionary
    return UID_dictionary


def uid_name(uid):
    """The standard's name of a UID ("CT Image Storage"), or ""."""
    entry = _uid_names().get(uid)
    return entry[0] if entry else ""


_quiet_filter = None


def _install_quiet_filter():
    """A filter on pydicom's logger dropping its records while a thread is
    inside ``_quiet`` (the problems are reported on the element instead)."""
    global _quiet_filter
    import logging
    import threading

    class QuietFilter(logging.Filter):
        def __init__(self):
            super().__init__()
            self.local = threading.local()

        def filter(self, record):
            return not getattr(self.local, "quiet", 0)

    _quiet_filter = QuietFilter()
    logging.getLogger("pydicom").addFilter(_quiet_filter)


class _quiet:
    """Context: pydicom's warnings and log records are captured, not shown."""

    def __enter__(self):
        import warnings
        if _quiet_filter is None:
            _install_quiet_filter()
        _quiet_filter.local.quiet = getattr(_quiet_filter.local, "quiet", 0) + 1
        self.cw = warnings.catch_warnings(record=True)
        self.caught = self.cw.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self.cw.__exit__(*exc)
        _quiet_filter.local.quiet -= 1
        return False

    @property
    def messages(self):
        return [str(w.message) for w in self.caught]


# --- character sets (PS3.5 6.1, PS3.3 C.12.1.1.2) --------------------------------

class _Charset:
    """The Specific Character Set in force: its DICOM terms and Python codecs."""

    __slots__ = ("terms", "codecs", "plain", "problem")

    def __init__(self, terms):
        self.terms = terms
        self.problem = None
        if len(terms) <= 1 and (terms[0] if terms else "") in _PLAIN_CHARSETS:
            self.codecs = [_PLAIN_CHARSETS[terms[0] if terms else ""]]
            self.plain = True
            return
        self.plain = False
        from pydicom.charset import convert_encodings
        with _quiet() as q:
            try:
                self.codecs = convert_encodings(list(terms) or [""])
            except (LookupError, ValueError) as exc:
                self.codecs = ["latin_1"]
                self.problem = str(exc)
        if q.messages:
            self.problem = "; ".join(q.messages)

    @property
    def label(self):
        return "\\".join(self.terms) or "default repertoire"


_DEFAULT_CHARSET = None


def _default_charset():
    global _DEFAULT_CHARSET
    if _DEFAULT_CHARSET is None:
        _DEFAULT_CHARSET = _Charset([])
    return _DEFAULT_CHARSET


def _charset_from_raw(raw):
    terms = [t.strip(" \0") for t in raw.decode("latin_1").split("\\")]
    # an empty first value is the default repertoire (code extensions follow)
    while len(terms) > 1 and terms[-1] == "":
        terms.pop()
    if terms == [""]:
        terms = []
    return _Charset(terms)


def _decode_chars(raw, cs, delims):
    """Bytes -> str with a character set; (text, problem or None).  Values with
    ISO 2022 escape sequences go through pydicom's decoder."""
    if cs.plain or (_ESC not in raw and len(cs.codecs) == 1):
        codec = cs.codecs[0]
        try:
            return raw.decode(codec), None
        except UnicodeDecodeError as exc:
            return (raw.decode(codec, errors="replace"),
                    f"cannot decode with {cs.label}: {exc.reason} at byte {exc.start}")
        except LookupError:
            return raw.decode("latin_1"), f"unknown character set {cs.label}"
    from pydicom.charset import decode_bytes
    with _quiet() as q:
        try:
            text = decode_bytes(raw, cs.codecs, delims)
        except Exception as exc:  # pydicom raising in strict modes: never ours to raise
            return raw.decode("latin_1", errors="replace"), f"cannot decode: {exc}"
    if q.messages:
        return text, f"cannot decode with {cs.label}: {q.messages[0]}"
    return text, None


_PN_DELIMS = {0x5E}  # '^' resets code extensions in a name component
_TEXT_DELIMS = {0x0D, 0x0A, 0x09, 0x0C}


def _decode_text(raw, vr, cs):
    """A text value -> (str or list of str, problem).  Padding stripped per VR."""
    problem = None
    if vr in CHARSET_VRS:
        if vr == "PN":
            values = []
            for v in raw.split(b"\\"):
                v = v.rstrip(b" \0")
                parts = []
                for comp in v.split(b"="):
                    t, p = _decode_chars(comp, cs, _PN_DELIMS)
                    problem = problem or p
                    parts.append(t)
                while len(parts) > 1 and not parts[-1]:
                    parts.pop()  # empty trailing component groups (PS3.5 6.2.1.1)
                values.append("=".join(parts))
        elif vr in SINGLE_VALUED_TEXT:
            t, problem = _decode_chars(raw, cs, _TEXT_DELIMS)
            values = [t]
        else:
            values = []
            for v in raw.split(b"\\"):
                t, p = _decode_chars(v, cs, _TEXT_DELIMS)
                problem = problem or p
                values.append(t)
    else:
        # default repertoire only; stray 8-bit bytes shown as Latin-1
        text = raw.decode("latin_1")
        values = [text] if vr in SINGLE_VALUED_TEXT else text.split("\\")
    lead = vr in LEADING_SPACE_INSIGNIFICANT
    values = [(v.strip(" \0") if lead else v.rstrip(" \0")) for v in values]
    if len(values) == 1:
        return values[0], problem
    return values, problem


def _decode_numbers(raw, vr, big):
    code, size = NUMERIC_VRS[vr]
    whole = len(raw) - len(raw) % size
    problem = None
    if whole != len(raw):
        problem = f"length {len(raw)} is not a multiple of {size}"
    arr = array.array(code, raw[:whole])
    if big != (sys.byteorder == "big"):
        arr.byteswap()
    values = arr.tolist()
    if vr == "AT":
        values = [(values[k] << 16) | values[k + 1] for k in range(0, len(values) - 1, 2)]
        if len(arr) % 2:
            problem = problem or f"length {len(raw)} is not a multiple of 4"
    if not values:
        return None, problem
    return (values[0] if len(values) == 1 else values), problem


def _resolve_vr(vr, ctx):
    """An ambiguous dictionary VR ("US or SS", "OB or OW") resolved for display."""
    if " or " not in vr:
        return vr
    options = vr.split(" or ")
    if "US" in options and "SS" in options:
        return "SS" if ctx.pixel_representation == 1 else "US"
    if "OW" in options:
        return "OW"
    return options[0]


def decode_value(raw, vr, cs, big=False):
    """Decode one value's bytes as ``vr``: (value, problem or None)."""
    if vr in TEXT_VRS:
        return _decode_text(raw, vr, cs)
    if vr in NUMERIC_VRS:
        return _decode_numbers(raw, vr, big)
    if vr == "SQ":
        return None, None
    return Binary(len(raw), bytes(raw[:16])), None


# --- building the tree ------------------------------------------------------------

class _Ctx:
    """What a data set level passes down to its items."""

    __slots__ = ("charset", "pixel_representation", "syntax")

    def __init__(self, charset, pixel_representation, syntax):
        self.charset = charset
        self.pixel_representation = pixel_representation
        self.syntax = syntax


def _build(root, els, buf, shift=0, base_depth=0):
    """Flat walker tuples -> the tree under ``root`` (a Dataset).  Elements get
    their explicit VR text; names and values come later, level by level.
    Returns ``root``."""
    stack = [root]  # Datasets and containers (Elements) being filled
    for depth, kind, tag, vr, vl, ho, vo, vlen in els:
        cur = stack[-1]
        if kind == W_ELEMENT or kind == W_SEQUENCE or kind == W_PIXEL_FRAGMENTS:
            e = Element(tag, "", vl, offset=ho + shift, value_offset=vo + shift,
                        length=vlen, depth=depth + base_depth, buf=buf,
                        explicit_vr=chr(vr >> 8) + chr(vr & 0xFF) if vr else "")
            cur.elements.append(e)
            if kind != W_ELEMENT:
                e.children = []
                e.vr = "SQ" if kind == W_SEQUENCE else (e.explicit_vr or "OB")
                stack.append(e)
        elif kind == W_ITEM:
            item = Item(len(cur.children), ho + shift, vl, vo + shift, vlen)
            cur.children.append(item)
            stack.append(item)
        elif kind == W_FRAGMENT:
            index = len(cur.children)
            cur.children.append(Element(
                tag, "", vl, "Basic Offset Table" if index == 0 else f"Fragment {index}",
                offset=ho + shift, value_offset=vo + shift, length=vlen,
                depth=depth + base_depth, buf=buf))
        elif kind == W_ITEM_END or kind == W_SEQUENCE_END:
            stack.pop()
    return root


def _decode_level(ds, ctx, max_depth, problems, status_offset, status):
    """Name and decode the elements of one level; returns [(item, ctx)] to do next."""
    buf_big = ctx.syntax == SYNTAX_EXPLICIT_BE
    # what this level declares for itself and its items
    cs = ctx.charset
    pixrep = ctx.pixel_representation
    creators = {}
    for e in ds.elements:
        if e.tag == SPECIFIC_CHARACTER_SET and e.length:
            cs = _charset_from_raw(e.raw)
            if cs.problem:
                e.status = cs.problem
        elif e.tag == PIXEL_REPRESENTATION and e.length >= 2:
            r = e.raw
            pixrep = (r[0] << 8 | r[1]) if buf_big and e.explicit_vr else (r[0] | r[1] << 8)
        elif (e.tag >> 16) & 1 and 0x0010 <= (e.tag & 0xFFFF) <= 0x00FF:
            creators[(e.tag >> 16, e.tag & 0xFF)] = e
    here = _Ctx(cs, pixrep, ctx.syntax)
    for e in creators.values():
        e.value, _p = _decode_text(e.raw, "LO", cs)
    creator_names = {k: (v.value if isinstance(v.value, str) else "") for k, v in
                     creators.items()}

    todo = []
    for e in ds.elements:
        tag = e.tag
        creator = None
        if (tag >> 16) & 1 and (tag & 0xFFFF) > 0x00FF:
            creator = creator_names.get((tag >> 16, (tag >> 8) & 0xFF))
            e.private_creator = creator
        dict_vr, e.name, e.keyword = _entry(tag, creator)
        dict_vr = _resolve_vr(dict_vr, here)
        ev = e.explicit_vr
        if e.children is not None:  # sequence or encapsulated pixel data
            if e.vr == "SQ":
                child_syntax = SYNTAX_IMPLICIT_LE if ev == "UN" else ctx.syntax
                for item in e.children:
                    todo.append((item, _Ctx(cs, pixrep, child_syntax)))
            else:
                for frag in e.children:
                    frag.vr = "OB"
                    frag.value = Binary(frag.length, frag.head(16))
                e.value = None
            _mark(e, status, status_offset)
            continue
        # the VR to decode with: explicit, unless UN and the dictionary knows better
        # (a UN value is implicit VR little endian whatever the syntax: PS3.5 6.2.2)
        big = buf_big
        if not ev:
            vr = dict_vr
        elif ev == "UN" and dict_vr != "UN":
            vr, big = dict_vr, False
        else:
            vr = ev
        e.vr = vr
        if vr == "SQ":  # an SQ value the walker took as bytes (implicit or UN)
            _sub_walk(e, max_depth, todo, cs, pixrep, problems)
            _mark(e, status, status_offset)
            continue
        if vr in TEXT_VRS or vr in NUMERIC_VRS:
            e.value, problem = decode_value(e.raw, vr, cs, big)
        else:  # binary: summarised, never copied whole
            e.value, problem = Binary(e.length, e.head(16)), None
        if problem and not e.status:
            e.status = problem
        if e.vl != 0xFFFFFFFF and e.length < e.vl:
            e.status = f"truncated: {e.length} of {e.vl} bytes present"
        _mark(e, status, status_offset)
    return todo


def _mark(e, status, status_offset):
    """The element where the walk stopped gets the walk's reason."""
    if status in (WALK_MALFORMED, WALK_TRUNCATED) and e.offset == status_offset \
            and not e.status:
        e.status = STATUS_TEXT[status]
        if e.vl != 0xFFFFFFFF and e.length < e.vl and e.children is None:
            e.status += f": {e.length} of {e.vl} bytes present"


def _sub_walk(e, max_depth, todo, cs, pixrep, problems):
    """Read a sequence found inside a value (explicit UN, or implicit VR the
    walker had no dictionary entry for): walked as implicit VR little endian."""
    raw = e.raw
    room = max_depth - e.depth
    if room < 1:
        e.value = Binary(len(raw), raw[:16])
        e.status = "sequence nested too deep to read"
        return
    head = struct.pack("<HHI", e.tag >> 16, e.tag & 0xFFFF, len(raw))
    sq = _sq_tags()
    if e.tag not in sq:
        sq = sq | {e.tag}
    els, status, off = walk_dataset(head + raw, SYNTAX_IMPLICIT_LE, sq, room,
                                    1_000_000, 0xFFFFFFFF)
    holder = Dataset()
    _build(holder, els, e._buf, shift=e.value_offset - 8, base_depth=e.depth)
    if not holder.elements or holder.elements[0].children is None:
        e.value = Binary(len(raw), raw[:16])
        e.status = "value is not a sequence of items"
        return
    inner = holder.elements[0]
    e.children = inner.children
    for item in e.children:
        todo.append((item, _Ctx(cs, pixrep, SYNTAX_IMPLICIT_LE)))
    if status != WALK_OK:
        e.status = f"sequence in value {STATUS_TEXT[status]} at offset " \
                   f"{off - 8 + e.value_offset}"


def decode(buf, transfer_syntax_uid, *, max_depth=None, stop_tag=None,
           max_inflate=None, max_elements=1_000_000):
    """Decode one encoded data set.

    ``transfer_syntax_uid``: the presentation context's transfer syntax (None:
    a command set, implicit VR little endian).  A deflated syntax is inflated
    first, never past ``max_inflate`` bytes.  ``stop_tag``: stop at the first
    top-level element whose tag is >= it.  Returns a ``DecodedDataset``.
    """
    syntax, deflated = walk_syntax(transfer_syntax_uid)
    top = DecodedDataset()
    top.transfer_syntax_uid = transfer_syntax_uid
    top.syntax = syntax
    top.deflated = deflated
    if max_depth is None:
        max_depth = _limits.max_depth
    if max_inflate is None:
        max_inflate = _limits.max_inflate
    sq = _sq_tags()  # implicit VR, and implicit content of UN sequences
    stop = 0xFFFFFFFF if stop_tag is None else stop_tag
    inf = _Inflater(buf, max_inflate) if deflated else None
    data, els, status, off, problems = _walk(
        buf, syntax, inf, sq_tags=sq, max_depth=max_depth,
        max_elements=max_elements, stop_tag=stop)
    top.data = data
    top.status, top.status_offset = status, off
    top.problems = list(problems)
    if inf is not None:
        top.inflate_capped, top.inflate_failed = inf.capped, inf.failed
    top.length = len(data)
    _build(top, els, data)

    # name and decode, level by level (a level's character set and pixel
    # representation apply to its items)
    todo = [(top, _Ctx(_default_charset(), 0, syntax))]
    while todo:
        ds, ctx = todo.pop()
        more = _decode_level(ds, ctx, max_depth, top.problems, off, status)
        todo.extend(reversed(more))

    if status not in (WALK_OK, WALK_STOPPED):
        top.problems.insert(0, f"data set {top.status_text}")
    for e in top.walk():
        if e.status:
            top.problems.append(f"{e.tag_str} {e.name}: {e.status}")
    return top


def decode_command_set(buf):
    """Decode a DIMSE command set (group 0000, always implicit VR little endian)."""
    return decode(buf, None)


# --- display --------------------------------------------------------------------

def _fmt_number(v, vr):
    if isinstance(v, float):
        return format(v, ".7g") if vr == "FL" else repr(v)
    return str(v)


def format_value(element, max_len=64):
    """The value as one line of text, cut to ``max_len`` characters with "…"."""
    e = element
    v = e.value
    if e.vr == "SQ":
        n = len(e.children or ())
        s = f"<{n} item{'s' if n != 1 else ''}>"
    elif e.children is not None:  # encapsulated pixel data
        n = len(e.children)
        total = sum(f.length for f in e.children)
        s = f"<encapsulated: {n} fragment{'s' if n != 1 else ''}, {total} bytes>"
    elif v is None:
        s = ""
    elif isinstance(v, Binary):
        s = str(v)
    elif e.vr == "AT":
        tags = v if isinstance(v, list) else [v]
        s = "\\".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in tags)
    elif e.vr in NUMERIC_VRS:
        vals = v if isinstance(v, list) else [v]
        s = "\\".join(_fmt_number(x, e.vr) for x in vals)
    elif isinstance(v, list):
        s = "\\".join(v)
        if e.vr == "UI":
            s = "\\".join(_with_uid_name(x) for x in v)
    else:
        s = _with_uid_name(v) if e.vr == "UI" else v
    if max_len and len(s) > max_len:
        s = s[:max(max_len - 1, 0)] + "…"
    return s


def _with_uid_name(uid):
    name = uid_name(uid) if uid else ""
    return f"{uid} ({name})" if name else uid


# --- the head of a data set, cheaply ----------------------------------------------

# leading values already decoded: (tag, VR code, walk syntax, Specific
# Character Set bytes, value bytes) -> text.  The objects of a series repeat
# all but one or two of them (patient, study, series, modality, date, SOP class).
_LEADING_CACHE: dict = {}
_LEADING_CACHE_MAX = 4096
_LEADING_CHARSETS: dict = {}  # Specific Character Set bytes -> _Charset
_LEADING_CHARSETS_MAX = 64
# tags asked for (a tuple) -> (frozenset of them, the same with Specific
# Character Set, the tag to stop at)
_LEADING_WANT: dict = {}


def _remember(cache: dict, limit: int, key, value):
    """``cache[key] = value`` in a cache emptied when it holds ``limit``."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


def leading_values(buf, transfer_syntax_uid, tags=DEFAULT_LEADING_TAGS, *,
                   max_inflate=None):
    """{tag: text} for the given top-level tags that are present, reading only
    the data set's head (the walk stops past the largest tag wanted).

    Text is decoded with the data set's Specific Character Set, padding
    stripped; values of other VRs are formatted as ``format_value`` does;
    multiple values are joined by backslashes.  Sequences give no value.
    """
    wanted = _LEADING_WANT.get(tags) if type(tags) is tuple else None
    if wanted is None:
        want = frozenset(tags)
        wanted = (want, want | {SPECIFIC_CHARACTER_SET}, max(want) + 1 if want else 0)
        if type(tags) is tuple and len(_LEADING_WANT) < 64:
            _LEADING_WANT[tags] = wanted
    want, read, stop = wanted
    if not want:
        return {}
    syntax, deflated = walk_syntax(transfer_syntax_uid)
    if max_inflate is None:
        max_inflate = _limits.max_inflate
    inf = _Inflater(buf, max_inflate) if deflated else None
    # only the tuples of the elements read are made (once per object of a summary)
    data, els, status, off, _problems = _walk(
        buf, syntax, inf, sq_tags=frozenset(), max_depth=_limits.max_depth, max_elements=1_000_000,
        stop_tag=stop, keep=read)
    charset_raw = b""
    found = {}
    for _depth, _kind, tag, vrc, _vl, _ho, vo, vlen in els:  # top-level elements in ``read``
        if tag == SPECIFIC_CHARACTER_SET:
            charset_raw = bytes(data[vo:vo + vlen])
        if tag in want:
            found[tag] = (vrc, bytes(data[vo:vo + vlen]))
    out = {}
    cache = _LEADING_CACHE
    cs = None
    for tag, (vrc, raw) in found.items():
        key = (tag, vrc, syntax, charset_raw, raw)
        text = cache.get(key)
        if text is None:
            if cs is None:
                cs = _LEADING_CHARSETS.get(charset_raw) or _remember(
                    _LEADING_CHARSETS, _LEADING_CHARSETS_MAX, charset_raw,
                    _charset_from_raw(charset_raw) if charset_raw else _default_charset())
            text = _remember(cache, _LEADING_CACHE_MAX, key, _leading_text(tag, vrc, raw, syntax, cs))
        if text is not _SEQUENCE:
            out[tag] = text
    return out


_SEQUENCE = object()  # a leading "value" that is a sequence: none is given


def _leading_text(tag, vrc, raw, syntax, cs):
    """One leading value as ``leading_values`` gives it (_SEQUENCE: none)."""
    vr = chr(vrc >> 8) + chr(vrc & 0xFF) if vrc else ""
    big = syntax == SYNTAX_EXPLICIT_BE
    if not vr or vr == "UN":
        vr = _KNOWN_VR.get(tag) or _resolve_vr(_entry(tag, None)[0], _Ctx(cs, 0, syntax))
        big = False  # implicit, or UN: little endian (PS3.5 6.2.2)
    if vr == "SQ":
        return _SEQUENCE
    value, _p = decode_value(raw, vr, cs, big)
    if vr in TEXT_VRS:
        return "\\".join(value) if isinstance(value, list) else value
    return format_value(Element(tag, vr, len(raw), value=value), 0)
