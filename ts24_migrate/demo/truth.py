"""What the generator planted, so that tests of later stages can check every claim.

The truth file is JSON; keys are strings (legacy keys as text, statuses as
"0".."6"); every count is exact: it is counted while the rows are written,
and the generator's own tests compare it with the database.

Example::

    truth = generate_site(legacy, Path("files"), scale=0.05)
    truth.write(Path("demo.truth.json"))
    DemoTruth.read(Path("demo.truth.json")).defect_counts["text_tcvn3"]   # e.g. 3
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

TRUTH_FORMAT = 1


@dataclass
class DemoTruth:
    site_id: str
    seed: int
    scale: float
    cutover: dt.date
    world_now: dt.datetime
    office_code: str
    # {table: {"rows": n, "primary_key": [...], "role": "mapped"|"system"|"unmapped", "columns": [...]}}
    tables: dict[str, dict[str, Any]]
    # [{"table", "key", "column", "kind", "value", "clean_value"?}]
    defects: list[dict[str, Any]]
    defect_counts: dict[str, int]
    # {table: {column: {"tcvn3": n, "vni": n, "nfd": n}}}
    encodings: dict[str, dict[str, dict[str, int]]]
    dossiers_by_status: dict[str, int]
    in_flight_dossiers: int
    # in-flight dossiers whose NGAY_HEN_TRA is before world_now's date
    overdue_in_flight: int
    received_after_cutover: list[str]
    # {"on_disk": rows with DUONG_DAN, "in_db": rows with NOI_DUNG, "files_written": n,
    #  "bytes_on_disk": n, "missing_on_disk": [ID_TEP], "md5_mismatch": [ID_TEP]}
    attachments: dict[str, Any]
    must_reregister: list[str]
    reregistered: list[str] = field(default_factory=list)
    portal_dossiers: int = 0
    likely_duplicates: list[str] = field(default_factory=list)
    # {legacy ID_HO_SO: portal dossier_no}
    likely_duplicate_pairs: dict[str, str] = field(default_factory=dict)
    target_conflicts: list[str] = field(default_factory=list)
    # units filed only on the new portal (not in the legacy database, not conflicts)
    portal_only_units: list[str] = field(default_factory=list)
    has_target: bool = False
    # views, triggers (and on MariaDB a procedure and a sequence): [{"kind", "name", "table"}]
    objects: list[dict[str, Any]] = field(default_factory=list)
    # files of the attachment folder that no row references: [{"path", "size", "sha256"}]
    unreferenced_files: list[dict[str, Any]] = field(default_factory=list)
    # tables and columns named as demo.awkward_names names them
    awkward_names: bool = False
    format: int = TRUTH_FORMAT

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutover"] = self.cutover.isoformat()
        data["world_now"] = self.world_now.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoTruth:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["cutover"] = dt.date.fromisoformat(data["cutover"])
        values["world_now"] = dt.datetime.fromisoformat(data["world_now"])
        return cls(**values)

    def write(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        path.write_text(text + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> DemoTruth:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def defects_of(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.defects if d["kind"] == kind]
