"""Traffic of many small associations: ``python benchmarks/make_many_small.py N OUT.pcap``.

N connections one after another (10 ms apart), each a whole association
made by ``tests/pcapgen.py``'s ``store_conversation``: handshake,
A-ASSOCIATE-RQ/AC, one C-STORE of a small CT data set and its response,
release, FIN.  The regime where per-association costs, not bytes, set the
pace (a worklist or C-ECHO monitor, a modality sending one image per
association); written as it is made, so N can be large.  Port 104.
"""

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import pcapgen as G  # noqa: E402


def write(n: int, out: str) -> None:
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for k in range(n):
            client = ("10.0.%d.%d" % (k // 250 % 250, k % 250 + 1), 40000 + k % 20000)
            c = G.store_conversation([f"1.2.3.{k}"], client=client, t0=1_700_000_000.0 + k * 0.01)
            for ts, buf in c.frames:
                sec = int(ts)
                f.write(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(buf), len(buf)) + buf)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[0])
    write(int(sys.argv[1]), sys.argv[2])
