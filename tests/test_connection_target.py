"""The connection goes exactly where the URL says, and every stage works on the assessed server.

Found: over MariaDB Connector/ODBC, the port of a URL was ignored (SQLAlchemy
writes ``Server=host,port``, which that driver reads as a host name on 3306).
These tests start a second, private MariaDB server on another port (once per
session) and check that a URL reaches exactly the server it names, that a
stage pointed at another server than the assessed one refuses (exit code 4),
and that the ODBC connection strings say what the URL says.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from conftest import MARIADB_DRIVER, REQUIRE_REAL_DBS
from sqlalchemy.engine import make_url

from ts24_migrate.cli.main import main
from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import ControlStore, SiteState
from ts24_migrate.core.db import check_reachable, legacy_engine, store_engine
from ts24_migrate.core.errors import ConfigError, ExitCode, LoginRefused, UnreachableError
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.odbc import odbc_connection_string
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.server_identity import ServerIdentity, probe_server_identity
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.demo import generate_site

CUTOVER = dt.date(2025, 7, 1)
# Every character the ODBC grammar or a URL could misread, in one password.
AWKWARD_PASSWORD = "a;b}c{d=e f'\"\\%@:/?#&+}}x"


# -- the ODBC connection string (no server needed) -----------------------------------------------


def parse_odbc(text: str) -> dict[str, str]:
    """Read an ODBC connection string back as a driver does: KEY=value;..., {braced} with }} for }."""
    pairs, i = {}, 0
    while i < len(text):
        eq = text.index("=", i)
        key, i = text[i:eq].strip().upper(), eq + 1
        if text.startswith("{", i):
            value, i = "", i + 1
            while True:
                close = text.index("}", i)
                value += text[i:close]
                if text.startswith("}}", close):
                    value, i = value + "}", close + 2
                else:
                    i = close + 1
                    break
        else:
            end = text.find(";", i)
            end = len(text) if end < 0 else end
            value, i = text[i:end], end
        assert key not in pairs, f"{key} given twice in {text!r}"
        pairs[key] = value
        if text.startswith(";", i):
            i += 1
    return pairs


def _url(backend: str, user: str, password: str, host: str, port: int | None, database: str, query: str) -> str:
    where = host + (f":{port}" if port else "")
    return f"{backend}+pyodbc://{quote(user, safe='')}:{quote(password, safe='')}@{where}/{database}?{query}"


def test_mariadb_string_names_host_port_database_user_and_password_exactly():
    url = make_url(
        _url(
            "mysql",
            "ts24 reader",
            AWKWARD_PASSWORD,
            "db1.example.vn",
            3399,
            "ts24_hn01",
            "driver=MariaDB+Unicode&charset=utf8mb4&SSLVERIFY=1&INITSTMT=SET+NAMES+utf8mb4%3B",
        )
    )
    pairs = parse_odbc(odbc_connection_string(url))
    assert pairs == {
        "DRIVER": "MariaDB Unicode",
        "SERVER": "db1.example.vn",
        "PORT": "3399",
        "DATABASE": "ts24_hn01",
        "UID": "ts24 reader",
        "PWD": AWKWARD_PASSWORD,
        "TCPIP": "1",
        "CHARSET": "utf8mb4",
        "SSLVERIFY": "1",
        "INITSTMT": "SET NAMES utf8mb4;",
    }


def test_sql_server_string_puts_the_port_after_a_comma_and_passes_options_through():
    url = make_url(
        _url(
            "mssql",
            "sa",
            AWKWARD_PASSWORD,
            "sql-hanoi",
            14330,
            "TS24",
            "driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes&TrustServerCertificate=no",
        )
    )
    pairs = parse_odbc(odbc_connection_string(url))
    assert pairs == {
        "DRIVER": "ODBC Driver 18 for SQL Server",
        "SERVER": "sql-hanoi,14330",
        "DATABASE": "TS24",
        "UID": "sa",
        "PWD": AWKWARD_PASSWORD,
        "ENCRYPT": "yes",
        "TRUSTSERVERCERTIFICATE": "no",
    }
    # No user: Windows/Kerberos login, as SQLAlchemy does; FreeTDS wants the port on its own.
    trusted = parse_odbc(
        odbc_connection_string(make_url("mssql+pyodbc://sql-hanoi/TS24?driver=ODBC+Driver+18+for+SQL+Server"))
    )
    assert trusted["TRUSTED_CONNECTION"] == "Yes" and trusted["SERVER"] == "sql-hanoi" and "UID" not in trusted
    freetds = parse_odbc(
        odbc_connection_string(
            make_url(_url("mssql", "sa", "pw", "sql-hanoi", 1433, "TS24", "driver=FreeTDS&TDS_Version=7.4"))
        )
    )
    assert (freetds["SERVER"], freetds["PORT"], freetds["TDS_VERSION"]) == ("sql-hanoi", "1433", "7.4")


def test_the_read_only_legacy_engine_on_sql_server_asks_for_a_read_only_replica_once():
    engine = legacy_engine(
        Secret(
            "mssql+pyodbc://sa:pw@sql-hanoi:1433/TS24?driver=ODBC+Driver+18+for+SQL+Server&applicationintent=ReadWrite"
        )
    )
    try:
        pairs = parse_odbc(odbc_connection_string(engine.url))
    finally:
        engine.dispose()
    assert pairs["APPLICATIONINTENT"] == "ReadOnly" and pairs["SERVER"] == "sql-hanoi,1433"


def test_a_dsn_is_named_and_other_forms_pass_as_written():
    assert parse_odbc(odbc_connection_string(make_url("mssql+pyodbc://sa:pw@TS24_HANOI"))) == {
        "DSN": "TS24_HANOI",
        "UID": "sa",
        "PWD": "pw",
    }
    dsn = parse_odbc(odbc_connection_string(make_url("mysql+pyodbc://u:pw@/ts24?dsn=ts24-hanoi")))
    assert dsn == {"DSN": "ts24-hanoi", "DATABASE": "ts24", "UID": "u", "PWD": "pw"}
    raw = "DRIVER={MariaDB Unicode};SERVER=db1;PORT=3399"
    assert odbc_connection_string(make_url("mysql+pyodbc:///?odbc_connect=" + quote(raw, safe=""))) == raw


@pytest.mark.parametrize(
    "url, complaint",
    [
        ("mysql+pyodbc://u:{pw}@db1:3306/ts24?driver=MariaDB+Unicode&port=3307", "'port' repeats what the URL"),
        ("mysql+pyodbc://u:{pw}@db1:3306/ts24?driver=MariaDB+Unicode&PWD=other", "'PWD' repeats what the URL"),
        ("mssql+pyodbc://u:{pw}@db1/ts24?driver=X&Server=db2", "'Server' repeats what the URL"),
        ("mysql+pyodbc://u:{pw}@db1:3306/ts24?driver=MariaDB+Unicode&charset=a&CHARSET=b", "more than once"),
        ("mysql+pyodbc://u:{pw}@db1:70000/ts24?driver=MariaDB+Unicode", "port 70000 is not a TCP port"),
        ("mysql+pyodbc://u:{pw}@db1:3306/ts24", "name the ODBC driver"),
        ("mysql+pyodbc://u:{pw}@db1:3306/ts24?dsn=ts24", "a data source (DSN) names its own server and port"),
        ("mysql+pyodbc://u:{pw}@/ts24?dsn=ts24&driver=MariaDB+Unicode", "either ?driver= or ?dsn="),
        ("mysql+pyodbc://u:{pw}@db1:3306/ts24?driver=MariaDB+Unicode&socket=/run/mysqld.sock", "socket"),
        ("mysql+pyodbc://u:{pw}%20@db1:3306/ts24?driver=MariaDB+Unicode", "password begins or ends with a space"),
    ],
)
def test_a_url_the_driver_would_misread_is_refused_without_showing_the_password(url, complaint):
    password = "Zz9;secret}"
    with pytest.raises(ConfigError, match="database URL: ") as caught:
        legacy_engine(Secret(url.replace("{pw}", quote(password, safe=""))))
    assert complaint in str(caught.value)
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


# -- the identity of a server (no server needed) ----------------------------------------------------


def test_identity_compares_who_the_server_is_not_its_version():
    assessed = ServerIdentity("mariadb", "db1", 3306, "ts24", "3f1c", "10.11.6-MariaDB", {"datadir": "/var/lib/mysql/"})
    patched = ServerIdentity("mariadb", "db1", 3306, "ts24", "3f1c", "10.11.9-MariaDB", {"datadir": "/srv/mysql/"})
    other = ServerIdentity("mariadb", "db1", 3399, "ts24", "9e0a", "10.11.6-MariaDB")
    assert patched == assessed and hash(patched) == hash(assessed) and not patched.differences(assessed)
    assert other != assessed
    assert other.differences(assessed) == ["port 3399 (expected 3306)", "server_id 9e0a (expected 3f1c)"]
    assert ServerIdentity.from_dict(json.loads(json.dumps(assessed.to_dict()))) == assessed
    assert assessed.describe() == "mariadb db1:3306, database ts24, server id 3f1c, version 10.11.6-MariaDB"


# -- a second MariaDB server, private to this test session -------------------------------------------


@dataclass
class SecondMariaDB:
    port: int
    datadir: Path

    def url(self, database: str, *, user: str = "root", password: str = "") -> str:
        return (
            f"mysql+pyodbc://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"
            f"?driver={quote(MARIADB_DRIVER, safe='')}&charset=utf8mb4"
        )

    def admin(self):
        import pyodbc

        return pyodbc.connect(
            f"DRIVER={{{MARIADB_DRIVER}}};SERVER=127.0.0.1;PORT={self.port};UID=root;TCPIP=1",
            autocommit=True,
            timeout=5,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _binary(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def _missing(message: str) -> None:
    if REQUIRE_REAL_DBS:
        pytest.fail(message + " (TS24_REQUIRE_REAL_DBS=1: real-database tests are required)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def second_mariadb(tmp_path_factory) -> Iterator[SecondMariaDB]:
    """A second MariaDB server on a free port (small buffer pool), started once, stopped by its PID."""
    install, server = _binary("mariadb-install-db"), _binary("mariadbd")
    if install is None or server is None:
        _missing("mariadb-install-db or mariadbd is not installed: no second MariaDB server")
    folder = tmp_path_factory.mktemp("mariadb2")
    datadir, port = folder / "data", _free_port()
    small = ["--innodb-buffer-pool-size=8M", "--innodb-log-file-size=4M"]
    installed = subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={datadir}",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
            "--user=root",
            *small,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if installed.returncode != 0:
        _missing(f"mariadb-install-db failed: {installed.stderr.strip()[-300:]}")
    log = folder / "server.log"
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            f"--socket={folder / 's.sock'}",
            "--skip-networking=0",
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-log-bin",
            f"--pid-file={folder / 'server.pid'}",
            f"--log-error={log}",
            *small,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    instance = SecondMariaDB(port, datadir)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                instance.admin().close()
                break
            except Exception as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                    _missing(f"the second MariaDB server did not start ({type(exc).__name__}): {tail}")
                time.sleep(0.1)
        yield instance
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _sql_string(value: str) -> str:
    """A MariaDB string literal (CREATE USER takes no parameters); test passwords only."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identity(url: str) -> ServerIdentity:
    engine = legacy_engine(Secret(url))
    try:
        with engine.connect() as conn:
            return probe_server_identity(conn)
    finally:
        engine.dispose()


@pytest.mark.mariadb
def test_a_url_reaches_the_server_on_its_port_and_no_other(second_mariadb, mariadb_database):
    url = mariadb_database()
    name = make_url(url).database
    with second_mariadb.admin() as admin:
        admin.execute(f"CREATE DATABASE `{name}`")
    default = _identity(url)
    second = _identity(second_mariadb.url(name))
    assert (second.port, second.database) == (second_mariadb.port, name)
    assert Path(second.details["datadir"]).resolve() == second_mariadb.datadir.resolve()
    assert default.port != second_mariadb.port and default.database == name
    assert second != default and "server_id" in " ".join(second.differences(default))


@pytest.mark.mariadb
def test_awkward_passwords_reach_mariadb_and_never_show(second_mariadb):
    user = "ts24_awkward"
    with second_mariadb.admin() as admin:
        for password in (AWKWARD_PASSWORD, "{starts-with-a-brace", "ünïcødé;pass"):
            admin.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            admin.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY {_sql_string(password)}")
            admin.execute(f"GRANT SELECT ON mysql.* TO '{user}'@'%'")
            reached = _identity(second_mariadb.url("mysql", user=user, password=password))
            assert reached.port == second_mariadb.port
        wrong = Secret(second_mariadb.url("mysql", user=user, password=AWKWARD_PASSWORD + "-wrong"))
        engine = legacy_engine(wrong)
        with pytest.raises(LoginRefused) as caught:  # a configuration error (exit 2), never retried
            check_reachable(engine, what="legacy database", url=wrong)
        engine.dispose()
        admin.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    assert "Access denied" in str(caught.value) and "a;b}" not in str(caught.value)


@pytest.mark.mariadb
def test_a_wrong_port_is_unreachable_exit_3(tmp_path, capsys, monkeypatch):
    inventory = tmp_path / "sites.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {"sites": [{"id": "hn-01", "office": "01", "legacy": "env:TS24_T_WRONG_PORT", "cutover": "2025-07-01"}]}
        ),
        encoding="utf-8",
    )
    url = (
        f"mysql+pyodbc://root:{quote(AWKWARD_PASSWORD, safe='')}@127.0.0.1:{_free_port()}/mysql"
        f"?driver={quote(MARIADB_DRIVER, safe='')}"
    )
    monkeypatch.setenv("TS24_T_WRONG_PORT", url)
    code = main(["-i", str(inventory), "assess", "hn-01"])
    err = capsys.readouterr().err
    assert code == ExitCode.UNREACHABLE, err
    assert err.startswith("error: legacy database of site hn-01 unreachable") and len(err.strip().splitlines()) == 1
    assert "Can't connect" in err and AWKWARD_PASSWORD not in err and "a;b}" not in err


# -- a site moved to another server -----------------------------------------------------------------


def _site_folder(folder: Path, legacy_url: str) -> Path:
    recipient = generate_custodian_identity(folder / "keys" / "custodian.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    _write_secret(folder / "secrets" / "legacy.url", legacy_url)
    _write_secret(folder / "secrets" / "target.url", f"sqlite:///{folder / 'target.sqlite'}")
    inventory = folder / "sites.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "work_dir": "work",
                "backup_dir": "backups",
                "signing_key": "keys/signing.key",
                "target": "file:secrets/target.url",
                "sites": [
                    {
                        "id": "demo",
                        "office": "01",
                        "legacy": "file:secrets/legacy.url",
                        "attachments": "files",
                        "cutover": CUTOVER.isoformat(),
                        "backup_recipients": [recipient],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return inventory


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


def _demo_legacy(url: str, files: Path, seed: int) -> None:
    writer = legacy_engine(Secret(url), read_only=False)
    try:
        generate_site(writer, files, seed=seed, scale=0.05, cutover=CUTOVER)
    finally:
        writer.dispose()


def _cli(capsys, inventory: Path, *args: str, as_json: bool = True) -> tuple[int, str, str]:
    code = main(["-i", str(inventory), *(["--json"] if as_json else []), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _store(inventory: Path) -> ControlStore:
    return ControlStore(store_engine(load_inventory(inventory).control_store_url()))


@pytest.mark.mariadb
@pytest.mark.slow
def test_a_site_pointed_at_another_server_is_refused_until_re_assessed(
    tmp_path, capsys, second_mariadb, mariadb_database
):
    assessed_url = mariadb_database()
    name = make_url(assessed_url).database
    with second_mariadb.admin() as admin:  # another office's data, in a database of the same name
        admin.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    other_url = second_mariadb.url(name)
    _demo_legacy(assessed_url, tmp_path / "site" / "files", seed=42)
    _demo_legacy(other_url, tmp_path / "other-files", seed=43)
    inventory = _site_folder(tmp_path / "site", assessed_url)

    code, out, err = _cli(capsys, inventory, "assess", "demo")
    assert code == ExitCode.OK, err
    result = json.loads(out)
    assessed = ServerIdentity.from_dict(result["server"])
    assert (assessed.kind, assessed.port, assessed.database) == ("mariadb", 3306, name)
    report = Path(result["reports"]["html"])
    assert json.loads(report.with_suffix(".json").read_text())["server"] == assessed.to_dict()
    assert "Server reached" in report.read_text() and assessed.server_id in report.read_text()
    assert f"mariadb {assessed.host}:3306" in report.with_suffix(".md").read_text()
    store = _store(inventory)
    assert store.latest_run("demo", "assess").figures["server"] == assessed.to_dict()
    identity = str(tmp_path / "site" / "keys" / "custodian.age-identity")
    assert _cli(capsys, inventory, "backup", "demo")[0] == ExitCode.OK
    assert _cli(capsys, inventory, "backup", "verify", "demo", "--identity", identity)[0] == ExitCode.OK
    assert store.state("demo") == SiteState.BACKUP_VERIFIED

    # The same URL shape, another port: another server with a same-named database.
    _write_secret(tmp_path / "site" / "secrets" / "legacy.url", other_url)
    for command in ("backup", "load", "assess"):
        code, out, err = _cli(capsys, inventory, command, "demo", as_json=False)
        assert code == ExitCode.REFUSED, (command, err)
        assert len(err.strip().splitlines()) == 1 and "--server-moved" in err, err
        assert f"{assessed.host}:{second_mariadb.port}" in err and f"{assessed.host}:3306" in err, err
        assert f"port {second_mariadb.port} (expected 3306)" in err, err
    refused = [r for r in store.runs("demo") if r.outcome == "failed"]
    assert [r.stage for r in refused] == ["backup", "load", "assess"]
    assert all(r.figures["server"]["port"] == second_mariadb.port for r in refused)
    assert store.state("demo") == SiteState.BACKUP_VERIFIED and store.latest_run("demo", "load") is None

    # The database really moved: say so once, and the stages follow the new server.
    code, out, err = _cli(capsys, inventory, "assess", "demo", "--server-moved")
    assert code == ExitCode.OK, err
    moved = json.loads(out)
    assert moved["server"]["port"] == second_mariadb.port and moved["server_moved_from"]["port"] == 3306
    assert _cli(capsys, inventory, "backup", "demo")[0] == ExitCode.OK
    assert store.latest_run("demo", "backup").figures["server"]["port"] == second_mariadb.port
    store.engine.dispose()


def test_a_sqlite_legacy_file_replaced_by_a_copy_is_refused(demo_site, capsys):
    site = demo_site(scale=0.05, seed=5)
    assert _cli(capsys, site.inventory, "assess", "demo")[0] == ExitCode.OK
    legacy = site.folder / "legacy" / "demo.sqlite"
    # TS24 keeps writing until the site drains: a write changes size and time, not the file.
    writer = sqlite3.connect(legacy)
    with writer:
        writer.execute("CREATE TABLE written_after_assessment (x INTEGER)")
        writer.executemany("INSERT INTO written_after_assessment VALUES (?)", [(i,) for i in range(5000)])
    writer.close()
    code, out, err = _cli(capsys, site.inventory, "backup", "demo")
    assert code == ExitCode.OK, err
    copy = legacy.with_name("copy.sqlite")
    shutil.copy2(legacy, copy)
    os.replace(copy, legacy)
    code, out, err = _cli(capsys, site.inventory, "backup", "demo", as_json=False)
    assert code == ExitCode.REFUSED, err
    assert "refusing to backup from another legacy server" in err and "inode" in err, err
    store = _store(site.inventory)
    assert [r.outcome for r in store.runs("demo", "backup")] == ["succeeded", "failed"]
    store.engine.dispose()


def test_a_whole_odbc_string_in_the_url_never_shows_its_password():
    raw = f"DRIVER={{{MARIADB_DRIVER}}};SERVER=127.0.0.1;PORT={_free_port()};UID=root;PWD={{Very;Secret}}}}x}}"
    url = Secret("mysql+pyodbc:///?odbc_connect=" + quote(raw, safe=""))
    engine = legacy_engine(url)
    with pytest.raises(UnreachableError) as caught:
        check_reachable(engine, what="legacy database", url=url)
    engine.dispose()
    assert "unreachable at mysql+pyodbc:///?odbc_connect=" in str(caught.value)
    assert "Very" not in str(caught.value) and "Secret" not in str(caught.value)
