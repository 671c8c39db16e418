"""fastdicom: fast, exact analysis of DICOM network traffic in packet captures."""

__version__ = "0.1.0"
