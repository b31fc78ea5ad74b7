"""Workflow names -> levels of jobs: the configured catalog, plus ad-hoc workflows registered
from the original's explicit task specs (`lava tasks create --spec`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.dynamo import from_item, to_item
from shared.workflows import WorkflowCatalog, WorkflowError

if TYPE_CHECKING:
    from shared.aws import AwsClients


class WorkflowResolver:
    def __init__(self, catalog: WorkflowCatalog, aws: AwsClients, table: str) -> None:
        self.catalog = catalog
        self._aws = aws
        self._table = table

    async def levels(self, name: str) -> list[list[str]]:
        known = self.catalog.workflows.get(name)
        if known is not None:
            return [list(level) for level in known.levels]
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"workflow#{name}"}, "sk": {"S": "workflow"}},
            ConsistentRead=True,
        )
        item = found.get("Item")
        if item is None:
            configured = ", ".join(sorted(self.catalog.workflows))
            raise WorkflowError(f"unknown workflow {name!r} (configured: {configured})")
        levels: list[list[str]] = from_item(item)["levels"]
        return levels

    async def register(self, name: str, levels: list[list[str]]) -> None:
        """Keep an ad-hoc workflow (idempotent: the name derives from the levels)."""
        db = await self._aws.dynamodb()
        await db.put_item(
            TableName=self._table,
            Item=to_item(
                {"pk": f"workflow#{name}", "sk": "workflow", "kind": "workflow", "levels": levels}
            ),
        )
