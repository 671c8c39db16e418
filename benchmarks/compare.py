#!/usr/bin/env python3
"""Measure fastdicom against cat, a dpkt header loop and tshark, in one run.

    python benchmarks/compare.py [--sizes 1G,4G] [--cache DIR] [--workers N] [--repeat 3]
                                 [--settle 65] [--no-tshark | --tshark-sizes 1G] [--many 30000]
                                 [--update-readme]

For each size it makes (once, cached) a capture with ``make_capture.py``,
then times each command in a fresh process with the file in the page cache,
``--repeat`` times (once for dpkt and tshark, which take minutes), and
reports the median and the best wall time, MB/s of the median, and the
highest peak RSS (the child's ru_maxrss) of the runs: on a shared virtual
machine one run can take twice as long as the next.  It checks
that ``summary --workers N``, and a run with at least two processes sharing
the connections, are byte-identical to ``--workers 1`` and that the exported
objects match the capture's truth file.  Then it times the summary of
``--many`` small associations (``make_many_small.py``), where per-association
costs, not bytes, set the pace.  tshark rows are skipped
when tshark is not installed, and for the sizes not in ``--tshark-sizes``
(tshark needs about 2.4 GB of memory per GB of capture to dissect it and
5 GB per GB to export, so a 4 GB run may not fit a workstation).  With ``--update-readme`` the table replaces
the one between the markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CORE_LOOP = r"""
import sys
from fastdicom import capture, core
e = core.Engine(ports=[11112], data_limit=65536)
# as the commands read, on one thread (no read-ahead: the core alone, on one CPU)
for part in capture._chunks(sys.argv[1], capture.CaptureInfo(sys.argv[1]), read_ahead=False):
    e.feed(part); e.pop_events()
e.finish(); e.pop_events()
"""

DPKT_LOOP = r"""
import sys, dpkt
n = 0
with open(sys.argv[1], 'rb') as f:
    for ts, buf in dpkt.pcap.Reader(f):
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP):
            n += len(ip.data.data)
print(n)
"""


TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)


def run(cmd, stdout=subprocess.DEVNULL):
    """Wall seconds and peak RSS (MB) of one command.  The RSS comes from
    GNU time run as a small parent (a forked Python child would inherit this
    script's high-water mark)."""
    if TIME:
        cmd = [TIME, "-f", "%M"] + list(cmd)
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    err = p.stderr.decode(errors="replace").strip().splitlines()
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({p.returncode}): {err[-5:]}")
    rss = float(err[-1]) / 1024 if TIME and err and err[-1].isdigit() else float("nan")
    return wall, rss


def warm(path):
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def exported_matches(truth_path, out_dir) -> tuple[int, int]:
    truth = json.loads(Path(truth_path).read_text())
    want = {}
    for r in truth["received"]:
        want.setdefault(r["sop_instance_uid"], set()).add(r["dataset_sha256"])
    got = 0
    for root, _, names in os.walk(out_dir):
        for n in names:
            if not n.endswith(".dcm"):
                continue
            raw = open(os.path.join(root, n), "rb").read()
            if raw[128:132] == b"DICM":
                glen = int.from_bytes(raw[140:144], "little")
                body = raw[144 + glen:]
            else:
                body = raw
            h = hashlib.sha256(body).hexdigest()
            if any(h in s for s in want.values()):
                got += 1
    return got, len(truth["received"])


def settle(seconds: float) -> None:
    """Write back every dirty page and wait, before a row of runs that write
    files, so that they pay only for their own work.  Two costs of earlier
    rows would land on them otherwise: the writeback of dirty pages, and, on
    ext4 without a journal (this machine's disk), a scan past every inode
    deleted in the last 60 s on each file creation (``recently_deleted()``
    in fs/ext4/ialloc.c), which made one export of 1,463 files 1-2 s slower.
    For the same reason the repeats of a row write to fresh folders and
    nothing is deleted until the row is over.  The repeats are not each
    preceded by the wait: on this VM, memory left untouched for a minute goes
    back to the host, and the first run after the wait pays for faulting it
    in again (it shows as that run's own user and system time).  So such a
    row starts with one untimed warm-up run, as ``hyperfine --warmup`` does,
    into a folder of its own; each row that writes lists all its times, the
    warm-up's included."""
    os.sync()
    time.sleep(max(0.0, seconds))


def precompile() -> None:
    """Byte-compile fastdicom's modules, as ``pip install`` does: from a
    source tree with PYTHONDONTWRITEBYTECODE=1 (set on the development
    machine) every run would otherwise compile them again, 35-50 ms of
    start-up that an installed package never pays."""
    import compileall
    import fastdicom
    compileall.compile_dir(os.path.dirname(fastdicom.__file__), quiet=2)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1G")
    ap.add_argument("--cache", default=str(HERE / ".cache"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each fast command (default 3)")
    ap.add_argument("--settle", type=float, default=65.0,
                    help="seconds to wait, after syncing, before each row of runs that write to "
                         "disk (default 65; see settle())")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--tshark-sizes", default=None,
                    help="comma-separated sizes at which to run tshark (default: all)")
    ap.add_argument("--many", type=int, default=30000,
                    help="also time a capture of this many small associations, one after another "
                         "(make_many_small.py; 0: not)")
    ap.add_argument("--update-readme", action="store_true")
    a = ap.parse_args(argv)
    from make_capture import cache_folder, generate, parse_size

    precompile()

    py = sys.executable
    fd = [py, "-m", "fastdicom.cli"]
    tshark = None if a.no_tshark else shutil.which("tshark")
    rows = []
    checks = []
    cache_folder(a.cache)

    size = mb = None  # of the capture being measured (row() reads them)

    def row(name, cmd, repeat=a.repeat, before=None, warmup=None):
        """``cmd``: a command, or a function of the repeat's number giving one.
        ``warmup``: a command run once, untimed, after ``before`` (its time
        is listed with the others)."""
        walls, rsss = [], []
        if before is not None:
            before()
        warm_wall = run(warmup)[0] if warmup is not None else None
        for k in range(max(1, repeat)):
            wall, rss = run(cmd(k) if callable(cmd) else cmd)
            walls.append(wall)
            rsss.append(rss)
        if before is not None:
            checks.append(f"{size}: {name}, every run in order: "
                          + (f"(warm-up, not counted: {warm_wall:.2f} s) " if warm_wall is not None else "")
                          + ", ".join(f"{w:.2f} s" for w in walls))
        walls.sort()
        wall = walls[len(walls) // 2]
        rss = max(rsss)
        rows.append((size, name, wall, walls[0], mb / wall, rss))
        print(f"{size:>4} {name:<40} {wall:8.2f} s (best {walls[0]:.2f}) {mb / wall:9.0f} MB/s "
              f"{rss:8.0f} MB", file=sys.stderr)

    for size in a.sizes.split(","):
        cap = Path(a.cache) / f"bench_{size}.pcap"
        truth = cap.with_suffix(".truth.json")
        if not cap.exists() or not truth.exists():
            print(f"generating {cap} ...", file=sys.stderr)
            generate(str(cap), parse_size(size), seed=0, truth_path=str(truth))
        mb = cap.stat().st_size / 1e6
        warm(cap)

        row("cat", ["sh", "-c", f"cat '{cap}' > /dev/null"])
        row("fastdicom core only (capture to PDUs)", [py, "-c", CORE_LOOP, str(cap)])
        with tempfile.TemporaryDirectory(dir=a.cache) as tmp:
            s1, sn = Path(tmp) / "s1.json", Path(tmp) / "sn.json"
            row("fastdicom summary, 1 worker", fd + ["summary", str(cap), "--ports", "11112",
                                                     "--format", "json", "-o", str(s1), "--workers", "1"])
            row("fastdicom summary, text output, 1 worker", fd + [
                "summary", str(cap), "--ports", "11112", "-o", str(Path(tmp) / "s.txt"), "--workers", "1"])
            row(f"fastdicom summary, --workers {a.workers}", fd + [
                "summary", str(cap), "--ports", "11112", "--format", "json", "-o", str(sn),
                "--workers", str(a.workers)])
            checks.append(f"{size}: summary --workers {a.workers} byte-identical to --workers 1: "
                          f"{'yes' if s1.read_bytes() == sn.read_bytes() else 'NO'}")
            # processes that each take a share of the connections (on this
            # machine's CPUs or more: one process per pair of CPUs)
            sp = Path(tmp) / "sp.json"
            shares = max(2, a.workers // 2)
            row(f"fastdicom summary, --workers {2 * shares} ({shares} processes)", fd + [
                "summary", str(cap), "--ports", "11112", "--format", "json", "-o", str(sp),
                "--workers", str(2 * shares)])
            checks.append(f"{size}: summary --workers {2 * shares} ({shares} processes sharing the "
                          f"connections) byte-identical to --workers 1: "
                          f"{'yes' if s1.read_bytes() == sp.read_bytes() else 'NO'}")
            # the export as it runs, and confined to one CPU (its decoding, I/O
            # and hashing threads then share that CPU)
            pinned = [("", [])] + ([(", pinned to one CPU (taskset -c 0)", ["taskset", "-c", "0"])]
                                   if shutil.which("taskset") else [])
            for how, prefix in pinned:
                outs = [Path(tmp) / f"export{k}" for k in range(max(1, a.repeat))]
                row("fastdicom export" + how, lambda k, prefix=prefix, outs=outs: prefix + fd + [
                    "export", str(cap), "--ports", "11112", "-o", str(outs[k])], before=lambda: settle(a.settle),
                    warmup=prefix + fd + ["export", str(cap), "--ports", "11112", "-o", str(Path(tmp) / "warm")])
                shutil.rmtree(Path(tmp) / "warm")
                for k, out in enumerate(outs):
                    got, want = exported_matches(truth, out)
                    checks.append(f"{size}: fastdicom export{how} (run {k + 1}) matched {got}/{want} objects "
                                  "of the truth file")
                    shutil.rmtree(out)
            # what writing the same bytes costs on this disk, for reference
            dds = [Path(tmp) / f"dd{k}.bin" for k in range(max(1, a.repeat))]
            for how, flags in (("page cache", []), ("O_DIRECT", ["oflag=direct"])):
                row(f"dd: write the capture's size to disk ({how})", lambda k, flags=flags: [
                    "dd", f"if={cap}", f"of={dds[k]}", "bs=8M", *flags, "status=none"],
                    before=lambda: settle(a.settle),
                    warmup=["dd", f"if={cap}", f"of={Path(tmp) / 'warm.bin'}", "bs=8M", *flags, "status=none"])
                for p in dds + [Path(tmp) / "warm.bin"]:
                    p.unlink()
        row("dpkt header loop (Ethernet/IP/TCP)", [py, "-c", DPKT_LOOP, str(cap)], repeat=1)
        if tshark and (a.tshark_sizes is None or size in a.tshark_sizes.split(",")):
            row("tshark -q -z io,stat,0,dicom", [tshark, "-r", str(cap), "-q", "-d", "tcp.port==11112,dicom",
                                                 "-z", "io,stat,0,dicom"], repeat=1)
            with tempfile.TemporaryDirectory(dir=a.cache) as tmp:
                row("tshark --export-objects dicom", [
                    tshark, "-r", str(cap), "-q", "-d", "tcp.port==11112,dicom",
                    "-o", "dicom.export_minsize:0", "--export-objects", f"dicom,{tmp}"], repeat=1)
                got, want = exported_matches(truth, tmp)
                checks.append(f"{size}: tshark export matched {got}/{want} objects of the truth file")
    if a.many:
        # the regime where associations, not bytes, set the pace
        import make_many_small
        cap = Path(a.cache) / f"many_{a.many}.pcap"
        if not cap.exists():
            print(f"generating {cap} ...", file=sys.stderr)
            make_many_small.write(a.many, str(cap))
        size, mb = f"{a.many:,} associations", cap.stat().st_size / 1e6
        warm(cap)
        with tempfile.TemporaryDirectory(dir=a.cache) as tmp:
            row("fastdicom summary --format json", fd + ["summary", str(cap), "--format", "json",
                                                         "-o", str(Path(tmp) / "s.json")])
            row("fastdicom summary, text output", fd + ["summary", str(cap), "-o", str(Path(tmp) / "s.txt")])
        if tshark:
            row("tshark -q -z io,stat,0,dicom", [tshark, "-r", str(cap), "-q", "-z", "io,stat,0,dicom"])
    table = ["| size | command | wall (s), median | best (s) | MB/s (median) | peak RSS (MB) |",
             "|---|---|---:|---:|---:|---:|"]
    for size, name, wall, best, rate, rss in rows:
        table.append(f"| {size} | {name} | {wall:.2f} | {best:.2f} | {rate:.0f} | {rss:.0f} |")
    text = "\n".join([f"Measured {time.strftime('%Y-%m-%d')} on: {machine()}.", "",
                      f"Command: `python benchmarks/compare.py --sizes {a.sizes} --workers {a.workers}"
                      f" --repeat {a.repeat} --settle {a.settle:g}"
                      + (f" --tshark-sizes {a.tshark_sizes}" if a.tshark_sizes else "")
                      + (" --no-tshark" if a.no_tshark else "")
                      + (f" --many {a.many}" if a.many != 30000 else "") + "`", "",
                      *table, "", *[f"- {c}" for c in checks]])
    print(text)
    if a.update_readme:
        readme = HERE / "README.md"
        body = readme.read_text()
        start, end = "<!-- compare:start -->", "<!-- compare:end -->"
        block = f"{start}\n{text}\n{end}"
        if start in body:
            body = body[:body.index(start)] + block + body[body.index(end) + len(end):]
        else:
            body += "\n## fastdicom against cat, dpkt and tshark\n\n" + block + "\n"
        readme.write_text(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
