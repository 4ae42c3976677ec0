"""The example Patroni configuration (deploy/patroni/) says what the failover drill runs:
two nodes of one scope, synchronous mode (no acknowledged write lost), the drill's timings."""
from __future__ import annotations

import yaml

from tests.conftest import ROOT
from tests.patroni_cluster import LOOP_WAIT, RETRY_TIMEOUT, TTL, Node, PatroniCluster

DEPLOY = ROOT / "deploy" / "patroni"


def test_the_example_nodes_match_the_drill(tmp_path):
    nodes = [yaml.safe_load((DEPLOY / f"node{i}.yml").read_text()) for i in (1, 2)]
    drill = PatroniCluster(etcd_port=2379)._config(Node("node0", 5432, 8008, tmp_path))
    assert {n["scope"] for n in nodes} == {"lattice"} and [n["name"] for n in nodes] == ["node1", "node2"]
    assert nodes[0]["postgresql"]["connect_address"] != nodes[1]["postgresql"]["connect_address"]
    for node in nodes:
        dcs = node["bootstrap"]["dcs"]
        assert dcs["synchronous_mode"] is True and drill["bootstrap"]["dcs"]["synchronous_mode"] is True
        assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (TTL, LOOP_WAIT, RETRY_TIMEOUT)
        assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]  # Patroni's own rule
        assert dcs["postgresql"]["parameters"]["synchronous_commit"] == "on"
        assert "etcd3" in node and node["postgresql"]["bin_dir"] == "/usr/lib/postgresql/15/bin"
