"""The host agent: one process per host, in the host's network namespace, owning its transport.

    nsenter --net=/proc/<pid>/ns/net python -m fabriclab.traffic.agent --ifname h1-eth0 [...]

It speaks JSON lines: commands on stdin, events on stdout (times are CLOCK_MONOTONIC seconds,
which network namespaces share, so a coordinator can compare them across hosts).

commands
    {"op": "send", "flow": ID, "peer": IP, "qpn": N, "size": BYTES [, "peer_mac": MAC]}
    {"op": "stats"}                                -> {"ev": "stats", "qps": [counters...], "nic": {...},
                                                        "pacing": {"histogram", "budget_us", "why"}}
    {"op": "stuck" [, "seconds": S]}               fault: the NIC's receive path hangs and pauses the link
    {"op": "quit"}
events
    {"ev": "ready", "ip": IP, "mac": MAC, "ifname": IF}
    {"ev": "acked", "flow": ID, "t_post": T, "t_done": T, "retransmissions": N, "timeouts": N,
     "cnps_received": N, "rates": [[T, BIT/S], ...]}     # counters: the QP's, during the flow
    {"ev": "delivered", "peer": IP, "qpn": N, "bytes": N, "t": T, "cnps_sent": N}
    {"ev": "error", "message": TEXT}
"""
from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time

from fabriclab.errors import UserError
from fabriclab.traffic.dcqcn import preset
from fabriclab.traffic.scale import TimeScale
from fabriclab.traffic.transport import HostTransport, Message, QueuePair, TransportConfig
from fabriclab.units import parse_duration, parse_rate, parse_size

REAL_RTO_FLOOR = 100e-6   # s on the real fabric: IRN's RTO_low (Mittal et al., SIGCOMM 2018)


def add_transport_arguments(parser: argparse.ArgumentParser, rate_help: str = "host link rate (default 100M)") -> None:
    """Transport options shared by the agent and ``fabriclab traffic`` (which passes them on)."""
    parser.add_argument("--rate", default="100M", help=rate_help)
    parser.add_argument("--mtu", type=int, default=1024, help="RoCE payload MTU in bytes (default 1024)")
    parser.add_argument("--dcqcn", default="paper", help="DCQCN preset: paper, mellanox or off (default paper)")
    parser.add_argument("--scale", type=float, default=None,
                        help="time scale: real rate / testbed rate (default: 100G / --rate)")
    parser.add_argument("--rto", default=None,
                        help="least retransmission timeout on the testbed (default: 100 us of the real fabric "
                             "x scale, IRN's RTO_low)")
    parser.add_argument("--window", type=int, default=256, help="PSNs in flight per QP (default 256)")
    parser.add_argument("--dscp-data", type=int, default=26, help="DSCP of RoCE data and ACKs (default 26)")
    parser.add_argument("--dscp-cnp", type=int, default=48, help="DSCP of CNPs (default 48)")
    parser.add_argument("--priority", type=int, default=3,
                        help="PFC priority the fabric gives --dscp-data: the host pauses it (default 3)")
    parser.add_argument("--no-ecn", action="store_true", help="send data not-ECT (no ECN marking possible)")
    parser.add_argument("--drop-probability", type=float, default=0.0, help="test knob: drop received data")
    parser.add_argument("--ce-probability", type=float, default=0.0, help="test knob: treat data as CE-marked")
    parser.add_argument("--ooo", action="store_true",
                        help="tolerate reordering (packet spraying): out-of-order receive, selective repeat")
    parser.add_argument("--slow-receiver", metavar="RATE", default=None,
                        help="the host empties its NIC receive buffer at RATE only (and sends PFC when it fills)")
    parser.add_argument("--rx-buffer", default="128KB", help="NIC receive buffer (default 128KB; XOFF at a quarter)")
    parser.add_argument("--no-host-pfc", action="store_true",
                        help="the NIC never sends PFC: a full receive buffer drops")


def transport_argv(args: argparse.Namespace) -> list[str]:
    """The options of ``add_transport_arguments`` back as command-line words."""
    argv = ["--rate", str(args.rate), "--mtu", str(args.mtu), "--dcqcn", args.dcqcn,
            "--window", str(args.window), "--dscp-data", str(args.dscp_data), "--dscp-cnp", str(args.dscp_cnp),
            "--priority", str(args.priority),
            "--drop-probability", str(args.drop_probability), "--ce-probability", str(args.ce_probability)]
    if args.scale is not None:
        argv += ["--scale", str(args.scale)]
    if args.rto is not None:
        argv += ["--rto", str(args.rto)]
    if args.no_ecn:
        argv.append("--no-ecn")
    if args.ooo:
        argv.append("--ooo")
    if args.slow_receiver:
        argv += ["--slow-receiver", str(args.slow_receiver)]
    argv += ["--rx-buffer", str(args.rx_buffer)]
    if args.no_host_pfc:
        argv.append("--no-host-pfc")
    return argv


def transport_config(args: argparse.Namespace) -> TransportConfig:
    """The transport configuration the options describe; UserError on a bad value."""
    line_rate = parse_rate(args.rate, "--rate")
    if not 64 <= args.mtu <= 9000:
        raise UserError(f"--mtu must be 64..9000 bytes, got {args.mtu}")
    if args.window < 1:
        raise UserError(f"--window must be at least 1, got {args.window}")
    for name in ("dscp_data", "dscp_cnp"):
        if not 0 <= getattr(args, name) < 64:
            raise UserError(f"--{name.replace('_', '-')} must be 0..63")
    if not 0 <= args.priority < 8:
        raise UserError(f"--priority must be 0..7, got {args.priority}")
    for name in ("drop_probability", "ce_probability"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UserError(f"--{name.replace('_', '-')} must be between 0 and 1")
    drain_rate = parse_rate(args.slow_receiver, "--slow-receiver") if args.slow_receiver else None
    rx_buffer = parse_size(args.rx_buffer, "--rx-buffer")
    if rx_buffer < 4 * (args.mtu + 100):
        raise UserError(f"--rx-buffer must hold at least 4 frames, got {rx_buffer} bytes")
    scale = TimeScale(args.scale) if args.scale else TimeScale.from_rates(100e9, line_rate)
    dcqcn = None if args.dcqcn == "off" else preset(args.dcqcn).for_link(scale.real_rate(line_rate)).scaled(scale)
    rto = parse_duration(args.rto, "--rto") if args.rto is not None else scale.time(REAL_RTO_FLOOR)
    return TransportConfig(mtu=args.mtu, line_rate=line_rate, dcqcn=dcqcn, dscp_data=args.dscp_data,
                           dscp_cnp=args.dscp_cnp, data_priority=args.priority, ecn_capable=not args.no_ecn, window=args.window,
                           rto=rto, scale=scale.scale, drop_probability=args.drop_probability,
                           ce_probability=args.ce_probability, keep_data=False, ooo=args.ooo,
                           rate_sample_interval=scale.time(10e-6),
                           cnp_interval=scale.time(50e-6) if dcqcn is None else None,
                           drain_rate=drain_rate, rx_buffer=rx_buffer, host_pfc=not args.no_host_pfc)


class Agent:
    def __init__(self, transport: HostTransport, out=sys.stdout):
        self.transport = transport
        self.out = out
        self._stdin_buffer = b""
        transport.on_message = self._delivered

    def emit(self, **event) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def _delivered(self, qp: QueuePair, nbytes: int, data, now: float) -> None:
        self.emit(ev="delivered", peer=qp.peer_ip, qpn=qp.qpn, bytes=nbytes, t=now, cnps_sent=qp.cnps_sent)

    def handle(self, cmd: dict) -> bool:
        """Run one command; False when told to quit."""
        op = cmd.get("op")
        if op == "send":
            qp = self.transport.connect(cmd["peer"], int(cmd["qpn"]), cmd.get("peer_mac"))
            before = (qp.retransmissions, qp.timeouts, qp.cnps_received, len(qp.rate_samples))
            flow = cmd["flow"]

            def acked(msg: Message, qp=qp, before=before, flow=flow) -> None:
                rates = qp.rate_samples[max(0, before[3] - 1):]
                self.emit(ev="acked", flow=flow, t_post=msg.posted, t_done=msg.completed,
                          retransmissions=qp.retransmissions - before[0], timeouts=qp.timeouts - before[1],
                          cnps_received=qp.cnps_received - before[2], rates=rates)

            self.transport.post_send(qp, int(cmd["size"]), on_complete=acked)
        elif op == "stats":
            self.emit(ev="stats", qps=[qp.counters() for qp in self.transport.qps.values()],
                      nic=self.transport.nic_counters(), pacing=self.transport.pacing_report())
        elif op == "stuck":
            self.transport.stuck(cmd.get("seconds"))
        elif op == "quit":
            return False
        else:
            self.emit(ev="error", message=f"unknown command {op!r}")
        return True

    def _read_commands(self) -> list[dict] | None:
        chunk = os.read(0, 65536)
        if not chunk:
            return None  # the coordinator went away
        self._stdin_buffer += chunk
        *lines, self._stdin_buffer = self._stdin_buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def serve(self) -> None:
        t = self.transport
        self.emit(ev="ready", ip=t.local_ip, mac=":".join(f"{b:02x}" for b in t.local_mac), ifname=t.ifname)
        while True:
            ready, _, _ = select.select([0], [], [], 0)
            if ready:
                commands = self._read_commands()
                if commands is None:
                    return
                for cmd in commands:
                    try:
                        if not self.handle(cmd):
                            return
                    except (KeyError, ValueError, OSError) as exc:
                        self.emit(ev="error", message=f"{cmd.get('op')}: {exc}")
            t.poll(0.002)
            if not t.busy():
                # idle: sleep until a frame or a command arrives
                select.select([0, t.sock], [], [], 0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fabriclab.traffic.agent", description=__doc__.split("\n")[0])
    parser.add_argument("--ifname", required=True, help="the host's interface")
    parser.add_argument("--seed", type=int, default=None)
    add_transport_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = transport_config(args)
        config.seed = args.seed
        transport = HostTransport(args.ifname, config, clock=time.monotonic)
    except (UserError, OSError) as exc:
        print(f"fabriclab agent: error: {exc}", file=sys.stderr)
        return 2
    try:
        Agent(transport).serve()
    except KeyboardInterrupt:
        pass
    finally:
        transport.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
