"""Topologies drawn in YAML files."""
from __future__ import annotations

import pytest

from fabriclab.errors import UserError
from fabriclab.topologies.catalog import describe
from fabriclab.topologies.yamlfile import from_mapping

TRIANGLE = """
rate: 200M
delay: 10us
switches:
  - {name: t1, role: leaf, hosts: 2, host_rate: 50M}
  - {name: t2, role: leaf, hosts: 1}
  - {name: sp, role: spine}
links:
  - [t1, sp]
  - {nodes: [t2, sp], rate: 1G, delay: 1ms, count: 2}
"""


def test_yaml_file_builds_nodes_links_and_rates(tmp_path):
    path = tmp_path / "tri.yaml"
    path.write_text(TRIANGLE)
    d = describe(None, {}, topo_file=path)
    assert [s.name for s in d.switches] == ["t1", "t2", "sp"]
    assert [h.name for h in d.hosts] == ["h1_1", "h1_2", "h2_1"]
    assert d.link_rate("t1", 1) == 50_000_000           # host link: host_rate
    assert d.link_rate("t1", 3) == 200_000_000          # default rate
    t2_sp = [l for l in d.links if {l.node1, l.node2} == {"t2", "sp"}]
    assert len(t2_sp) == 2 and all(l.rate_bps == 1_000_000_000 and l.delay_s == pytest.approx(1e-3) for l in t2_sp)
    assert d.links[0].delay_s == pytest.approx(1e-5)


@pytest.mark.parametrize("text,message", [
    ("switches: [{name: a, hosts: 1}]\nlinks: [[a, b]]", "links\\[0\\]: unknown node 'b'"),
    ("switches: [{name: a, hosts: 1, colour: red}]", "unknown key 'colour'"),
    ("switches: [{name: a}]", "no switch has hosts"),
    ("switches: [{name: a, hosts: 1}, {name: a}]", "duplicate switch name 'a'"),
    ("switches: [{name: a, hosts: 1, role: router}]", "unknown role 'router'"),
    ("switches: []", "non-empty list"),
    ("rate: fast\nswitches: [{name: a, hosts: 1}]", "expected a rate"),
    ("switches: [{name: a, hosts: 1}]\nlinks: [[a, a]]", "cannot link to itself"),
])
def test_yaml_errors(text, message):
    import yaml

    with pytest.raises(UserError, match=message):
        from_mapping(yaml.safe_load(text), where="t.yaml")


def test_yaml_file_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="cannot read topology file"):
        describe(None, {}, topo_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("switches: [a")
    with pytest.raises(UserError, match="not valid YAML"):
        describe(None, {}, topo_file=bad)
    with pytest.raises(UserError, match="--spines does not apply to --topo-file"):
        describe(None, {"spines": 2}, topo_file=bad)
