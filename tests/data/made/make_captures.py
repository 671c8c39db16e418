#!/usr/bin/env python3
"""Make the failure captures in this folder: real pynetdicom peers on the
loopback of a private network namespace, recorded with tcpdump.

    sudo python tests/data/made/make_captures.py            # every scenario
    sudo python tests/data/made/make_captures.py get_cancel  # one of them

Needs root (``ip netns``), tcpdump, ethtool, and pydicom + pynetdicom in the
Python that runs it.  As for the shared real captures, the namespace's
loopback gets a 1500-byte MTU with segmentation offloads off, so segments are
wire-sized.  All traffic stays inside the namespace.  ``captures.json`` lists,
per capture, its DICOM ports and what it shows; README.md says the same for
people.  Objects sent are pydicom's bundled test files (CT_small.dcm,
MR_small.dcm).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETNS = "fdmade"
HOST = "127.0.0.1"

SCENARIOS = {
    "move_refused": {
        "ports": [11112, 11119],
        "shows": "C-MOVE to MOVEDEST, which the archive maps to 127.0.0.1:11119 where nothing "
                 "listens: the archive's SYN is answered by RST, and the C-MOVE fails with "
                 "0xA801 (pynetdicom reports an unreachable destination as unknown).",
    },
    "get_cancel": {
        "ports": [11112],
        "shows": "One association: C-GET with SCP/SCU role selection for CT and MR storage, two "
                 "C-STORE sub-operations back on the same association, then a C-FIND "
                 "(PatientName=*) that the SCU cancels with C-CANCEL-RQ after two matches; the "
                 "SCP ends it with 0xFE00.",
    },
    "get_no_role": {
        "ports": [11112],
        "shows": "C-GET whose SCU proposes the storage contexts but no SCP role selection: the "
                 "SCP cannot send the objects back, every sub-operation fails.",
    },
    "ae_reject": {
        "ports": [11112],
        "shows": "Three associations to STORESCP: called as 'storescp' (rejected: called AE "
                 "title not recognised), from calling AE 'ct01' (rejected: calling AE title not "
                 "recognised), then CT01 → STORESCP accepted with one C-STORE.",
    },
    "no_answer": {
        "ports": [11112, 11114],
        "shows": "An A-ASSOCIATE-RQ to a process on port 11112 that accepts the TCP connection "
                 "but never answers (the SCU gives up after its ACSE timeout), and a C-ECHO SCU "
                 "whose connection to port 11114 is refused (RST).",
    },
    "slow_scp": {
        "ports": [11112],
        "shows": "Six C-STOREs to an SCP that takes 250 ms to answer each: the performance "
                 "analysis names the SCP as the slow side.",
    },
}


# ---------------------------------------------------------------- the capture
def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def make(name: str) -> None:
    out = HERE / f"{name}.pcap"
    sh("ip", "netns", "del", NETNS, check=False)
    sh("ip", "netns", "add", NETNS)
    try:
        ns = ("ip", "netns", "exec", NETNS)
        sh(*ns, "ip", "link", "set", "lo", "up", "mtu", "1500")
        sh(*ns, "ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off", check=False)
        dump = subprocess.Popen([*ns, "tcpdump", "-i", "lo", "-s", "0", "-U", "-w", str(out), "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # tcpdump is listening
        r = subprocess.run([*ns, sys.executable, __file__, "--run", name], text=True,
                           capture_output=True, timeout=120)
        time.sleep(2.0)  # let tcpdump drain what the kernel holds
        dump.send_signal(signal.SIGINT)
        _, err = dump.communicate(timeout=10)
        if r.returncode != 0:
            raise SystemExit(f"{name}: scenario failed\n{r.stdout}\n{r.stderr}")
        stats = " ".join(line for line in err.decode().splitlines() if "packets" in line)
        print(f"{out.name}: {out.stat().st_size} bytes ({stats})")
    finally:
        sh("ip", "netns", "del", NETNS, check=False)


# --------------------------------------------------------------- the peers
def _objects():
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    return [dcmread(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")]


def _identifier(**kw):
    from pydicom.dataset import Dataset
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _qr_scp(port=11112, move_to=None, find_delay=0.05):
    """An archive (ARCHIVE) answering C-FIND, C-GET and C-MOVE from two objects."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelGet,
        PatientRootQueryRetrieveInformationModelMove,
    )
    objs = _objects()

    def on_find(event):
        for i in range(20):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            time.sleep(find_delay)
            yield 0xFF00, _identifier(QueryRetrieveLevel="PATIENT", PatientName=f"PATIENT^{i:02d}",
                                      PatientID=f"ID{i:02d}")

    def on_get(event):
        yield len(objs)
        for ds in objs:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    def on_move(event):
        dest = event.move_destination
        dest = dest.decode() if isinstance(dest, bytes) else dest
        yield move_to.get(dest.strip()) or (None, None)
        yield len(objs)
        for ds in objs:
            yield 0xFF00, ds

    ae = AE(ae_title="ARCHIVE")
    for model in (PatientRootQueryRetrieveInformationModelFind,
                  PatientRootQueryRetrieveInformationModelGet,
                  PatientRootQueryRetrieveInformationModelMove):
        ae.add_supported_context(model)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, scp_role=True, scu_role=False)
    from pynetdicom.sop_class import CTImageStorage, MRImageStorage
    for sop in (CTImageStorage, MRImageStorage):  # for C-MOVE sub-associations
        ae.add_requested_context(sop)
    handlers = [(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get), (evt.EVT_C_MOVE, on_move)]
    return ae.start_server((HOST, port), block=False, evt_handlers=handlers)


def run_move_refused():
    from pynetdicom import AE
    from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelMove as MOVE
    server = _qr_scp(move_to={"MOVEDEST": (HOST, 11119)})
    try:
        ae = AE(ae_title="VIEWER")
        ae.add_requested_context(MOVE)
        assoc = ae.associate(HOST, 11112, ae_title="ARCHIVE")
        assert assoc.is_established
        for _ in assoc.send_c_move(_identifier(QueryRetrieveLevel="PATIENT", PatientID="1CT1"),
                                   "MOVEDEST", MOVE):
            pass
        assoc.release()
    finally:
        server.shutdown()


def _getter(role: bool):
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import (
        CTImageStorage, MRImageStorage, PatientRootQueryRetrieveInformationModelFind,
        PatientRootQueryRetrieveInformationModelGet,
    )
    ae = AE(ae_title="GETTER")
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    for sop in (CTImageStorage, MRImageStorage):
        ae.add_requested_context(sop)
    roles = [build_role(CTImageStorage, scp_role=True), build_role(MRImageStorage, scp_role=True)]
    handlers = [(evt.EVT_C_STORE, lambda event: 0x0000)]
    assoc = ae.associate(HOST, 11112, ae_title="ARCHIVE", ext_neg=roles if role else [],
                         evt_handlers=handlers)
    assert assoc.is_established
    return assoc


def run_get_cancel():
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelFind as FIND,
        PatientRootQueryRetrieveInformationModelGet as GET,
    )
    server = _qr_scp(find_delay=0.05)
    try:
        assoc = _getter(role=True)
        for _ in assoc.send_c_get(_identifier(QueryRetrieveLevel="PATIENT", PatientID="1CT1"),
                                  GET, msg_id=1):
            pass
        cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == FIND)
        q = _identifier(QueryRetrieveLevel="PATIENT", PatientName="*", PatientID="")
        for i, (status, _ident) in enumerate(assoc.send_c_find(q, FIND, msg_id=2)):
            if i == 1:
                assoc.send_c_cancel(2, cx.context_id)
        assoc.release()
    finally:
        server.shutdown()


def run_get_no_role():
    from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelGet as GET
    server = _qr_scp()
    try:
        assoc = _getter(role=False)
        for _ in assoc.send_c_get(_identifier(QueryRetrieveLevel="PATIENT", PatientID="1CT1"),
                                  GET, msg_id=1):
            pass
        assoc.release()
    finally:
        server.shutdown()


def _store_scp(port=11112, delay=0.0, **opts):
    from pynetdicom import AE, StoragePresentationContexts, evt

    def on_store(event):
        time.sleep(delay)
        return 0x0000

    ae = AE(ae_title="STORESCP")
    ae.supported_contexts = StoragePresentationContexts
    from pynetdicom.sop_class import Verification
    ae.add_supported_context(Verification)
    for k, v in opts.items():
        setattr(ae, k, v)
    return ae.start_server((HOST, port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])


def _store(calling, called, datasets, port=11112):
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, MRImageStorage
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate(HOST, port, ae_title=called)
    if assoc.is_established:
        for ds in datasets:
            assoc.send_c_store(ds)
        assoc.release()
    return assoc


def run_ae_reject():
    server = _store_scp(require_called_aet=True, require_calling_aet=["CT01"])
    try:
        ct = _objects()[0]
        assert not _store("CT01", "storescp", [ct]).is_established
        time.sleep(0.2)
        assert not _store("ct01", "STORESCP", [ct]).is_established
        time.sleep(0.2)
        assert _store("CT01", "STORESCP", [ct]).is_released
    finally:
        server.shutdown()


def run_no_answer():
    import socket

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((HOST, 11112))
    lsock.listen(1)
    held = []

    def hold():  # accept, read, never answer
        conn, _ = lsock.accept()
        held.append(conn)
        conn.settimeout(5)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    ae = AE(ae_title="ECHOSCU")
    ae.acse_timeout = 1.5
    ae.add_requested_context(Verification)
    assoc = ae.associate(HOST, 11112, ae_title="HUNGSCP")
    assert not assoc.is_established
    time.sleep(0.2)
    assoc = ae.associate(HOST, 11114, ae_title="ANY")  # nothing listens: RST
    assert not assoc.is_established
    for c in held:
        c.close()
    lsock.close()


def run_slow_scp():
    from pydicom.uid import generate_uid
    server = _store_scp(delay=0.25)
    try:
        ct = _objects()[0]
        objs = []
        for _ in range(6):
            ds = ct.copy()
            ds.SOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
            objs.append(ds)
        assert _store("CT01", "STORESCP", objs) is not None
    finally:
        server.shutdown()


def main(argv):
    if argv[:1] == ["--run"]:
        globals()[f"run_{argv[1]}"]()
        return 0
    if os.geteuid() != 0:
        raise SystemExit("needs root: ip netns and tcpdump")
    names = argv or list(SCENARIOS)
    for name in names:
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r}: {', '.join(SCENARIOS)}")
        make(name)
    (HERE / "captures.json").write_text(json.dumps(SCENARIOS, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
