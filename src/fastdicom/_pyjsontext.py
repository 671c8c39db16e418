"""The summary's JSON text in pure Python: the twin of ``_jsontext.pyx``,
which writes the same characters (``tests/test_jsontext.py`` compares them).

The layout: containers of records are indented one level per nesting, and
each record (an operation, a presentation context, an object, an expert
info, a row of counts) is one compact line.  A container is a list that
holds a dict or a list, or a dict that holds a list of dicts or a dict that
is itself a container; everything else is written compact, as
``json.dumps(v, separators=(", ", ": "), default=str)`` writes it.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring_ascii

IMPLEMENTATION = "python"

if c_make_encoder is not None:
    # one C encoder for every record: JSONEncoder.encode makes a new one per call
    _c_encode = c_make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", False, False, True)

    def compact(v) -> str:
        """``v`` on one line, as ``json.dumps(v, separators=(", ", ": "),
        default=str)`` writes it (also the compiled writer's fallback)."""
        return "".join(_c_encode(v, 0))
else:  # pragma: no cover - CPython always has _json
    compact = json.JSONEncoder(default=str, separators=(", ", ": ")).encode


def key_text(k) -> str:
    """A dict key that is not a string, as json writes it (1 -> "1", None -> "null")."""
    text = json.dumps({k: 0})  # '{"1": 0}'
    return text[1:len(text) - 4]


def write_json(doc, out, pad: str = "", end: bool = True) -> None:
    """Write ``doc`` to the text file ``out`` in the layout above (``pad``:
    the indent of its nesting; ``end``: with the final line break).
    ``json.dump(indent=...)`` runs in pure Python node by node; this encodes
    every record with the C encoder (about twice as fast), and only the
    containers node by node."""
    parts: list = []  # written out every few hundred pieces (one write per piece is slow;
    # holding many would add to the peak memory)
    write = parts.append

    def flush() -> None:
        out.write("".join(parts))
        parts.clear()

    # the scalar members of expanded records, as the encoder writes them, without
    # its per-call set-up (a record of an association has ~40 of them)
    scalar = {str: encode_basestring_ascii, int: int.__repr__, bool: lambda b: "true" if b else "false",
              type(None): lambda _: "null"}
    # a container whose members are all of these types holds no record: told
    # by one pass in C (set.issuperset over map(type, ...)) for most records
    flat = frozenset((str, int, float, bool, type(None))).issuperset

    keys: dict = {}  # (separator and indent, key) -> what is written before the value

    def expands(v) -> bool:
        """A container: a list of dicts or lists, or a dict holding a list of
        dicts (records) or a dict that is itself a container."""
        if isinstance(v, list):
            if flat(map(type, v)):
                return False
            for x in v:
                if isinstance(x, (dict, list)):
                    return True
            return False
        if isinstance(v, dict):
            if flat(map(type, v.values())):
                return False
            for x in v.values():
                if isinstance(x, list):
                    for y in x:
                        if isinstance(y, dict):
                            return True
                elif isinstance(x, dict) and expands(x):
                    return True
        return False

    def enc(v, pad: str) -> None:
        fast = scalar.get(type(v))
        if fast is not None:
            write(fast(v))
            return
        if not expands(v):
            write(compact(v))
            return
        inner = pad + " "
        if isinstance(v, dict):
            sep = "{\n" + inner
            for k, x in v.items():
                head = keys.get((sep, k))
                if head is None:
                    # keys as json writes them: 1 -> "1", None -> "null"
                    head = keys[sep, k] = sep + (encode_basestring_ascii(k) if isinstance(k, str)
                                                 else key_text(k)) + ": "
                write(head)
                sep = ",\n" + inner
                enc(x, inner)
                if len(parts) > 256:
                    flush()
            write("\n" + pad + "}")
        else:
            write("[")
            for i, x in enumerate(v):
                write(("\n" if i == 0 else ",\n") + inner)
                enc(x, inner)
                if len(parts) > 256:
                    flush()
            write("\n" + pad + "]")

    enc(doc, pad)
    if end:
        write("\n")
    flush()


def value_text(v, depth: int = 0) -> str:
    """``v`` as ``write_json`` writes it at nesting ``depth`` inside a
    document: its lines after the first indented by ``depth`` spaces, no
    line break at the end."""
    out = _Pieces()
    write_json(v, out, pad=" " * depth, end=False)
    return "".join(out)


class _Pieces(list):
    """A text file that keeps what is written to it, piece by piece."""

    write = list.append
