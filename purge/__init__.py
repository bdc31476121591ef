"""Purge stage (not built yet): gated, approved, verified destruction of a legacy site's data.

Reserved so the layout matches the design (shared/DESIGN.md, "purge"): refuse unless every gate
holds (a verified backup chain equal to the live source at purge time — see
backups.chain.chain_fingerprints and backups.live_fingerprints — validation passed, site drained,
second-person approval), dry run first, then delete, verify and certify.
"""
