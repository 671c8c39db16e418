# Data set tag-header walker, included at the end of ``_core.pyx``.
#
# Compiled twin of ``_pytagwalk.py`` (whose docstring shows the encodings and
# the element tuples); both give identical results for any input.  The walk
# reads headers through a pointer with explicit endian helpers, keeps its
# container stack in a C array, and builds one Python tuple per element.

from cpython.mem cimport PyMem_Malloc, PyMem_Free

# --- element kinds (same values in _pytagwalk.py) --------------------------
W_ELEMENT = 0
W_SEQUENCE = 1
W_ITEM = 2
W_ITEM_END = 3
W_SEQUENCE_END = 4
W_PIXEL_FRAGMENTS = 5
W_FRAGMENT = 6

# --- walk statuses ----------------------------------------------------------
WALK_OK = 0
WALK_TRUNCATED = 1
WALK_MALFORMED = 2
WALK_DEPTH_LIMIT = 3
WALK_ELEMENT_LIMIT = 4
WALK_STOPPED = 5

cdef enum:
    _TW_ELEMENT = 0
    _TW_SEQUENCE = 1
    _TW_ITEM = 2
    _TW_ITEM_END = 3
    _TW_SEQUENCE_END = 4
    _TW_PIXEL_FRAGMENTS = 5
    _TW_FRAGMENT = 6

    _TW_OK = 0
    _TW_TRUNCATED = 1
    _TW_MALFORMED = 2
    _TW_DEPTH_LIMIT = 3
    _TW_ELEMENT_LIMIT = 4
    _TW_STOPPED = 5

    # container frames
    _TW_F_TOP = 0
    _TW_F_SEQ = 1
    _TW_F_ITEM = 2
    _TW_F_FRAG = 3

    # VR classes
    _TW_VRK_INVALID = 0
    _TW_VRK_SHORT = 1
    _TW_VRK_LONG = 2
    _TW_VRK_SQ = 3
    _TW_VRK_UN = 4
    _TW_VRK_OBW = 5

cdef unsigned int _TW_UNDEFINED = 0xFFFFFFFFu
cdef unsigned int _TW_ITEM_TAG = 0xFFFEE000u
cdef unsigned int _TW_ITEM_DELIM = 0xFFFEE00Du
cdef unsigned int _TW_SEQ_DELIM = 0xFFFEE0DDu
cdef unsigned int _TW_PIXEL_DATA = 0x7FE00010u
cdef long long _TW_NO_LIMIT = (<long long>1) << 62

ctypedef struct _tw_frame:
    int kind
    bint defined
    int syntax
    long long limit   # hard end: own end when defined, else the container's
    long long depth   # depth of what this container holds
    long long index   # index of the opening tuple in the element list (-1: none)
    long long start   # value offset of the opening element

# VR class by (b0 - 'A') * 26 + (b1 - 'A'); both bytes must be 'A'..'Z'
cdef unsigned char _tw_vr_class[676]


def _tw_init_vr_table():
    cdef int i
    for i in range(676):
        _tw_vr_class[i] = _TW_VRK_INVALID
    for v in ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO",
              "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"):
        _tw_vr_class[(ord(v[0]) - 65) * 26 + ord(v[1]) - 65] = _TW_VRK_SHORT
    for v in ("OD", "OF", "OL", "OV", "SV", "UC", "UR", "UT", "UV"):
        _tw_vr_class[(ord(v[0]) - 65) * 26 + ord(v[1]) - 65] = _TW_VRK_LONG
    _tw_vr_class[(ord("S") - 65) * 26 + ord("Q") - 65] = _TW_VRK_SQ
    _tw_vr_class[(ord("U") - 65) * 26 + ord("N") - 65] = _TW_VRK_UN
    _tw_vr_class[(ord("O") - 65) * 26 + ord("B") - 65] = _TW_VRK_OBW
    _tw_vr_class[(ord("O") - 65) * 26 + ord("W") - 65] = _TW_VRK_OBW


_tw_init_vr_table()


cdef inline unsigned int _tw_u16(const unsigned char* q, bint big) noexcept nogil:
    if big:
        return (<unsigned int>q[0] << 8) | q[1]
    return q[0] | (<unsigned int>q[1] << 8)


cdef inline unsigned int _tw_u32(const unsigned char* q, bint big) noexcept nogil:
    if big:
        return ((<unsigned int>q[0] << 24) | (<unsigned int>q[1] << 16)
                | (<unsigned int>q[2] << 8) | q[3])
    return (q[0] | (<unsigned int>q[1] << 8) | (<unsigned int>q[2] << 16)
            | (<unsigned int>q[3] << 24))


cdef inline int _tw_vr_kind(unsigned int b0, unsigned int b1) noexcept nogil:
    if b0 < 65 or b0 > 90 or b1 < 65 or b1 > 90:
        return _TW_VRK_INVALID
    return _tw_vr_class[(b0 - 65) * 26 + (b1 - 65)]


cdef inline long long _tw_min3(long long a, long long b, long long c) noexcept nogil:
    if b < a:
        a = b
    if c < a:
        a = c
    return a


cdef inline bint _tw_private_sq(const unsigned char* b, long long n, unsigned int tag,
                                long long vo, unsigned int vl) noexcept nogil:
    """Implicit VR: a private element whose value opens with an item tag that fits."""
    cdef unsigned int il
    if not ((tag >> 16) & 1) or (tag & 0xFFFF) <= 0x00FF or vl < 8 or vo + 8 > n:
        return False
    if _tw_u16(b + vo, False) != 0xFFFE or _tw_u16(b + vo + 2, False) != 0xE000:
        return False
    il = _tw_u32(b + vo + 4, False)
    return il == _TW_UNDEFINED or il <= vl - 8


def walk_dataset(const unsigned char[::1] buf, int syntax, sq_tags=frozenset(),
                 long long max_depth=64, long long max_elements=1_000_000,
                 long long stop_tag=0xFFFFFFFF, keep=None):
    """Walk the element headers of one encoded data set (see ``_pytagwalk``).
    ``syntax``: 0 implicit VR LE, 1 explicit VR LE, 2 explicit VR BE.
    ``elements``: ``(depth, kind, tag, vr, vl, header_offset, value_offset,
    value_length)`` tuples.  Returns ``(elements, status, status_offset)``.
    ``keep``: as the twin's (only these top-level elements are listed; the
    others are walked and counted, but no tuple is made for them).
    Never raises on malformed input.
    """
    cdef long long n = buf.shape[0]
    cdef const unsigned char* b = &buf[0] if n > 0 else NULL
    cdef list out = []
    cdef long long count = 0
    cdef bint check_sq = sq_tags is not None and len(sq_tags) > 0
    cdef bint every = keep is None  # a tuple for every element (else only the top-level ones in keep)
    cdef long long cap = max_depth if max_depth > 0 else 0
    if cap > n // 8 + 1:
        cap = n // 8 + 1
    cap = 2 * cap + 3
    cdef _tw_frame* stack = <_tw_frame*>PyMem_Malloc(cap * sizeof(_tw_frame))
    if stack == NULL:
        raise MemoryError()
    cdef long long sp = 0
    cdef _tw_frame* f
    cdef long long p = 0, lim, vo, end, vlen
    cdef unsigned int tag, vl, vr
    cdef int syn, child_syntax, kind, wkind, vrk, status = _TW_OK, fkind
    cdef bint big
    cdef object t

    stack[0].kind = _TW_F_TOP
    stack[0].defined = False
    stack[0].syntax = syntax
    stack[0].limit = _TW_NO_LIMIT
    stack[0].depth = 0
    stack[0].index = -1
    stack[0].start = 0
    try:
        while True:
            f = &stack[sp]
            lim = f.limit

            # --- the end of a defined-length container: an implicit end marker
            if f.defined and p == lim:
                if count >= max_elements:
                    status = _TW_ELEMENT_LIMIT
                    break
                if every:
                    if f.kind == _TW_F_ITEM:
                        out.append((f.depth, _TW_ITEM_END, _TW_ITEM_DELIM, 0, 0, p, p, 0))
                    else:
                        out.append((f.depth - 1, _TW_SEQUENCE_END, _TW_SEQ_DELIM,
                                    0, 0, p, p, 0))
                count += 1
                sp -= 1
                continue
            if p >= n:
                status = _TW_OK if f.kind == _TW_F_TOP else _TW_TRUNCATED
                break

            # --- the tag
            if p + 4 > lim:
                status = _TW_MALFORMED
                break
            if p + 4 > n:
                status = _TW_TRUNCATED
                break
            syn = f.syntax
            big = syn == 2
            tag = (_tw_u16(b + p, big) << 16) | _tw_u16(b + p + 2, big)

            if (tag >> 16) == 0xFFFE:
                # item, item delimitation, sequence delimitation: tag + 4-byte length
                if p + 8 > lim:
                    status = _TW_MALFORMED
                    break
                if p + 8 > n:
                    status = _TW_TRUNCATED
                    break
                vl = _tw_u32(b + p + 4, big)
                vo = p + 8
                kind = f.kind
                if tag == _TW_ITEM_TAG and (kind == _TW_F_SEQ or kind == _TW_F_FRAG):
                    if vl == _TW_UNDEFINED:
                        if kind == _TW_F_FRAG:
                            status = _TW_MALFORMED
                            break
                        if count >= max_elements:
                            status = _TW_ELEMENT_LIMIT
                            break
                        vlen = (lim if lim < n else n) - vo
                        if every:
                            out.append((f.depth, _TW_ITEM, tag, 0, vl, p, vo, vlen))
                        count += 1
                        sp += 1
                        stack[sp].kind = _TW_F_ITEM
                        stack[sp].defined = False
                        stack[sp].syntax = syn
                        stack[sp].limit = lim
                        stack[sp].depth = f.depth
                        stack[sp].index = count - 1
                        stack[sp].start = vo
                        p = vo
                        continue
                    end = vo + vl
                    if count >= max_elements:
                        status = _TW_ELEMENT_LIMIT
                        break
                    wkind = _TW_FRAGMENT if kind == _TW_F_FRAG else _TW_ITEM
                    if every:
                        out.append((f.depth, wkind, tag, 0, vl, p, vo,
                                    _tw_min3(end, lim, n) - vo))
                    count += 1
                    if end > lim:
                        status = _TW_MALFORMED
                        break
                    if kind == _TW_F_FRAG:
                        if end > n:
                            status = _TW_TRUNCATED
                            break
                        p = end
                    else:
                        sp += 1
                        stack[sp].kind = _TW_F_ITEM
                        stack[sp].defined = True
                        stack[sp].syntax = syn
                        stack[sp].limit = end
                        stack[sp].depth = f.depth
                        stack[sp].index = count - 1
                        stack[sp].start = vo
                        p = vo
                    continue
                if (tag == _TW_SEQ_DELIM and (kind == _TW_F_SEQ or kind == _TW_F_FRAG)
                        and not f.defined):
                    if count >= max_elements:
                        status = _TW_ELEMENT_LIMIT
                        break
                    count += 1
                    if every:
                        out.append((f.depth - 1, _TW_SEQUENCE_END, tag, 0, vl, p, vo, 0))
                        t = out[f.index]
                        out[f.index] = (t[0], t[1], t[2], t[3], t[4], t[5], t[6],
                                        p - f.start)
                    sp -= 1
                    p = vo
                    continue
                if tag == _TW_ITEM_DELIM and kind == _TW_F_ITEM and not f.defined:
                    if count >= max_elements:
                        status = _TW_ELEMENT_LIMIT
                        break
                    count += 1
                    if every:
                        out.append((f.depth, _TW_ITEM_END, tag, 0, vl, p, vo, 0))
                        t = out[f.index]
                        out[f.index] = (t[0], t[1], t[2], t[3], t[4], t[5], t[6],
                                        p - f.start)
                    sp -= 1
                    p = vo
                    continue
                status = _TW_MALFORMED
                break

            # --- a data element
            if f.kind == _TW_F_SEQ or f.kind == _TW_F_FRAG:
                status = _TW_MALFORMED  # only items belong here
                break
            if f.kind == _TW_F_TOP and <long long>tag >= stop_tag:
                status = _TW_STOPPED
                break

            child_syntax = syn
            if syn == 0:
                if p + 8 > lim:
                    status = _TW_MALFORMED
                    break
                if p + 8 > n:
                    status = _TW_TRUNCATED
                    break
                vr = 0
                vl = _tw_u32(b + p + 4, False)
                vo = p + 8
                if vl == _TW_UNDEFINED:
                    wkind = (_TW_PIXEL_FRAGMENTS if tag == _TW_PIXEL_DATA
                             else _TW_SEQUENCE)
                elif _tw_private_sq(b, n, tag, vo, vl) or (check_sq and tag in sq_tags):
                    wkind = _TW_SEQUENCE
                else:
                    wkind = _TW_ELEMENT
            else:
                if p + 6 > lim:
                    status = _TW_MALFORMED
                    break
                if p + 6 > n:
                    status = _TW_TRUNCATED
                    break
                vr = (<unsigned int>b[p + 4] << 8) | b[p + 5]
                vrk = _tw_vr_kind(b[p + 4], b[p + 5])
                if vrk == _TW_VRK_INVALID:
                    status = _TW_MALFORMED
                    break
                if vrk == _TW_VRK_SHORT:
                    if p + 8 > lim:
                        status = _TW_MALFORMED
                        break
                    if p + 8 > n:
                        status = _TW_TRUNCATED
                        break
                    vl = _tw_u16(b + p + 6, big)
                    vo = p + 8
                    wkind = _TW_ELEMENT
                else:
                    if p + 12 > lim:
                        status = _TW_MALFORMED
                        break
                    if p + 12 > n:
                        status = _TW_TRUNCATED
                        break
                    vl = _tw_u32(b + p + 8, big)
                    vo = p + 12
                    if vrk == _TW_VRK_SQ:
                        wkind = _TW_SEQUENCE
                    elif vl != _TW_UNDEFINED:
                        wkind = _TW_ELEMENT
                    elif vrk == _TW_VRK_UN:
                        wkind = _TW_SEQUENCE
                        child_syntax = 0
                    elif vrk == _TW_VRK_OBW:
                        wkind = _TW_PIXEL_FRAGMENTS
                    else:
                        status = _TW_MALFORMED  # undefined length not allowed
                        break

            if wkind == _TW_ELEMENT:
                end = vo + vl
                if count >= max_elements:
                    status = _TW_ELEMENT_LIMIT
                    break
                if every or (f.depth == 0 and tag in keep):
                    out.append((f.depth, _TW_ELEMENT, tag, vr, vl, p, vo,
                                _tw_min3(end, lim, n) - vo))
                count += 1
                if end > lim:
                    status = _TW_MALFORMED
                    break
                if end > n:
                    status = _TW_TRUNCATED
                    break
                p = end
                continue

            # --- a sequence or encapsulated pixel data opens
            if f.depth + 1 > max_depth:
                status = _TW_DEPTH_LIMIT
                break
            if count >= max_elements:
                status = _TW_ELEMENT_LIMIT
                break
            fkind = _TW_F_FRAG if wkind == _TW_PIXEL_FRAGMENTS else _TW_F_SEQ
            if vl == _TW_UNDEFINED:
                vlen = (lim if lim < n else n) - vo
                if every:
                    out.append((f.depth, wkind, tag, vr, vl, p, vo, vlen))
                count += 1
                end = lim
            else:
                end = vo + vl
                if every:
                    out.append((f.depth, wkind, tag, vr, vl, p, vo,
                                _tw_min3(end, lim, n) - vo))
                count += 1
                if end > lim:
                    status = _TW_MALFORMED
                    break
            sp += 1
            stack[sp].kind = fkind
            stack[sp].defined = vl != _TW_UNDEFINED
            stack[sp].syntax = child_syntax
            stack[sp].limit = end
            stack[sp].depth = f.depth + 1
            stack[sp].index = count - 1
            stack[sp].start = vo
            p = vo
    finally:
        PyMem_Free(stack)
    return out, status, p


# --- command sets (twin: _pytagwalk.command_values) --------------------------
cdef extern from "Python.h":
    object PyUnicode_DecodeASCII(const char *s, Py_ssize_t size, const char *errors)


def command_values(const unsigned char[::1] buf, dict spec):
    """The values of a command set's elements that ``spec`` names: see
    ``_pytagwalk.command_values``."""
    cdef Py_ssize_t n = buf.shape[0], p = 0, vo, i
    cdef const unsigned char *b = &buf[0] if n > 0 else NULL
    cdef unsigned int group, elem, ln
    cdef bint wrong
    cdef dict values = {}
    cdef list bad = []
    stop = None
    while p < n:
        if n - p < 8:
            stop = ("dicom.data.tag.missing", {"what": "command set"})
            break
        group = le16(b + p)
        elem = le16(b + p + 2)
        ln = le32(b + p + 4)
        if group != 0:
            stop = ("dicom.command.malformed", {"why": f"element ({group:04x},{elem:04x}) outside group 0000"})
            break
        if ln == 0xFFFFFFFF or <Py_ssize_t>ln > n - p - 8:
            stop = ("dicom.data.tag.missing", {"what": f"command element (0000,{elem:04x})"})
            break
        known = spec.get(elem)
        if known is not None:
            name, vr = known
            vo = p + 8
            wrong = False
            if vr == "US":
                val = le16(b + vo) if ln >= 2 else None
                wrong = ln != 2
            elif vr == "UL":
                val = le32(b + vo) if ln >= 4 else None
                wrong = ln != 4
            elif vr == "AT":
                val = [(le16(b + vo + i), le16(b + vo + i + 2)) for i in range(0, <Py_ssize_t>ln - 3, 4)]
                wrong = ln % 4 != 0
            else:
                val = PyUnicode_DecodeASCII(<const char *>(b + vo), ln, "replace").rstrip("\x00 ").lstrip(" ")
            if val is not None:
                values[name] = val
            if wrong and ln:
                bad.append((elem, ln))
        p += 8 + ln
    return values, bad, p, stop
