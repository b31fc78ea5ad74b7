"""What the routes work with: the ports of one control-service process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from services.control.auth import Authenticator
from services.control.cookies import CookiePolicy
from services.control.exports import ExportRunner
from services.control.limits import MutationBudget
from services.control.sessions import SessionStore
from shared.aws import AwsClients
from shared.dataset.index import DatasetIndex
from shared.events import Event
from shared.labeling.jobs import JobManager
from shared.settings import ControlSettings
from shared.tasks.store import TaskStore


@dataclass
class Control:
    settings: ControlSettings
    aws: AwsClients
    publish: Callable[[Event[Any]], Awaitable[None]]
    auth: Authenticator
    budget: MutationBudget
    now: Callable[[], float]
    ready: Callable[[], bool]
    exports: ExportRunner

    @property
    def store(self) -> TaskStore:
        return TaskStore(self.aws, self.settings)

    @property
    def jobs(self) -> JobManager:
        return JobManager(self.aws, self.settings)

    @property
    def dataset(self) -> DatasetIndex:
        return DatasetIndex(self.aws, self.settings)

    @property
    def sessions(self) -> SessionStore:
        return SessionStore(self.aws, self.settings, self.now)

    @property
    def cookies(self) -> CookiePolicy:
        return CookiePolicy(self.settings)

    @property
    def sign_ins(self) -> MutationBudget:
        """Sign-in attempts per client address, counted like mutations (every replica)."""
        return MutationBudget(
            self.aws, self.settings, self.settings.control.login_attempts_per_minute, self.now
        )


def control(request: Request) -> Control:
    found: Control = request.app.state.control
    return found


Ctl = Annotated[Control, Depends(control)]
