"""Selects the core implementation.

The compiled core (``_core``, from ``_core.pyx``) is the default.  Set
``FASTDICOM_PURE_PYTHON=1`` to use the pure-Python twins (``_pycore`` and
``_pytagwalk``) instead.  There is no silent fallback: if the compiled core is
missing, importing this module fails and says how to build it.
"""

import os

PURE_PYTHON = os.environ.get("FASTDICOM_PURE_PYTHON", "") not in ("", "0")

if PURE_PYTHON:
    from . import _pycore as impl
    from ._pytagwalk import command_values, walk_dataset
else:
    try:
        from . import _core as impl
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ImportError(
            "fastdicom's compiled core (fastdicom._core) is not built: reinstall with "
            "'pip install .' (needs a C compiler), or set FASTDICOM_PURE_PYTHON=1 to "
            "use the slower pure-Python core") from exc
    walk_dataset = impl.walk_dataset
    command_values = impl.command_values

Engine = impl.Engine
CaptureFormatError = impl.CaptureFormatError
IMPLEMENTATION = impl.IMPLEMENTATION
