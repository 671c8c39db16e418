"""Small captures of real DICOM traffic shipped with fastdicom, for trying it out.

- ``store_reject_abort.pcap``: a rejected association (called AE title not
  recognised), a C-STORE, an association aborted by its SCU, one aborted by
  its SCP with a C-STORE left unanswered, and a rejection with no reason.
- ``query_retrieve.pcap``: C-STOREs to an archive, C-FINDs (one with a trailing
  space that matched nothing), a C-MOVE to MOVEDEST with its sub-association,
  a C-MOVE to an unknown destination, and a C-GET cut by the end of the capture.

Both were captured between dcmtk and pynetdicom peers on a 1500-byte-MTU
loopback (ports 11112/104 and 5678/11113).
"""

from pathlib import Path

HERE = Path(__file__).parent
DEFAULT = "store_reject_abort"


def names():
    return sorted(p.stem for p in HERE.glob("*.pcap"))


def path(name: str = DEFAULT) -> Path:
    p = HERE / f"{name}.pcap"
    if not p.exists():
        raise FileNotFoundError(f"no bundled sample {name!r} (have: {', '.join(names())})")
    return p
