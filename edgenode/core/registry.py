"""The registry: how the node's areas plug into the shared machinery without importing each other.

Each area declares one :class:`Area` in its ``area.py``: its database schemas,
its web blueprints, its CLI commands, its scheduled jobs, its housekeeping steps
and the hooks it offers other areas.  ``edgenode.node.areas.AREAS`` lists them
bottom to top, and ``setup.cfg`` names that list as the ``edgenode.areas`` entry
point, so :func:`areas` finds it in every process (web worker, scheduler, job
child, CLI, a test) without ``core`` naming any area.

Declarations are *references*, ``"module:attribute"`` strings, resolved by
:func:`resolve` only when used: a web worker never imports the scheduler's
jobs, and the CLI loads no Flask.  This module is the only place in the
package that imports by name.

Hook points (:func:`hooks`): an area that must run code of an area above it
(the import pipeline asking storage to make room, the uplink job asking
campaigns to refresh its rankings) names a hook point; the area above
registers a function on it.  The lower area imports nothing of the higher one.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

ENTRY_POINT_GROUP = "edgenode.areas"


@dataclass(frozen=True)
class Job:
    """A job the scheduler runs every ``every_setting`` (a config key in minutes or hours)."""

    kind: str
    run: str                       # "module:function" taking (cfg, kind, **options) -> dict
    every_setting: str             # e.g. "sync.uplink_minutes"
    unit_seconds: int = 60         # 60 for *_minutes settings, 3600 for *_hours
    records: tuple[str, ...] = ()  # further job kinds a run leaves rows for (a pull imports bundles)
    link: str | None = None        # "hub" or "rsync": runs only in a window with that link (sync's gate)
    order: int = 100               # among jobs run together, lower first
    start_late: bool = False       # a new node's first run waits a whole interval (housekeeping's VACUUM)


@dataclass(frozen=True)
class Step:
    """One housekeeping step: ``run(cfg, conn, store) -> dict`` merged into the run's result."""

    name: str
    run: str
    order: int = 100


@dataclass(frozen=True)
class Area:
    name: str
    schemas: tuple[str, ...] = ()            # modules with AREA and MIGRATIONS, for edgenode.db
    volatile_schemas: tuple[str, ...] = ()   # the same for volatile.db
    web: tuple[str, ...] = ()                # "module:init_app" refs called with the Flask app
    templates: bool = False                  # the area folder has templates/ for its blueprints
    cli: tuple[str, ...] = ()                # "module:COMMANDS" refs: lists of click commands
    jobs: tuple[Job, ...] = ()
    housekeeping: tuple[Step, ...] = ()
    scheduler: tuple[str, ...] = ()          # "module:schedule" refs: schedule(sched, cfg) adds own jobs
    hooks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # hook point -> refs


_lock = threading.Lock()
_areas: tuple[Area, ...] | None = None
_resolved: dict[str, Any] = {}


def install(areas: tuple[Area, ...] | list[Area]) -> None:
    """Use these areas instead of the entry point's (a throwaway test tree, a tool)."""
    global _areas
    with _lock:
        _areas = tuple(areas)


def areas() -> tuple[Area, ...]:
    """Every declared area, bottom to top, loaded from the entry point on first use."""
    global _areas
    if _areas is None:
        with _lock:
            if _areas is None:
                loaded: list[Area] = []
                for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                    loaded.extend(ep.load())
                _areas = tuple(loaded)
    return _areas


def resolve(ref: str) -> Any:
    """``"package.module:attribute"`` → the object (imported on first use)."""
    obj = _resolved.get(ref)
    if obj is None:
        module, _, attr = ref.partition(":")
        obj = importlib.import_module(module)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        _resolved[ref] = obj
    return obj


def schemas(database: str = "main") -> list:
    """The schema modules of ``"main"`` or ``"volatile"``, in area order."""
    attr = "schemas" if database == "main" else "volatile_schemas"
    return [importlib.import_module(m) for a in areas() for m in getattr(a, attr)]


def hooks(point: str) -> list[Callable]:
    """The functions registered on a hook point, in area order (lowest area first)."""
    return [resolve(ref) for a in areas() for ref in a.hooks.get(point, ())]


def jobs() -> dict[str, Job]:
    return {j.kind: j for a in areas() for j in a.jobs}


def housekeeping() -> list[Step]:
    return sorted((s for a in areas() for s in a.housekeeping), key=lambda s: s.order)


def refs(kind: str) -> list[str]:
    """The raw references of one declaration kind (``web``, ``cli``, ``scheduler``) in area order."""
    return [ref for a in areas() for ref in getattr(a, kind)]
