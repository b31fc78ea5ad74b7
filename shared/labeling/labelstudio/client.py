"""A small async client for the Label Studio REST API (label-studio 1.23.2, legacy token auth).

Only what the backend, the listener and the simulated annotator need. Tasks are found by the
dedup key stored in their data (``data.dedup_key``) through the data manager's filters -
Label Studio itself never de-duplicates an import.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

# The task data field that carries the dedup key (checked before every import).
KEY_FIELD = "dedup_key"


class LabelStudioError(RuntimeError):
    pass


def _filter(field: str, operator: str, kind: str, value: Any) -> dict[str, Any]:
    return {"filter": f"filter:tasks:{field}", "operator": operator, "type": kind, "value": value}


class LabelStudioClient:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LabelStudioClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"Authorization": f"Token {self._token}"}
            )
        async with self._session.request(
            method, f"{self.url}{path}", params=params, json=body
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise LabelStudioError(
                    f"Label Studio {method} {path}: HTTP {response.status}: {text[:300]}"
                )
            return json.loads(text) if text else None

    # --- projects and webhooks ------------------------------------------------------------
    async def find_project(self, title: str) -> dict[str, Any] | None:
        found = await self.request("GET", "/api/projects", params={"title": title})
        results = found.get("results", found) if isinstance(found, dict) else found
        for project in results:
            if project.get("title") == title:
                return dict(project)
        return None

    async def create_project(self, title: str, config: str, description: str) -> dict[str, Any]:
        body = {"title": title, "label_config": config, "description": description}
        return dict(await self.request("POST", "/api/projects", body=body))

    async def get_project(self, project: int) -> dict[str, Any]:
        return dict(await self.request("GET", f"/api/projects/{project}"))

    async def webhooks(self, project: int) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/api/webhooks", params={"project": project}))

    async def create_webhook(
        self, project: int, url: str, headers: dict[str, str], actions: list[str]
    ) -> dict[str, Any]:
        # Always send the actions: a PATCH without them empties the list (handbook).
        body = {
            "project": project,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "headers": headers,
            "is_active": True,
            "actions": actions,
        }
        return dict(await self.request("POST", "/api/webhooks", body=body))

    # --- tasks ----------------------------------------------------------------------------
    async def tasks(
        self,
        project: int,
        filters: list[dict[str, Any]],
        *,
        ordering: str | None = None,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Every task of a project matching all ``filters`` (all fields, paged)."""
        query: dict[str, Any] = {"filters": {"conjunction": "and", "items": filters}}
        if ordering:
            query["ordering"] = [ordering]
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            try:
                found = await self.request(
                    "GET",
                    "/api/tasks",
                    params={
                        "project": project,
                        "query": json.dumps(query),
                        "fields": "all",
                        "page": page,
                        "page_size": page_size,
                    },
                )
            except LabelStudioError as exc:
                if "HTTP 404" in str(exc) and page > 1:  # past the last page
                    break
                raise
            batch = found.get("tasks", []) if isinstance(found, dict) else []
            out.extend(batch)
            if len(batch) < page_size:
                break
            page += 1
        return out

    async def tasks_with_key(self, project: int, key: str) -> list[dict[str, Any]]:
        return await self.tasks(project, [_filter(f"data.{KEY_FIELD}", "equal", "String", key)])

    async def labeled_since(self, project: int, since: str | None) -> list[dict[str, Any]]:
        """Tasks with annotations, updated after ``since`` (Label Studio's own ISO time)."""
        filters = [_filter("total_annotations", "greater", "Number", 0)]
        if since:
            filters.append(_filter("updated_at", "greater", "Datetime", since))
        return await self.tasks(project, filters, ordering="tasks:updated_at")

    async def unlabeled(self, project: int) -> list[dict[str, Any]]:
        return await self.tasks(project, [_filter("total_annotations", "equal", "Number", 0)])

    async def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> None:
        await self.request("POST", f"/api/projects/{project}/import", body=tasks)

    async def set_meta(self, task: int, meta: dict[str, Any]) -> None:
        await self.request("PATCH", f"/api/tasks/{task}", body={"meta": meta})

    async def get_task(self, task: int) -> dict[str, Any]:
        return dict(await self.request("GET", f"/api/tasks/{task}"))

    async def annotations(self, task: int) -> list[dict[str, Any]]:
        return list(await self.request("GET", f"/api/tasks/{task}/annotations"))

    async def annotate(
        self,
        task: int,
        result: list[dict[str, Any]],
        lead_time: float,
        completed_by: int | None = None,
    ) -> None:
        """Annotate ``task``; ``completed_by`` names the annotator (Label Studio 1.23 keeps a
        user id given here; measured), else the token's user is."""
        body: dict[str, Any] = {"result": result, "lead_time": lead_time, "was_cancelled": False}
        if completed_by is not None:
            body["completed_by"] = completed_by
        await self.request("POST", f"/api/tasks/{task}/annotations", body=body)

    async def user_id(self, username: str) -> int:
        """The id of the Label Studio user ``username``, created when missing (the simulated
        annotators: one user per simulated worker)."""
        for user in await self.request("GET", "/api/users/"):
            if user.get("username") == username:
                return int(user["id"])
        body = {"username": username, "email": f"{username}@annotators.invalid"}
        return int((await self.request("POST", "/api/users/", body=body))["id"])

    async def predictions(self, task: int) -> list[dict[str, Any]]:
        found = await self.request("GET", "/api/predictions", params={"task": task})
        return list(found)
