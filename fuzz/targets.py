"""Fuzz targets: one function per entry point, taking the fuzzer's bytes.

Each target raises ``AssertionError`` (or lets an unexpected exception out)
when fastdicom breaks its contract; anything else is a pass.  The same
functions run under atheris (``fuzz/run.py``) and in the test suite
(``tests/test_fuzz.py`` replays ``tests/data/fuzz/`` and drives them with
Hypothesis), so a crash found by the fuzzer is a regression test as it is.

The contract checked everywhere: no exception but fastdicom's own
(``fastdicom.errors``), both core twins give identical results, and every
command ends with exit status 0, 1 or 2 (never 70, an internal error).

Targets (the first bytes of an input are the target's own parameters; the
seed corpus builder ``fuzz/make_corpus.py`` writes them):

``capture``   a capture file fed to both core twins in chunks: pcap/pcapng
              reader, link/IP/TCP decoding, reassembly, PDU framing; then the
              decoder and its sinks on the events.
``stream``    a conversation (``dir``, ``len``, bytes records) put into TCP
              segments (split, reordered, dropped, duplicated as the
              parameters say): TCP reassembly, PDU framing, PDV splitting in
              both twins, then the decoder (associations, DIMSE assembly,
              operations) with the summary and show sinks.
``pipeline``  the same conversations through a whole CLI command (summary,
              export, pdus, show, expert, analyze, report), chosen by a byte,
              from a pcap file or a gzip one (damaged or not).
``tagwalk``   the tag walker in both twins, then ``dataset.decode`` and
              ``leading_values`` in every walk syntax (deflated too).
``associate`` A-ASSOCIATE-RQ/AC, -RJ and A-ABORT bodies (``pdu.decode_*``),
              whole or marked truncated.
``dimse``     ``dimse.parse_command`` and ``dataset.decode_command_set``, and
              the command's texts as the outputs build them.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import struct
import sys
import tempfile

from fastdicom import _pycore, _pytagwalk
from fastdicom.errors import FastDicomError

try:
    from fastdicom import _core
except ImportError:  # pragma: no cover - the compiled core is not built
    _core = None

# engine settings a capture is run under (byte 0 of a ``capture`` input)
OPTION_SETS = (
    {},
    {"data_limit": 0},
    {"data_limit": 100, "chunk_size": 64},
    {"ooo_budget": 1500, "history": 100, "max_flows": 2},
    {"heuristic": False, "ports": (104, 11112, 5158, 4242)},
    {"max_pdu": 4096, "max_assoc_pdu": 256, "max_command": 64, "sync_max_pdu": 8192},
    {"heuristic_window": 64, "idle_timeout": 10**6},
    {"data_limit": -1, "chunk_size": 1},
)


def random_chunks(n: int, seed: int, largest: int = 5000) -> list:
    rnd = random.Random(seed)
    out = []
    while n > 0:
        k = min(n, rnd.choice((1, 2, 3, 16, 17, 100, rnd.randint(1, largest))))
        out.append(k)
        n -= k
    return out


def outcome(mod, data: bytes, chunks=None, **options):
    """Events and stats of one engine; a raised exception is an outcome too."""
    eng = mod.Engine(**options)
    events = []
    try:
        pos = 0
        for size in chunks or [len(data)]:
            eng.feed(data[pos:pos + size])
            events += eng.pop_events()
            pos += size
        eng.finish()
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        if not isinstance(exc, FastDicomError):
            raise
        return ("raised", type(exc).__name__, str(exc), events + eng.pop_events(), eng.stats())
    return events + eng.pop_events(), eng.stats()


def _first_difference(a, b) -> str:
    ea = a[-2] if a and a[0] == "raised" else a[0]
    eb = b[-2] if b and b[0] == "raised" else b[0]
    k = next((i for i, (x, y) in enumerate(zip(ea, eb)) if x != y), min(len(ea), len(eb)))
    return (f"{len(ea)} vs {len(eb)} events; first difference at {k}:\n"
            f"  py: {str(ea[k:k + 1])[:300]}\n  c:  {str(eb[k:k + 1])[:300]}\n"
            f"  py: {str(a[-1] if a[0] != 'raised' else a[:3])[:300]}\n"
            f"  c:  {str(b[-1] if b[0] != 'raised' else b[:3])[:300]}")


def both_twins(data: bytes, chunks=None, **options):
    """Run both core twins; assert identical outcomes; return the outcome."""
    a = outcome(_pycore, data, chunks, **options)
    if _core is None:
        return a
    b = outcome(_core, data, chunks, **options)
    if a != b:
        raise AssertionError(f"core twins differ ({options}): " + _first_difference(a, b))
    return a


# --------------------------------------------------------------- capture
def capture(data: bytes) -> None:
    if len(data) < 2:
        return
    opts = OPTION_SETS[data[0] % len(OPTION_SETS)]
    body = data[2:]
    res = both_twins(body, random_chunks(len(body), data[1]), **opts)
    if res[0] != "raised":  # and the Python layer on whatever the core made of it
        _decode_events(res[0], hash_data=bool(data[0] & 0x80))


# -------------------------------------------------------------- streams
def parse_conversation(data: bytes):
    """``[params(4)] ([dir|flags(1)] [len(2, BE)] bytes)*`` -> (params, sends)."""
    params = data[:4].ljust(4, b"\0")
    sends = []
    p = 4
    while p + 3 <= len(data):
        d = data[p]
        n = (data[p + 1] << 8) | data[p + 2]
        chunk = data[p + 3:p + 3 + n]
        p += 3 + n
        sends.append((d & 1, chunk))
    return params, sends


def encode_conversation(params: bytes, sends) -> bytes:
    """The inverse of ``parse_conversation`` (sends of up to 65535 bytes)."""
    out = [params[:4].ljust(4, b"\0")]
    for d, chunk in sends:
        for i in range(0, max(len(chunk), 1), 65535):
            piece = chunk[i:i + 65535]
            out.append(struct.pack(">BH", d, len(piece)) + piece)
    return b"".join(out)


def _frame(src, dst, sport, dport, seq, flags, payload):
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


def conversation_pcap(data: bytes) -> bytes:
    """A pcap of one TCP connection (port 104) carrying the conversation, with
    segmentation, reordering, losses and duplicates chosen by the parameters."""
    params, sends = parse_conversation(data)
    rnd = random.Random(params[0] << 8 | params[1])
    mode = params[2]
    mss = (1, 7, 100, 536, 1448, 4000, 16384, 65000)[params[3] & 7]
    total = sum(len(c) for _d, c in sends)
    mss = max(mss, total // 2000)  # at most a few thousand segments: fast enough to fuzz
    handshake = not mode & 0x08
    ends = ((b"\x0a\0\0\x01", 40001), (b"\x0a\0\0\x02", 104))
    seq = [1000, 5000]
    frames = []

    def seg(d, flags, payload=b""):
        (sip, sp), (dip, dp) = ends[d], ends[1 - d]
        frames.append(_frame(sip, dip, sp, dp, seq[d], flags, payload))
        seq[d] = (seq[d] + len(payload) + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF

    if handshake:
        seg(0, 0x02)
        seg(1, 0x12)
        seg(0, 0x10)
    for d, chunk in sends:
        for i in range(0, len(chunk), mss):
            seg(d, 0x18, chunk[i:i + mss])
    if not mode & 0x10:
        seg(0, 0x11)
        seg(1, 0x11)
    # distortions
    if mode & 0x01:  # swap neighbours
        for i in range(len(frames) - 1):
            if rnd.random() < 0.2:
                frames[i], frames[i + 1] = frames[i + 1], frames[i]
    if mode & 0x02:  # losses
        frames = [f for f in frames if rnd.random() >= 0.05]
    if mode & 0x04:  # duplicates, a few frames later
        out = []
        later = []
        for f in frames:
            out.append(f)
            if rnd.random() < 0.1:
                later.append([rnd.randint(1, 5), f])
            for x in later:
                x[0] -= 1
            out.extend(x[1] for x in later if x[0] == 0)
            later = [x for x in later if x[0] > 0]
        frames = out + [x[1] for x in later]
    if mode & 0x20 and frames:  # an IP fragment (MF set, or an offset)
        k = rnd.randrange(len(frames))
        f = bytearray(frames[k])
        f[20:22] = rnd.choice((b"\x20\x00", b"\x00\x10", b"\x3f\xff"))
        frames[k] = bytes(f)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    t = 1_700_000_000
    for k, f in enumerate(frames):
        out.append(struct.pack("<IIII", t, k * 100 % 1000000, len(f), len(f)) + f)
    return b"".join(out)


def _decode_events(events, hash_data=True):
    """Events through the decoder with the summary and show sinks; every
    output rendered to memory."""
    from fastdicom import show, summary
    from fastdicom.capture import CaptureInfo
    from fastdicom.decoder import Decoder

    sink = summary.SummarySink()
    out = io.StringIO()
    tree = show.TreeShower(out, fmt="text", flt=None,
                           opts=show.TreeOptions(seq_tree=True, tag_tree=True, max_len=64))
    lister = show.PduLister(out, fmt="text", flt=None, redact=False, follow=False)
    dec = Decoder([sink, tree, lister], keep_pdus=True, keep_pdv_data=True, hash_data=hash_data)
    dec.begin_capture(0, "fuzz")
    dec.feed(events)
    info = CaptureInfo("fuzz")
    dec.end_capture(info)
    dec.finish()
    doc = summary.build(dec, [info], sink)
    summary.render_text(doc, io.StringIO(), to_file=True)
    for e in dec.expert:
        show.expert_line(e)
    return doc


def stream(data: bytes) -> None:
    cap = conversation_pcap(data)
    res = both_twins(cap, random_chunks(len(cap), data[0] if data else 0, 3000))
    assert res[0] != "raised", res[:3]
    _decode_events(res[0])


# ------------------------------------------------------------- pipeline
COMMANDS = (
    ["summary"], ["summary", "--format", "json"], ["pdus"], ["show", "--tag-subtrees"],
    ["expert"], ["analyze"], ["export", "--keep-incomplete", "--include-commands"],
    ["report"], ["summary", "--redact", "--hash"], ["pdus", "--format", "jsonl"],
)


def run_cli(argv) -> tuple:
    """``fastdicom ARGV``: (status, stdout, stderr), all in this process."""
    from fastdicom import cli
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


def pipeline(data: bytes) -> None:
    if not data:
        return
    argv = list(COMMANDS[data[0] % len(COMMANDS)])
    cap = conversation_pcap(data[1:])
    if data[0] & 0x80:  # gzip input, damaged too when bit 6 says so
        import gzip
        cap = bytearray(gzip.compress(cap, 1))
        if data[0] & 0x40:
            at = 10 + (len(data) * 7919) % max(1, len(cap) - 18)
            cap[at] ^= 0xA5
        cap = bytes(cap)
    with tempfile.TemporaryDirectory(prefix="fastdicom-fuzz-") as tmp:
        path = os.path.join(tmp, "c.pcap")
        with open(path, "wb") as f:
            f.write(cap)
        argv.insert(1, path)
        if argv[0] == "export":
            argv += ["-o", os.path.join(tmp, "out")]
        elif argv[0] == "report":
            argv += ["-o", os.path.join(tmp, "r.html")]
        status, out, err = run_cli(argv)
    assert status in (0, 1, 2), (argv, status, err)
    assert "internal error" not in err and "Traceback" not in err, err
    if status == 2:
        assert err.count("\n") == 1, err
    check_terminal_safe(out, argv)


def check_terminal_safe(text: str, what="") -> None:
    """No control character but newline and tab in text meant for a terminal."""
    bad = [c for c in set(text) if (c < " " and c not in "\n\t") or c == "\x7f"
           or 0x80 <= ord(c) < 0xA0]
    assert not bad, f"control characters {bad!r} in the output of {what}"


# -------------------------------------------------------------- tagwalk
SYNTAXES = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99", None,
)


def _walk_both(buf, syntax, sq, depth, limit, stop):
    a = _pytagwalk.walk_dataset(buf, syntax, sq, depth, limit, stop)
    if _core is not None:
        b = _core.walk_dataset(buf, syntax, sq, depth, limit, stop)
        if a != b:
            raise AssertionError(f"walker twins differ: {str(a)[:300]} vs {str(b)[:300]}")
    return a


def tagwalk(data: bytes) -> None:
    if len(data) < 3:
        return
    from fastdicom import dataset
    syntax = data[0] % 3
    depth = (1, 2, 3, 8, 64)[data[1] % 5]
    limit = (10, 1000, 1_000_000)[data[2] % 3]
    buf = data[3:]
    sq = dataset._sq_tags() if data[0] & 4 else frozenset()
    stop = 0xFFFFFFFF if data[0] & 8 else 0x00200000
    _walk_both(buf, syntax, sq, depth, limit, stop)
    ts = SYNTAXES[(data[0] >> 4) % len(SYNTAXES)]
    ds = dataset.decode(buf, ts, max_depth=depth, max_inflate=1 << 16, max_elements=limit)
    ds.dump()
    for e in ds.walk():
        dataset.format_value(e, 64)
    dataset.leading_values(buf, ts, max_inflate=1 << 16)
    # what the decoder checks on every data set head (--max-depth, --max-inflate)
    cap = (0, 100, 1 << 16)[data[2] % 3]
    n = dataset.inflated_size(buf, cap)
    assert 0 <= n <= cap + 1, (n, cap)
    out, capped, problem = dataset.inflate(buf, cap)
    # the counting inflater agrees with the one that keeps the bytes on every
    # well-formed stream (on a broken one, zlib drops the output of the call that
    # fails, so how much comes out before the error depends on the step sizes)
    if capped and n < cap:
        assert dataset.inflate(buf, 4 * cap + 65536)[2] is not None, (len(out), n, cap)
    elif not capped and problem is None:
        assert n == len(out), (len(out), n, cap)
    dataset.check_limits(buf, ts, depth, cap)


# ------------------------------------------------------------ associate
def associate(data: bytes) -> None:
    if not data:
        return
    from fastdicom import pdu
    kind = data[0] % 8
    body = data[1:]
    truncated = bool(data[0] & 8)
    if kind < 6:
        a = pdu.decode_associate(body, kind % 2 == 0, truncated)
        a.user_info.to_json(redact=bool(data[0] & 16))
        for raw in (a.called_ae_raw, a.calling_ae_raw):
            pdu.ae_problem(raw)
        for pc in a.contexts_ac:
            pc.result_text
        _ = a.calling_ae, a.called_ae
    elif kind == 6:
        r = pdu.decode_reject(body, truncated)
        r.to_json()
    else:
        r = pdu.decode_abort(body, truncated)
        r.to_json()


# ---------------------------------------------------------------- dimse
def dimse(data: bytes) -> None:
    from fastdicom import dataset, show
    from fastdicom import dimse as D
    from fastdicom import status as ST
    cmd = D.parse_command(data)
    _ = (cmd.name, cmd.service, cmd.is_response, cmd.is_cancel, cmd.has_data_set,
         cmd.message_id, cmd.responded_id, cmd.status)
    if cmd.field is not None:
        show.command_info(cmd)
    if cmd.status is not None:
        ST.status_text(cmd.service, cmd.status)
        ST.status_class(cmd.status)
    ds = dataset.decode_command_set(data)
    ds.dump()


TARGETS = {
    "capture": capture, "stream": stream, "pipeline": pipeline, "tagwalk": tagwalk,
    "associate": associate, "dimse": dimse,
}


def main(argv=None) -> int:
    """``python fuzz/targets.py TARGET FILE...``: replay inputs (no atheris)."""
    argv = sys.argv[1:] if argv is None else argv
    target = TARGETS[argv[0]]
    for name in argv[1:]:
        with open(name, "rb") as f:
            target(f.read())
        print(f"ok {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
