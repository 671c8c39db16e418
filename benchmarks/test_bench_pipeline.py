"""Throughput of the whole pipeline and of its stages: capture to summary,
the summary's JSON text, capture to exported files, the progress bar's cost,
the tag walk, and the export writer alone.  Each reports
``extra_info['MB/s']`` (of capture bytes; of text bytes for the JSON)."""

import os
import shutil
import tempfile

import pytest

from fastdicom import capture as C
from fastdicom import summary
from fastdicom.decoder import Decoder


def _mbps(benchmark, nbytes, **info):
    benchmark.extra_info.update(info)
    if benchmark.stats:
        benchmark.extra_info["MB/s"] = round(nbytes / benchmark.stats["mean"] / 1e6, 1)


def _summary(path, progress=None):
    sink = summary.SummarySink()
    dec = Decoder([sink], hash_data=False)
    infos = C.run([str(path)], dec, C.EngineOptions(ports=(11112,)), progress=progress)
    return summary.build(dec, infos, sink)


def test_capture_to_summary(benchmark, capture, rounds):
    """Capture file to the JSON summary document (what `fastdicom summary` does)."""
    doc = benchmark.pedantic(_summary, args=(capture.path,), rounds=rounds, warmup_rounds=1)
    assert doc["counts"]["objects_complete"] == len(capture.truth["received"])
    _mbps(benchmark, capture.size)


@pytest.fixture(scope="module")
def summary_document(capture):
    return _summary(capture.path)


@pytest.mark.parametrize("writer", ["_jsontext", "_pyjsontext"], ids=["compiled", "twin"])
def test_summary_json_text(benchmark, summary_document, rounds, writer):
    """The summary document to its JSON text (`summary --format json`), by the
    compiled writer and by its pure-Python twin; extra_info has the text's size."""
    import importlib
    import io

    from fastdicom.core import PURE_PYTHON
    if PURE_PYTHON and writer == "_jsontext":
        pytest.skip("the compiled writer is not used with FASTDICOM_PURE_PYTHON=1")
    write = importlib.import_module(f"fastdicom.{writer}").write_json

    def text():
        out = io.StringIO()
        write(summary_document, out)
        return out.getvalue()

    got = benchmark.pedantic(text, rounds=rounds, warmup_rounds=1)
    assert got.startswith("{\n") and len(summary_document["objects"]) > 0
    _mbps(benchmark, len(got), objects=len(summary_document["objects"]), text_bytes=len(got))


class _QuietProgress:
    """The real progress bar, drawing into a buffer (no terminal in a benchmark)."""

    def __init__(self, total):
        import io

        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

        self.p = Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                          console=Console(file=io.StringIO(), force_terminal=True), refresh_per_second=4)
        self.task = self.p.add_task("reading", total=total)
        self.seen = 0
        self.p.start()

    def __call__(self, info):
        self.p.advance(self.task, info.read_bytes - self.seen)
        self.seen = info.read_bytes

    def close(self):
        self.p.stop()


def test_capture_to_summary_with_progress_bar(benchmark, capture, rounds):
    """The same with the progress bar updating: compare with test_capture_to_summary (target: < 3% more)."""

    def run():
        bar = _QuietProgress(capture.size)
        try:
            return _summary(capture.path, bar)
        finally:
            bar.close()

    doc = benchmark.pedantic(run, rounds=rounds, warmup_rounds=1)
    assert doc["counts"]["objects_complete"] == len(capture.truth["received"])
    _mbps(benchmark, capture.size)


def test_capture_to_export(benchmark, capture, rounds):
    """Capture file to Part 10 files and manifest (what `fastdicom export` does), local disk."""
    from fastdicom.export import Exporter

    base = tempfile.mkdtemp(prefix="fdbench-", dir=os.environ.get("FASTDICOM_BENCH_TMP"))

    def run():
        out = os.path.join(base, "out")
        shutil.rmtree(out, ignore_errors=True)
        ex = Exporter(out)
        dec = Decoder([ex], hash_data=True)
        ex.decoder = dec
        try:
            C.run([str(capture.path)], dec, C.EngineOptions(ports=(11112,), data_limit=-1))
        finally:
            ex.close()
        return ex.counts["written"]

    try:
        n = benchmark.pedantic(run, rounds=rounds, warmup_rounds=0)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert n == len(capture.truth["received"])
    _mbps(benchmark, capture.size)


@pytest.fixture(scope="module")
def ct_dataset():
    from pydicom.data import get_testdata_file
    raw = open(get_testdata_file("CT_small.dcm"), "rb").read()
    glen = int.from_bytes(raw[140:144], "little")
    return raw[144 + glen:]


def test_tag_walk(benchmark, ct_dataset):
    """The core's tag-header walk over a whole explicit VR LE CT data set."""
    from fastdicom.core import walk_dataset
    elems, status, _ = benchmark(walk_dataset, ct_dataset, 1)
    assert status == 0 and len(elems) > 50
    _mbps(benchmark, len(ct_dataset), elements=len(elems))


def test_leading_values(benchmark, ct_dataset):
    """What the summary decodes per object: the patient/study/series values at the head."""
    from fastdicom.dataset import leading_values
    vals = benchmark(leading_values, ct_dataset, "1.2.840.10008.1.2.1", summary.LEADING_TAGS)
    assert vals[0x00100020]
    _mbps(benchmark, len(ct_dataset))


@pytest.mark.parametrize("direct_io", [True, False], ids=["direct", "page-cache"])
def test_export_writer(benchmark, tmp_path, rounds, direct_io):
    """The export writer alone: 64 objects of 4 MiB in 64 KiB fragments, hashed, to
    local disk, with O_DIRECT (where the file system takes it) or through the page cache."""
    from fastdicom.dimse import DataSetTransfer
    from fastdicom.export import Exporter

    class A:
        id = 0
        calling_ae, called_ae, capture = "SCU", "SCP", "bench"

        def transfer_syntax(self, ctx):
            return "1.2.840.10008.1.2.1"

    frag = os.urandom(65536)

    class Cmd:
        field = 1
        is_response = False
        message_id = 1
        name = "C-STORE-RQ"

        def get(self, key, default=None):
            return {"affected_sop_class_uid": "1.2.840.10008.5.1.4.1.1.2"}.get(key, default)

    def run():
        out = tmp_path / "w"
        shutil.rmtree(out, ignore_errors=True)
        ex = Exporter(str(out), direct_io=direct_io)
        for k in range(64):
            cmd = Cmd()
            t = DataSetTransfer(A(), 0, 1, "1.2.840.10008.1.2.1", cmd, 1, 0)
            t.index = k
            t.sop_instance_uid = f"1.2.3.{k}"
            cmd.get = lambda key, default=None, k=k: {  # noqa: E731
                "affected_sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
                "affected_sop_instance_uid": f"1.2.3.{k}"}.get(key, default)
            ex.on_transfer_start(t)
            for i in range(64):
                ex.on_data(t, i * len(frag), frag)
                t.length += len(frag)
            t.ended = t.last_seen = True
            ex.on_transfer_end(t)
        ex.close()
        return ex.counts["written"]

    assert benchmark.pedantic(run, rounds=rounds, warmup_rounds=0) == 64
    _mbps(benchmark, 64 * 64 * len(frag))


@pytest.fixture(scope="module")
def many_small(tmp_path_factory):
    """2,000 small associations, one after another (make_many_small.py)."""
    import make_many_small
    path = tmp_path_factory.mktemp("many") / "many.pcap"
    make_many_small.write(2000, str(path))
    return path


@pytest.mark.parametrize("hold", [None, 0], ids=["records-held", "records-spilled"])
def test_many_small_associations_to_json(benchmark, many_small, rounds, hold):
    """Per-association cost: capture to the written JSON summary as
    `fastdicom summary --format json` makes it (records made as connections
    end, the decoder forgetting them; spilled: every record through the
    temporary file).  Reported per association."""
    import io

    def run():
        sink = summary.SummarySink(records=True, spill=True, hold=hold)
        dec = Decoder([sink], hash_data=False, keep_ended=False, keep_objects=False)
        infos = C.run([str(many_small)], dec, C.EngineOptions(ports=(104,)), read_ahead=False)
        doc = summary.build(dec, infos, sink)
        out = io.StringIO()
        summary.write_json(doc, out)
        return doc["counts"]

    counts = benchmark.pedantic(run, rounds=rounds, warmup_rounds=1)
    assert counts["associations"] == counts["objects_complete"] == 2000
    if benchmark.stats:
        benchmark.extra_info["us per association"] = round(benchmark.stats["mean"] / 2000 * 1e6, 1)
