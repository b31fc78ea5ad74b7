"""The dashboard's pure parts: durations and instants as people read them, cursors only this
dashboard gave, no action for a viewer, failures grouped by the stage they happened at."""

from __future__ import annotations

import pytest

from services.control import cursors
from services.control.auth import Principal, Role
from services.control.pages import panels
from services.control.pages.layout import Visitor, post_button, span, stop_link, when
from shared.operations.errors import Invalid
from shared.operations.status import Failure, PipelineStatus

VIEWER = Visitor(Principal("vera", Role.VIEWER, "token"), None)
OPERATOR = Visitor(Principal("otto", Role.OPERATOR, "token"), None)


def test_durations_and_instants_read_as_people_read_them() -> None:
    assert [span(s) for s in (None, -3, 45, 720, 3 * 3600, 3 * 86400)] == [
        "-",
        "0 s",
        "45 s",
        "12 min",
        "3.0 h",
        "3.0 d",
    ]
    assert when(0) == '<time datetime="1970-01-01T00:00:00Z">1970-01-01T00:00:00Z</time>'
    assert when(None) == "-"


def test_a_cursor_is_read_back_only_for_the_list_that_gave_it() -> None:
    key = {"pk": "task#a", "sk": "task", "status_key": "task#active", "updated_at": 1.5}
    cursor = cursors.encode_cursor(key)
    assert cursors.decode_cursor(cursor, "task#active") == key
    with pytest.raises(Invalid, match="for this list"):
        cursors.decode_cursor(cursor, "clip#failed")
    with pytest.raises(Invalid, match="not one this service gave"):
        cursors.decode_cursor("bm9wZQ", "task#active")


def test_a_viewer_gets_no_action_and_an_operator_a_form_with_the_csrf_token() -> None:
    assert post_button(VIEWER, "/dashboard/tasks/t/retry", "Retry", "retry") == ""
    assert stop_link(VIEWER, "t") == ""
    form = post_button(OPERATOR, "/dashboard/tasks/t/retry", "Retry", "retry")
    assert 'method="post"' in form and 'name="csrf" value="bearer"' in form
    assert 'href="/dashboard/tasks/t/stop"' in stop_link(OPERATOR, "t")  # a confirmation first


def test_failures_are_grouped_by_stage_ingest_included_with_their_reasons() -> None:
    status = PipelineStatus(
        tasks=0,
        tasks_by_status={},
        funnel=[],
        clips_by_outcome={},
        data_objects=0,
        waiting=0,
        waiting_by_age={},
        sends=0,
        resends=0,
        rekeys=0,
        expirations=0,
        outputs=0,
        failures=[
            Failure(
                task_id=None, clip_id="c<1>", stage="ingest", reason="not a video", updated_at=1
            )
        ],
        hours=[],
    )
    html = panels.failures(OPERATOR, status, [])
    assert '<h3 data-failure-stage="ingest">ingest (1)</h3>' in html
    assert "not a video" in html and "c&lt;1&gt;" in html and "c<1>" not in html
    empty = status.model_copy(update={"failures": []})
    assert "no failures" in panels.failures(OPERATOR, empty, [])
