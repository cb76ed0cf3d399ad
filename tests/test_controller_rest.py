"""The controller on a running fabric: its REST API (every endpoint, JSON errors), link-failure
repair through the Mininet CLI's ``link`` (traffic keeps flowing, routes come back), ``paths``."""
from __future__ import annotations

import os
import socket
import time

import pytest

from fabriclab.controller.rest import rest_call
from fabriclab.controller.settings import ControllerSettings
from fabriclab.topologies.checks import ping_all
from fabriclab.topologies.leafspine import leafspine
from fabriclab.topologies.network import FabricNetwork
from support import wait_for

pytestmark = [
    pytest.mark.mininet, pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for Mininet"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def reachable(network) -> bool:
    _, failed = ping_all(network.net, [h.name for h in network.description.hosts])
    return not failed


def test_rest_api_repair_and_cli(tmp_path, caplog):
    from mininet.log import setLogLevel

    from fabriclab.topologies.fabric_cli import FabricCLI

    d = leafspine(spines=2, leaves=2, hosts_per_leaf=1, prefix="tr", grpc_port_base=21900)
    settings = ControllerSettings(rest_port=free_port(), poll_interval_s=0.2)
    with FabricNetwork(d, tmp_path / "run", settings=settings) as network:
        url = network.rest_url
        assert url == f"http://127.0.0.1:{settings.rest_port}"
        get = lambda path: rest_call(url, "GET", path)   # noqa: E731

        status, fabric = get("/fabric")
        assert status == 200 and fabric["policy"] == "static" and fabric["repair"] is True
        assert {s["name"] for s in fabric["switches"]} == {"trl1", "trl2", "trs1", "trs2"}
        assert all(link["state"] == "up" for link in fabric["links"]) and len(fabric["links"]) == 6
        assert wait_for(lambda: get("/fabric")[1]["poll_ms"] is not None), "the telemetry loop polls"

        status, ports = get("/switches/trl1/ports")
        assert status == 200 and ports["ports"]["2"]["peer"] == "trs1" and ports["ports"]["2"]["up"] is True
        assert wait_for(lambda: "util" in get("/switches/trl1/ports")[1]["ports"]["2"])

        status, groups = get("/groups")
        (group,) = groups["switches"]["trl1"]
        assert [(m["neighbour"], m["weight"]) for m in group["members"]] == [("trs1", 8), ("trs2", 8)]
        assert group["prefixes"] == ["10.0.2.0/24"] and group["mode"] == "ecmp"

        status, paths = get("/paths?src=trh1_1&dst=trh2_1")
        assert status == 200
        assert sorted((p["hops"][2], p["share"]) for p in paths["paths"]) == [("trs1", 0.5), ("trs2", 0.5)]
        assert get("/flows") == (200, {"policy": "static", "pinned_total": 0, "flows": []})

        # errors: 4xx with one JSON line, never a traceback
        assert get("/switches/nosuch/ports")[0] == 404
        assert get("/paths?src=trh1_1")[0] == 400
        assert get("/paths?src=trh1_1&dst=nobody") == (404, {"error": "no host named 'nobody'"})
        assert get("/nothing/here")[0] == 404
        assert rest_call(url, "POST", "/fabric", {})[0] == 405
        assert rest_call(url, "PUT", "/policy", {"policy": "magic"})[0] == 400
        assert rest_call(url, "PUT", "/lb", {"mode": "teleport"})[0] == 400
        assert rest_call(url, "PUT", "/lb", {"mode": "spray", "switch": "trl1", "group": 9})[0] == 404
        status, answer = rest_call(url, "PUT", "/policy", None)
        assert status == 400 and "error" in answer

        assert rest_call(url, "PUT", "/lb", {"mode": "spray", "switch": "trl1"}) == \
            (200, {"mode": "spray", "switch": "trl1", "group": None, "groups_changed": 1})
        assert get("/groups")[1]["switches"]["trl1"][0]["mode"] == "spray"
        assert rest_call(url, "PUT", "/policy", {"policy": "wcmp", "params": {"min_interval_s": 0.5}})[0] == 200
        assert get("/fabric")[1]["policy"] == "wcmp"
        assert reachable(network)

        # a spine uplink fails: the switches see carrier loss, the controller reroutes
        setLogLevel("output")
        script = tmp_path / "cli.txt"
        script.write_text("link trl1 trs1 down\npaths trh1_1 trh2_1\n")
        with open(script) as commands:
            FabricCLI(network.net, network=network, stdin=commands)
        repairs = get("/fabric")[1]["repairs"]
        assert len(repairs) == 1 and repairs[0]["state"] == "down"
        assert set(repairs[0]["link"]) == {"trl1", "trs1"} and set(repairs[0]["switches"]) >= {"trl1", "trl2"}
        assert repairs[0]["repair_ms"] >= repairs[0]["reprogrammed_ms"] > 0
        fabric = get("/fabric")[1]
        assert [link["state"] for link in fabric["links"] if {e["node"] for e in link["ends"]} == {"trl1", "trs1"}] \
            == ["down"]
        assert [p["hops"] for p in get("/paths?src=trh1_1&dst=trh2_1")[1]["paths"]] == \
            [["trh1_1", "trl1", "trs2", "trl2", "trh2_1"]]
        assert wait_for(lambda: reachable(network), timeout=20)
        out = caplog.text
        assert "routes repaired in" in out and "trh1_1 -> trl1 -> trs2 -> trl2 -> trh2_1   100 %" in out

        network.net.configLinkStatus("trl1", "trs1", "up")
        assert wait_for(lambda: len(get("/fabric")[1]["repairs"]) == 2)
        assert get("/fabric")[1]["repairs"][1]["state"] == "up"
        assert len(get("/paths?src=trh1_1&dst=trh2_1")[1]["paths"]) == 2
        assert reachable(network)
