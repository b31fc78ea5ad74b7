"""NetworkPolicies (issue 24, finding 11): no pod reaches a public address on 443 freely, and
ingest - which decodes untrusted video - reaches only DNS, the broker and S3's endpoint.

The production overlay is rendered (kubectl kustomize) and, for every pod the pipeline runs,
the egress rules of the policies that select it are collected as NetworkPolicy combines them
(a union of the selecting policies' rules).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.support.deploy import of_kind

WORKLOADS = ("Deployment", "Job")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for rule in selector.get("matchExpressions", []):
        value = labels.get(rule["key"])
        if rule["operator"] == "In" and value not in rule["values"]:
            return False
        if rule["operator"] == "NotIn" and value in rule["values"]:
            return False
    return True


def _egress_of(labels: dict[str, str], policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        rule
        for policy in policies
        if "Egress" in policy["spec"]["policyTypes"]
        and _selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"].get("egress", [])
    ]


def _pods() -> list[tuple[str, dict[str, str]]]:
    pods = []
    for workload in of_kind("production", *WORKLOADS):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        pods.append((workload["metadata"]["name"], labels))
    return pods


def test_no_pod_reaches_a_public_address_and_ingest_reaches_only_s3() -> None:
    policies = of_kind("production", "NetworkPolicy")
    pods = _pods()
    assert {"lava-ingest", "lava-listener", "lava-control"} <= {name for name, _ in pods}
    for name, labels in pods:
        for rule in _egress_of(labels, policies):
            for peer in rule.get("to", []):
                block = peer.get("ipBlock")
                if block:
                    assert not ipaddress.ip_network(block["cidr"]).is_global, (name, block)
                    assert ipaddress.ip_network(block["cidr"]).prefixlen >= 16, (name, block)
            assert rule.get("to"), (name, "an egress rule without peers admits everything")
    (_, ingest) = next(p for p in pods if p[0] == "lava-ingest")
    blocks = [
        peer["ipBlock"]["cidr"]
        for rule in _egress_of(ingest, policies)
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    aws = next(p for p in policies if p["metadata"]["name"] == "lava-egress-aws")
    assert blocks == ["192.0.2.64/27"]  # the S3 (+STS) endpoint subnet, not the others'
    assert blocks[0] != aws["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"]
