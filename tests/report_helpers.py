"""Captures and reports for the report tests (not fixtures)."""

import random
from pathlib import Path

import pcapgen as G
from fastdicom import capture
from fastdicom.analysis import output as AO
from fastdicom.decoder import Decoder
from fastdicom.report import build_html

# wire strings a hostile or broken peer could send: they must reach the page as text
HOSTILE_CALLING = '"><svg onload=1'  # 15 characters: fits an AE title
HOSTILE_CALLED = "</script><b>x"
HOSTILE_UID = '1.2.3"><img src=x onerror=alert(1)>'
HOSTILE_NAME = "<script>alert('pn')</script>^Eve"


def report_html(path, ports, redact=False) -> str:
    summary_sink, collector = AO.sinks()
    dec = Decoder([summary_sink, collector], **AO.DECODER_OPTIONS)
    collector.bind(dec)
    infos = capture.run([str(path)], dec, capture.EngineOptions(ports=ports))
    result = AO.run_analyses(dec, collector, redact)
    return build_html(dec, infos, result, summary_sink, redact=redact)


def hostile_capture(path: Path) -> Path:
    """A C-STORE whose AE titles, SOP Instance UID and patient name carry markup, and a
    C-FIND with the same name as a matching key (so findings quote it)."""
    c = G.Conversation()
    c.send(0, G.assoc_rq(HOSTILE_CALLED, HOSTILE_CALLING,
                         [(1, G.CT_STORAGE, (G.EXPLICIT,)), (3, G.STUDY_FIND, (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac(HOSTILE_CALLED, HOSTILE_CALLING, [(1, 0, G.EXPLICIT), (3, 0, G.EXPLICIT)]))
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, HOSTILE_UID))))
    c.send(0, G.p_data((1, 2, G.ct_dataset(HOSTILE_UID, patient=HOSTILE_NAME, pixels=256))))
    c.send(1, G.p_data((1, 3, G.c_store_rsp(1, G.CT_STORAGE, HOSTILE_UID, status=0xA700))))
    ident = G.dataset_explicit([(0x00080052, "CS", b"STUDY"),
                                (0x00100010, "PN", HOSTILE_NAME.encode() + b" "),
                                (0x0020000D, "UI", b"")])
    c.send(0, G.p_data((3, 3, G.command(affected_sop_class_uid=G.STUDY_FIND, command_field=0x0020,
                                        message_id=2, priority=0, command_data_set_type=0))))
    c.send(0, G.p_data((3, 2, ident)))
    c.send(1, G.p_data((3, 3, G.command(affected_sop_class_uid=G.STUDY_FIND, command_field=0x8020,
                                        message_id_being_responded_to=2,
                                        command_data_set_type=0x0101, status=0))))
    c.send(0, G.abort()).close()
    path.write_bytes(G.pcap(c))
    return path


def many_operations_capture(path: Path, operations=10_000, associations=20, seed=0) -> Path:
    """``operations`` C-STOREs of small CT objects over ``associations`` associations
    (one after the other), with varied SCP delays so the latency charts have a shape."""
    rng = random.Random(seed)
    per = operations // associations
    convs = []
    t0 = 1_700_000_000.0
    for k in range(associations):
        c = G.Conversation(client=("10.0.0.1", 40000 + k), t0=t0)
        c.send(0, G.assoc_rq("PACS", f"MOD{k:02d}", [(1, G.CT_STORAGE, (G.EXPLICIT, G.IMPLICIT))]))
        c.send(1, G.assoc_ac("PACS", f"MOD{k:02d}", [(1, 0, G.EXPLICIT)]))
        for i in range(1, per + 1):
            uid = f"1.2.826.0.1.3680043.8.498.{k}.{i}"
            c.send(0, G.p_data((1, 3, G.c_store_rq(i, G.CT_STORAGE, uid))))
            c.send(0, G.p_data((1, 2, G.ct_dataset(uid, pid=f"P{i % 97}", pixels=512))))
            c.wait(rng.lognormvariate(-5.5, 0.8))
            status = 0xA700 if rng.random() < 0.002 else 0
            c.send(1, G.p_data((1, 3, G.c_store_rsp(i, G.CT_STORAGE, uid, status))))
            c.wait(rng.random() * 0.002)
        c.send(0, G.release_rq()).send(1, G.release_rp()).close()
        t0 = c.t + 0.05
        convs.append(c)
    path.write_bytes(G.pcap(*convs))
    return path
