"""Bounds of data set decoding, shared by every output that decodes data sets.

``dataset.decode`` and ``dataset.leading_values`` use these when the caller
gives no bound of its own; ``capture.run`` sets them from the command's
options (``--max-depth``, ``--max-inflate``).  Process-wide on purpose: the
sinks that decode (summary, show, analyses, export, filters) all honour the
same bounds without each being handed them.  SECURITY.md lists every bound.
"""

DEFAULT_MAX_DEPTH = 64  # sequence nesting levels decoded
DEFAULT_MAX_INFLATE = 64 << 20  # bytes a deflated data set may inflate to

max_depth = DEFAULT_MAX_DEPTH
max_inflate = DEFAULT_MAX_INFLATE


def set_limits(max_depth=None, max_inflate=None) -> None:
    """Set the process-wide bounds (None leaves one as it is)."""
    g = globals()
    if max_depth is not None:
        g["max_depth"] = max(1, int(max_depth))
    if max_inflate is not None:
        g["max_inflate"] = max(0, int(max_inflate))
