"""Measurements the ``fabriclab bench traffic`` suite calls."""
from __future__ import annotations

from fabriclab.traffic.netns import VethPair, in_netns
from fabriclab.traffic.transport import HostTransport, TransportConfig


def host_pps(seconds: float = 2.0, mtu: int = 1024, tag: str = "pps") -> dict:
    """Frames per second one host process sends over a veth (full-MTU RoCEv2 data frames,
    built on the transport's hot path: patch, IP checksum, ICRC, sendmsg), with no pacing."""
    with VethPair(tag) as pair:
        a, b = pair.hosts
        with in_netns(a.netns_path):
            transport = HostTransport(a.ifname, TransportConfig(mtu=mtu, line_rate=100e9))
        try:
            with in_netns(a.netns_path):
                qp = transport.connect(b.ip, 1, b.mac)
            sent = transport.blast(qp, seconds)
        finally:
            transport.close()
    frame_bytes = 14 + 20 + 8 + 12 + mtu + 4
    return {"host_pps": sent / seconds, "frame_bytes": frame_bytes, "host_mbps": sent * frame_bytes * 8 / seconds / 1e6,
            "native": transport.native}
