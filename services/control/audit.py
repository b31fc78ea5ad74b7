"""One audit line per mutating call: who, what, which target, and how it ended."""

from __future__ import annotations

import structlog

from services.control.auth import Principal

audit_log = structlog.get_logger("lava.audit")


def audit(principal: Principal, action: str, target: str, outcome: str, **extra: object) -> None:
    audit_log.info(
        "audit",
        who=principal.name,
        role=principal.role.value,
        via=principal.via,
        action=action,
        target=target,
        outcome=outcome,
        **extra,
    )
