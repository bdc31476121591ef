"""Kill anywhere: every stage SIGKILLed (its whole process group) at points spread over its work, run
again to completion, and the site ends exactly where an uninterrupted run of the same site ends.

Two copies of one demo site (same seed) go through assess, backup, verify, load, validate,
reconcile and purge (prepare, then execute). The reference copy runs each stage once, in a thread
of its own ahead of the other copy (so both use the machine's two cores); the killed copy runs each
stage as a real `python -m ts24_migrate --json ...` process in its own session, kills the session
at each of the stage's kill points (the process is started again for the next point), then runs the
same command to completion. Kill points come from a seeded RNG, one in each slice of the stage's work:

- stages with durable progress (backup parts written, load chunks in the load ledger, purge journal
  records) are killed when that progress reaches a threshold between 1 and the reference's total;
- the others (assess, verify, validate, reconcile, purge prepare) when the process has used a random
  fraction of the CPU time the reference used between its `started` event and its end.

Then the killed copy must equal the reference: the new system's tables (business and bookkeeping,
run ids and times aside), the backup chain's fingerprints and files, the site's state, and as many
succeeded runs per stage (plus one per kill that came after the run's last record). On its own:
every run a kill cut short is abandoned in the control store and in the ledger, no run is left
running, the ledger verifies, the backup verifies with the custodian's identity, no temporary file
is left in the site's folders and no process of any killed session.

Found by it: a purge prepare killed during its restore drill left the drill's private scratch
(decrypted legacy data) in the work folder, past the purge and its certificate; the next prepare now
shreds it (runs.purge._shred_abandoned_drills). A reconcile killed between signing its increment and
chaining it left a signed increment outside the chain; the next run now deletes it
(backups.increment.discard_unchained). Both have a deterministic test of their own.

Run alone: `pytest -m kill_anywhere`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from test_load_support import snapshot
from test_purge_support import copy_site, run_cli

from audit import read_events, verify_ledger
from backups.chain import chain_fingerprints, load_chain
from load import bookkeeping as bk
from reconcile.state import ReconcileState
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.commands.demo_purge import APPROVER_KEY, OPERATOR_KEY, add_demo_purge_people
from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import ControlStore, SiteState
from ts24_migrate.core.db import legacy_engine, store_engine
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.demo import generate_site

pytestmark = [pytest.mark.kill_anywhere, pytest.mark.slow, pytest.mark.timeout(900)]

SITE = "demo"
SEED = 7  # of the demo site; the generator makes the same site for the same seed
SCALE = 0.02  # a tiny site (some 40 dossiers, 50 files): the kills cost start-ups, not rows
CHUNK = "10"  # rows per backup part, load chunk and increment part: many durable steps to land in
CUTOVER = dt.date(2025, 7, 1)
WORK_SLICE = (0.05, 0.5)  # kill points fall in this part of a stage's work (the reference's CPU time); not later:
# the same work takes some 30% less CPU in one run than in another on a busy machine, and a kill point
# past the end of the work is missed
POLL = 0.01  # seconds between two looks at a stage's progress (the looks take CPU from the stage)
STOP_SECONDS = 120  # a killed stage's re-run, or the poll for a kill point, on a busy CI machine


# -- the site -----------------------------------------------------------------------------------
@dataclass
class Site:
    folder: Path
    inventory: Path

    @property
    def identity(self) -> Path:
        return self.folder / "keys" / "custodian.age-identity"

    @property
    def ledger(self) -> Path:
        return self.folder / "work" / "ledger" / f"{SITE}.jsonl"

    @property
    def backups(self) -> Path:
        return self.folder / "backups" / SITE

    def store(self) -> ControlStore:
        return ControlStore(store_engine(load_inventory(self.inventory).control_store_url()))

    def target(self) -> sa.Engine:
        return store_engine(load_inventory(self.inventory).target_url())


def _sqlite_sites(root: Path) -> tuple[Site, Site]:
    """One demo site made once, copied twice (its secrets pointing at each copy)."""
    made = root / "made"
    recipient = generate_custodian_identity(made / "keys" / "custodian.age-identity")
    generate_signing_key(made / "keys" / "signing.key")
    inventory = write_demo_inventory(
        made, seed=SEED, scale=SCALE, backup_recipients=[recipient], signing_key=Path("keys/signing.key")
    )
    add_demo_purge_people(made, inventory)
    copies = []
    for name in ("reference", "killed"):
        copy = copy_site(inventory, root / name, reassess=False)
        copies.append(Site(copy.folder, copy.inventory))
    return copies[0], copies[1]


def _secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


def _server_site(folder: Path, legacy_url: str, target_url: str, control_url: str, account: str) -> Site:
    """The production-like pair: the legacy on MariaDB over ODBC, the new system and the control
    store on PostgreSQL. Generated with the same seed as its twin, so the two are the same site."""
    recipient = generate_custodian_identity(folder / "keys" / "custodian.age-identity")
    generate_signing_key(folder / "keys" / "signing.key")
    writer, target = legacy_engine(Secret(legacy_url), read_only=False), store_engine(Secret(target_url))
    try:
        generate_site(writer, folder / "files", target=target, seed=SEED, scale=SCALE, cutover=CUTOVER)
    finally:
        writer.dispose()
        target.dispose()
    for name, url in (("legacy", legacy_url), ("target", target_url), ("control", control_url)):
        _secret(folder / "secrets" / f"{name}.url", url)
    inventory = folder / "sites.yaml"
    site = {
        "id": SITE,
        "office": "01",
        "legacy": "file:secrets/legacy.url",
        "attachments": "files",
        "cutover": CUTOVER.isoformat(),
        "backup_recipients": [recipient],
        "purge": {"application_accounts": [account]},
    }
    document = {
        "version": 1,
        "work_dir": "work",
        "backup_dir": "backups",
        "signing_key": "keys/signing.key",
        "target": "file:secrets/target.url",
        "control_store": "file:secrets/control.url",
        "sites": [site],
    }
    inventory.write_text(yaml.safe_dump(document), encoding="utf-8")
    add_demo_purge_people(folder, inventory)
    return Site(folder, inventory)


# -- what a stage's progress looks like from outside ----------------------------------------------
_LEDGER_READS: dict[Path, tuple[int, str]] = {}  # ledger -> (size, text): read again only once it grew


def _started(site: Site, ledger_stage: str) -> int:
    try:
        size = site.ledger.stat().st_size
    except FileNotFoundError:
        return 0
    if _LEDGER_READS.get(site.ledger, (-1, ""))[0] != size:
        _LEDGER_READS[site.ledger] = (size, site.ledger.read_text(encoding="utf-8"))
    return _LEDGER_READS[site.ledger][1].count(f'"stage":"{ledger_stage}","event":"started"')


def _backup_parts(site: Site, _context: dict) -> int:
    return len(list(site.backups.glob("*/parts/*/*.age")))  # full backups; increments are one level deeper


def _load_chunks(site: Site, context: dict) -> int:
    engine = context.setdefault("target", site.target())
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(bk.load_ledger.name):
            return 0
        return conn.execute(sa.select(sa.func.count()).select_from(bk.load_ledger)).scalar_one()


def _journal_records(_site: Site, context: dict) -> int:
    try:
        return (Path(context["plan"]).parent / "journal.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@dataclass
class Stage:
    name: str  # the name for the step
    ledger_stage: str  # its stage in the ledger and the control store
    args: Callable[[Site, dict], list[str]]
    progress: Callable[[Site, dict], int] | None = None  # durable progress, for kill points by progress


STAGES = [
    Stage("assess", "assess", lambda s, c: ["assess", SITE]),
    Stage("backup", "backup", lambda s, c: ["backup", SITE, "--chunk-rows", CHUNK], _backup_parts),
    Stage("verify", "verify-backup", lambda s, c: ["backup", "verify", SITE, "--identity", str(s.identity)]),
    Stage("load", "load", lambda s, c: ["load", SITE, "--chunk-rows", CHUNK], _load_chunks),
    Stage("validate", "validate", lambda s, c: ["validate", SITE]),
    # The run after the world moved on and drained: an increment to chain and rows to carry over.
    Stage("reconcile", "reconcile", lambda s, c: ["reconcile", "run", SITE, "--chunk-rows", CHUNK]),
    Stage("purge prepare", "purge-prepare", lambda s, c: ["purge", "prepare", SITE, "--identity", str(s.identity)]),
    Stage(
        "purge execute",
        "purge",
        lambda s, c: ["purge", "execute", SITE, "--plan", c["plan"], "--approval", c["approval"]],
        _journal_records,
    ),
]


def _before(site: Site, stage: str, context: dict) -> None:
    """The steps between killed stages, run uninterrupted on both copies alike."""
    if stage == "reconcile":
        _ok(site, "reconcile", "run", SITE, "--chunk-rows", CHUNK)  # the baseline
        _ok(site, "demo-advance", SITE, "--days", "4", "--drain")
    if stage == "purge execute":
        plan = _ok(site, "purge", "plan", SITE, "--key", str(site.folder / OPERATOR_KEY))
        approval = _ok(site, "purge", "approve", plan["plan"], "--key", str(site.folder / APPROVER_KEY))
        context.update(plan=plan["plan"], approval=approval["approval"])


def _ok(site: Site, *args: str) -> dict:
    """Run a command to success: in this process from the main thread (no start-up cost), as a
    process of its own from the reference's thread (a command's output is this process's stdout)."""
    if threading.current_thread() is threading.main_thread():
        code, out, err = run_cli(site.inventory, *args)
    else:
        done = subprocess.run(_cli(site, list(args)), capture_output=True, text=True, timeout=600)
        code, out, err = done.returncode, done.stdout, done.stderr
        out = json.loads(out) if code == ExitCode.OK else out
    assert code == ExitCode.OK, f"{args}: {err[-2000:]}"
    return out


_END_EVENTS = ("succeeded", "failed", "abandoned")


def _events(site: Site) -> list:
    events: list = []
    if not site.ledger.exists():  # before the site's first run
        return events
    for line, event, problem in read_events(site.ledger):
        assert event is not None, f"ledger line {line}: {problem}"
        events.append(event)
    return events


def _cpu_seconds(pid: int) -> tuple[float, bool] | None:
    """CPU time a process has used so far (user + system), and whether it has ended (a zombie not yet
    waited for: /proc still holds its final figures); None once it is gone. The kill points of the
    stages without durable progress are set on this clock, not on the wall clock: on a machine
    shared with other work the same work takes about the same CPU time, and any wall time at all."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), fields[0] == "Z"


def _measured_run(site: Site, stage: Stage, context: dict) -> float:
    """Run the stage to success in a process; returns the CPU seconds it used after its `started` event."""
    started = _started(site, stage.ledger_stage)
    at_start = None
    log = site.folder.parent / f"reference-{stage.ledger_stage}.err"
    with log.open("w") as err:
        process = subprocess.Popen(_cli(site, stage.args(site, context)), stdout=subprocess.DEVNULL, stderr=err)
    while True:  # not process.poll(): it would wait for the process and its figures would be gone
        clock = _cpu_seconds(process.pid)
        assert clock is not None
        if at_start is None and _started(site, stage.ledger_stage) > started:
            at_start = clock[0]
        if clock[1]:
            break
        time.sleep(POLL)
    assert process.wait() == ExitCode.OK, f"{stage.name}: {(site.folder / f'{stage.ledger_stage}.err').read_text()}"
    assert at_start is not None
    return clock[0] - at_start


# -- the reference and the kill points ------------------------------------------------------------
@dataclass
class KillPoint:
    threshold: int | None = None  # kill once the stage's progress reaches this
    cpu: float | None = None  # or once the run used this many CPU seconds after its `started` event

    def __str__(self) -> str:
        return f"progress {self.threshold}" if self.threshold is not None else f"{self.cpu:.2f} CPU s into the work"


def _kill_points(rng: random.Random, stage: Stage, reference: dict, count: int) -> list[KillPoint]:
    """`count` points, one in each equal slice of the stage's work, in order."""
    points = []
    total = reference["progress"]
    for i in range(count):
        if stage.progress is not None and total - 1 >= count:
            low, high = 1 + i * (total - 1) // count, (i + 1) * (total - 1) // count
            points.append(KillPoint(threshold=rng.randint(low, max(low, high))))
        else:
            low, high = WORK_SLICE
            width = (high - low) / count
            fraction = rng.uniform(low + i * width, low + (i + 1) * width)
            points.append(KillPoint(cpu=fraction * reference["cpu"]))
    return points


def _reference_run(site: Site, stage: Stage, context: dict) -> dict:
    _before(site, stage.name, context)
    cpu = _measured_run(site, stage, context)
    progress = stage.progress(site, context) if stage.progress else 0
    return {"progress": progress, "cpu": cpu}


class Reference(threading.Thread):
    """The uninterrupted run, in a thread of its own ahead of the killed copy (its commands are
    processes: both copies work at once); the killed copy waits for the measurement of each stage
    before it chooses that stage's kill points."""

    def __init__(self, site: Site):
        super().__init__(name="kill-anywhere-reference", daemon=True)
        self.site = site
        self.measured: dict[str, dict] = {}
        self.ready = {stage.name: threading.Event() for stage in STAGES}
        self.failure: BaseException | None = None

    def run(self) -> None:
        context: dict = {}
        try:
            for stage in STAGES:
                self.measured[stage.name] = _reference_run(self.site, stage, context)
                self.ready[stage.name].set()
        except BaseException as exc:  # handed over to the test's thread
            self.failure = exc
        finally:
            for event in self.ready.values():
                event.set()
            if "target" in context:
                context["target"].dispose()

    def measurement(self, stage: Stage) -> dict:
        assert self.ready[stage.name].wait(STOP_SECONDS * 5), f"the reference never finished {stage.name}"
        if self.failure is not None:
            raise AssertionError(f"the uninterrupted reference run failed at {stage.name}") from self.failure
        return self.measured[stage.name]


# -- killing and finishing a stage on the other copy ----------------------------------------------
def _cli(site: Site, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "ts24_migrate", "--json", "-i", str(site.inventory), *args]


def _session_left(session: int) -> list[int]:
    """The processes still in a killed session's process group (of this machine's /proc)."""
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == session:
                    left.append(int(entry))
            except ProcessLookupError:
                pass
    return left


def _wait_for_no_session(session: int) -> None:
    deadline = time.monotonic() + 10
    while _session_left(session):
        assert time.monotonic() < deadline, f"processes {_session_left(session)} outlived their killed session"
        time.sleep(0.05)


@dataclass
class Kill:
    stage: Stage
    point: KillPoint
    progress: int  # the stage's durable progress after the kill
    run_id: str  # the run the killed process had started
    ended: str | None  # its end event in the ledger when the kill came (a kill after its last record)


def _kill_at(site: Site, stage: Stage, context: dict, point: KillPoint, log: Path) -> Kill:
    """Run the stage and SIGKILL its session at `point`."""
    known = {e.run_id for e in _events(site) if e.stage == stage.ledger_stage}
    started = _started(site, stage.ledger_stage)
    progress = (lambda: stage.progress(site, context)) if stage.progress else (lambda: 0)
    threshold = point.threshold if point.threshold is None else max(point.threshold, progress() + 1)
    with log.open("w") as err:
        process = subprocess.Popen(
            _cli(site, stage.args(site, context)), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STOP_SECONDS
        if threshold is not None:
            while process.poll() is None and progress() < threshold and time.monotonic() < deadline:
                time.sleep(POLL)
        else:
            while process.poll() is None and _started(site, stage.ledger_stage) == started:
                assert time.monotonic() < deadline, f"{stage.name}: no `started` event in {STOP_SECONDS} s"
                time.sleep(POLL)
            assert point.cpu is not None
            clock = _cpu_seconds(process.pid)
            end = clock[0] + point.cpu if clock else 0.0
            while process.poll() is None and (clock := _cpu_seconds(process.pid)) and clock[0] < end:
                time.sleep(POLL)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL, (
        f"{stage.name} ended (exit code {process.returncode}) before its kill point at {point}: "
        f"{log.read_text()[-2000:]}"
    )
    _wait_for_no_session(process.pid)
    events = [e for e in _events(site) if e.stage == stage.ledger_stage and e.run_id not in known]
    assert events and events[0].event == "started", f"{stage.name} was killed before its run started ({point})"
    ended = next((e.event for e in events[1:] if e.event in _END_EVENTS), None)
    return Kill(stage, point, progress(), events[0].run_id, ended)


def _finish(site: Site, stage: Stage, context: dict) -> dict:
    process = subprocess.Popen(
        _cli(site, stage.args(site, context)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out, err = process.communicate(timeout=600)
    assert process.returncode == ExitCode.OK, f"{stage.name}, run again after its kills: {err[-3000:]}"
    _wait_for_no_session(process.pid)
    return json.loads(out)


# -- comparing the two copies -----------------------------------------------------------------------
_IDS = re.compile(
    r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{6}"  # backup ids
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # run ids
    r"|\d{4}-\d{2}-\d{2}T\d{6}"  # approval times
    r"|-[0-9a-f]{16}-"  # key ids
)


_PART = re.compile(r"part-\d+\.parquet\.age$")


def _backup_files(site: Site) -> Counter:
    """The backup folders' files, ids aside, parts counted per folder: a resumed backup never reuses
    the number of a part a kill left unjournaled (write-once names), so its numbers may have a gap."""
    return Counter(
        _PART.sub("part-N.parquet.age", _IDS.sub("<id>", p.relative_to(site.backups).as_posix()))
        for p in site.backups.rglob("*")
    )


def _temporary_files(site: Site) -> list[str]:
    """Hidden files the stages write before renaming them into place (".tmp-", ".partial", ".tmp"),
    and the purge's scratch names: none may outlive a killed run once the stage was run again."""
    return [
        p.relative_to(site.folder).as_posix()
        for p in site.folder.rglob(".*")
        if p.name != ".lock" and not p.relative_to(site.folder).as_posix().startswith("keys/")
    ]


def _crosswalk_duplicates(target: sa.Engine) -> list[tuple]:
    c = bk.crosswalk.c
    key = (c.site_id, c.legacy_table, c.legacy_key, c.target_table)
    with target.connect() as conn:
        return conn.execute(sa.select(*key, sa.func.count()).group_by(*key).having(sa.func.count() > 1)).all()


def _succeeded_runs(store: ControlStore) -> Counter:
    """Succeeded stage runs; not the steps a stage runs as runs of their own (purge prepare's final
    reconcile): a killed stage may well have finished one, and its re-run takes another."""
    return Counter(
        r.stage
        for stage in _ALL_STAGES
        for r in store.runs(SITE, stage)
        if r.outcome == "succeeded" and r.parent_run_id is None
    )


_ALL_STAGES = sorted({s.ledger_stage for s in STAGES} | {"purge-plan"})


def _chain(site: Site, store: ControlStore) -> dict[str, str]:
    return chain_fingerprints(load_chain(site.folder / "backups", SITE, ReconcileState(store.engine).chain(SITE)))


def _assert_same_end(reference: Site, killed: Site, kills: list[Kill]) -> None:
    ref_store, store = reference.store(), killed.store()
    ref_target, target = reference.target(), killed.target()
    try:
        assert store.state(SITE) is ref_store.state(SITE) is SiteState.CERTIFIED

        # The new system: every table, business and bookkeeping, as the uninterrupted run left it.
        expected, actual = snapshot(ref_target), snapshot(target)
        assert expected.keys() == actual.keys()
        for table in expected:
            assert Counter(actual[table]) == Counter(expected[table]), f"{table} differs from the uninterrupted run"
        assert _crosswalk_duplicates(target) == []

        # The control store: every run the kills cut short abandoned (and the steps it was running as runs
        # of their own), no run left running; each stage succeeded as often as in the reference, plus
        # the runs killed after their last record (the re-run runs the stage once more).
        every_run = [r for stage in _ALL_STAGES for r in store.runs(SITE, stage)]
        by_id = {r.run_id: r for r in every_run}
        cut_short = {k.run_id for k in kills if k.ended is None}
        for kill in kills:
            run = by_id[kill.run_id]
            assert run.outcome == (kill.ended or "abandoned"), (kill.stage.name, str(kill.point), run)
        abandoned = {r.run_id for r in every_run if r.outcome == "abandoned"}
        assert abandoned - cut_short == {r for r in abandoned if by_id[r].parent_run_id in cut_short}
        assert all(by_id[r].abandoned_at is not None and by_id[r].finished_at is None for r in abandoned)
        assert not [r for r in every_run if r.outcome == "running"]
        late = Counter(k.stage.ledger_stage for k in kills if k.ended == "succeeded")
        assert _succeeded_runs(store) == _succeeded_runs(ref_store) + late

        # The ledger: intact and signed, one `abandoned` event per abandoned run, every run ended once.
        check = verify_ledger(killed.ledger, [killed.folder / "keys" / "signing.pub"])
        assert check.ok, check
        events = _events(killed)
        assert sorted(e.run_id for e in events if e.event == "abandoned") == sorted(abandoned)
        ends = Counter(e.run_id for e in events if e.event in _END_EVENTS)
        assert [r for r, n in ends.items() if n > 1] == []
        assert {e.run_id for e in events if e.event == "started"} == set(ends)
        code, _, err = run_cli(killed.inventory, "audit", "verify", "--site", SITE, "--json")
        assert code == ExitCode.OK, err

        # The backups: the same chain (fingerprints and parts), verifying with the custodian's identity.
        assert _chain(killed, store) == _chain(reference, ref_store)
        assert _backup_files(killed) == _backup_files(reference)
        verified = _ok(killed, "backup", "verify", SITE, "--identity", str(killed.identity))
        assert verified["mode"] == "decrypted", verified

        assert _temporary_files(killed) == []
    finally:
        for engine in (ref_store.engine, store.engine, ref_target, target):
            engine.dispose()


# -- the test -----------------------------------------------------------------------------------
def _kill_everywhere(reference: Site, killed: Site, kills_per_stage: int, seed: int, logs: Path) -> None:
    rng = random.Random(seed)
    kills: list[Kill] = []
    lines = []
    context: dict = {}
    uninterrupted = Reference(reference)
    uninterrupted.start()
    try:
        for stage in STAGES:
            _before(killed, stage.name, context)
            measured = uninterrupted.measurement(stage)
            for n, point in enumerate(_kill_points(rng, stage, measured, kills_per_stage)):
                kills.append(_kill_at(killed, stage, context, point, logs / f"{stage.ledger_stage}-{n}.err"))
            _finish(killed, stage, context)
            lines.append(
                f"{stage.name} (reference: progress {measured['progress']}, {measured['cpu']:.2f} CPU s): "
                + ", ".join(f"{k.point} -> progress {k.progress}, {k.ended or 'cut short'}" for k in kills[-n - 1 :])
            )
    finally:
        uninterrupted.join(timeout=STOP_SECONDS * 5)
        if "target" in context:
            context["target"].dispose()
        print("\n".join(lines))
    _assert_same_end(reference, killed, kills)


def test_every_stage_killed_three_times_on_sqlite_ends_as_the_uninterrupted_run(tmp_path):
    reference, killed = _sqlite_sites(tmp_path)
    _kill_everywhere(reference, killed, kills_per_stage=3, seed=20261206, logs=tmp_path)


@pytest.mark.postgres
@pytest.mark.mariadb
def test_every_stage_killed_on_mariadb_legacy_and_postgresql_target_ends_as_the_uninterrupted_run(
    tmp_path, mariadb_database, pg_database, _mariadb_admin
):
    sites, users = [], []
    try:
        for name in ("reference", "killed"):
            legacy_url = mariadb_database()
            database = sa.engine.make_url(legacy_url).database
            # The account the TS24 software writes with: the purge revokes its grants on this database.
            user = f"ts24app_{uuid.uuid4().hex[:8]}"
            with _mariadb_admin.connect() as conn:
                conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{uuid.uuid4().hex}'"))
                conn.execute(sa.text(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'"))
            users.append(user)
            sites.append(_server_site(tmp_path / name, legacy_url, pg_database(), pg_database(), f"{user}@%"))
        _kill_everywhere(sites[0], sites[1], kills_per_stage=1, seed=20261207, logs=tmp_path)
    finally:
        with _mariadb_admin.connect() as conn:
            for user in users:
                conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
