"""Checks that no asyncio task died unseen during a test.

A task whose exception nobody retrieved is reported only when it is garbage
collected, through the ``asyncio`` logger ("Task exception was never
retrieved"). ``unretrieved_task_errors`` collects garbage first, so such a task
is reported now, and returns those messages from pytest's ``caplog``: a test
asserts the list is empty.
"""

from __future__ import annotations

import gc

import pytest

MESSAGE = "exception was never retrieved"


def unretrieved_task_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The 'Task exception was never retrieved' messages logged so far, after a
    garbage collection."""
    gc.collect()
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "asyncio" and MESSAGE in record.getMessage()
    ]
