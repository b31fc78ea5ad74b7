"""moto's instance tracker, made weak: the server keeps what it stores, not every copy it made.

moto 5 appends every model object it ever creates (``BaseModel.__new__``) to its class's
``instances_tracked`` list, for its dashboard (``/moto-api/data.json``) and to dispose S3 keys on
reset; nothing is ever removed until a reset, which a long-running server never gets. Every
DynamoDB ``Item`` (and every copy of one), every S3 key version, every SQS message stays alive.

That cost was linear until TransactWriteItems came into use: moto deep-copies each table a
transaction names (its rollback backup), every ``Item`` of the copy is a new tracked instance,
so each transaction kept a full copy of the table - memory quadratic in the run (the soak's moto
reached 17 GiB after 160 clips; docs/soak.md, "moto's memory").

Here each class tracks its instances weakly: the dashboard and S3's reset still see
every object moto holds, and a copy nobody holds any more is freed. Installed by
:mod:`devstack.moto_server` before it serves and by the tests' in-process AWS
(:mod:`devstack.testing.memory_aws`), whose moto lives as long as the test session.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

_MOTO: dict[str, Any] = {}


class WeakInstances:
    """A class's live instances, held weakly (moto models are not all hashable: no WeakSet)."""

    def __init__(self, instances: Iterable[Any] = ()) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}
        for instance in instances:
            self.append(instance)

    def append(self, instance: Any) -> None:
        key = id(instance)
        refs = self._refs

        def gone(ref: weakref.ref[Any]) -> None:
            if refs.get(key) is ref:  # the id may be someone else's by now
                refs.pop(key, None)

        with contextlib.suppress(TypeError):  # a class without weak references: not tracked
            refs[key] = weakref.ref(instance, gone)

    def __iter__(self) -> Iterator[Any]:
        for ref in list(self._refs.values()):
            instance = ref()
            if instance is not None:
                yield instance

    def __len__(self) -> int:
        return len(self._refs)


def _tracking_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    from moto.core.common_models import BaseModel

    instance = super(BaseModel, cls).__new__(cls)  # type: ignore[misc]  # as moto's own
    tracked = cls.__dict__.get("instances_tracked")  # the metaclass gives each class its own
    if not isinstance(tracked, WeakInstances):
        # a fresh class or one reset by moto (``reset_model_data`` puts a list back)
        tracked = WeakInstances(tracked or ())
        cls.instances_tracked = tracked  # type: ignore[attr-defined]
    tracked.append(instance)
    return instance


def install() -> bool:
    """Make moto track its model instances weakly (this process); False if done already."""
    from moto.core.common_models import BaseModel

    if _MOTO:
        return False
    _MOTO["new"] = BaseModel.__dict__["__new__"]
    BaseModel.__new__ = staticmethod(_tracking_new)  # type: ignore[method-assign]
    return True


def uninstall() -> bool:
    """Restore moto's own tracking (tests): lists again, of the instances still alive. False
    if it was not installed."""
    from moto.core.common_models import BaseModel

    if not _MOTO:
        return False
    BaseModel.__new__ = _MOTO.pop("new")  # type: ignore[method-assign]
    classes: list[type] = [BaseModel]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        tracked = cls.__dict__.get("instances_tracked")
        if isinstance(tracked, WeakInstances):
            cls.instances_tracked = list(tracked)  # type: ignore[attr-defined]
    return True
