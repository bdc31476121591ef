"""generate_site: a whole TS24 site (database, attachment folder, new-system side) from a seed.

Example::

    legacy = sa.create_engine("sqlite:///demo/legacy.sqlite")
    truth = generate_site(legacy, Path("demo/files"), seed=42, scale=0.05)
    truth.write(Path("demo/truth.json"))
    truth.defect_counts            # {'text_tcvn3': 5, 'text_vni': 5, ...}
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.legacy import schema as legacy_schema

from . import awkward_names as awkward
from . import dirty_data as dd
from .dossiers import likely_duplicate_count, write_dossiers
from .extra_tables import PLAIN_EXTRA_TABLES, write_extra_tables
from .new_system import portal_only_codes, refuse_taken_unit_codes, write_new_system
from .persons import write_persons
from .site_objects import write_objects, write_unreferenced_file
from .system_tables import write_system_log, write_users
from .truth import DemoTruth
from .units import plan_units, target_conflict_codes, write_offices, write_units
from .world import World
from .writer import Progress

_OFFICE_CODE = re.compile(r"^\d{2}(\d{2})?$")
MAX_SCALE = 5000


def refuse_non_empty(legacy: Engine, attachments_dir: Path) -> None:
    """Never write over someone's data: the database and the folder must be empty."""
    existing = [
        name
        for name in sa.inspect(legacy).get_table_names()
        if not (name.startswith("sqlite_") and legacy.dialect.name == "sqlite")
    ]
    if existing:
        shown = ", ".join(sorted(existing)[:3]) + (" ..." if len(existing) > 3 else "")
        raise UsageError(
            f"the legacy database already has {len(existing)} table(s) ({shown}); "
            "the demo generator only writes into an empty database"
        )
    if attachments_dir.exists() and (not attachments_dir.is_dir() or any(attachments_dir.iterdir())):
        raise UsageError(
            f"attachment folder {attachments_dir} is not empty; the demo generator "
            "only writes into an empty or new folder"
        )


def generate_site(
    legacy: Engine,
    attachments_dir: Path,
    *,
    target: Engine | None = None,
    seed: int = 42,
    scale: float = 1.0,
    cutover: dt.date = dt.date(2025, 7, 1),
    site_id: str = "demo",
    office_code: str = "01",
    progress: Progress | None = None,
    awkward_names: bool = False,
) -> DemoTruth:
    """Write a deterministic TS24 site into the empty, writable `legacy` database.

    Same arguments, same rows, files and truth; scale 1.0 is about 200 units,
    1,000 persons and 2,000 dossiers. With `target`, also plants the new
    system's side (see demo.new_system). `progress(table, rows, expected)` is
    called after every written chunk. With `awkward_names`, some tables and columns get names that
    need quoting (see demo.awkward_names); the rows are the same.
    """
    if not 0 < scale <= MAX_SCALE:
        raise UsageError(f"scale must be above 0 and at most {MAX_SCALE}, not {scale}")
    if not _OFFICE_CODE.match(office_code):
        raise UsageError(f"office code must be 2 or 4 digits, not {office_code!r}")
    attachments_dir = Path(attachments_dir)
    refuse_non_empty(legacy, attachments_dir)
    world = World(site_id=site_id, seed=seed, scale=scale, cutover=cutover, office_code=office_code)
    unit_plan = plan_units(world, likely_duplicate_count(world))
    if target is not None:
        refuse_taken_unit_codes(target, portal_only_codes(world, 2) + target_conflict_codes(world, unit_plan))
    attachments_dir.mkdir(parents=True, exist_ok=True)

    schema = awkward.mapped_schema_with_extra_columns() if awkward_names else legacy_schema.metadata
    extra = awkward.awkward_extra_tables() if awkward_names else PLAIN_EXTRA_TABLES
    schema.create_all(legacy)
    extra.metadata.create_all(legacy)
    defects = dd.DefectLog()
    rows: dict[str, int] = {}
    rows["DM_COQUAN_BHXH"] = write_offices(legacy, world, defects)
    directory = write_units(legacy, world, unit_plan, defects, progress=progress)
    rows["DM_DONVI"] = directory.base_units + directory.twins
    rows["NGUOI_LAO_DONG"] = write_persons(legacy, world, directory, defects, progress=progress)
    officers = write_users(legacy, world)
    rows["HT_NGUOI_DUNG"] = len(officers) + 1
    summary = write_dossiers(legacy, world, directory, officers, attachments_dir, defects, progress=progress)
    rows["HO_SO"], rows["HO_SO_TEP"], rows["HO_SO_LICH_SU"] = summary.dossiers, summary.files, summary.history
    rows["HT_NHAT_KY"] = write_system_log(legacy, world, officers, progress=progress)
    rows.update(write_extra_tables(legacy, world, directory, defects, extra))
    if awkward_names:
        rows.update(awkward.write_added_tables(legacy, world, directory, extra))
        awkward.fill_extra_columns(legacy, schema)
    objects = write_objects(legacy)

    portal = write_new_system(target, world, directory, summary) if target is not None else None
    folder = summary.folder
    assert folder is not None
    unreferenced = write_unreferenced_file(folder, world)
    return DemoTruth(
        site_id=site_id,
        seed=seed,
        scale=scale,
        cutover=cutover,
        world_now=world.now,
        office_code=office_code,
        tables=_tables_truth(rows, (schema, extra.metadata)),
        defects=defects.entries,
        defect_counts=defects.counts_dict(),
        encodings=defects.encodings_dict(),
        dossiers_by_status={str(s): summary.by_status.get(s, 0) for s in range(7)},
        in_flight_dossiers=summary.in_flight,
        overdue_in_flight=summary.overdue_in_flight,
        received_after_cutover=[str(i) for i in summary.received_after_cutover],
        attachments={
            "on_disk": summary.files_on_disk,
            "in_db": summary.files_in_db,
            "files_written": folder.files_written,
            "bytes_on_disk": folder.bytes_written,
            "missing_on_disk": [str(i) for i in summary.missing_on_disk],
            "md5_mismatch": [str(i) for i in summary.md5_mismatch],
        },
        must_reregister=sorted(directory.must_reregister),
        reregistered=portal.reregistered if portal else [],
        portal_dossiers=portal.portal_dossiers if portal else 0,
        likely_duplicates=[str(s.dossier_id) for s in summary.duplicate_sources] if portal else [],
        likely_duplicate_pairs=({str(k): v for k, v in portal.likely_duplicate_pairs.items()} if portal else {}),
        target_conflicts=portal.target_conflicts if portal else [],
        portal_only_units=portal.portal_only_units if portal else [],
        has_target=portal is not None,
        awkward_names=awkward_names,
        objects=objects,
        unreferenced_files=unreferenced,
    )


def _tables_truth(rows: dict[str, int], schemas: tuple[sa.MetaData, ...]) -> dict[str, dict]:
    tables = {}
    for metadata in schemas:
        for name, table in metadata.tables.items():
            if name in legacy_schema.MAPPED_TABLES:
                role = "mapped"
            elif name in legacy_schema.SYSTEM_TABLES:
                role = "system"
            else:
                role = "unmapped"
            tables[name] = {
                "rows": rows[name],
                "primary_key": [c.name for c in table.primary_key.columns],
                "role": role,
                "columns": [c.name for c in table.columns],
            }
    return dict(sorted(tables.items()))
