"""`fabriclab switch --engine native` on real veths: the compiled C pipeline forwards both ways."""
from __future__ import annotations

import pytest

from test_switch_veth import is_test_frame, lab, tagged, untagged   # noqa: F401 (lab is a fixture)

pytestmark = pytest.mark.root


def test_switch_forwards_on_the_native_engine(lab):   # noqa: F811
    lab.start_switch("rate: 100M\n", "--grpc-addr", "none", "--api-addr", "none", "--engine", "native")
    count = 100
    for seq in range(count):
        lab.hosts[1].send(untagged(1, 2, seq))
        lab.hosts[2].send(tagged(2, 1, 5, seq))
    last = (count - 1).to_bytes(4, "big")
    at_2 = lab.receive(2, lambda f: is_test_frame(f) and ("enough" if f[14:18] == last else True), 5)
    at_1 = lab.receive(1, lambda f: is_test_frame(f) and ("enough" if f[18:22] == last else True), 5)
    assert [f for _, f in at_2] == [untagged(1, 2, s) for s in range(count)]
    assert [f for _, f in at_1] == [tagged(2, 1, 5, s) for s in range(count)]
    stats = lab.stop_switch()
    assert stats["tm"]["ports"]["1"]["priorities"]["5"]["dequeued"] == count
    log = lab.log_file.read_text()
    assert "forward runs on the native engine" in log and "Python engine" not in log
