"""Legacy tables and columns whose names need quoting, through every stage (issue 13).

Servers configured by hand over many years name tables `Bảng "tạm" 2019`,
`select` or `2024_import.Mixed Case`, and give mapped tables columns of their
own. The demo generator's `awkward_names` option plants such names (see
ts24_migrate/demo/awkward_names.py); here a whole site goes through the command
line (assess, backup, verify with the custodian's identity, load, validate,
report, reconcile, restore) on SQLite and on MariaDB over ODBC, and every
statement run on the legacy database is compiled for SQL Server to show that
each name comes out bracket-quoted.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.dialects import mssql

from extract.discovery import discover_tables
from extract.reader import iter_table_rows
from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.file_names import object_file_stem, object_file_stems
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.demo import awkward_names as awkward
from ts24_migrate.demo import generate_site
from ts24_migrate.runs.app import App

SITE = "demo"
AWKWARD_TABLES = [awkward.IMPORT_TABLE, awkward.CONFIG_TABLE, awkward.NOTES_TABLE, awkward.SHADOW_TABLE]
AWKWARD_COLUMNS = sorted(
    {
        *awkward.IMPORT_COLUMNS.values(),
        *awkward.CONFIG_COLUMNS.values(),
        *awkward.EXTRA_MAPPED_COLUMNS.values(),
        "Số TT",
        "it's",
        "[ghi chú]",
        "giờ:phút",
        "đơn vị",
        "số lượng?",
    }
)
LEGACY_ENV = "TS24_AWKWARD_LEGACY_URL"
SCRATCH_ENV = "TS24_AWKWARD_SCRATCH_URL"


def cli(inventory: Path | None, *args: str) -> dict[str, Any]:
    """Run one command in-process with --json; it must succeed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*(["-i", str(inventory)] if inventory else []), "--json", *args])
    assert code == 0, f"{args}: exit {code}: {err.getvalue()[-2000:]}"
    return json.loads(out.getvalue())


def _keys(folder: Path) -> tuple[Path, str]:
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    return identity, recipient


def _secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


def site_on_url(folder: Path, legacy_url: str, monkeypatch) -> tuple[Path, Path, dict]:
    """An awkward-names site in another database, made by `demo-data --legacy-url-env ... --awkward-names`;
    returns (inventory, identity, truth)."""
    identity, recipient = _keys(folder)
    monkeypatch.setenv(LEGACY_ENV, legacy_url)
    cli(
        None,
        "demo-data",
        "--legacy-url-env",
        LEGACY_ENV,
        "--attachments",
        str(folder / "files"),
        "--target-sqlite",
        str(folder / "target.sqlite"),
        "--scale",
        "0.05",
        "--truth",
        str(folder / "truth.json"),
        "--awkward-names",
    )
    _secret(folder / "secrets" / "legacy.url", legacy_url)
    _secret(folder / "secrets" / "target.url", f"sqlite:///{folder / 'target.sqlite'}")
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
                        "id": SITE,
                        "office": "01",
                        "legacy": "file:secrets/legacy.url",
                        "attachments": "files",
                        "cutover": "2025-07-01",
                        "backup_recipients": [recipient],
                    }
                ],
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return inventory, identity, json.loads((folder / "truth.json").read_text(encoding="utf-8"))


def migrate_every_stage(inventory: Path, identity: Path, truth: dict, scratch: list[str]) -> None:
    """assess, backup, verify, load, validate, report, reconcile (twice, the world moved on between),
    restore of the backup and of the chain; every figure checked against the generator's truth."""
    tables = truth["tables"]
    assert set(AWKWARD_TABLES) <= set(tables)

    assessed = cli(inventory, "assess", SITE)
    assert {name: t["rows"] for name, t in assessed["tables"].items()} == {n: t["rows"] for n, t in tables.items()}
    written = json.loads(Path(assessed["reports"]["json"]).read_text(encoding="utf-8"))
    for name, planted in tables.items():
        assert [c["name"] for c in written["tables"][name]["columns"]] == planted["columns"], name
        assert assessed["tables"][name]["primary_key"] == planted["primary_key"], name
    assert written["summary"]["columns_not_loaded"] == assessed["summary"]["columns_not_loaded"]
    assert assessed["summary"]["columns_not_loaded"] == {t: [c] for t, c in awkward.EXTRA_MAPPED_COLUMNS.items()}
    assert {awkward.IMPORT_TABLE, awkward.SHADOW_TABLE} <= set(assessed["summary"]["tables_without_primary_key"])

    # Small chunks: keyed tables are read page after page, by key (and by the reconciliation below).
    backup = cli(inventory, "backup", SITE, "--chunk-rows", "10")
    manifest = json.loads((Path(backup["backup_dir"]) / "manifest.json").read_text(encoding="utf-8"))
    assert {name: t["rows"] for name, t in manifest["tables"].items()} == {n: t["rows"] for n, t in tables.items()}
    folders = {name: {p["path"].split("/")[1] for p in t["parts"]} for name, t in manifest["tables"].items()}
    assert all(len(f) == 1 for f in folders.values()) and len(set().union(*folders.values())) == len(folders)
    assert len(manifest["tables"][awkward.CONFIG_TABLE]["parts"]) > 1
    for name in AWKWARD_TABLES:
        stored = [column for column, *_ in next(iter(manifest["tables"][name]["schemas"].values()))]
        assert stored == tables[name]["columns"], name
    verified = cli(inventory, "backup", "verify", SITE, "--identity", str(identity))
    assert verified["ok"] and verified["rows_checked"] == sum(t["rows"] for t in tables.values())

    loaded = cli(inventory, "load", SITE, "--chunk-rows", "100")
    assert loaded["accounting_ok"]
    for name, figures in loaded["tables"].items():
        assert figures["source_rows"] == tables[name]["rows"] == figures["loaded"] + figures["rejected"], name
        assert figures["loaded"] > 0, name

    validated = cli(inventory, "validate", SITE)
    assert validated["passed"], validated["reasons"]
    assert validated["accounting"]["ok"] and validated["parity"]["exact"]
    assert Path(validated["reports"]["html"]).is_file() and Path(validated["reports"]["json"]).is_file()
    report = json.loads(Path(validated["reports"]["json"]).read_text(encoding="utf-8"))
    accounting = {row["table"]: row for row in report["accounting"]["tables"]}
    for name in AWKWARD_TABLES:
        assert (
            accounting[name]["ok"]
            and accounting[name]["source"] == accounting[name]["backed_up"] == tables[name]["rows"]
        ), name
    profile = report["expectations"]["legacy"]
    for name in AWKWARD_TABLES:
        entry = profile["tables"][name]
        assert entry["rows"] == tables[name]["rows"] and entry["failed"] == 0, (name, entry)
        # Its Data Docs page is named by a file-safe stem of the name, inside the Data Docs folder.
        stem = entry["data_docs_suite"].removeprefix("legacy.")
        assert re.fullmatch(r"[A-Za-z0-9_-]+", stem) and stem.startswith(object_file_stem(name)[:3]), stem
        docs = Path(validated["reports"]["json"]).parent / profile["data_docs"]  # relative to the report
        assert (docs.parent / "expectations" / "legacy" / f"{stem}.html").is_file(), stem
    assert any("not in the TS24 schema" in note for note in profile["notes"])
    # Every expectation of the profile could be evaluated (a failed one describes dirty data).
    assert not [(name, e) for name, t in profile["tables"].items() for e in t["failed_expectations"] if e["error"]]
    rebuilt = cli(inventory, "report", SITE)
    assert rebuilt["passed"] and rebuilt["run_id"] == validated["run_id"]
    assert App(inventory).control_store.state(SITE) is SiteState.VALIDATED

    baseline = cli(inventory, "reconcile", "run", SITE, "--chunk-rows", "5")
    assert baseline["chain_ok"]
    cli(inventory, "demo-advance", SITE, "--days", "7")
    delta = cli(inventory, "reconcile", "run", SITE, "--chunk-rows", "5", "--sweep")
    assert delta["chain_ok"] and delta["rows_changed"] > 0 and delta["drift"] == 0
    assert cli(inventory, "reconcile", "verify-chain", SITE)["ok"]

    restored = cli(
        inventory,
        "backup",
        "restore",
        SITE,
        "--identity",
        str(identity),
        *scratch[0:2],
        "--files",
        str(inventory.parent / "restored-files"),
        "--no-live",
    )
    assert restored["ok"], restored["problems"]
    assert {n: t["fingerprint"] for n, t in restored["tables"].items()} == {
        n: t["fingerprint"] for n, t in manifest["tables"].items()
    }
    chain = cli(
        inventory,
        "reconcile",
        "restore-chain",
        SITE,
        "--identity",
        str(identity),
        *scratch[2:4],
        "--files",
        str(inventory.parent / "chain-files"),
    )
    assert chain["ok"], chain["problems"]
    for name in AWKWARD_TABLES:
        assert chain["tables"][name]["matches_live"] is True, name


class LegacyStatements:
    """Every SQL statement run on the legacy database while it is installed (engine event)."""

    def __init__(self, is_legacy):
        self.is_legacy, self.statements = is_legacy, []

    def __call__(self, conn, clauseelement, multiparams, params, execution_options) -> None:
        # Text statements are written for the dialect they run on already; constructs are what a
        # dialect compiles, so they are what must come out quoted on SQL Server too.
        if (
            self.is_legacy(conn.engine.url)
            and isinstance(clauseelement, sa.sql.ClauseElement)
            and not isinstance(clauseelement, sa.sql.expression.TextClause)
        ):
            self.statements.append(clauseelement)

    def __enter__(self) -> LegacyStatements:
        sa.event.listen(sa.engine.Engine, "before_execute", self)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(sa.engine.Engine, "before_execute", self)


_BRACKETED = re.compile(r"\[(?:[^\]]|\]\])*\]")


def bracketed(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def assert_quoted_for_sql_server(statement: sa.sql.ClauseElement) -> str:
    """Compile for SQL Server: every awkward name present is bracket-quoted, none appears bare."""
    try:
        sql = str(statement.compile(dialect=mssql.dialect()))
    except sa.exc.CompileError as exc:
        # The profile's format checks: built only for dialects with regular expressions (not SQL
        # Server), and only on the mapped tables' own columns.
        assert "regular expressions" in str(exc), exc
        assert not any(name in str(statement) for name in [*AWKWARD_TABLES, *AWKWARD_COLUMNS])
        return ""
    bare = _BRACKETED.sub("[]", sql)
    for fragment in (
        "Bảng",
        "tạm",
        "it's",
        "Mixed Case",
        "a.b",
        "2024_import",
        "ghi chú",
        "giờ:phút",
        "Ghi chú",
        "Mức lương",
        "Số TT",
        "`x`",
        "đơn vị",
        "số lượng?",
    ):
        assert fragment not in bare, (fragment, sql)
    # Keywords come out upper-case: a lower-case `select` or `order` outside brackets is a bare name.
    assert not re.search(r"\b(select|order)\b", bare), sql
    return sql


@pytest.mark.slow
def test_every_stage_on_sqlite_and_each_legacy_statement_quoted_for_sql_server(demo_site, tmp_path):
    site = demo_site(awkward_names=True)
    legacy_file = site.folder / "legacy" / f"{site.site_id}.sqlite"
    with LegacyStatements(lambda url: str(legacy_file) in (url.database or "")) as captured:
        migrate_every_stage(
            site.inventory,
            site.identity,
            site.truth,
            ["--into-sqlite", str(tmp_path / "restored.sqlite"), "--into-sqlite", str(tmp_path / "chain.sqlite")],
        )

    compiled = [assert_quoted_for_sql_server(s) for s in captured.statements]
    # The statements that touch the awkward tables: counts, chunked reads in key order, key ranges
    # (keyset pages after the last key, one- and two-column keys), the profile's count, fingerprints.
    config, notes = bracketed(awkward.CONFIG_TABLE), bracketed(awkward.NOTES_TABLE)
    quoted_import = bracketed(awkward.IMPORT_TABLE)
    assert any(f"FROM {quoted_import}" in s and "count(*)" in s for s in compiled)
    assert any(f"FROM {quoted_import}" in s and bracketed(awkward.IMPORT_COLUMNS["NGUOI_NHAP"]) in s for s in compiled)
    mixed, dotted = bracketed("Mixed Case"), bracketed("a.b")
    assert any(f"FROM {config}" in s and f"ORDER BY {config}.{mixed}, {config}.{dotted}" in s for s in compiled)
    assert any(
        f"FROM {config}" in s and f"WHERE {config}.{mixed} > " in s and f"AND {config}.{dotted} > " in s
        for s in compiled
    )
    assert any(f"FROM {notes}" in s and f"WHERE {notes}.{bracketed('Số TT')} > " in s for s in compiled)
    assert any(bracketed("[ghi chú]") == "[[ghi chú]]]" and "[[ghi chú]]]" in s for s in compiled)
    # Great Expectations' own queries of the legacy profile (its asset check and its row count).
    assert any(s.startswith("SELECT TOP") and f" 1 \nFROM {config}" in s for s in compiled)
    assert any("[table.row_count]" in s and f"FROM {bracketed(awkward.SHADOW_TABLE)}" in s for s in compiled)
    assert any(f"{bracketed('HO_SO')}.{bracketed(awkward.EXTRA_MAPPED_COLUMNS['HO_SO'])}" in s for s in compiled)


@pytest.mark.mariadb
@pytest.mark.postgres
@pytest.mark.slow
def test_every_stage_on_mariadb_over_odbc(tmp_path, mariadb_database, pg_database, monkeypatch):
    inventory, identity, truth = site_on_url(tmp_path / "site", mariadb_database(), monkeypatch)
    # MariaDB hands back a column `Giá trị ``x``` with its backticks doubled unless discovery undoes it.
    assert awkward.CONFIG_COLUMNS["GIA_TRI"] in truth["tables"][awkward.CONFIG_TABLE]["columns"]
    # The backup is restored into PostgreSQL (whose driver takes '%' for a parameter: `Mức lương 100%`).
    monkeypatch.setenv(SCRATCH_ENV, pg_database())
    migrate_every_stage(
        inventory, identity, truth, ["--into-url-env", SCRATCH_ENV, "--into-sqlite", str(tmp_path / "chain.sqlite")]
    )


@pytest.mark.prefect
@pytest.mark.slow
def test_migrate_command_runs_the_flow_on_awkward_names(prefect_server, demo_site):
    site = demo_site(awkward_names=True, seed=13)
    result = cli(site.inventory, "migrate", site.site_id, "--identity", str(site.identity))
    assert result["validate"]["passed"] is True, result["validate"]["reasons"]
    store = App(site.inventory).control_store
    assert store.state(site.site_id) is SiteState.VALIDATED
    backed_up = store.table_figures(store.latest_run(site.site_id, "backup").run_id)
    assert {name: f["rows"] for name, f in backed_up.items()} == {
        name: t["rows"] for name, t in site.truth["tables"].items()
    }


def test_the_generator_writes_the_same_rows_under_awkward_names(tmp_path):
    plain_engine = sa.create_engine(f"sqlite:///{tmp_path / 'plain.sqlite'}")
    odd_engine = sa.create_engine(f"sqlite:///{tmp_path / 'odd.sqlite'}")
    plain = generate_site(plain_engine, tmp_path / "plain-files", scale=0.05)
    odd = generate_site(odd_engine, tmp_path / "odd-files", scale=0.05, awkward_names=True)
    assert odd.awkward_names and not plain.awkward_names
    renamed = {"IMPORT_TAM": awkward.IMPORT_TABLE, "TS24_CAU_HINH": awkward.CONFIG_TABLE}
    for old, new in renamed.items():
        assert odd.tables[new]["rows"] == plain.tables[old]["rows"]
        with plain_engine.connect() as a, odd_engine.connect() as b:
            assert sorted(
                map(tuple, a.execute(sa.select(sa.table(old, *[sa.column(c) for c in plain.tables[old]["columns"]])))),
                key=repr,
            ) == sorted(
                map(tuple, b.execute(sa.select(sa.table(new, *[sa.column(c) for c in odd.tables[new]["columns"]])))),
                key=repr,
            )
    assert odd.tables[awkward.NOTES_TABLE]["rows"] >= 5 and odd.tables[awkward.NOTES_TABLE]["primary_key"] == ["Số TT"]
    assert not odd.tables[awkward.IMPORT_TABLE]["primary_key"]
    assert odd.tables[awkward.CONFIG_TABLE]["primary_key"] == ["Mixed Case", "a.b"]
    for table, column in awkward.EXTRA_MAPPED_COLUMNS.items():
        assert odd.tables[table]["columns"][-1] == column and odd.tables[table]["rows"] == plain.tables[table]["rows"]
    # The mapped tables' own columns hold the same rows; the extra columns have values on some rows.
    found = {t.name: t for t in discover_tables(odd_engine)}
    with odd_engine.connect() as conn:
        dossiers = found["HO_SO"].table
        extra = dossiers.c[awkward.EXTRA_MAPPED_COLUMNS["HO_SO"]]
        filled = conn.execute(sa.select(sa.func.count()).where(extra.is_not(None))).scalar_one()
    assert 0 < filled < odd.tables["HO_SO"]["rows"]
    assert {d["table"] for d in odd.defects} - {d["table"] for d in plain.defects} == {awkward.IMPORT_TABLE}
    plain_engine.dispose()
    odd_engine.dispose()


@pytest.mark.parametrize(
    "names",
    [
        ["Mixed", "MIXED", "mixed"],  # differ only in case: apart also on a case-insensitive file system
        ["a.b", "a_b", "a b", "a/b", "a\\b", "a:b"],  # differ only in special characters
        ["..", ".", "../../etc", "/abs", "", "@files", "CON", "nul"],  # would escape, hide or be refused
        ['Bảng "tạm" 2019', 'Bang "tam" 2019', "Bảng “tạm” 2019"],  # differ only in marks or quotes
    ],
)
def test_file_stems_stay_in_their_folder_and_apart(names):
    stems = [object_file_stem(name) for name in names]
    assert len({s.casefold() for s in stems}) == len(names)
    for stem in stems:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", stem), stem
        assert stem.upper() not in ("CON", "NUL", "PRN", "AUX")
    assert object_file_stem("HO_SO") == "HO_SO" and object_file_stem("HT_NHAT_KY") == "HT_NHAT_KY"
    # Known together (one Data Docs site), readable names stay as they are unless they clash by case.
    together = object_file_stems([*names, "units", "HO_SO"])
    assert together["units"] == "units" and together["HO_SO"] == "HO_SO"
    assert len({s.casefold() for s in together.values()}) == len(together)
    for stem in together.values():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", stem) and stem.upper() not in ("CON", "NUL"), stem


def test_gx_sample_queries_and_row_checks_are_bracket_quoted_for_sql_server():
    from validation.gx_runner import _sample_query
    from validation.sql_checks import references

    engine = sa.create_engine("mssql+pyodbc://")  # never connects: only its dialect compiles
    for name in (awkward.IMPORT_TABLE, awkward.CONFIG_TABLE, awkward.NOTES_TABLE):
        query = _sample_query(engine, name, 5)
        assert query == f"SELECT TOP 5 * \nFROM {bracketed(name)}", query
    # A name GX's text() could misread (':b' is a bound parameter there) is profiled whole instead.
    assert _sample_query(engine, "t :b", 5) is None and _sample_query(engine, awkward.SHADOW_TABLE, 5) is None
    parent = sa.Table("select", sa.MetaData(), sa.Column("a.b", sa.String(10)))
    check = references(engine, "it's", parent.c["a.b"], "orphans")
    assert check.unexpected_rows_query == (
        "SELECT * FROM {batch} WHERE [it's] IS NOT NULL AND ([it's] NOT IN "
        "(SELECT [select].[a.b] \nFROM [select] \nWHERE [select].[a.b] IS NOT NULL))"
    )


@pytest.mark.mariadb
def test_discovery_on_mariadb_keeps_every_name_as_the_server_holds_it(mariadb_database):
    """Backticks in column names (key columns too) come back single, as the server holds them, and a
    table whose name starts with `sqlite_` is a table like any other outside SQLite."""
    writable = sa.create_engine(mariadb_database())
    metadata = sa.MetaData()
    odd = sa.Table(
        "t`q",
        metadata,
        sa.Column("k`1", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("x``y", sa.Unicode(20)),
        sa.Column("select", sa.Integer),
    )
    sa.Table("sqlite_import", metadata, sa.Column("a", sa.Integer))
    metadata.create_all(writable)
    with writable.begin() as conn:
        conn.execute(odd.insert(), [{"k`1": 1, "x``y": "a", "select": 2}, {"k`1": 2, "x``y": "b", "select": 3}])
    try:
        found = {t.name: t for t in discover_tables(writable)}
        assert set(found) == {"t`q", "sqlite_import"}
        table = found["t`q"]
        assert table.column_names == ("k`1", "x``y", "select") and table.primary_key == ("k`1",)
        with writable.connect() as conn:
            pages = list(iter_table_rows(conn, table, chunk_rows=1))
        assert pages == [[(1, "a", 2)], [(2, "b", 3)]]
    finally:
        writable.dispose()
