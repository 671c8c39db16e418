"""Helpers shared by the tests (not fixtures)."""

import json
from pathlib import Path

from fastdicom import capture, summary
from fastdicom.decoder import Decoder

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
REAL_CAPTURES = sorted(p.stem for p in REAL.glob("*.pcap"))

# ports of captures that have no truth file
PORTS = {
    "profuzzbench_dcmtk_echo": (5158,), "profuzzbench_dcmtk_find": (5158,),
    "profuzzbench_dcmtk_get": (5158,), "profuzzbench_dcmtk_store": (5158,),
    "wireshark_samplecaptures_DICOM_C-ECHO-echoscu": (4242,),
    "wireshark_samplecaptures_PROTO_gzip_C-ECHO.pcap": (4242,),
}


def truth(name: str) -> dict:
    return json.loads((REAL / f"{name}.truth.json").read_text())


def ports_of(path: Path) -> tuple:
    t = path.with_suffix(".truth.json")
    if t.exists():
        return tuple(json.loads(t.read_text())["ports"])
    return PORTS.get(path.stem, (104, 11112)) + (11112, 11113, 11114)


def summarize(path, ports=None, heuristic=True, **opts) -> dict:
    path = Path(path)
    sink = summary.SummarySink()
    dec = Decoder([sink])
    o = capture.EngineOptions(ports=ports or ports_of(path), heuristic=heuristic, **opts)
    infos = capture.run([str(path)], dec, o)
    return summary.build(dec, infos, sink)
