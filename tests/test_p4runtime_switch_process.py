"""End to end with the real switch process: ``fabriclab switch`` on a veth pair, driven over
P4Runtime by our client and by ``fabriclab switch-cli``; frames cross real AF_PACKET sockets."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from fabriclab.cli import main
from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError
from test_p4runtime_server import CPU_PORT, ethernet, program_path, wait_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def veth():
    """A veth pair (switch side, host side), removed afterwards."""
    switch_side, host_side = f"flp4s{os.getpid() % 10000}", f"flp4h{os.getpid() % 10000}"
    subprocess.run(["ip", "link", "add", switch_side, "type", "veth", "peer", "name", host_side], check=True)
    try:
        for name in (switch_side, host_side):
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"], check=False)
        yield switch_side, host_side
    finally:
        subprocess.run(["ip", "link", "del", switch_side], check=False)


@pytest.fixture
def switch_process(veth, program_path):
    addr = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "fabriclab", "switch", "--p4", str(program_path),
                             "-i", f"1@{veth[0]}", "--cpu-port", str(CPU_PORT), "--grpc-addr", addr,
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = None
        deadline = time.monotonic() + 20
        while client is None:
            try:
                client = P4RuntimeClient(addr, device_id=0, election_id=1, timeout=2).connect()
            except P4RuntimeError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"switch did not come up: {proc.communicate()[0].decode()}") from None
                time.sleep(0.2)
        with client:
            yield client, addr, veth[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_packet_in_and_out_through_the_real_switch(switch_process, capsys):
    client, addr, host_if = switch_process
    assert client.is_primary and "MyIngress.mac_table" in client.names.names("tables")
    host = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    host.bind((host_if, 0))
    host.settimeout(5)
    try:
        # switch-cli (a second controller, with a higher election id) installs the entry
        assert main(["switch-cli", "--grpc-addr", addr, "table_add", "mac_table", "to_cpu", "00:00:00:00:00:0c"]) == 0
        assert "Entry added to MyIngress.mac_table" in capsys.readouterr().out
        assert wait_for(lambda: client.is_primary)      # the CLI left: we are primary again

        frame = ethernet("00:00:00:00:00:0c", "00:00:00:00:00:0b", 0x0801)
        host.send(frame)
        packet = client.get_packet_in(timeout=5)
        assert packet.metadata["ingress_port"] == 1 and packet.payload[:14] == frame[:14]

        out = ethernet("00:00:00:00:00:0b", "00:00:00:00:00:0c", 0x0801, b"\x42" * 46)
        client.send_packet_out(out, egress_port=1)
        deadline = time.monotonic() + 5
        while True:                                  # skip anything else the kernel sends on the link
            received = host.recv(2048)
            if received[:14] == out[:14] or time.monotonic() > deadline:
                break
        assert received[:60] == out
    finally:
        host.close()


def test_both_servers_on_a_real_switch_handle(veth, program_path, capsys):
    """The runtime API and P4Runtime server on ``switch.Switch`` itself (its data-plane loop in
    a thread): the handle interface both servers rely on, and the CLI's live views."""
    from fabriclab.compiler import driver
    from fabriclab.p4runtime.server import P4RuntimeServer
    from fabriclab.switch.runtime_api import RuntimeApiServer
    from fabriclab.switch.switch import Switch
    from fabriclab.switch.switch_config import SwitchConfig

    switch = Switch(SwitchConfig(), [(1, veth[0])], cpu_port=CPU_PORT)
    switch.set_pipeline(driver.compile_file(str(program_path)))
    grpc_server = P4RuntimeServer(switch, "127.0.0.1:0", 0)
    api = RuntimeApiServer(switch, "127.0.0.1:0")
    grpc_server.start()
    switch.packet_in_sink = grpc_server.packet_in
    api.start()
    loop = threading.Thread(target=switch.serve, daemon=True)
    loop.start()
    host = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    host.bind((veth[1], 0))
    try:
        base = ["switch-cli", "--grpc-addr", f"127.0.0.1:{grpc_server.port}", "--api-addr", f"127.0.0.1:{api.port}"]
        assert main([*base, "table_add", "mac_table", "forward_mac", "00:00:00:00:00:0c", "=>", "1", "0"]) == 0
        frame = ethernet("00:00:00:00:00:0c", "00:00:00:00:00:0b", 0x0801)
        for _ in range(3):
            host.send(frame)
        assert wait_for(lambda: switch.stats()["ports"][1]["rx_frames"] >= 3)
        capsys.readouterr()
        assert main([*base, "ports"]) == 0
        ports = capsys.readouterr().out
        row = next(line for line in ports.splitlines() if veth[0] in line).replace("│", " ").split()
        assert row[:3] == ["1", veth[0], "0.1G"] and int(row[3]) >= 3       # rx frames
        assert main([*base, "queues"]) == 0
        assert "queues (shared buffer" in capsys.readouterr().out
        assert main([*base, "counter_read", "port_counter", "1"]) == 0
        assert "port_counter[1]= BmCounterValue(packets=" in capsys.readouterr().out
    finally:
        host.close()
        switch.stop()
        loop.join(timeout=5)
        api.stop()
        grpc_server.stop()
        switch.close()
