"""The new system's side of the demo: what the portal already holds when the migration starts.

- 01/ĐK-GĐ re-registrations filed by some of the units that must re-register;
- dossiers filed on the portal after cut-over, among them "likely duplicates"
  of legacy in-flight dossiers (same unit, procedure and period);
- units the portal changed after cut-over with a legacy unit's code (the load
  must report them as conflicts, not overwrite them), and a few units that
  exist only on the portal.

Rows carry a tag derived from the site, so several demo sites can share one
target database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from load.target_schema import create_business_tables, dossiers, re_registrations, units
from ts24_migrate.core.errors import UsageError

from .dossiers import PROCEDURE_WEIGHTS, DossierSummary
from .identifiers import PORTAL_UNIT_PREFIX, unit_code
from .names import address, company_name
from .units import NEW_SYSTEM_MODES, UnitDirectory, UnitFacts
from .world import World, month_period, random_moment
from .writer import ChunkedInserter

PORTAL_STATUSES = (("submitted", 3), ("received", 3), ("processing", 3), ("done", 4), ("refused", 1))


@dataclass
class NewSystemSummary:
    reregistered: list[str] = field(default_factory=list)
    portal_dossiers: int = 0
    likely_duplicate_pairs: dict[int, str] = field(default_factory=dict)
    target_conflicts: list[str] = field(default_factory=list)
    portal_only_units: list[str] = field(default_factory=list)


def site_tag(world: World) -> str:
    return hashlib.sha256(f"{world.site_id}:{world.office_code}".encode()).hexdigest()[:6].upper()


def portal_only_codes(world: World, count: int) -> list[str]:
    return [unit_code(world.office_code, k, 4, prefix=PORTAL_UNIT_PREFIX) for k in range(count)]


def refuse_taken_unit_codes(target: Engine, codes: list[str]) -> None:
    """A target that already holds one of our unit codes belongs to someone else's data."""
    inspector = sa.inspect(target)
    if not codes or units.name not in inspector.get_table_names():
        return
    with target.connect() as conn:
        taken = conn.execute(sa.select(units.c.unit_code).where(units.c.unit_code.in_(codes)).limit(1)).first()
    if taken is not None:
        raise UsageError(
            f"the target already holds unit {taken[0]}: use an empty target database "
            "or another office code for this demo site"
        )


def write_new_system(
    target: Engine, world: World, directory: UnitDirectory, summary: DossierSummary
) -> NewSystemSummary:
    create_business_tables(target)
    rng = world.rng("new-system")
    result = NewSystemSummary()
    cutover, now = world.cutover_at, world.now
    after_cutover = (cutover + dt.timedelta(days=1), now - dt.timedelta(days=1))

    # Re-registrations by about 40% of the units that must re-register.
    candidates = sorted(directory.must_reregister)
    chosen = sorted(rng.sample(candidates, round(0.4 * len(candidates)))) if candidates else []
    with ChunkedInserter(target, re_registrations) as out:
        for code in chosen:
            filed = random_moment(rng, cutover - dt.timedelta(days=45), now - dt.timedelta(days=1)).date()
            out.add(
                {
                    "unit_code": code,
                    "tax_code": directory.must_reregister[code],
                    "filed_on": filed,
                    "transaction_mode": "portal" if rng.random() < 0.7 else "ivan",
                    "form": "01/ĐK-GĐ",
                }
            )
    result.reregistered = chosen

    # Units the portal holds: conflicts (a legacy unit's code, changed after cut-over) and new ones.
    portal_units = [
        _portal_unit(facts, facts.name, random_moment(rng, *after_cutover)) for facts in directory.conflict_units
    ]
    new_codes = portal_only_codes(world, 2)
    for code in new_codes:
        facts = UnitFacts(
            code,
            company_name(rng),
            None,
            address(rng, world.province_code),
            world.office_code,
            1,
            True,
            None,
            None,
            None,
            None,
            world.cutover,
        )
        portal_units.append(_portal_unit(facts, facts.name, random_moment(rng, *after_cutover)))
    with ChunkedInserter(target, units) as out:
        for row in portal_units:
            out.add(row)
    result.target_conflicts = sorted(f.code for f in directory.conflict_units)
    result.portal_only_units = new_codes

    # Dossiers filed on the portal since cut-over; the period is the filing month or later, so
    # none matches a legacy dossier (all before the cut-over month) unless planted as a duplicate.
    tag = site_tag(world)
    legacy_codes = [directory.clean_code(i) for i in range(min(directory.base_units, 500))]
    procedures = [p for p, _ in PROCEDURE_WEIGHTS]
    regular = max(2, round(0.04 * world.sizes.dossiers))
    with ChunkedInserter(target, dossiers) as out:
        number = 0
        for source in summary.duplicate_sources:
            number += 1
            row = _portal_dossier(rng, world, tag, number, source.unit_code, source.procedure, source.period)
            out.add(row)
            result.likely_duplicate_pairs[source.dossier_id] = row["dossier_no"]
        for _ in range(regular):
            number += 1
            unit = rng.choice(legacy_codes + new_codes)
            submitted_month = random_moment(rng, cutover, now - dt.timedelta(hours=1))
            month, year = month_period(submitted_month.date(), 0)
            out.add(
                _portal_dossier(
                    rng,
                    world,
                    tag,
                    number,
                    unit,
                    rng.choice(procedures),
                    f"{year:04d}-{month:02d}",
                    submitted=submitted_month,
                )
            )
    result.portal_dossiers = number
    return result


def _portal_unit(facts: UnitFacts, name: str, updated_at: dt.datetime) -> dict:
    return {
        "unit_code": facts.code,
        "name": name,
        "tax_code": facts.tax_code,
        "address": facts.address,
        "office_code": facts.office_code,
        "contact_name": None,
        "phone": None,
        "email": None,
        "transaction_mode": NEW_SYSTEM_MODES[facts.mode],
        "ivan_code": facts.ivan_code,
        "cert_serial": facts.cert_serial,
        "cert_valid_from": facts.cert_valid_from,
        "cert_valid_to": facts.cert_valid_to,
        "registered_on": facts.registered_on,
        "active": facts.active,
        "dq_flags": None,
        "source": "portal",
        "updated_at": updated_at,
    }


def _portal_dossier(
    rng,
    world: World,
    tag: str,
    number: int,
    unit: str,
    procedure: str,
    period: str,
    *,
    submitted: dt.datetime | None = None,
) -> dict:
    now = world.now
    submitted = submitted or random_moment(rng, world.cutover_at, now - dt.timedelta(hours=1))
    status = rng.choices([s for s, _ in PORTAL_STATUSES], weights=[w for _, w in PORTAL_STATUSES])[0]
    received = (
        None
        if status == "submitted"
        else min(submitted + dt.timedelta(hours=rng.randint(1, 48)), now - dt.timedelta(minutes=30))
    )
    returned = (
        min(received + dt.timedelta(days=rng.randint(1, 10)), now - dt.timedelta(minutes=10))
        if status in ("done", "refused") and received
        else None
    )
    updated = max(t for t in (submitted, received, returned) if t is not None)
    return {
        "dossier_no": f"CT-{tag}-{number:07d}",
        "unit_code": unit,
        "procedure_code": procedure,
        "declaration_period": period,
        "submitted_at": submitted,
        "received_at": received,
        "due_date": (received + dt.timedelta(days=10)).date() if received else None,
        "returned_at": returned,
        "status": status,
        "office_code": world.office_code,
        "officer": None,
        "result_no": None,
        "notes": None,
        "dq_flags": None,
        "source": "portal",
        "updated_at": updated,
    }
