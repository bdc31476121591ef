"""Shared test fixtures: real databases, made fresh per test, and one Prefect server.

PostgreSQL and MariaDB-over-ODBC tests skip when the server is down on a
developer machine, and FAIL when TS24_REQUIRE_REAL_DBS=1 (as .ci/run sets),
so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ts24_migrate import silence_analytics

PG_ADMIN_URL = os.environ.get("TS24_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_HOST = os.environ.get("TS24_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = os.environ.get("TS24_TEST_MARIADB_PORT", "3306")
MARIADB_USER = os.environ.get("TS24_TEST_MARIADB_USER", "root")
MARIADB_DRIVER = os.environ.get("TS24_TEST_MARIADB_DRIVER", "MariaDB Unicode")
REQUIRE_REAL_DBS = os.environ.get("TS24_REQUIRE_REAL_DBS") == "1"

silence_analytics()


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if REQUIRE_REAL_DBS:
        pytest.fail(message + " (TS24_REQUIRE_REAL_DBS=1: real-database tests are required)")
    pytest.skip(message)


def mariadb_url(database: str) -> str:
    driver = MARIADB_DRIVER.replace(" ", "+")
    return f"mysql+pyodbc://{MARIADB_USER}:@{MARIADB_HOST}:{MARIADB_PORT}/{database}?driver={driver}&charset=utf8mb4"


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        _unavailable("PostgreSQL", exc)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_database(_pg_admin: sa.Engine) -> Iterator[Callable[[], str]]:
    """Factory: each call creates a fresh PostgreSQL database and returns its URL."""
    created: list[str] = []

    def make() -> str:
        name = f"ts24_t_{uuid.uuid4().hex[:12]}"
        with _pg_admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    with _pg_admin.connect() as c:
        for name in created:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_database: Callable[[], str]) -> str:
    return pg_database()


@pytest.fixture(scope="session")
def _mariadb_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(mariadb_url("test"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        _unavailable("MariaDB over ODBC", exc)
    yield engine
    engine.dispose()


@pytest.fixture
def mariadb_database(_mariadb_admin: sa.Engine) -> Iterator[Callable[[], str]]:
    """Factory: each call creates a fresh MariaDB database (utf8mb4) and returns its ODBC URL."""
    created: list[str] = []

    def make() -> str:
        name = f"ts24_t_{uuid.uuid4().hex[:12]}"
        with _mariadb_admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        created.append(name)
        return mariadb_url(name)

    yield make
    with _mariadb_admin.connect() as c:
        for name in created:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture
def mariadb_url_fixture(mariadb_database: Callable[[], str]) -> str:
    return mariadb_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Callable[[str], str]:
    """Factory: URL of a new SQLite file in the test's temporary folder."""

    def make(name: str = "db") -> str:
        return f"sqlite:///{tmp_path / (name + '.sqlite')}"

    return make


@pytest.fixture(scope="session")
def prefect_server():
    """One ephemeral Prefect server for the whole session (each start costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def _prefect_events_closed_after_the_test() -> Iterator[None]:
    """After each test, stop Prefect's events worker if the test started one in this process.

    Any test may start it while the session's Prefect server is up (a flow run, a block loaded from
    it: Prefect reports those as events). Left running, its websocket to the server keeps pinging in a
    background thread, and each ping draws from the global `random`: Hypothesis, in a later test of the
    same worker, sees that state change during a draw and warns (a deprecation that newer Hypothesis
    versions turn into an error). The next test that needs the worker starts it again."""
    yield
    events = sys.modules.get("prefect.events.worker")  # not imported: no worker to stop
    if events is not None:
        events.EventsWorker.drain_all(timeout=30, at_exit=False)


class DemoSite:
    """A complete demo site folder: inventory, keys, legacy + target SQLite, truth."""

    def __init__(self, folder: Path, inventory: Path, identity: Path, site_id: str):
        self.folder, self.inventory, self.identity, self.site_id = folder, inventory, identity, site_id

    @property
    def truth(self) -> dict:
        import json

        return json.loads((self.folder / "truth" / f"{self.site_id}.truth.json").read_text(encoding="utf-8"))


@pytest.fixture
def demo_site(tmp_path: Path) -> Callable[..., DemoSite]:
    """Factory: make_demo(scale=0.05, seed=42, site_id="demo", awkward_names=False) -> DemoSite with keys and
    sites.yaml (`awkward_names`: legacy tables and columns whose names need quoting)."""
    from ts24_migrate.cli.commands.demo_data import write_demo_inventory
    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    def make(scale: float = 0.05, seed: int = 42, site_id: str = "demo", awkward_names: bool = False) -> DemoSite:
        folder = tmp_path / f"site-{site_id}-{seed}"
        identity = folder / "keys" / "custodian.age-identity"
        recipient = generate_custodian_identity(identity)
        generate_signing_key(folder / "keys" / "signing.key")
        inventory = write_demo_inventory(
            folder,
            site_id=site_id,
            seed=seed,
            scale=scale,
            backup_recipients=[recipient],
            signing_key=Path("keys/signing.key"),
            awkward_names=awkward_names,
        )
        return DemoSite(folder, inventory, identity, site_id)

    return make


# The longest test files first: `make test` runs two workers that each take whole files, and a long file
# started last keeps one worker busy after the other has finished. (The Makefile passes xdist
# --no-loadscope-reorder, else xdist sends the files with the most tests first, whatever this order.)
LONGEST_FIRST = (
    "test_fleet_deployment.py",
    "test_kill_anywhere.py",
    "test_flow_fleet.py",
    "test_cli_interrupt.py",
    "test_load_kill.py",
    "test_flow_limits.py",
    "test_flow_migrate_site.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside a file, and of the other files, stays as collected
