"""P4Runtime IDs must be the ones p4c assigns.

Expected values are copied from P4Info files p4c generated, checked into public repositories:
p4lang/p4c testdata/p4_16_samples_outputs/{fabric_20190420/fabric.p4, flowlet_switching-bmv2.p4,
action_selector_shared-bmv2.p4, gauntlet_exit_combination_1-bmv2.p4, inline1-bmv2.p4,
issue1478-bmv2.p4}.p4info.txtpb, the p4lang/tutorials basic.p4 P4Info, and the ONF UPF
program's P4Info (meter and counter).
"""
import itertools

import pytest

from fabriclab.errors import UserError
from fabriclab.compiler.p4info import (ACTION, ACTION_PROFILE, CONTROLLER_HEADER, COUNTER, DIGEST, DIRECT_COUNTER,
                                     METER, REGISTER, TABLE, compute_ids, jenkins_one_at_a_time,
                                     shortest_unique_suffixes)

P4C_IDS = {
    TABLE: {
        "MyIngress.ipv4_lpm": 37375156,
        "FabricIngress.filtering.ingress_port_vlan": 43310977,
        "FabricIngress.next.hashed": 47960972,
        "FabricEgress.egress_next.egress_vlan": 49262446,
        "IngressI.indirect_ws": 38116258,
        "IngressI.indirect_ws_1": 33951097,
        "ingress.ecmp_group": 38446407,
        "egress.send_frame": 49367184,
        "ingress.ecmp_nhop": 41627831,
        "ingress.flowlet": 42150575,
        "ingress.forward": 43289378,
        "ingress.new_flowlet": 43789109,
        "ingress.simple_table": 39789425,
        "IngressI.do_aux.adjust_lkp_fields": 40552494,
        "ingress.t1": 39755323,
        "ingress.t2": 42400396,
    },
    ACTION: {
        "NoAction": 21257015,
        "MyIngress.ipv4_forward": 28792405,
        "MyIngress.drop": 25652968,
        "nop": 28485346,
        "FabricIngress.next.routing_hashed": 20985706,
        "FabricIngress.filtering.deny": 17164167,
        "ingress._drop": 19344232,
        "egress._drop": 25850727,
        "ingress.set_ecmp_select": 20375000,
        "ingress.set_nhop": 29239084,
        "ingress.lookup_flowlet_map": 27889477,
        "ingress.set_dmac": 30489383,
        "ingress.update_flowlet_id": 17397136,
        "egress.rewrite_mac": 23531945,
        "ingress.dummy": 18214157,
        "ingress.do_action": 21566949,
    },
    ACTION_PROFILE: {"FabricIngress.next.hashed_selector": 291115404, "IngressI.as": 291652621},
    COUNTER: {"FabricIngress.port_counters_control.egress_port_counter": 314528581,
              "PreQosPipe.pre_qos_counter": 315693181},
    DIRECT_COUNTER: {"FabricIngress.filtering.ingress_port_vlan_counter": 326221069,
                     "FabricEgress.egress_next.egress_vlan_counter": 318892680},
    METER: {"PreQosPipe.app_meter": 338231090},
    REGISTER: {"ingress.flowlet_id": 384519412, "ingress.flowlet_lasttime": 375147533},
    # controller headers hash the header type's name
    CONTROLLER_HEADER: {"packet_in_header_t": 81826293, "packet_out_header_t": 76689799},
}


def test_ids_match_p4c_output():
    ids = compute_ids({prefix: list(names) for prefix, names in P4C_IDS.items()}, {})
    for prefix, names in P4C_IDS.items():
        for name, expected in names.items():
            assert ids[(prefix, name)] == expected, name


def test_jenkins_hash_of_the_empty_string_and_a_known_name():
    assert jenkins_one_at_a_time("") == 0
    # the published one-at-a-time check values
    assert jenkins_one_at_a_time("a") == 0xCA2E9442
    assert jenkins_one_at_a_time("The quick brown fox jumps over the lazy dog") == 0x519E91F5


def test_explicit_ids_get_the_prefix_and_are_honoured():
    ids = compute_ids({TABLE: ["c.t1", "c.t2"], ACTION: ["c.a"]}, {"c.t1": 5, "c.a": (ACTION << 24) | 9})
    assert ids[(TABLE, "c.t1")] == (TABLE << 24) | 5
    assert ids[(ACTION, "c.a")] == (ACTION << 24) | 9
    assert ids[(TABLE, "c.t2")] == (TABLE << 24) | (jenkins_one_at_a_time("c.t2") & 0xFFFFFF)
    with pytest.raises(UserError, match="wrong 8-bit prefix"):
        compute_ids({TABLE: ["c.t1"]}, {"c.t1": (ACTION << 24) | 5})
    with pytest.raises(UserError, match="multiple"):
        compute_ids({TABLE: ["c.t1", "c.t2"]}, {"c.t1": 5, "c.t2": 5})


def _colliding_pair():
    seen = {}
    for i in itertools.count():
        name = f"ctl.t{i}"
        low = jenkins_one_at_a_time(name) & 0xFFFFFF
        if low in seen:
            return seen[low], name
        seen[low] = name


def test_collisions_are_resolved_by_probing_in_sorted_order():
    a, b = sorted(_colliding_pair())
    ids = compute_ids({TABLE: [b, a]}, {})
    base = jenkins_one_at_a_time(a) & 0xFFFFFF
    assert ids[(TABLE, a)] == (TABLE << 24) | base
    assert ids[(TABLE, b)] == (TABLE << 24) | ((base + 1) & 0xFFFFFF)
    # an explicit @id sitting on the hashed slot pushes the hashed name one further
    ids = compute_ids({TABLE: ["other", a]}, {"other": base})
    assert ids[(TABLE, a)] == (TABLE << 24) | ((base + 1) & 0xFFFFFF)


def test_same_name_in_two_resource_types_gets_two_ids():
    ids = compute_ids({DIGEST: ["learn_t"], REGISTER: ["learn_t"]}, {})
    assert ids[(DIGEST, "learn_t")] >> 24 == DIGEST and ids[(REGISTER, "learn_t")] >> 24 == REGISTER


def test_aliases_are_shortest_unique_suffixes():
    aliases = shortest_unique_suffixes(["ingress._drop", "egress._drop", "ingress.set_nhop", "NoAction",
                                        "a.b.c", "d.b.c", "x.c"])
    assert aliases == {"ingress._drop": "ingress._drop", "egress._drop": "egress._drop",
                       "ingress.set_nhop": "set_nhop", "NoAction": "NoAction",
                       "a.b.c": "a.b.c", "d.b.c": "d.b.c", "x.c": "x.c"}
