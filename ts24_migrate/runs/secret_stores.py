"""Secret stores outside the kernel: `prefect:NAME` in an inventory is a Prefect Secret block.

The kernel (core.secrets) never imports Prefect; importing this module (App does) registers the reader.
Prefect is loaded only when an inventory actually names such a secret.
"""

from __future__ import annotations

from typing import Any, cast

from ts24_migrate.core.secrets import register_secret_store


def read_prefect_secret(name: str) -> str:
    from prefect.blocks.system import Secret as PrefectSecret

    # Called from sync code, Prefect's dual sync/async API returns the block itself, not a coroutine.
    block = cast(PrefectSecret[Any], PrefectSecret.load(name))
    return str(block.get())


register_secret_store("prefect", read_prefect_secret)
