"""fastdicom's own exception types, shared by both core twins and the Python layer.

Malformed traffic never raises: it becomes expert info.  These exceptions are
for inputs that are not captures at all, and for misuse of the API.
"""


class FastDicomError(Exception):
    """Base class of fastdicom's errors."""


class CaptureFormatError(FastDicomError):
    """The input is not a pcap or pcapng capture (or is gzip not yet decompressed)."""


class FilterError(FastDicomError):
    """A display filter with a syntax error or an unknown field."""

    def __init__(self, message, text="", position=0):
        super().__init__(message)
        self.text = text
        self.position = position

    def pointer(self):
        """The filter text with a caret under the offending position."""
        return f"{self.text}\n{' ' * self.position}^"
