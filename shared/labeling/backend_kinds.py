"""The labeling backend of each kind: the one place that knows all three implementations.

It sits above ``backends`` (SageMaker, emulator) and ``labelstudio.backend`` (which builds on
the emulator backend), so the imports run one way. Label Studio's module is imported only when
a job asks for it: a pipeline service running Ground Truth jobs never loads Label Studio code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.labeling.backends import (
    BackendError,
    EmulatorBackend,
    LabelingBackend,
    SageMakerBackend,
)

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import LabelingSettings


def backend_for(kind: str, aws: AwsClients, settings: LabelingSettings) -> LabelingBackend:
    """The backend that runs jobs of ``kind``; a clear error for an unknown kind."""
    if kind == "emulator":
        return EmulatorBackend(aws, settings)
    if kind == "sagemaker":
        return SageMakerBackend(aws, settings)
    if kind == "labelstudio":
        from shared.labeling.labelstudio.backend import LabelStudioBackend

        return LabelStudioBackend(aws, settings)
    raise BackendError(f"unknown backend {kind!r} (emulator, sagemaker or labelstudio)")
