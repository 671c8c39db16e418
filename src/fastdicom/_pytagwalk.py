"""Pure-Python twin of the data set tag-header walker (``_tagwalk.pxi``).

``walk_dataset`` reads the element headers of one encoded data set (or command
set) and reports where every element, sequence, item and pixel data fragment
lies, without decoding any value.  Both twins give identical results for any
input, malformed or not; the differential tests hold them to that.

Encodings walked (PS3.5 7.1)::

    implicit VR little endian    tag(4) length(4)                   value
    explicit VR, 2-byte length   tag(4) VR(2) length(2)             value
    explicit VR, 4-byte length   tag(4) VR(2) 00 00 length(4)       value
                                 (OB OD OF OL OV OW SQ SV UC UN UR UT UV)
    item / delimitation items    tag(4) length(4)    (FFFE,E000 / E00D / E0DD)

A tag is group then element, each a 16-bit number in the syntax's byte order;
it is reported as ``group << 16 | element``.  An explicit VR is reported as its
two bytes packed ``b0 << 8 | b1`` ("OB" -> 0x4F42); 0 when implicit.

Sequences (PS3.5 7.5) and encapsulated pixel data (A.4)::

    (gggg,eeee) SQ len      W_SEQUENCE          depth d
      (FFFE,E000) len       W_ITEM              depth d+1
        elements            W_ELEMENT, ...      depth d+1
      (FFFE,E00D) 0         W_ITEM_END          depth d+1  (or at a defined end)
    (FFFE,E0DD) 0           W_SEQUENCE_END      depth d    (or at a defined end)

    (7FE0,0010) OB FFFFFFFF W_PIXEL_FRAGMENTS   depth d
      (FFFE,E000) len       W_FRAGMENT          depth d+1  (the first: offset table)
    (FFFE,E0DD) 0           W_SEQUENCE_END      depth d

An end reached through a defined length has no header of its own: its
``header_offset`` equals its ``value_offset`` (the end) and ``vl`` is 0.  The
``value_length`` of an undefined-length sequence or item is first the bytes its
container leaves it, then, once its delimiter is found, its content length
(delimiter excluded).

What opens a sequence:
  * explicit VR SQ (any length);
  * explicit VR UN of undefined length: its content is implicit VR little
    endian whatever the transfer syntax (PS3.5 6.2.2);
  * implicit VR: an undefined length, a tag in ``sq_tags``, or a private data
    element (odd group, element > 00FF) whose value starts with an item tag
    whose length fits in the value.
Encapsulated pixel data: explicit OB/OW of undefined length, or (7FE0,0010)
of undefined length in implicit VR.  Any other explicit VR of undefined length
is malformed.  ``syntax`` values other than 0 and 2 walk as explicit VR LE.

How the walk ends (``status``, ``status_offset``):
  * WALK_OK at the buffer's end, with no container open;
  * WALK_TRUNCATED where the buffer ends inside a header (offset: that header),
    inside a value (the element is reported with the bytes present; offset: its
    header), or with a container open (offset: the buffer's end);
  * WALK_MALFORMED at a header that: has invalid VR bytes, is not an item where
    only items belong (or an item where none belongs), is a delimiter that does
    not close what is open, or declares a length overrunning the defined-length
    container it is in (reported with the bytes its container holds);
  * WALK_DEPTH_LIMIT at a sequence that would put items deeper than max_depth;
  * WALK_ELEMENT_LIMIT where a tuple beyond max_elements would be reported;
  * WALK_STOPPED at the first top-level element whose tag is >= stop_tag (not
    reported).

Every step advances by at least one 8-byte header, so the walk ends; lengths
are only compared, never used to allocate.
"""

from __future__ import annotations

# --- element kinds (same values in _tagwalk.pxi) ---------------------------
W_ELEMENT = 0
W_SEQUENCE = 1
W_ITEM = 2
W_ITEM_END = 3
W_SEQUENCE_END = 4
W_PIXEL_FRAGMENTS = 5
W_FRAGMENT = 6

# --- walk statuses ----------------------------------------------------------
WALK_OK = 0
WALK_TRUNCATED = 1  # the buffer ends inside a header or a value
WALK_MALFORMED = 2  # bad VR, bad item structure, a length overrunning its container
WALK_DEPTH_LIMIT = 3
WALK_ELEMENT_LIMIT = 4
WALK_STOPPED = 5  # a top-level tag >= stop_tag

# --- walk syntaxes ----------------------------------------------------------
SYNTAX_IMPLICIT_LE = 0
SYNTAX_EXPLICIT_LE = 1
SYNTAX_EXPLICIT_BE = 2

UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITATION = 0xFFFEE00D
SEQUENCE_DELIMITATION = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010

VR_SQ = 0x5351
VR_UN = 0x554E
VR_OB = 0x4F42
VR_OW = 0x4F57

# VR classes: the length field's size and what an undefined length means
VRK_INVALID, VRK_SHORT, VRK_LONG, VRK_SQ, VRK_UN, VRK_OBW = range(6)

SHORT_VRS = ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO",
             "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US")
LONG_VRS = ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR",
            "UT", "UV")


def _vr_class_table():
    table = {}
    for v in SHORT_VRS:
        table[(ord(v[0]) << 8) | ord(v[1])] = VRK_SHORT
    for v in LONG_VRS:
        table[(ord(v[0]) << 8) | ord(v[1])] = VRK_LONG
    table[VR_SQ] = VRK_SQ
    table[VR_UN] = VRK_UN
    table[VR_OB] = table[VR_OW] = VRK_OBW
    return table


VR_CLASS = _vr_class_table()

# container frames
_F_TOP, _F_SEQ, _F_ITEM, _F_FRAG = range(4)
_NO_LIMIT = 1 << 62


class _Frame:
    """One open container.  ``limit`` is the hard end: the container's own end
    when ``defined``, else inherited from the enclosing container."""

    __slots__ = ("kind", "limit", "defined", "syntax", "depth", "index", "start")

    def __init__(self, kind, limit, defined, syntax, depth, index, start):
        self.kind = kind
        self.limit = limit
        self.defined = defined
        self.syntax = syntax
        self.depth = depth  # depth of what this container holds
        self.index = index  # index of the opening tuple in elements (-1: none)
        self.start = start  # value offset of the opening element


def _u16(b, p, big):
    return (b[p] << 8) | b[p + 1] if big else b[p] | (b[p + 1] << 8)


def _u32(b, p, big):
    if big:
        return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]
    return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)


def _implicit_private_sq(b, n, tag, vo, vl):
    """A private element (implicit VR, defined length) whose value opens with an
    item tag whose length fits: treated as a sequence, as pydicom does."""
    if not (tag >> 16) & 1 or (tag & 0xFFFF) <= 0x00FF or vl < 8 or vo + 8 > n:
        return False
    if _u16(b, vo, False) != 0xFFFE or _u16(b, vo + 2, False) != 0xE000:
        return False
    il = _u32(b, vo + 4, False)
    return il == UNDEFINED_LENGTH or il <= vl - 8


def walk_dataset(buf, syntax, sq_tags=frozenset(), max_depth=64,
                 max_elements=1_000_000, stop_tag=0xFFFFFFFF, keep=None):
    """Walk the element headers of one encoded data set.

    Returns ``(elements, status, status_offset)``; ``elements`` is a list of
    ``(depth, kind, tag, vr, vl, header_offset, value_offset, value_length)``.
    ``syntax``: 0 implicit VR LE, 1 explicit VR LE, 2 explicit VR BE.
    ``sq_tags`` (implicit VR only): tags the dictionary says are SQ.
    ``keep`` (a set of tags, or None for every element): list only the
    top-level data elements (depth 0, W_ELEMENT) whose tag is in it; the
    walk, its status and its offset are the same (``max_elements`` still
    counts every element), only the other tuples are not made.
    Never raises on malformed input.
    """
    out, status, offset = _walk_all(buf, syntax, sq_tags, max_depth, max_elements, stop_tag)
    if keep is not None:
        out = [e for e in out if e[0] == 0 and e[1] == W_ELEMENT and e[2] in keep]
    return out, status, offset


def _walk_all(buf, syntax, sq_tags, max_depth, max_elements, stop_tag):
    """``walk_dataset`` with a tuple for every element."""
    b = buf if isinstance(buf, bytes) else bytes(buf)
    if not sq_tags:
        sq_tags = ()
    n = len(b)
    out = []
    stack = [_Frame(_F_TOP, _NO_LIMIT, False, syntax, 0, -1, 0)]
    p = 0

    def result(status, offset):
        return out, status, offset

    while True:
        f = stack[-1]
        lim = f.limit

        # --- the end of a defined-length container: an implicit end marker
        if f.defined and p == lim:
            if len(out) >= max_elements:
                return result(WALK_ELEMENT_LIMIT, p)
            if f.kind == _F_ITEM:
                out.append((f.depth, W_ITEM_END, ITEM_DELIMITATION, 0, 0, p, p, 0))
            else:
                out.append((f.depth - 1, W_SEQUENCE_END, SEQUENCE_DELIMITATION,
                            0, 0, p, p, 0))
            stack.pop()
            continue
        if p >= n:
            if f.kind == _F_TOP:
                return result(WALK_OK, p)
            return result(WALK_TRUNCATED, p)

        # --- the tag
        if p + 4 > lim:
            return result(WALK_MALFORMED, p)
        if p + 4 > n:
            return result(WALK_TRUNCATED, p)
        syn = f.syntax
        big = syn == SYNTAX_EXPLICIT_BE
        tag = (_u16(b, p, big) << 16) | _u16(b, p + 2, big)

        if tag >> 16 == 0xFFFE:
            # item, item delimitation, sequence delimitation: tag + 4-byte length
            if p + 8 > lim:
                return result(WALK_MALFORMED, p)
            if p + 8 > n:
                return result(WALK_TRUNCATED, p)
            vl = _u32(b, p + 4, big)
            vo = p + 8
            kind = f.kind
            if tag == ITEM and (kind == _F_SEQ or kind == _F_FRAG):
                if vl == UNDEFINED_LENGTH:
                    if kind == _F_FRAG:
                        return result(WALK_MALFORMED, p)
                    if len(out) >= max_elements:
                        return result(WALK_ELEMENT_LIMIT, p)
                    out.append((f.depth, W_ITEM, tag, 0, vl, p, vo, min(lim, n) - vo))
                    stack.append(_Frame(_F_ITEM, lim, False, syn, f.depth,
                                        len(out) - 1, vo))
                    p = vo
                    continue
                end = vo + vl
                if len(out) >= max_elements:
                    return result(WALK_ELEMENT_LIMIT, p)
                wkind = W_FRAGMENT if kind == _F_FRAG else W_ITEM
                out.append((f.depth, wkind, tag, 0, vl, p, vo, min(end, lim, n) - vo))
                if end > lim:
                    return result(WALK_MALFORMED, p)
                if kind == _F_FRAG:
                    if end > n:
                        return result(WALK_TRUNCATED, p)
                    p = end
                else:
                    stack.append(_Frame(_F_ITEM, end, True, syn, f.depth,
                                        len(out) - 1, vo))
                    p = vo
                continue
            if tag == SEQUENCE_DELIMITATION and (kind == _F_SEQ or kind == _F_FRAG) \
                    and not f.defined:
                if len(out) >= max_elements:
                    return result(WALK_ELEMENT_LIMIT, p)
                out.append((f.depth - 1, W_SEQUENCE_END, tag, 0, vl, p, vo, 0))
                _close(out, f, p)
                stack.pop()
                p = vo
                continue
            if tag == ITEM_DELIMITATION and kind == _F_ITEM and not f.defined:
                if len(out) >= max_elements:
                    return result(WALK_ELEMENT_LIMIT, p)
                out.append((f.depth, W_ITEM_END, tag, 0, vl, p, vo, 0))
                _close(out, f, p)
                stack.pop()
                p = vo
                continue
            return result(WALK_MALFORMED, p)

        # --- a data element
        if f.kind == _F_SEQ or f.kind == _F_FRAG:
            return result(WALK_MALFORMED, p)  # only items belong here
        if f.kind == _F_TOP and tag >= stop_tag:
            return result(WALK_STOPPED, p)

        child_syntax = syn
        if syn == SYNTAX_IMPLICIT_LE:
            if p + 8 > lim:
                return result(WALK_MALFORMED, p)
            if p + 8 > n:
                return result(WALK_TRUNCATED, p)
            vr = 0
            vl = _u32(b, p + 4, False)
            vo = p + 8
            if vl == UNDEFINED_LENGTH:
                wkind = W_PIXEL_FRAGMENTS if tag == PIXEL_DATA else W_SEQUENCE
            elif tag in sq_tags or _implicit_private_sq(b, n, tag, vo, vl):
                wkind = W_SEQUENCE
            else:
                wkind = W_ELEMENT
        else:
            if p + 6 > lim:
                return result(WALK_MALFORMED, p)
            if p + 6 > n:
                return result(WALK_TRUNCATED, p)
            vr = (b[p + 4] << 8) | b[p + 5]
            vrk = VR_CLASS.get(vr, VRK_INVALID)
            if vrk == VRK_INVALID:
                return result(WALK_MALFORMED, p)
            if vrk == VRK_SHORT:
                if p + 8 > lim:
                    return result(WALK_MALFORMED, p)
                if p + 8 > n:
                    return result(WALK_TRUNCATED, p)
                vl = _u16(b, p + 6, big)
                vo = p + 8
                wkind = W_ELEMENT
            else:
                if p + 12 > lim:
                    return result(WALK_MALFORMED, p)
                if p + 12 > n:
                    return result(WALK_TRUNCATED, p)
                vl = _u32(b, p + 8, big)
                vo = p + 12
                if vrk == VRK_SQ:
                    wkind = W_SEQUENCE
                elif vl != UNDEFINED_LENGTH:
                    wkind = W_ELEMENT
                elif vrk == VRK_UN:
                    wkind = W_SEQUENCE
                    child_syntax = SYNTAX_IMPLICIT_LE
                elif vrk == VRK_OBW:
                    wkind = W_PIXEL_FRAGMENTS
                else:
                    return result(WALK_MALFORMED, p)  # undefined length not allowed

        if wkind == W_ELEMENT:
            end = vo + vl
            if len(out) >= max_elements:
                return result(WALK_ELEMENT_LIMIT, p)
            out.append((f.depth, W_ELEMENT, tag, vr, vl, p, vo, min(end, lim, n) - vo))
            if end > lim:
                return result(WALK_MALFORMED, p)
            if end > n:
                return result(WALK_TRUNCATED, p)
            p = end
            continue

        # --- a sequence or encapsulated pixel data opens
        if f.depth + 1 > max_depth:
            return result(WALK_DEPTH_LIMIT, p)
        if len(out) >= max_elements:
            return result(WALK_ELEMENT_LIMIT, p)
        fkind = _F_FRAG if wkind == W_PIXEL_FRAGMENTS else _F_SEQ
        if vl == UNDEFINED_LENGTH:
            out.append((f.depth, wkind, tag, vr, vl, p, vo, min(lim, n) - vo))
            stack.append(_Frame(fkind, lim, False, child_syntax, f.depth + 1,
                                len(out) - 1, vo))
        else:
            end = vo + vl
            out.append((f.depth, wkind, tag, vr, vl, p, vo, min(end, lim, n) - vo))
            if end > lim:
                return result(WALK_MALFORMED, p)
            stack.append(_Frame(fkind, end, True, child_syntax, f.depth + 1,
                                len(out) - 1, vo))
        p = vo


def _close(out, f, p):
    """An undefined-length container's delimiter at ``p``: record its content length."""
    t = out[f.index]
    out[f.index] = t[:7] + (p - f.start,)


# ------------------------------------------------------------ command sets
def command_elements(b: bytes):
    """The elements of a command set (implicit VR little endian, group 0000)::

        tag group (2) | tag element (2) | value length (4) | value ...

    Returns ``([(element, value offset, length)], end, problem)``: the walk
    stops at the end of ``b`` (``problem`` None) or at the first element that
    is cut or outside group 0000 (``problem`` is its expert info, ``end`` its
    offset)."""
    out = []
    p, n = 0, len(b)
    while p < n:
        if n - p < 8:
            return out, p, ("dicom.data.tag.missing", {"what": "command set"})
        group = b[p] | (b[p + 1] << 8)
        elem = b[p + 2] | (b[p + 3] << 8)
        ln = int.from_bytes(b[p + 4:p + 8], "little")
        if group != 0x0000:
            return out, p, ("dicom.command.malformed",
                            {"why": f"element ({group:04x},{elem:04x}) outside group 0000"})
        if ln == 0xFFFFFFFF or p + 8 + ln > n:
            return out, p, ("dicom.data.tag.missing", {"what": f"command element (0000,{elem:04x})"})
        out.append((elem, p + 8, ln))
        p += 8 + ln
    return out, p, None


def command_values(b: bytes, spec: dict):
    """The values of a command set's elements that ``spec`` names (element
    number -> ``(name, vr)``): ``(values, bad, end, problem)``.  ``values``
    maps name -> value: an int for US and UL (from the first 2 or 4 bytes;
    none when shorter), a list of ``(group, element)`` for AT, else the
    text, ASCII with padding (NUL, space) stripped.  ``bad`` lists
    ``(element, length)`` of the non-empty US, UL and AT values of the wrong
    size, in order; ``end`` and ``problem`` are ``command_elements``'s."""
    values = {}
    bad = []
    elements, p, stop = command_elements(b)
    for elem, vo, ln in elements:
        known = spec.get(elem)
        if known is None:
            continue
        name, vr = known
        v = b[vo:vo + ln]
        if vr == "US":
            val = int.from_bytes(v[:2], "little") if ln >= 2 else None
            wrong = ln != 2
        elif vr == "UL":
            val = int.from_bytes(v[:4], "little") if ln >= 4 else None
            wrong = ln != 4
        elif vr == "AT":
            val = [(int.from_bytes(v[i:i + 2], "little"), int.from_bytes(v[i + 2:i + 4], "little"))
                   for i in range(0, ln - 3, 4)]
            wrong = ln % 4 != 0
        else:
            val = v.decode("ascii", "replace").rstrip("\x00 ").lstrip(" ")
            wrong = False
        if val is not None:
            values[name] = val
        if wrong and ln:
            bad.append((elem, ln))
    return values, bad, p, stop
