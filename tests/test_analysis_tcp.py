"""TCP-level failures before DICOM, from crafted captures: a SYN that is never
answered, an RST on connect, a connection closed without a word."""

import pcapgen as G
from test_analysis import analyse, findings


def syn_only(c, answer=None):
    """Just a SYN (and optionally the server's RST or SYN-ACK + FIN)."""
    c._seg(0, 0x02, b"", syn=True)
    c.wait(3.0)
    c.seq[0] -= 1
    c._seg(0, 0x02, b"", syn=True)  # the retransmitted SYN (same sequence number)
    if answer == "rst":
        c._seg(1, 0x14, b"")
    elif answer == "fin":
        c._seg(1, 0x12, b"", syn=True)
        c._seg(0, 0x10, b"")
        c._seg(0, 0x11, b"")
        c._seg(1, 0x11, b"")
    return c


def test_syn_unanswered_refused_and_silent(tmp_path):
    lost = syn_only(G.Conversation(client=("10.0.0.5", 40100), server=("10.0.0.9", 104), handshake=False))
    refused = syn_only(G.Conversation(client=("10.0.0.5", 40101), server=("10.0.0.9", 11112),
                                      handshake=False, t0=1_700_000_010.0), "rst")
    silent = syn_only(G.Conversation(client=("10.0.0.5", 40102), server=("10.0.0.9", 104),
                                     handshake=False, t0=1_700_000_020.0), "fin")
    p = tmp_path / "tcp.pcap"
    p.write_bytes(G.pcap(lost, refused, silent))
    dec, res = analyse(p, ports=(104, 11112))
    outcomes = sorted(a.outcome_text for a in dec.attempts)
    assert outcomes == ["SYN never answered", "connected, closed without data", "connection refused (RST)"]
    assert findings(res, "tcp.unanswered") and findings(res, "tcp.refused") and findings(res, "tcp.no_data")
    assert "10.0.0.9:104" in findings(res, "tcp.unanswered")[0].title
    assert "10.0.0.9:11112" in findings(res, "tcp.refused")[0].title
