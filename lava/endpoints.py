"""Where the local AWS stand-in answers, for `lava run --aws-endpoint`.

``localstack`` asks localstack-client, which knows LocalStack's conventions (one edge port,
4566 by default; ``LOCALSTACK_HOST``/``EDGE_PORT`` override it), so a LocalStack started by
docker-compose or by hand is found without spelling out its URL. localstack-client only wraps
boto3; the services use aiobotocore, so what it gives us is the URL, handed on as
``AWS_ENDPOINT_URL`` (ARCHITECTURE.md, "Observed on these machines").
"""

from __future__ import annotations

from devstack.local_stack import endpoint_answers

# The AWS services the pipeline uses locally; LocalStack serves them all on its edge port.
SERVICES = ("s3", "sns", "sqs", "dynamodb")


class EndpointError(RuntimeError):
    pass


def localstack_endpoint() -> str:
    """LocalStack's edge URL, checked to be one URL for every service the pipeline uses."""
    try:
        from localstack_client.config import get_service_endpoint
    except ImportError:
        raise EndpointError(
            "localstack-client is not installed: pip install 'lava-pipeline[local]'"
        ) from None
    found = {service: get_service_endpoint(service) for service in SERVICES}
    urls = set(found.values())
    if None in urls or len(urls) != 1:
        raise EndpointError(f"localstack-client gives no single edge endpoint: {found}")
    (url,) = urls
    return str(url)


def resolve(spec: str) -> str:
    """``localstack`` or a URL -> a URL that answers HTTP."""
    url = localstack_endpoint() if spec == "localstack" else spec
    if not url.startswith(("http://", "https://")):
        raise EndpointError(f"--aws-endpoint must be 'localstack' or an http(s) URL, not {spec!r}")
    if not endpoint_answers(url):
        hint = " (is LocalStack running? docker compose up localstack)"
        raise EndpointError(f"nothing answers at {url}{hint if spec == 'localstack' else ''}")
    return url
