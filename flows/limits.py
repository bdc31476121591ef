"""How many sites work at once on a shared resource: Prefect global concurrency limits.

A fleet runs many `migrate-site` and `reconcile-site` runs at the same time
(one per site, on as many workers as the work pool has). Two resources are
shared between them and must not be overrun:

- a legacy database server, when several sites' databases live on it (sites
  say so with `legacy_server:`; by default each site is its own server): a
  run holds a slot of `ts24-legacy-<server>` for as long as it works on the
  site, since nearly every stage reads the legacy database;
- the target (the new system's database): a run holds a slot of
  `ts24-target-<reference>` while it loads into it and validates against it.

The numbers come from the inventory (`limits:`); nothing is limited when it
sets none. Each run writes the number into Prefect before it asks for a slot,
so the inventory stays the one place to change it (an operator may still
switch a limit off in the Prefect UI: it is created active, and only its size
is written back). Slots are always taken in the same order (the site's own,
then its legacy server's, then the target's), so two runs never wait for each
other in a cycle. A slot is a lease that Prefect renews while the run works; a
killed run's lease runs out and its slot comes free by itself
(`lease_seconds()`: 5 minutes, or $TS24_SLOT_LEASE_SECONDS in the worker's
environment).

Whatever the inventory says, a run also holds the one slot of its own site
(`ts24-site-<id>`), taken before any other: two runs of one site (a fleet run
again while a killed worker's run still holds the site, a migration and the
scheduled reconciliation, a command run by hand) never overlap.

Commands run by hand take the same slots when a Prefect API is configured
(ts24_migrate.cli.commands.slots); without one there is nothing to coordinate with.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import MissingContextError, ObjectAlreadyExists

from ts24_migrate.core.config import Inventory, SiteConfig
from ts24_migrate.core.errors import ConfigError

LEASE_ENV = "TS24_SLOT_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 300
_SHORTEST_LEASE_SECONDS = 60  # the Prefect server refuses shorter leases
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_.-]+")  # Prefect refuses / % & > < in limit names


@dataclass(frozen=True)
class Limit:
    name: str
    slots: int
    what: str  # for the log: "legacy server sql-hanoi"


def lease_seconds() -> int:
    """How long a killed run's slot stays taken: $TS24_SLOT_LEASE_SECONDS, else 5 minutes."""
    raw = os.environ.get(LEASE_ENV, "").strip()
    if not raw:
        return DEFAULT_LEASE_SECONDS
    if not raw.isdigit() or int(raw) < _SHORTEST_LEASE_SECONDS:
        raise ConfigError(f"{LEASE_ENV}={raw!r}: give whole seconds, at least {_SHORTEST_LEASE_SECONDS}")
    return int(raw)


def site_limit(site: SiteConfig) -> Limit:
    """One run of a site at a time, limits or not."""
    return Limit(f"ts24-site-{site.id}", 1, f"site {site.id}")


def legacy_server_limit(inventory: Inventory, site: SiteConfig) -> Limit | None:
    slots = inventory.limits.legacy_server
    return Limit(f"ts24-legacy-{site.server}", slots, f"legacy server {site.server}") if slots else None


def target_limit(inventory: Inventory) -> Limit | None:
    """The target's limit, named after its secret reference (never the URL it points to)."""
    slots = inventory.limits.target
    if not slots:
        return None
    reference = _NOT_IN_A_NAME.sub("-", inventory.target) if inventory.target else "embedded"
    return Limit(f"ts24-target-{reference}", slots, "the target")


def write_limit(limit: Limit) -> None:
    """Create the limit in Prefect, or set its size to the inventory's."""
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(limit.name, limit.slots)
        except ObjectAlreadyExists:  # another run created it in between: set its size again
            client.upsert_global_concurrency_limit_by_name(limit.name, limit.slots)


class SlotBusy(Exception):
    """Every slot of the limit is held, and the caller chose not to wait."""

    def __init__(self, limit: Limit):
        super().__init__(f"every slot of {limit.what} is taken ({limit.slots} at once)")
        self.limit = limit


def _run_log(message: str) -> None:
    """The flow run's log; outside a run (a command run by hand), this module's logger."""
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = logging.getLogger(__name__)
    logger.info(message)


@contextmanager
def holding(limit: Limit | None, *, wait: bool = True, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold one slot of `limit` for the duration of the block (nothing when there is no limit).

    `wait=False`: raise SlotBusy at once when no slot is free, instead of waiting for one.
    `say`: where the lines go when the run has to wait [default: the flow run's log].
    """
    if limit is None:
        yield
        return
    say = say or _run_log
    lease = lease_seconds()
    write_limit(limit)

    def take(*, once: bool):
        # One request, or ask until a slot is free; never a timeout, which could drop a slot the server
        # granted meanwhile. A failed lease renewal (the API briefly unreachable) must not kill an
        # hours-long load.
        return concurrency(
            limit.name,
            occupy=1,
            max_retries=0 if once else None,
            lease_duration=lease,
            strict=True,
            raise_on_lease_renewal_failure=False,
        )

    asked = time.monotonic()
    with ExitStack() as held:
        try:  # only from taking the slot: the block has not started
            held.enter_context(take(once=True))
        except ConcurrencySlotAcquisitionError as refused:
            if not _every_slot_taken(refused):
                raise
            if not wait:
                raise SlotBusy(limit) from None
            say(f"waiting for a slot of {limit.what} ({limit.slots} at once, Prefect limit {limit.name})")
            held.enter_context(take(once=False))
            say(f"holding a slot of {limit.what} after {time.monotonic() - asked:.0f} s")
        yield


def _every_slot_taken(refused: ConcurrencySlotAcquisitionError) -> bool:
    """The server said 423 Locked: no slot free now (anything else is a real error)."""
    cause = refused.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423


@contextmanager
def site_slots(
    inventory: Inventory, site: SiteConfig, *, target: bool, wait: bool = True, say: Callable[[str], None] | None = None
) -> Iterator[None]:
    """The slots a run of `site` holds, in the one order: the site's, its legacy server's and,
    with `target`, the target's."""
    with (
        holding(site_limit(site), wait=wait, say=say),
        holding(legacy_server_limit(inventory, site), wait=wait, say=say),
        holding(target_limit(inventory) if target else None, wait=wait, say=say),
    ):
        yield
