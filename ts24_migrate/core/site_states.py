"""A site's life: its states, and the moves between them the control store allows.

The path of shared/DESIGN.md, plus the two shortcuts the stages take: a load
after a backup verified without a key (signature and ciphertext hashes only:
no BACKUP_VERIFIED), and a first reconciliation that finds the site drained
already (no RECONCILING). Any state may be set again (a re-run of the stage
that reached it); nothing moves back: re-running an earlier stage leaves the
state as it is (`ControlStore.advance_state`). Every other move is refused
with `SiteLifeRefused` (exit 4, like any gate): a store that holds it would
show a life the site did not have.

Example::

    allowed(SiteState.VALIDATED, SiteState.DRAINED)   # True: drained on its first reconciliation
    allowed(SiteState.LOADED, SiteState.PURGED)       # False
"""

from __future__ import annotations

import enum

from .errors import GateRefused


class SiteState(str, enum.Enum):
    NEW = "NEW"
    ASSESSED = "ASSESSED"
    EXTRACTED = "EXTRACTED"
    BACKED_UP = "BACKED_UP"
    BACKUP_VERIFIED = "BACKUP_VERIFIED"
    LOADED = "LOADED"
    VALIDATED = "VALIDATED"
    RECONCILING = "RECONCILING"
    DRAINED = "DRAINED"
    FINAL_BACKUP_VERIFIED = "FINAL_BACKUP_VERIFIED"
    PURGE_APPROVED = "PURGE_APPROVED"
    PURGED = "PURGED"
    CERTIFIED = "CERTIFIED"


LIFE: tuple[SiteState, ...] = tuple(SiteState)

# The moves forward, each from the state before it; a re-run (the same state again) is always allowed.
_FORWARD: dict[SiteState, frozenset[SiteState]] = {
    SiteState.NEW: frozenset({SiteState.ASSESSED}),
    SiteState.ASSESSED: frozenset({SiteState.EXTRACTED}),
    SiteState.EXTRACTED: frozenset({SiteState.BACKED_UP}),
    # A backup verified without a key is verified enough to load (runs.gates); only a decrypting one
    # moves the site to BACKUP_VERIFIED.
    SiteState.BACKED_UP: frozenset({SiteState.BACKUP_VERIFIED, SiteState.LOADED}),
    SiteState.BACKUP_VERIFIED: frozenset({SiteState.LOADED}),
    SiteState.LOADED: frozenset({SiteState.VALIDATED}),
    # The first reconciliation may find nothing in flight any more.
    SiteState.VALIDATED: frozenset({SiteState.RECONCILING, SiteState.DRAINED}),
    SiteState.RECONCILING: frozenset({SiteState.DRAINED}),
    SiteState.DRAINED: frozenset({SiteState.FINAL_BACKUP_VERIFIED}),
    SiteState.FINAL_BACKUP_VERIFIED: frozenset({SiteState.PURGE_APPROVED}),
    SiteState.PURGE_APPROVED: frozenset({SiteState.PURGED}),
    SiteState.PURGED: frozenset({SiteState.CERTIFIED}),
    SiteState.CERTIFIED: frozenset(),
}


class SiteLifeRefused(GateRefused):
    """The control store refused a move of a site's state that its life does not have."""

    def __init__(self, site_id: str, current: SiteState, wanted: SiteState):
        later = ", ".join(s.value for s in LIFE if s in _FORWARD[current]) or "none (its life is over)"
        super().__init__(
            f"site {site_id}: its state cannot move from {current.value} to {wanted.value} "
            f"(from {current.value} it may only be set again or move to: {later}); nothing was changed"
        )
        self.site_id, self.current, self.wanted = site_id, current, wanted

    def __reduce__(self) -> tuple[type[SiteLifeRefused], tuple[str, SiteState, SiteState]]:
        # Made again from its fields (a Prefect result store pickles a failed task's exception).
        return type(self), (self.site_id, self.current, self.wanted)


def allowed(current: SiteState, wanted: SiteState) -> bool:
    """May a site in `current` be set to `wanted`?"""
    return wanted is current or wanted in _FORWARD[current]


def is_later(wanted: SiteState, current: SiteState) -> bool:
    """Is `wanted` further along the life than `current` (a re-run of an earlier stage is not)?"""
    return LIFE.index(wanted) > LIFE.index(current)


def skips(current: SiteState, wanted: SiteState) -> bool:
    """Would moving forward from `current` to `wanted` skip what the life requires?"""
    return is_later(wanted, current) and not allowed(current, wanted)


def require_allowed(site_id: str, current: SiteState, wanted: SiteState) -> None:
    if not allowed(current, wanted):
        raise SiteLifeRefused(site_id, current, wanted)
