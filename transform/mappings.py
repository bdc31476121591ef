"""Legacy codes -> the new system's names (load/target_schema.py).

Example::

    >>> TRANSACTION_MODES[3], SEXES[0], OFFICE_LEVELS[1]
    ('ivan', 'F', 'province')
"""

from __future__ import annotations

from collections.abc import Mapping

from ts24_migrate.core.legacy.schema import DOSSIER_STATUS_NAMES

# The codes are integers; the maps are typed to take None too, since the transform looks a column's
# values up as they come, NULL included (no name: None, like any unknown code).

# HO_SO.TRANG_THAI and HO_SO_LICH_SU.TRANG_THAI_CU/MOI
DOSSIER_STATUSES: Mapping[int | None, str] = {code: name for code, name in DOSSIER_STATUS_NAMES.items()}
# DM_DONVI.PHUONG_THUC_GD
TRANSACTION_MODES: Mapping[int | None, str] = {1: "portal", 2: "network_unsigned", 3: "ivan"}
# DM_DONVI.TRANG_THAI
UNIT_ACTIVE: Mapping[int | None, bool] = {1: True, 0: False}
# NGUOI_LAO_DONG.GIOI_TINH
SEXES: Mapping[int | None, str] = {1: "M", 0: "F"}
# DM_COQUAN_BHXH.CAP, with the office code length each level has
OFFICE_LEVELS: Mapping[int | None, str] = {1: "province", 2: "district"}
OFFICE_CODE_LENGTHS: dict[str, int] = {"province": 2, "district": 4}
# HO_SO_TEP.LOAI_TEP
FILE_TYPES = ("xml", "pdf")
