"""The labeling backend of each kind: the one place that knows all three implementations.

Each kind names its implementation (``module:class``) instead of importing it: the class is
imported when a job of that kind is first used (:mod:`shared.plugins`). A pipeline service
running Ground Truth jobs therefore never loads Label Studio code, and its static import closure
leaves it out (tests/test_architecture.py); the imports also run one way, as the Label Studio
backend builds on the emulator backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.labeling.backends import BackendError, LabelingBackend
from shared.plugins import load

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.aws import AwsClients
    from shared.settings import LabelingSettings

    BackendFactory = Callable[[AwsClients, LabelingSettings], LabelingBackend]

# kind -> the class that runs jobs of that kind (a job's ``backend`` field names the kind)
BACKENDS: dict[str, str] = {
    "emulator": "shared.labeling.backends:EmulatorBackend",
    "sagemaker": "shared.labeling.backends:SageMakerBackend",
    "labelstudio": "shared.labeling.labelstudio.backend:LabelStudioBackend",
}


def backend_for(kind: str, aws: AwsClients, settings: LabelingSettings) -> LabelingBackend:
    """The backend that runs jobs of ``kind``; a clear error for an unknown kind."""
    target = BACKENDS.get(kind)
    if target is None:
        known = ", ".join(sorted(BACKENDS))
        raise BackendError(f"unknown backend {kind!r} ({known})")
    factory: BackendFactory = load(target)
    return factory(aws, settings)
