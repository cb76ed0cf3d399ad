"""P4Runtime deadlines sized for a slow machine: pushing a pipeline (the switch compiles the
program) gets the long pipeline deadline whatever the client's per-call deadline; other calls
keep theirs, and a call over its deadline fails with DEADLINE_EXCEEDED, not a hang."""
from __future__ import annotations

import time
from concurrent import futures

import grpc
import pytest
from finsy.proto import p4i, p4r, p4r_grpc

from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError

SLOW_S = 0.6     # how long the stand-in switch takes over each call


class SlowSwitch(p4r_grpc.P4RuntimeServicer):
    """Answers like a switch on a machine much slower than the client expects."""

    def SetForwardingPipelineConfig(self, request, context):
        time.sleep(SLOW_S)
        return p4r.SetForwardingPipelineConfigResponse()

    def Write(self, request, context):
        time.sleep(SLOW_S)
        return p4r.WriteResponse()


@pytest.fixture
def slow_switch():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    p4r_grpc.add_P4RuntimeServicer_to_server(SlowSwitch(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_the_pipeline_gets_the_long_deadline_other_calls_their_own(slow_switch):
    client = P4RuntimeClient(slow_switch, timeout=SLOW_S / 3)
    try:
        client.set_pipeline_config(p4i.P4Info(), b"program")      # would exceed the client's deadline
        with pytest.raises(P4RuntimeError) as failed:
            client.write([])
        assert failed.value.code == "DEADLINE_EXCEEDED"
    finally:
        client.close()

