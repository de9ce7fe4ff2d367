"""Hook specifications: the whole contract between wukong and its plugins.

A plugin is a module (or object) with functions decorated by :data:`hookimpl` and named after one of
the hooks below. Built-in backends are registered by :mod:`wukong.plugins.builtin` through these very
hooks; third-party plugins arrive through an entry point in the ``wukong`` group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from wukong.monitoring.report import JobReport
    from wukong.plugins.registry import BackendEntry

hookspec = pluggy.HookspecMarker("wukong")
"""Marks a function in this module as a hook specification."""

hookimpl = pluggy.HookimplMarker("wukong")
"""Marks a plugin's function as an implementation of a wukong hook (re-exported as ``wukong.hookimpl``)."""


@hookspec
def wukong_register_compute_backends() -> list[BackendEntry]:
    """Return the compute backends this plugin provides.

    Called once, when the backend registry is first built in a process (a client, or a worker that
    needs to open a backend by name). Every implementation is called; the lists are merged, and two
    plugins registering the same name is an error.
    """


@hookspec
def wukong_register_storage_backends() -> list[BackendEntry]:
    """Return the storage backends this plugin provides.

    Called like :func:`wukong_register_compute_backends`, once per process, every implementation.
    """


@hookspec
def wukong_job_submitted(job: JobReport) -> None:
    """Called on the client after a job's schedules are stored and its leaves are invoked.

    ``job`` holds the job id, the task and leaf counts and the backends' names; its timings are not
    filled yet. Every implementation is called; the return value is ignored.
    """


@hookspec
def wukong_job_finished(job: JobReport, error: BaseException | None) -> None:
    """Called on the client when a job has ended and its keys have been removed from storage.

    ``error`` is the exception the client is about to raise, or ``None`` when the job succeeded.
    Every implementation is called; the return value is ignored.
    """
