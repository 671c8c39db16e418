"""Guards that the compiled core is what runs (there is no silent fallback)."""

import os

import pytest

PURE = os.environ.get("FASTDICOM_PURE_PYTHON", "") not in ("", "0")


@pytest.mark.skipif(PURE, reason="FASTDICOM_PURE_PYTHON selects the pure-Python twin")
def test_compiled_core_selected():
    from fastdicom import core

    assert core.IMPLEMENTATION == "cython", (
        "fastdicom.core is not using the compiled core: build it with "
        "'python setup.py build_ext --inplace' (or set FASTDICOM_PURE_PYTHON=1)")


@pytest.mark.skipif(PURE, reason="FASTDICOM_PURE_PYTHON selects the pure-Python twin")
def test_compiled_core_shares_the_twins_types_and_constants():
    from fastdicom import _core, _pycore, errors, events

    assert _core.CaptureFormatError is errors.CaptureFormatError
    assert _core.CaptureFormatError is _pycore.CaptureFormatError
    assert _core.IMPLEMENTATION == "cython" and _core.Engine.implementation == "cython"
    assert _core.DEFAULT_PORTS == _pycore.DEFAULT_PORTS
    for name in dir(events):
        if name.isupper():
            assert getattr(_core, name) == getattr(events, name), name
    for name in ("SYNC_WINDOW", "MAX_PIECES", "MAX_OOO_SEGMENTS", "MAX_ASSOC_SYNC", "MAX_FIXED_PDU",
                 "PCAP_MAX_RECORD", "PCAPNG_MAX_BLOCK", "MAX_RESYNC_SECONDS", "C_REJECT", "C_NEED",
                 "C_ACCEPT", "C_TENTATIVE", "COMMAND_GROUP_LENGTH"):
        assert getattr(_core, name) == getattr(_pycore, name), name

    with pytest.raises(errors.CaptureFormatError, match="gzip"):
        _core.Engine().feed(b"\x1f\x8b\x08\x00" + bytes(40))
