"""botocore's data files, loaded the way our clients use them: plain dicts, no documentation.

botocore parses its bundled JSON into ``OrderedDict`` objects and keeps them for the life of
the process. An S3 and a DynamoDB client (the ingest service) hold 13.6 MB of it (tracemalloc;
16 MB of RSS): the table of endpoints of every AWS service (``endpoints.json``, 7.0 MB),
the S3 model (3.4 MB) with the API reference's text in it, and the endpoint rule sets. The
loader here gives botocore the same data as plain dicts (ordered too, half the size), without
the models' ``documentation`` strings (only docstrings read them) and with the endpoint table
of the services a pipeline process may call: 6.2 MB less per process
(docs/ingestperf.md, "Where the service's memory goes").

The endpoint table is the legacy resolver's (``botocore.regions.EndpointResolver``); it looks up
a service only by its name in each partition, and a service left out resolves as botocore
resolves any service the table does not list (from the partition's defaults). Endpoint URLs
themselves come from each service's rule set, which is loaded in full.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any, TypeVar

from botocore.loaders import JSONFileLoader, Loader, create_loader
from botocore.session import Session

# The services a pipeline process calls (shared.aws.ServiceName) and those botocore's
# credential providers call for it (assume-role and web identity: STS; SSO profiles).
ENDPOINT_SERVICES = frozenset(
    {"s3", "sns", "sqs", "dynamodb", "sagemaker", "sts", "sso", "sso-oidc"}
)
_ENCODINGS = ((".json", open), (".json.gz", gzip.open))
S = TypeVar("S", bound=Session)


def _without_documentation(model: dict[str, Any]) -> dict[str, Any]:
    """A service model (service-2.json) without its documentation strings.

    Only where the model format puts them: the service, its operations, shapes and members
    (a member may itself be named "documentation", so keys are not removed blindly).
    """
    model.pop("documentation", None)
    for operation in model.get("operations", {}).values():
        operation.pop("documentation", None)
    for shape in model.get("shapes", {}).values():
        shape.pop("documentation", None)
        for member in shape.get("members", {}).values():
            member.pop("documentation", None)
    return model


def _only_services(endpoints: dict[str, Any], services: frozenset[str]) -> dict[str, Any]:
    for partition in endpoints.get("partitions", []):
        partition["services"] = {
            name: data for name, data in partition.get("services", {}).items() if name in services
        }
    return endpoints


class CompactJSONFileLoader(JSONFileLoader):
    """botocore's JSON file loader, minus what our clients never read."""

    def __init__(self, endpoint_services: frozenset[str] = ENDPOINT_SERVICES) -> None:
        self.endpoint_services = endpoint_services

    def load_file(self, file_path: str) -> Any:
        for extension, open_file in _ENCODINGS:
            if os.path.isfile(file_path + extension):
                with open_file(file_path + extension, "rb") as f:
                    data = json.loads(f.read().decode("utf-8"))
                return self._compact(os.path.basename(file_path), data)
        return None

    def _compact(self, name: str, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if name == "service-2":
            return _without_documentation(data)
        if name == "endpoints":
            return _only_services(data, self.endpoint_services)
        return data


def compact_loader(session: Session) -> Loader:
    """The session's own loader (``AWS_DATA_PATH`` included) reading files compactly."""
    loader = create_loader(session.get_config_variable("data_path"))
    loader.file_loader = CompactJSONFileLoader()
    return loader


def use_compact_models(session: S) -> S:
    """Make ``session`` load botocore's data compactly; before it creates any client."""
    session.register_component("data_loader", compact_loader(session))
    return session
