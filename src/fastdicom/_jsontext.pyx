# cython: language_level=3
"""The summary's JSON text, written in C: the same characters as the
pure-Python twin ``_pyjsontext.py`` (``tests/test_jsontext.py`` compares
them), in about a fifth of the time.

The layout: containers of records are indented one level per nesting, and
each record is one compact line::

    {                                  <- a container: a dict holding a list of dicts
     "associations": [                 <- a container: a list holding dicts
      {
       "id": 0,
       "contexts": [
        {"id": 1, "result": "accepted"},   <- a record: one line,
        ...                                   as json.dumps(separators=(", ", ": "))

A list is a container when it holds a dict or a list; a dict when it holds a
list that holds a dict, or a dict that is itself a container.

Exact ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``
are written here.  Anything else (a tuple, a subclass, an object that
``default=str`` turns into text) and any string that needs escaping go to the
``json`` module's own C encoder and ``encode_basestring_ascii``, as in the
twin, so both give the same characters for every document.  The text is ASCII
and is handed to ``out.write`` in pieces of about 1 MiB, never whole.
"""

from cpython.dict cimport PyDict_Next
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.ref cimport PyObject
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

from json.encoder import encode_basestring_ascii

IMPLEMENTATION = "cython"

cdef extern from "Python.h":
    bint PyDict_CheckExact(object)
    bint PyDict_Check(object)
    bint PyList_CheckExact(object)
    bint PyList_Check(object)
    bint PyUnicode_CheckExact(object)
    bint PyUnicode_Check(object)
    bint PyLong_CheckExact(object)
    bint PyFloat_CheckExact(object)
    double PyFloat_AS_DOUBLE(object)
    bint PyUnicode_IS_ASCII(object)
    const char *PyUnicode_1BYTE_DATA "(const char *)PyUnicode_1BYTE_DATA"(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    long long PyLong_AsLongLongAndOverflow(object, int *) except? -1
    object PyUnicode_DecodeASCII(const char *, Py_ssize_t, const char *)
    # what float.__repr__ writes (shortest text that reads back the same double)
    char *PyOS_double_to_string(double, char, int, int, int *) except NULL
    void PyMem_Free(void *)
    enum: Py_DTSF_ADD_DOT_0

cdef extern from "<math.h>":
    bint isnan(double)
    bint isinf(double)

cdef enum:
    FLUSH_AT = 1 << 20  # bytes held before they go to out.write
    MAX_DEPTH = 900  # nesting deeper than this is refused, as the twin's recursion would be

# the fallbacks, shared with the twin: a value that is not one of the exact
# types written here, as json.dumps(v, separators=(", ", ": "), default=str)
# writes it, and a dict key that is not a string
from ._pyjsontext import compact as _compact, key_text as _key_text


cdef inline bint _plain_ascii(const char *p, Py_ssize_t n) noexcept:
    """True when no byte of p[:n] needs escaping in JSON (printable ASCII but
    quote and backslash; encode_basestring_ascii escapes DEL, 0x7F, too)."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = <unsigned char>p[i]
        if c < 0x20 or c > 0x7E or c == 0x22 or c == 0x5C:
            return False
    return True


cdef class _Writer:
    cdef char *buf
    cdef Py_ssize_t n, cap
    cdef object write

    def __cinit__(self, write):
        self.write = write
        self.cap = FLUSH_AT + 4096
        self.buf = <char *>malloc(self.cap)
        if self.buf == NULL:
            raise MemoryError()
        self.n = 0

    def __dealloc__(self):
        free(self.buf)

    cdef int flush(self) except -1:
        if self.n:
            text = PyUnicode_DecodeASCII(self.buf, self.n, NULL)
            self.n = 0
            self.write(text)
        return 0

    cdef int put(self, const char *p, Py_ssize_t k) except -1:
        cdef char *nb
        if self.n + k > self.cap:
            self.flush()
            if k > self.cap:
                nb = <char *>realloc(self.buf, k)
                if nb == NULL:
                    raise MemoryError()
                self.buf = nb
                self.cap = k
        memcpy(self.buf + self.n, p, k)
        self.n += k
        if self.n >= FLUSH_AT:
            self.flush()
        return 0

    cdef int put_text(self, object s) except -1:
        """Text already in JSON form (ASCII), as the json module made it."""
        if PyUnicode_GET_LENGTH(s) > FLUSH_AT:  # a record of megabytes: passed on as it is
            self.flush()
            self.write(s)
            return 0
        if PyUnicode_IS_ASCII(s):
            return self.put(PyUnicode_1BYTE_DATA(s), PyUnicode_GET_LENGTH(s))
        b = s.encode("ascii")  # never: json's ASCII encoders escape everything else
        return self.put(b, len(b))

    cdef int pad(self, Py_ssize_t depth) except -1:
        """A new line and ``depth`` spaces."""
        cdef char spaces[64]
        cdef Py_ssize_t k
        self.put("\n", 1)
        memset(spaces, 32, 64)
        while depth > 0:
            k = depth if depth < 64 else 64
            self.put(spaces, k)
            depth -= k
        return 0

    cdef int string(self, object s) except -1:
        """A str (or a subclass) as encode_basestring_ascii writes it."""
        cdef Py_ssize_t n
        cdef const char *p
        if PyUnicode_IS_ASCII(s):
            p = PyUnicode_1BYTE_DATA(s)
            n = PyUnicode_GET_LENGTH(s)
            if _plain_ascii(p, n):
                self.put('"', 1)
                self.put(p, n)
                return self.put('"', 1)
        return self.put_text(encode_basestring_ascii(s))

    cdef int integer(self, object v) except -1:
        """An exact int in decimal, as int.__repr__ writes it."""
        cdef int overflow = 0
        cdef long long x = PyLong_AsLongLongAndOverflow(v, &overflow)
        cdef unsigned long long u
        cdef char tmp[24]
        cdef int k = 24
        if overflow:
            return self.put_text(int.__repr__(v))
        u = <unsigned long long>(-(x + 1)) + 1 if x < 0 else <unsigned long long>x
        while True:
            k -= 1
            tmp[k] = <char>(48 + u % 10)
            u //= 10
            if u == 0:
                break
        if x < 0:
            k -= 1
            tmp[k] = 45  # '-'
        return self.put(tmp + k, 24 - k)

    cdef int real(self, object v) except -1:
        """An exact float as float.__repr__ writes it; NaN and infinities as json does."""
        cdef double x = PyFloat_AS_DOUBLE(v)
        cdef char *text
        cdef Py_ssize_t n = 0
        if isnan(x):
            return self.put("NaN", 3)
        if isinf(x):
            return self.put("Infinity", 8) if x > 0 else self.put("-Infinity", 9)
        text = PyOS_double_to_string(x, 114, 0, Py_DTSF_ADD_DOT_0, NULL)  # 'r'
        while text[n]:
            n += 1
        try:
            return self.put(text, n)
        finally:
            PyMem_Free(text)

    cdef int compact(self, object v, int depth) except -1:
        """``v`` on one line, as json.dumps(separators=(", ", ": ")) writes it."""
        cdef Py_ssize_t pos = 0, i, n
        cdef PyObject *kp
        cdef PyObject *vp
        cdef bint first
        if v is None:
            return self.put("null", 4)
        if v is True:
            return self.put("true", 4)
        if v is False:
            return self.put("false", 5)
        if PyUnicode_CheckExact(v):
            return self.string(v)
        if PyLong_CheckExact(v):
            return self.integer(v)
        if PyFloat_CheckExact(v):
            return self.real(v)
        if depth < MAX_DEPTH and PyDict_CheckExact(v) and _str_keys(v):
            self.put("{", 1)
            first = True
            while PyDict_Next(v, &pos, &kp, &vp):
                if not first:
                    self.put(", ", 2)
                first = False
                self.string(<object>kp)
                self.put(": ", 2)
                self.compact(<object>vp, depth + 1)
            return self.put("}", 1)
        if depth < MAX_DEPTH and PyList_CheckExact(v):
            self.put("[", 1)
            n = PyList_GET_SIZE(v)
            for i in range(n):
                if i:
                    self.put(", ", 2)
                self.compact(<object>PyList_GET_ITEM(v, i), depth + 1)
            return self.put("]", 1)
        return self.put_text(_compact(v))

    cdef int value(self, object v, Py_ssize_t depth) except -1:
        """``v`` at nesting ``depth``: a container expanded, anything else compact."""
        cdef Py_ssize_t pos = 0, i, n
        cdef PyObject *kp
        cdef PyObject *vp
        cdef bint first = True
        if depth > MAX_DEPTH:
            raise RecursionError("maximum recursion depth exceeded while writing JSON")
        if not _expands(v, 0):
            return self.compact(v, 0)
        if PyDict_Check(v):
            items = v if PyDict_CheckExact(v) else None
            if items is not None:
                while PyDict_Next(v, &pos, &kp, &vp):
                    self.member(<object>kp, <object>vp, first, depth)
                    first = False
            else:
                for k, x in list(v.items()):
                    self.member(k, x, first, depth)
                    first = False
            self.pad(depth)
            return self.put("}", 1)
        seq = v if PyList_CheckExact(v) else list(v)
        n = PyList_GET_SIZE(seq)
        self.put("[", 1)
        for i in range(n):
            if i:
                self.put(",", 1)
            self.pad(depth + 1)
            self.value(<object>PyList_GET_ITEM(seq, i), depth + 1)
        self.pad(depth)
        return self.put("]", 1)

    cdef int member(self, object k, object x, bint first, Py_ssize_t depth) except -1:
        self.put("{" if first else ",", 1)
        self.pad(depth + 1)
        if PyUnicode_Check(k):
            self.string(k)
        else:
            self.put_text(_key_text(k))
        self.put(": ", 2)
        return self.value(x, depth + 1)


cdef bint _str_keys(dict d) except -1:
    """Every key an exact str (else the json module writes the dict)."""
    cdef Py_ssize_t pos = 0
    cdef PyObject *kp
    cdef PyObject *vp
    while PyDict_Next(d, &pos, &kp, &vp):
        if not PyUnicode_CheckExact(<object>kp):
            return False
    return True


cdef bint _expands(object v, int depth) except -1:
    """A container: a list holding a dict or a list; a dict holding a list
    that holds a dict, or a dict that is itself a container."""
    cdef Py_ssize_t pos = 0, i, j, n
    cdef PyObject *kp
    cdef PyObject *vp
    cdef object x
    if PyList_Check(v):
        n = PyList_GET_SIZE(v)
        for i in range(n):
            x = <object>PyList_GET_ITEM(v, i)
            if PyDict_Check(x) or PyList_Check(x):
                return True
        return False
    if PyDict_Check(v):
        if depth > MAX_DEPTH:
            raise RecursionError("maximum recursion depth exceeded while writing JSON")
        while PyDict_Next(v, &pos, &kp, &vp):
            x = <object>vp
            if PyList_Check(x):
                n = PyList_GET_SIZE(x)
                for j in range(n):
                    if PyDict_Check(<object>PyList_GET_ITEM(x, j)):
                        return True
            elif PyDict_Check(x) and _expands(x, depth + 1):
                return True
    return False


def write_json(doc, out) -> None:
    """Write ``doc`` to the text file ``out`` in the layout above."""
    cdef _Writer w = _Writer(out.write)
    w.value(doc, 0)
    w.put("\n", 1)
    w.flush()


cdef _Writer _one = None  # value_text's writer, made once (its buffer is 1 MiB)


def value_text(v, Py_ssize_t depth=0) -> str:
    """``v`` as ``write_json`` writes it at nesting ``depth`` inside a
    document: its lines after the first indented by ``depth`` spaces, no
    line break at the end."""
    global _one
    cdef _Writer w = _one
    parts = []
    if w is None:
        w = _one = _Writer(parts.append)
    w.write = parts.append
    w.n = 0
    try:
        w.value(v, depth)
        w.flush()
    finally:
        w.n = 0
        w.write = None
    return parts[0] if len(parts) == 1 else "".join(parts)
