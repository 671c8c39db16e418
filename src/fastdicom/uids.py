"""UID names from pydicom's UID dictionary, loaded lazily and cheaply.

Importing the ``pydicom`` package costs ~0.3 s; its UID table alone is a plain
dict literal, so we load just that file on first use.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"

UNCOMPRESSED_SYNTAXES = frozenset({
    IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
})


@lru_cache(maxsize=1)
def _table() -> dict:
    try:
        spec = importlib.util.find_spec("pydicom")
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                path = loc + "/_uid_dict.py"
                s = importlib.util.spec_from_file_location("_fastdicom_uid_dict", path)
                if s and s.loader:
                    mod = importlib.util.module_from_spec(s)
                    s.loader.exec_module(mod)
                    return mod.UID_dictionary
    except (OSError, ImportError, SyntaxError):
        pass
    try:
        from pydicom._uid_dict import UID_dictionary
        return UID_dictionary
    except ImportError:  # pragma: no cover
        return {}


def uid_name(uid: str | None) -> str:
    """The standard's name of a UID ("CT Image Storage"), or ""."""
    if not uid:
        return ""
    entry = _table().get(uid)
    return entry[0] if entry else ""


def uid_type(uid: str | None) -> str:
    entry = _table().get(uid or "")
    return entry[1] if entry else ""


def describe(uid: str | None) -> str:
    """``Name (uid)`` for a known UID, the bare UID otherwise."""
    if not uid:
        return ""
    name = uid_name(uid)
    return f"{name} ({uid})" if name else uid


def is_compressed(ts: str) -> bool:
    return ts not in UNCOMPRESSED_SYNTAXES
