"""``python -m services.ingest``: the entry point everywhere (image, k8s, compose, lava run)."""

from shared.declined_imports import decline

# Before structlog and aiobotocore are imported: they load these whenever installed.
decline()

from services.ingest.service import main  # noqa: E402

main()
