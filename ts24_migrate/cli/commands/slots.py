"""Commands run by hand take the flows' concurrency slots, when there is a Prefect API to ask.

`backup`, `load`, `validate` and `reconcile run` hold the same Prefect
concurrency slots as the flows' runs (flows.limits): the site's own, its legacy
server's and, when they write to or read the target, the target's. So an
operator's `load hn-01` waits while a worker migrates hn-01 or while the legacy
server already serves as many sites as the inventory allows, and says so on
stderr. Only when a Prefect API is configured (PREFECT_API_URL, in the
environment or the Prefect profile): without one there are no workers to
coordinate with, and nothing is taken. A configured API that does not answer
is exit code 3 rather than a run that might overload a server.

Example::

    with command_slots(app, "hn-01", target=True):
        load_step(app, "hn-01")
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import click

from ts24_migrate.core.errors import UnreachableError
from ts24_migrate.core.secrets import redact_url
from ts24_migrate.runs.app import App

COMMANDS: list = []  # helpers only; no command here


def prefect_api_url() -> str | None:
    """The Prefect API this process would talk to, if any (environment first, then the profile)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


@contextmanager
def command_slots(app: App, site_id: str, *, target: bool) -> Iterator[None]:
    """Hold the site's slots for the block when a Prefect API is configured; else nothing."""
    site = app.site(site_id)
    url = prefect_api_url()
    if not url:
        yield
        return
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    from flows.limits import site_slots

    held = ExitStack()
    try:
        held.enter_context(
            site_slots(
                app.inventory, site, target=target, say=lambda line: click.echo(f"site {site_id}: {line}", err=True)
            )
        )
    except (httpx.TransportError, PrefectHTTPStatusError, OSError) as exc:
        held.close()
        raise UnreachableError(
            f"the Prefect API at {redact_url(url)} did not answer ({type(exc).__name__}); commands run by hand "
            f"take the flows' concurrency slots when PREFECT_API_URL is set: start the server, or unset "
            f"PREFECT_API_URL to run without them (then nothing keeps this run from overlapping a worker's)"
        ) from None
    with held:
        yield
