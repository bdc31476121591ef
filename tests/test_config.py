"""The inventory: bad input gets one clear line naming file, site and field; secrets never print."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.errors import ConfigError, ExitCode
from ts24_migrate.core.secrets import Secret, SecretRef, redact_url, scrub

RECIPIENT = "age1" + "q" * 58

GOOD = f"""
version: 1
work_dir: work
sites:
  - id: hn-01
    office: "01"
    legacy: env:TS24_TEST_LEGACY_URL
    attachments: files
    cutover: 2025-07-01
    backup_recipients: [{RECIPIENT}]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_inventory_resolves_paths_and_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("TS24_TEST_LEGACY_URL", "mssql+pyodbc://sa:Very$ecret@db/ts24?driver=X")
    inventory = load_inventory(write(tmp_path, GOOD))
    site = inventory.site("hn-01")
    assert inventory.attachments_path(site) == tmp_path / "files"
    assert inventory.work_path == tmp_path / "work"
    url = inventory.legacy_url(site)
    assert url.reveal().startswith("mssql+pyodbc://sa:Very$ecret@")
    assert "Very$ecret" not in repr(url) and "Very$ecret" not in str(url)
    assert "Very$ecret" not in repr(inventory) and "Very$ecret" not in inventory.model_dump_json()
    assert inventory.target_url().reveal() == f"sqlite:///{tmp_path / 'work' / 'target.sqlite'}"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sites: [", "not valid YAML at line"),
        (GOOD.replace("cutover: 2025-07-01", "cutover: 2025-13-45"), "site hn-01, field cutover"),
        (GOOD.replace("    office", "    colour: blue\n    office"), "site hn-01, field colour: unknown key"),
        (GOOD.replace("env:TS24_TEST_LEGACY_URL", "mssql://sa:pw@host/db"), "site hn-01, field legacy"),
        (GOOD.replace('office: "01"', "office: 1"), "field office"),
        (GOOD.replace(RECIPIENT, "age1short"), "field backup_recipients"),
        (GOOD.replace("id: hn-01", "id: HN 01"), "field id"),
        ("version: 1\n", "field sites: is required"),
        (
            "limits:\n  legacy_server: 0\n" + GOOD,
            "field limits.legacy_server: Input should be greater than or equal to 1",
        ),
        ("limits:\n  workers: 2\n" + GOOD, "field limits.workers: unknown key"),
        (GOOD.replace("    office", "    legacy_server: sql/hanoi\n    office"), "site hn-01, field legacy_server"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_inventory_is_one_clear_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message
    assert info.value.exit_code == ExitCode.USAGE
    assert "pw" not in message.split("legacy")[-1] or "mssql://sa:pw" not in message


def test_missing_inventory_file(tmp_path):
    with pytest.raises(ConfigError, match="inventory file not found"):
        load_inventory(tmp_path / "nope.yaml")


def test_missing_secret_names_site_and_field(tmp_path, monkeypatch):
    monkeypatch.delenv("TS24_TEST_LEGACY_URL", raising=False)
    inventory = load_inventory(write(tmp_path, GOOD))
    with pytest.raises(ConfigError) as info:
        inventory.legacy_url(inventory.site("hn-01"))
    assert "site hn-01, field legacy" in str(info.value)
    assert "TS24_TEST_LEGACY_URL is not set" in str(info.value)


def test_secret_file_must_be_private(tmp_path):
    secret = tmp_path / "legacy.url"
    secret.write_text("sqlite:///x.db\n")
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        SecretRef.parse("file:legacy.url", tmp_path).resolve()
    os.chmod(secret, 0o600)
    assert SecretRef.parse("file:legacy.url", tmp_path).resolve() == Secret("sqlite:///x.db")


def test_unknown_site(tmp_path, monkeypatch):
    inventory = load_inventory(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="no site 'dn-02' in the inventory"):
        inventory.site("dn-02")


@pytest.mark.parametrize(
    "url",
    [
        "mssql+pyodbc://sa:Very$ecret@db/ts24?driver=ODBC+Driver+18",
        "postgresql+psycopg://u:Very$ecret@host:5432/db",
        "DRIVER={ODBC Driver 18};SERVER=db;UID=sa;PWD=Very$ecret;",
    ],
)
def test_redaction_hides_passwords(url):
    assert "Very$ecret" not in redact_url(url)
    assert "Very$ecret" not in scrub(f"could not connect to {url}: timeout", Secret(url))


def test_a_prefect_secret_needs_the_run_wiring_and_names_no_value(tmp_path):
    """The kernel reads env: and file: secrets itself; prefect: only once the run wiring registered the
    store. Without it, a clear ConfigError (checked in a fresh interpreter that imports only the kernel)."""
    import subprocess
    import sys

    code = (
        "from ts24_migrate.core.secrets import SecretRef\n"
        "from ts24_migrate.core.errors import ConfigError\n"
        "try:\n    SecretRef.parse('prefect:ts24-nowhere').resolve()\n"
        "except ConfigError as e:\n    print(e)\n"
        "import sys; print('prefect' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "secret prefect:ts24-nowhere: prefect secrets are read only through ts24-migrate's commands and flows",
        "False",
    ]


@pytest.mark.prefect
def test_a_prefect_secret_block_is_read_through_the_registered_store(prefect_server):
    from prefect.blocks.system import Secret as PrefectSecret

    import ts24_migrate.runs.app  # noqa: F401  (registers the store, as every command and flow does)

    PrefectSecret(value="sqlite:///from-a-block.db").save("ts24-test-legacy-url", overwrite=True)
    assert SecretRef.parse("prefect:ts24-test-legacy-url").resolve() == Secret("sqlite:///from-a-block.db")
    with pytest.raises(
        ConfigError, match=r"^secret prefect:ts24-no-such-block: prefect Secret block could not be loaded"
    ):
        SecretRef.parse("prefect:ts24-no-such-block").resolve()
