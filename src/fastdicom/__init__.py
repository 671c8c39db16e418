"""fastdicom: fast, exact analysis of DICOM network traffic in packet captures.

The Python API lives in :mod:`fastdicom.api` and is re-exported here, loaded
on first use so that ``import fastdicom`` stays cheap (no core, no pyarrow,
no pydicom)::

    import fastdicom
    with fastdicom.open("night.pcap.gz") as cap:
        for op in cap.operations():
            ...
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up of every command)

__version__ = "0.1.0"

_API = ("open", "stream", "Capture", "Association", "Operation", "Object", "Expert", "Pdu", "Pdv",
        "Context", "Reject", "Abort", "TcpStats", "SubOperations", "ExportResult", "Event",
        "CaptureReadError", "CaptureFormatError")

__all__ = ["__version__", "samples", *_API]

if TYPE_CHECKING:
    from . import samples
    from .api import (
        Abort, Association, Capture, CaptureFormatError, CaptureReadError, Context, Event,
        ExportResult, Expert, Object, Operation, Pdu, Pdv, Reject, SubOperations, TcpStats, open,
        stream,
    )


def __getattr__(name: str) -> object:
    import importlib

    if name in _API:
        value = getattr(importlib.import_module(".api", __name__), name)
    elif name == "samples":
        value = importlib.import_module(".samples", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
