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
is written back). Slots are always taken in the same order, legacy server
first, so two runs never wait for each other in a cycle. A slot is a lease
that Prefect renews while the run works; a killed run's lease runs out and
its slot comes free by itself (`LEASE_SECONDS`).
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

from ts24_migrate.config import Inventory, SiteConfig

LEASE_SECONDS = 300
_NO_WAIT_SECONDS = 1  # "don't wait" still asks the server once
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_.-]+")  # Prefect refuses / % & > < in limit names


@dataclass(frozen=True)
class Limit:
    name: str
    slots: int
    what: str  # for the log: "legacy server sql-hanoi"


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


@contextmanager
def holding(limit: Limit | None, *, wait: bool = True) -> Iterator[None]:
    """Hold one slot of `limit` for the duration of the block (nothing when there is no limit).

    `wait=False`: raise SlotBusy at once when no slot is free, instead of waiting for one.
    """
    if limit is None:
        yield
        return
    write_limit(limit)
    logger = get_run_logger()
    if wait:
        logger.info("waiting for a slot of %s (%d at once, Prefect limit %s)", limit.what, limit.slots, limit.name)
    asked = time.monotonic()
    with ExitStack() as held:
        try:
            # A failed lease renewal (the API briefly unreachable) must not kill an hours-long load.
            held.enter_context(concurrency(limit.name, occupy=1, timeout_seconds=None if wait else _NO_WAIT_SECONDS,
                                           lease_duration=LEASE_SECONDS, strict=True,
                                           raise_on_lease_renewal_failure=False))
        except TimeoutError:  # only from taking the slot: the block has not started
            raise SlotBusy(limit) from None
        logger.info("holding a slot of %s after %.0f s", limit.what, time.monotonic() - asked)
        yield
