"""Views, triggers, procedures, functions and sequences: what the purge drops besides tables, and what the
backup chain recorded of them.

Discovery is the extract stage's (`extract.objects.discover_objects`: each object with the SHA-256 of its
definition). A full backup records every object's fingerprint in its manifest; increments record none, so
the chain's record is the newest manifest that has one.

Example::

    chain_object_fingerprints(manifests)     # {'view:V_HO_SO_DANG_XU_LY': '3f1c...', ...} or None
"""

from __future__ import annotations

from collections.abc import Sequence

from backups.manifest import BackupManifest
from extract.objects import discover_objects

__all__ = ["chain_object_fingerprints", "discover_objects"]


def chain_object_fingerprints(manifests: Sequence[BackupManifest]) -> dict[str, str | None] | None:
    """{object key: fingerprint} from the newest manifest of the chain that records objects; None when
    no manifest does (backups made before object definitions were backed up)."""
    for manifest in reversed(list(manifests)):
        if manifest.objects is not None:
            return manifest.object_fingerprints()
    return None
