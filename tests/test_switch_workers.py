"""Several switches in one process (``fabriclab switch-worker``, ``serve_switches``): each
forwards on its own ports and is programmed over its own P4Runtime device; one switch failing
leaves the others forwarding."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError
from fabriclab.switch.runtime_api import RuntimeApiClient
from test_p4runtime_server import CPU_PORT, ethernet, program_path, wait_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.root

DST = "00:00:00:00:00:0c"


@pytest.fixture
def veths():
    """Four veth pairs (switch end, host end): ports 1 and 2 of switch A, then of switch B."""
    tag = uuid.uuid4().hex[:5]
    pairs = [(f"flw{tag}{i}s", f"flw{tag}{i}h") for i in range(4)]
    try:
        for pair in pairs:
            subprocess.run(["ip", "link", "add", pair[0], "type", "veth", "peer", "name", pair[1]], check=True)
            for name in pair:
                subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"], check=False)
                subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield pairs
    finally:
        for pair in pairs:
            subprocess.run(["ip", "link", "del", pair[0]], capture_output=True)


def _free_ports(count: int) -> list[int]:
    """Free ports p with p + 1000 free too (the runtime API's default address)."""
    found = []
    while len(found) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 1000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1000))
                except OSError:
                    continue
            found.append(port)
    return found


class Host:
    """A raw socket on a host end, keeping only frames to DST."""

    def __init__(self, ifname: str):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((ifname, 0))
        self.sock.settimeout(0.2)

    def send(self, payload: bytes) -> None:
        self.sock.send(ethernet(DST, "00:00:00:00:00:0b", 0x0801, payload.ljust(46, b"\0")))

    def received(self, payload: bytes, wait: float = 5.0) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                frame = self.sock.recv(2048)
            except socket.timeout:
                continue
            if frame[:6] == bytes.fromhex(DST.replace(":", "")) and frame[14:14 + len(payload)] == payload:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def _connect(addr: str, device_id: int, proc: subprocess.Popen) -> P4RuntimeClient:
    deadline = time.monotonic() + 60
    while True:
        try:
            return P4RuntimeClient(addr, device_id=device_id, election_id=1, timeout=5).connect(fetch_p4info=False)
        except P4RuntimeError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not come up: {proc.communicate()[0].decode()}") from None
            time.sleep(0.2)


def test_two_switches_in_one_worker_forward_and_are_programmed_independently(veths, program_path, tmp_path):
    grpc_a, grpc_b = _free_ports(2)
    spec = tmp_path / "worker.spec"
    spec.write_text(
        f"# two switches, one process\n"
        f"-i 1@{veths[0][0]} -i 2@{veths[1][0]} --name swa --device-id 1 --grpc-addr 127.0.0.1:{grpc_a} "
        f"--cpu-port {CPU_PORT} --stats-file {tmp_path / 'swa.json'}\n"
        f"-i 1@{veths[2][0]} -i 2@{veths[3][0]} --name swb --device-id 2 --grpc-addr 127.0.0.1:{grpc_b} "
        f"--cpu-port {CPU_PORT} --stats-file {tmp_path / 'swb.json'}\n")
    proc = subprocess.Popen([sys.executable, "-m", "fabriclab", "switch-worker", str(spec), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    hosts = [Host(host_end) for _, host_end in veths]
    clients = []
    try:
        a = _connect(f"127.0.0.1:{grpc_a}", 1, proc)
        clients.append(a)
        b = _connect(f"127.0.0.1:{grpc_b}", 2, proc)
        clients.append(b)
        # device 2 is not served on A's port under device 1's name: requests go by device id
        with pytest.raises(P4RuntimeError):
            P4RuntimeClient(f"127.0.0.1:{grpc_a}", device_id=3, election_id=1, timeout=5).connect(fetch_p4info=False)
        for client in (a, b):
            client.set_pipeline(str(program_path))
        # the same program, opposite forwarding: A sends DST out of port 2, B out of port 1
        a.insert_table_entry("MyIngress.mac_table", {"hdr.ethernet.dstAddr": DST}, "MyIngress.forward_mac",
                             {"port": 2, "dmac": DST})
        b.insert_table_entry("MyIngress.mac_table", {"hdr.ethernet.dstAddr": DST}, "MyIngress.forward_mac",
                             {"port": 1, "dmac": DST})
        assert len(a.read_table_entries("MyIngress.mac_table")) == 1
        assert len(b.read_table_entries("MyIngress.mac_table")) == 1

        hosts[0].send(b"to-a-port2")      # into A port 1
        assert hosts[1].received(b"to-a-port2")
        hosts[3].send(b"to-b-port1")      # into B port 2
        assert hosts[2].received(b"to-b-port1")
        hosts[2].send(b"b-hairpin")       # into B port 1: B sends DST back out of port 1, nothing to port 2
        assert not hosts[3].received(b"b-hairpin", wait=1.0)

        b.delete_table_entry("MyIngress.mac_table", {"hdr.ethernet.dstAddr": DST})
        hosts[0].send(b"a-still")         # A keeps its entry
        assert hosts[1].received(b"a-still")
        assert a.read_table_entries("MyIngress.mac_table") and not b.read_table_entries("MyIngress.mac_table")

        # each switch has its own counters on its own runtime API address
        with RuntimeApiClient(f"127.0.0.1:{grpc_a + 1000}") as api_a, RuntimeApiClient(f"127.0.0.1:{grpc_b + 1000}") as api_b:
            stats_a, stats_b = api_a.call("stats"), api_b.call("stats")
        assert stats_a["ports"]["1"]["rx_frames"] >= 2 and stats_a["ports"]["2"]["tx_frames"] >= 2
        assert stats_b["ports"]["2"]["rx_frames"] >= 1 and stats_b["ports"]["1"]["tx_frames"] >= 1
        assert stats_b["ports"]["2"]["tx_frames"] == 0
    finally:
        for client in clients:
            client.close()
        for host in hosts:
            host.close()
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, output
    assert (tmp_path / "swa.json").exists() and (tmp_path / "swb.json").exists()


class _FailingTM:
    """Wraps a traffic manager; ``advance`` raises once armed: a fault outside the P4 program."""

    def __init__(self, tm):
        self._tm = tm
        self.armed = False

    def advance(self, now):
        if self.armed:
            raise RuntimeError("injected TM fault")
        return self._tm.advance(now)

    def __getattr__(self, name):
        return getattr(self._tm, name)


def test_a_failing_switch_leaves_its_neighbours_in_the_loop_forwarding(veths, program_path):
    from fabriclab.compiler import driver
    from fabriclab.switch.switch import Switch, serve_switches
    from fabriclab.switch.switch_config import SwitchConfig
    from fabriclab.v1model.tables import ActionCall, TableEntry

    compiled = driver.compile_file(str(program_path))
    switches = [Switch(SwitchConfig(), [(1, veths[0][0]), (2, veths[1][0])], name="bad"),
                Switch(SwitchConfig(), [(1, veths[2][0]), (2, veths[3][0])], name="good")]
    hosts = [Host(host_end) for _, host_end in veths]
    dst = int(DST.replace(":", ""), 16)
    for switch in switches:
        switch.set_pipeline(compiled)     # one compiled program, a pipeline and state each
        switch.pipeline.state.tables["MyIngress.mac_table"].insert(
            TableEntry(match=(dst,), action=ActionCall("MyIngress.forward_mac", (2, dst))))
    bad, good = switches
    assert bad.pipeline.state is not good.pipeline.state
    loop = threading.Thread(target=serve_switches, args=([(sw, None) for sw in switches],), daemon=True)
    loop.start()
    try:
        hosts[0].send(b"bad-before")
        assert hosts[1].received(b"bad-before")

        def broken_ingress(*args):
            raise ValueError("injected pipeline fault")

        bad.pipeline.ingress = broken_ingress          # the P4 program fails on every packet
        for i in range(3):
            hosts[0].send(b"lost-%d" % i)
            hosts[2].send(b"good-%d" % i)
            assert hosts[3].received(b"good-%d" % i)
        assert wait_for(lambda: bad.stats()["drops"].get("pipeline_error") == 3, timeout=5)
        assert not hosts[1].received(b"lost-", wait=0.5)

        bad.tm = _FailingTM(bad.tm)                    # now its traffic manager fails too
        bad.tm.armed = True
        for i in range(3):
            hosts[0].send(b"lost-tm-%d" % i)
            hosts[2].send(b"good-tm-%d" % i)
            assert hosts[3].received(b"good-tm-%d" % i)
        assert wait_for(lambda: bad.stats()["drops"].get("switch_error", 0) >= 1, timeout=5)
        assert "switch_error" not in good.stats()["drops"] and "pipeline_error" not in good.stats()["drops"]
        assert loop.is_alive()
    finally:
        for switch in switches:
            switch.stop()
        loop.join(timeout=10)
        for switch in switches:
            switch.close()
        for host in hosts:
            host.close()
    assert not loop.is_alive()
