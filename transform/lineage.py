"""legacy_row_hash of many rows at once: ts24_migrate.core.rows.batch_digest, the one column-wise row_digest.

The digest ties a loaded row to its legacy original in the backup, so the
transform uses the very implementation the backup fingerprints with.

Example::

    legacy_row_hashes(batch, rows=[0, 2])   # ['5f1c...', '09ab...']
"""

from __future__ import annotations

from ts24_migrate.core.rows.batch_digest import legacy_row_hashes

__all__ = ["legacy_row_hashes"]
