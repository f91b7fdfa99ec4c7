"""Prefect's API setting for a test, as a command's process would see it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def prefect_api_setting(monkeypatch, url: str | None) -> Iterator[None]:
    """This process's Prefect API setting made ``url`` (None: none, Prefect's ephemeral mode),
    in the environment, process-wide and in the current context (which a session's Prefect
    harness may have set), all restored after."""
    import prefect.context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    process_wide = prefect.context.GLOBAL_SETTINGS_CONTEXT
    if url is None:
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
        here = temporary_settings(restore_defaults={PREFECT_API_URL})
    else:
        monkeypatch.setenv("PREFECT_API_URL", url)
        here = temporary_settings(updates={PREFECT_API_URL: url})
    prefect.context.refresh_global_settings_context()
    try:
        with here:
            yield
    finally:
        monkeypatch.undo()
        prefect.context.GLOBAL_SETTINGS_CONTEXT = process_wide
