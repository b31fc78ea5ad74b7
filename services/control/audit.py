"""One audit line per mutating call: who, what, which target, and how it ended."""

from __future__ import annotations

import structlog
from fastapi import HTTPException

from services.control.auth import Principal
from shared.operations.errors import OperationError

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


class audited:
    """An audit line for a mutation, with how it ended (ok, refused: reason, error)."""

    def __init__(self, who: Principal, action: str, target: str, **extra: object) -> None:
        self.who, self.action, self.target, self.extra = who, action, target, extra

    async def __aenter__(self) -> audited:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None:
            outcome = "ok"
        elif isinstance(exc, OperationError):
            outcome = f"refused: {exc}"
        elif isinstance(exc, HTTPException) and exc.status_code < 500:
            outcome = f"refused: {exc.detail}"
        else:
            outcome = "error"
        audit(self.who, self.action, self.target, outcome, **self.extra)
