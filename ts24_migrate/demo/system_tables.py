"""HT_NGUOI_DUNG and HT_NHAT_KY: TS24's own accounts and access log.

Backed up and purged, never loaded. The password hashes are hashes of
nothing secret (a seed and a login), shaped like the PBKDF2 strings TS24
stores, so that a leak test can look for them in reports and logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy.engine import Engine

from ts24_migrate.core.legacy.schema import HT_NGUOI_DUNG, HT_NHAT_KY

from .names import LOG_ACTIONS, ascii_fold, person_name
from .world import World
from .writer import ChunkedInserter, Progress

ADMIN_LOGIN = "admin"


def password_hash(world: World, login: str) -> str:
    digest = hashlib.sha256(f"{world.seed}:{world.site_id}:{login}".encode()).hexdigest()
    return f"pbkdf2_sha256$60000${digest[:12]}${digest[12:]}"


def write_users(legacy: Engine, world: World) -> list[str]:
    """Writes the accounts; returns the officers' logins (the admin account excluded)."""
    rng = world.rng("HT_NGUOI_DUNG")
    rows = [
        {
            "TEN_DANG_NHAP": ADMIN_LOGIN,
            "MAT_KHAU_HASH": password_hash(world, ADMIN_LOGIN),
            "HO_TEN": "Quản trị hệ thống",
            "MA_CQ": world.office_code,
            "TRANG_THAI": 1,
        }
    ]
    officers: list[str] = []
    for index in range(world.sizes.users - 1):
        name = person_name(rng, rng.random() < 0.5)
        family, *_, given = ascii_fold(name).lower().split()
        login = f"{given}.{family[0]}{index + 1}"
        officers.append(login)
        rows.append(
            {
                "TEN_DANG_NHAP": login,
                "MAT_KHAU_HASH": password_hash(world, login),
                "HO_TEN": name,
                "MA_CQ": rng.choice(world.offices),
                "TRANG_THAI": 1 if rng.random() < 0.85 else 0,
            }
        )
    with ChunkedInserter(legacy, HT_NGUOI_DUNG) as out:
        for row in rows:
            out.add(row)
    return officers


def write_system_log(legacy: Engine, world: World, logins: list[str], *, progress: Progress | None = None) -> int:
    """The access log of the last 90 days. Its last entry is 13 minutes before the world's now,
    which lets `advance_site` read the world's clock back from the data."""
    rng = world.rng("HT_NHAT_KY")
    n = world.sizes.system_log
    start = world.now - dt.timedelta(days=90)
    last = world.now - dt.timedelta(minutes=13)
    span = int((last - start).total_seconds())
    offsets = sorted(rng.sample(range(span), n - 1)) + [span]
    everyone = [ADMIN_LOGIN, *logins]
    with ChunkedInserter(legacy, HT_NHAT_KY, progress=progress, expected_rows=n) as out:
        for index, offset in enumerate(offsets):
            address = (
                f"10.{rng.randint(0, 30)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                if rng.random() < 0.9
                else f"fe80::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}"
            )
            out.add(
                {
                    "ID": index + 1,
                    "THOI_GIAN": start + dt.timedelta(seconds=offset),
                    "TEN_DANG_NHAP": rng.choice(everyone),
                    "HANH_DONG": rng.choice(LOG_ACTIONS),
                    "DIA_CHI_IP": address,
                }
            )
    return n
