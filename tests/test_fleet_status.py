"""`fleet status`: every site at a glance, exact against the control store, fast for many sites.

A demo fleet of four sites at different moments of their lives: one never touched, one loaded
but waiting for a custodian's decrypting verification, one reconciling (twice, with the world
moved on in between, so it has a drain forecast), one whose backup was refused because its
legacy URL now reaches another server. Each row and total of the status is compared with what
the control store holds, read run by run; the order is the attention order; the page renders in
headless Chromium. With many sites the number of queries does not grow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_report_support import PageText, chromium_dom

from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import main
from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import ControlStore, SiteState
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.runs.app import App
from ts24_migrate.runs.fleet_page import fleet_html
from ts24_migrate.runs.fleet_status import read_fleet_status

SCALE = 0.02
ORDER = ["qn-04", "hn-01", "dn-03", "hp-02"]  # failed, waiting for a custodian, to do, draining


def _run(inventory: Path, *args: str) -> int:
    return main(["-i", str(inventory), "--json", *args])


@pytest.fixture(scope="module")
def demo_fleet(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fleet")
    identity = folder / "keys" / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(folder / "keys" / "signing.key")
    for site_id, office, seed in (("hn-01", "01", 1), ("hp-02", "31", 2), ("dn-03", "48", 3), ("qn-04", "22", 4)):
        inventory = write_demo_inventory(
            folder,
            site_id=site_id,
            office_code=office,
            seed=seed,
            scale=SCALE,
            backup_recipients=[recipient],
            signing_key=Path("keys/signing.key"),
        )
    # hn-01: migrated by the pipeline alone; its validation waits for a custodian.
    for step in (["assess", "hn-01"], ["backup", "hn-01"], ["backup", "verify", "hn-01"], ["load", "hn-01"]):
        assert _run(inventory, *step) == ExitCode.OK
    assert _run(inventory, "validate", "hn-01") == ExitCode.VERDICT_FAILED
    # hp-02: validated, reconciled, the world moved two weeks on, reconciled again.
    for step in (
        ["assess", "hp-02"],
        ["backup", "hp-02"],
        ["backup", "verify", "hp-02", "--identity", str(identity)],
        ["load", "hp-02"],
        ["validate", "hp-02"],
        ["reconcile", "run", "hp-02"],
        ["demo-advance", "hp-02", "--days", "14"],
        ["reconcile", "run", "hp-02"],
    ):
        assert _run(inventory, *step) == ExitCode.OK, step
    # qn-04: assessed, then its legacy URL points to a copy: another server, the backup refuses.
    assert _run(inventory, "assess", "qn-04") == ExitCode.OK
    copy = folder / "legacy" / "qn-04-copy.sqlite"
    shutil.copy(folder / "legacy" / "qn-04.sqlite", copy)
    (folder / "secrets" / "qn-04.legacy.url").write_text(f"sqlite:///{copy}\n", encoding="utf-8")
    assert _run(inventory, "backup", "qn-04") == ExitCode.REFUSED
    return inventory, identity


def _status_json(inventory: Path, capsys) -> dict:
    capsys.readouterr()
    assert _run(inventory, "fleet", "status") == ExitCode.OK
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_every_row_and_total_is_what_the_control_store_holds(demo_fleet, capsys):
    inventory, _ = demo_fleet
    shown = _status_json(inventory, capsys)
    store = App(inventory).control_store
    assert [s["site_id"] for s in shown["sites"]] == ORDER
    rows = {s["site_id"]: s for s in shown["sites"]}
    for site_id, row in rows.items():
        runs = store.runs(site_id)
        assert row["state"] == store.state(site_id).value
        assert row["step"] == list(SiteState).index(store.state(site_id)) + 1
        if runs:
            last = max(runs, key=lambda r: r.started_at)
            assert (row["last_run"]["stage"], row["last_run"]["outcome"], row["last_run"]["run_id"]) == (
                last.stage,
                last.outcome,
                last.run_id,
            )
        else:
            assert row["last_run"] is None
        backup, load = store.latest_run(site_id, "backup"), store.latest_run(site_id, "load")
        assert row["backed_up"] == (backup.figures["rows"] if backup else None)
        assert row["loaded"] == (load.figures["loaded"] if load else None)
        assert row["rejected"] == (load.figures["rejected"] if load else None)
        flagged = (
            sum(sum(t["flags_by_code"].values()) for t in store.table_figures(load.run_id).values()) if load else None
        )
        assert row["flagged"] == flagged
    # in flight: the latest reconciliation's figures, else the assessment's
    reconciled = store.runs("hp-02", "reconcile")
    assert len(reconciled) == 2 and rows["hp-02"]["in_flight"] == reconciled[-1].figures["in_flight"]
    assert rows["hp-02"]["forecast_drain_date"] == reconciled[-1].figures["forecast_drain_date"] is not None
    assert reconciled[-1].figures["in_flight"] < reconciled[0].figures["in_flight"]
    assert rows["hn-01"]["in_flight"] == store.latest_run("hn-01", "assess").figures["in_flight_dossiers"]
    assert rows["dn-03"]["in_flight"] is None and rows["dn-03"]["state"] == "NEW"
    # what comes next, who does it, what blocks
    assert (rows["hn-01"]["attention"], rows["hn-01"]["next"]["who"]) == ("waiting", "custodian")
    # the JSON names files from the inventory's folder, like every report: `-i sites.yaml`
    assert rows["hn-01"]["next"]["command"] == "ts24-migrate -i sites.yaml backup verify hn-01 --identity IDENTITY_FILE"
    (blocker,) = rows["hn-01"]["blockers"]
    assert (blocker["stage"], blocker["error_class"]) == ("validate", "VerificationError")
    assert "backup not verified" in blocker["message"]
    assert (rows["qn-04"]["attention"], rows["qn-04"]["next"]["who"]) == ("failed", "IT")
    (refused,) = rows["qn-04"]["blockers"]
    refusal = store.latest_run("qn-04", "backup", outcome="failed")
    assert (refused["stage"], refused["error_class"], refused["run_id"]) == ("backup", "GateRefused", refusal.run_id)
    # the recorded error without its class, named from the inventory's folder (no host path), cut at 300
    assert refusal.error.startswith("GateRefused: site qn-04: refusing to backup from another legacy server")
    assert refused["message"].startswith("site qn-04: refusing to backup from another legacy server")
    assert "database legacy/qn-04-copy.sqlite" in refused["message"] and len(refused["message"]) <= 300
    assert (rows["dn-03"]["attention"], rows["dn-03"]["next"]["command"]) == (
        "to do",
        "ts24-migrate -i sites.yaml assess dn-03",
    )
    assert (rows["hp-02"]["attention"], rows["hp-02"]["state"], rows["hp-02"]["blockers"]) == (
        "draining",
        "RECONCILING",
        [],
    )
    # totals: the rows' own figures, summed
    totals = shown["totals"]
    assert totals["sites"] == 4
    assert totals["attention"] == {
        "blocked": 0,
        "failed": 1,
        "waiting": 1,
        "to do": 1,
        "running": 0,
        "draining": 1,
        "done": 0,
    }
    assert totals["rows"]["backed_up"] == sum(store.latest_run(s, "backup").figures["rows"] for s in ("hn-01", "hp-02"))
    assert totals["rows"]["loaded"] == sum(store.latest_run(s, "load").figures["loaded"] for s in ("hn-01", "hp-02"))
    assert totals["rows"]["flagged"] == rows["hn-01"]["flagged"] + rows["hp-02"]["flagged"] > 0
    assert totals["in_flight"] == sum(rows[s]["in_flight"] for s in ("hn-01", "hp-02", "qn-04"))
    assert totals["by_state"] == {"NEW": 1, "ASSESSED": 1, "LOADED": 1, "RECONCILING": 1}
    assert totals["waiting_on"] == {"IT": 2, "custodian": 1}
    assert totals["last_forecast_drain_date"] == rows["hp-02"]["forecast_drain_date"]
    # the page and its JSON are in the work folder, named from the inventory's folder
    assert shown["page"] == str(inventory.parent / "work" / "fleet" / "fleet-status.html")
    written = json.loads((inventory.parent / "work" / "fleet" / "fleet-status.json").read_text(encoding="utf-8"))
    assert [s["site_id"] for s in written["sites"]] == ORDER and str(inventory.parent) not in json.dumps(written)


@pytest.mark.slow
def test_the_terminal_table_lists_sites_in_attention_order_with_what_to_run(demo_fleet, capsys):
    inventory, _ = demo_fleet
    capsys.readouterr()
    assert main(["-i", str(inventory), "fleet", "status", "--no-page"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith("fleet: 4 sites as of ")
    assert "failed 1, waiting 1, to do 1, running 0, draining 1" in out
    starts = [out.index(f" {site_id} ") for site_id in ORDER]
    assert starts == sorted(starts)
    assert f"run: ts24-migrate -i {inventory} backup verify hn-01 --identity IDENTITY_FILE" in out
    assert "blocked by GateRefused in backup: site qn-04: refusing to backup from another legacy server" in out
    assert "page:" not in out


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium(demo_fleet, tmp_path, capsys):
    inventory, _ = demo_fleet
    shown = _status_json(inventory, capsys)
    dom = chromium_dom(Path(shown["page"]), tmp_path / "chromium", offline=True)
    page = PageText()
    page.feed(dom)
    sites = page.tables["site-list"]
    assert [row[1].split()[0] for row in sites[1:]] == ORDER  # header row first, then attention order
    assert [row[0] for row in sites[1:]] == ["failed", "waiting", "to do", "draining"]
    by_site = {row[1].split()[0]: row for row in sites[1:]}
    assert by_site["hp-02"][9] == f"{shown['sites'][3]['in_flight']:,}"
    assert by_site["hp-02"][10] == shown["sites"][3]["forecast_drain_date"]
    assert "GateRefused in backup" in by_site["qn-04"][13] and "custodian" in by_site["hn-01"][12]
    assert page.texts["total-failed"].split()[0] == "1"
    assert page.texts["total-loaded"] == f"{shown['totals']['rows']['loaded']:,}"
    assert "<script" not in dom and str(inventory.parent) not in dom


def test_bad_text_in_a_recorded_error_is_escaped_on_the_page(tmp_path):
    path = tmp_path / "sites.yaml"
    path.write_text('sites: [{id: x-1, office: "01", legacy: "env:X", cutover: 2025-07-01}]\n', encoding="utf-8")
    store = ControlStore(store_engine(Secret(f"sqlite:///{tmp_path / 'control.sqlite'}")))
    run = store.start_run("x-1", "assess")
    store.finish_run(run, "failed", error="UnreachableError: <script>alert(1)</script> & more")
    html = fleet_html(read_fleet_status(store, load_inventory(path)))
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


# -- fast for many sites: one query per table --------------------------------------------------


def _many_sites(folder: Path, url: str, count: int) -> tuple[ControlStore, Path]:
    """`count` sites in every state of a migration, with runs of every outcome, straight into the store."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sites.yaml"
    path.write_text(
        "sites:\n"
        + "".join(
            f'  - {{id: s-{i:03d}, office: "01", legacy: "env:X", cutover: 2025-07-01, legacy_server: srv-{i % 7}}}\n'
            for i in range(count)
        ),
        encoding="utf-8",
    )
    store = ControlStore(store_engine(Secret(url)))
    life = list(SiteState)[:9]
    for i in range(count):
        site = f"s-{i:03d}"
        for stage, figures in (
            ("assess", {"in_flight_dossiers": i}),
            ("backup", {"rows": 100 + i}),
            ("load", {"loaded": 90 + i, "rejected": 10}),
        ):
            run = store.start_run(site, stage)
            store.record_table(site, run, "HO_SO", {"rows": 5, "flags_by_code": {"F1": 1, "F2": i % 3}})
            store.finish_run(
                run,
                "failed" if (stage == "load" and i % 5 == 0) else "succeeded",
                figures,
                error="UnreachableError: down" if i % 5 == 0 else None,
            )
        if i % 4 == 2:
            store.start_run(site, "check")  # still running (this very process)
        for state in life[1 : i % len(life) + 1]:  # along its life: the store refuses a skip
            store.set_state(site, state)
    return store, path


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_number_of_queries_does_not_grow_with_the_sites(tmp_path, backend, request):
    counts, statuses = {}, {}
    for count in (4, 40):
        url = (
            request.getfixturevalue("pg_database")()
            if backend == "postgres"
            else f"sqlite:///{tmp_path / f'control-{count}.sqlite'}"
        )
        store, path = _many_sites(tmp_path / f"n{count}", url, count)
        inventory = load_inventory(path)
        statements: list[str] = []

        def counted(_conn, _cursor, statement, *_args, statements=statements):
            statements.append(statement)

        sa.event.listen(store.engine, "before_cursor_execute", counted)
        try:
            statuses[count] = read_fleet_status(store, inventory)
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", counted)
        counts[count] = len(statements)
    assert counts[4] == counts[40] == 3, counts  # states, latest runs, the loads' table figures
    many = statuses[40]
    assert len(many.sites) == 40
    site = next(s for s in many.sites if s.site_id == "s-007")
    assert (site.backed_up, site.loaded, site.rejected, site.flagged, site.in_flight) == (107, 97, 10, 2, 7)
    failed = next(s for s in many.sites if s.site_id == "s-005")
    assert failed.blockers[0].error_class == "UnreachableError" and failed.attention.label == "failed"
    assert next(s for s in many.sites if s.site_id == "s-006").running == "check"
