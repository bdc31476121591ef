"""Custodian identities and the signing key: formats the stock tools accept, file modes, no leaks."""

from __future__ import annotations

import base64
import json
import pickle
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ts24_migrate.core.config import AGE_RECIPIENT
from ts24_migrate.core.errors import ConfigError
from ts24_migrate.core.keys import generate_custodian_identity, load_identity, recipient_of
from ts24_migrate.core.signing import (
    SigningKey,
    generate_signing_key,
    key_id_of,
    load_public_key,
    load_signing_key,
    verify_signature,
)

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
needs_age = pytest.mark.skipif(
    AGE is None or AGE_KEYGEN is None, reason="the Debian `age` package is not installed (make system-packages)"
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- custodian identities ------------------------------------------------------------


def test_identity_file_has_age_keygen_format_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "alice.age-identity"
    recipient = generate_custodian_identity(path)

    assert AGE_RECIPIENT.match(recipient)
    assert mode_of(path) == 0o600
    lines = path.read_text().splitlines()
    assert re.fullmatch(r"# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[0])
    assert lines[1] == f"# public key: {recipient}"
    assert re.fullmatch(r"AGE-SECRET-KEY-1[0-9A-Z]{58}", lines[2])
    assert len(lines) == 3
    assert recipient_of(path) == recipient
    assert str(load_identity(path).to_public()) == recipient


def test_identity_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "alice.age-identity"
    generate_custodian_identity(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists; keys are never overwritten"):
        generate_custodian_identity(path)
    assert path.read_bytes() == before


@needs_age
def test_stock_age_decrypts_with_our_identity_file(tmp_path: Path) -> None:
    identity_file = tmp_path / "alice.age-identity"
    recipient = generate_custodian_identity(identity_file)
    secret_text = "HO_SO 27885/2020/00108 Hà Nội".encode()
    (tmp_path / "part.age").write_bytes(pyrage.encrypt(secret_text, [pyrage.x25519.Recipient.from_str(recipient)]))

    done = subprocess.run(
        [AGE, "-d", "-i", str(identity_file), str(tmp_path / "part.age")], capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == secret_text


@needs_age
def test_what_stock_age_encrypts_to_our_recipient_decrypts_with_load_identity(tmp_path: Path) -> None:
    identity_file = tmp_path / "bob.age-identity"
    recipient = generate_custodian_identity(identity_file)
    done = subprocess.run([AGE, "-r", recipient], input=b"manifest", capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    assert pyrage.decrypt(done.stdout, [load_identity(identity_file)]) == b"manifest"


@needs_age
def test_age_keygen_output_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "keygen.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(path)], check=True, capture_output=True, timeout=30)
    expected = subprocess.run(
        [AGE_KEYGEN, "-y", str(path)], check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()
    path.chmod(0o600)  # age-keygen makes it 0600 already; make the test not depend on its umask

    assert str(load_identity(path).to_public()) == expected
    assert recipient_of(path) == expected


@needs_age
def test_age_keygen_stdout_saved_world_readable_is_refused_until_chmod(tmp_path: Path) -> None:
    path = tmp_path / "keygen.txt"
    output = subprocess.run([AGE_KEYGEN], check=True, capture_output=True, timeout=30).stdout
    path.write_bytes(output)
    path.chmod(0o644)

    with pytest.raises(ConfigError) as refused:
        load_identity(path)
    message = str(refused.value)
    assert str(path) in message and f"chmod 600 {path}" in message and "0644" in message
    assert "AGE-SECRET-KEY" not in message and "\n" not in message

    path.chmod(0o600)
    assert AGE_RECIPIENT.match(str(load_identity(path).to_public()))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o700 | 0o001])
def test_identity_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "alice.age-identity"
    generate_custodian_identity(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match=r"open to group or others .* run: chmod 600"):
        load_identity(path)


def test_broken_identity_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.age-identity"
    generate_custodian_identity(path)
    secret_line = path.read_text().splitlines()[2]
    path.write_text(secret_line[:-3] + "QQQ\n")  # the checksum no longer holds
    with pytest.raises(ConfigError) as refused:
        load_identity(path)
    assert secret_line[:30] not in str(refused.value)

    path.write_text("# only a comment\n")
    with pytest.raises(ConfigError, match="not an age identity file"):
        load_identity(path)


def test_recipient_of_a_recipient_file_needs_no_private_key(tmp_path: Path) -> None:
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    path = tmp_path / "alice.recipient"
    path.write_text(f"# alice, custodian at the province office\n{recipient}\n")
    path.chmod(0o644)  # public: no mode requirement
    assert recipient_of(path) == recipient

    path.write_text("age1notarecipient\n")
    with pytest.raises(ConfigError, match="neither an age identity nor"):
        recipient_of(path)


# -- signing key -----------------------------------------------------------------------


def test_signing_key_files_formats_and_modes(tmp_path: Path) -> None:
    private_path = tmp_path / "keys" / "signing.key"
    public_key = generate_signing_key(private_path)
    public_path = tmp_path / "keys" / "signing.pub"

    assert mode_of(private_path) == 0o600
    assert mode_of(public_path) == 0o644
    assert public_path.read_text() == public_key + "\n"
    assert len(base64.b64decode(public_key, validate=True)) == 32
    pem = private_path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)

    key = load_signing_key(private_path)
    assert key.public_key_b64 == public_key
    assert key.key_id == key_id_of(public_key)
    assert re.fullmatch(r"[0-9a-f]{16}", key.key_id)


def test_sign_and_verify(tmp_path: Path) -> None:
    public_key = generate_signing_key(tmp_path / "signing.key")
    key = load_signing_key(tmp_path / "signing.key")
    signature = key.sign(b"manifest v1")

    assert verify_signature(public_key, b"manifest v1", signature)
    assert not verify_signature(public_key, b"manifest v2", signature)
    assert not verify_signature(public_key, b"manifest v1", signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not verify_signature(public_key, b"manifest v1", b"short")
    other = SigningKey.generate()
    assert not verify_signature(other.public_key_b64, b"manifest v1", signature)
    with pytest.raises(ConfigError, match="not a base64 Ed25519 public key"):
        verify_signature("not-a-key", b"x", signature)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_reads_our_key_and_verifies_our_signature(tmp_path: Path) -> None:
    """An auditor with only standard tools can check what we sign."""
    public_key = generate_signing_key(tmp_path / "signing.key")
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "signing.key"), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    assert der[-32:] == base64.b64decode(public_key)

    (tmp_path / "pub.pem").write_bytes(
        subprocess.run(
            ["openssl", "pkey", "-in", str(tmp_path / "signing.key"), "-pubout"],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
    )
    (tmp_path / "data").write_bytes(b"certificate of sanitization")
    (tmp_path / "sig").write_bytes(load_signing_key(tmp_path / "signing.key").sign(b"certificate of sanitization"))
    done = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(tmp_path / "pub.pem"),
            "-rawin",
            "-in",
            str(tmp_path / "data"),
            "-sigfile",
            str(tmp_path / "sig"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and "Verified Successfully" in done.stdout
    assert load_public_key(tmp_path / "pub.pem") == public_key  # a PEM public key is accepted too


def test_signing_key_is_never_overwritten_nor_half_made(tmp_path: Path) -> None:
    (tmp_path / "signing.pub").write_text("someone else's key\n")
    with pytest.raises(ConfigError, match="signing.pub: already exists"):
        generate_signing_key(tmp_path / "signing.key")
    assert not (tmp_path / "signing.key").exists()

    generate_signing_key(tmp_path / "other.key")
    before = (tmp_path / "other.key").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        generate_signing_key(tmp_path / "other.key")
    assert (tmp_path / "other.key").read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_signing_key_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.key"
    generate_signing_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigError) as refused:
        load_signing_key(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and message.endswith(f"run: chmod 600 {path}")
    assert "PRIVATE" not in message and "\n" not in message


def test_read_only_owner_mode_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    generate_signing_key(path)
    path.chmod(0o400)
    assert load_signing_key(path).key_id


def test_wrong_kinds_of_private_key_are_refused(tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    encrypted.chmod(0o600)
    with pytest.raises(ConfigError, match="encrypted with a passphrase"):
        load_signing_key(encrypted)

    ec_key = tmp_path / "ec.key"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ec_key.chmod(0o600)
    with pytest.raises(ConfigError, match="not Ed25519"):
        load_signing_key(ec_key)

    with pytest.raises(ConfigError, match="key file does not exist"):
        load_signing_key(tmp_path / "missing.key")


def test_signing_key_never_shows_private_material(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    generate_signing_key(path)
    key = load_signing_key(path)
    private_raw = serialization.load_pem_private_key(path.read_bytes(), None).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    shown = repr(key) + str(key) + f"{key}" + repr([key])

    assert shown.count(key.key_id) == 4
    for secret in (base64.b64encode(private_raw).decode(), private_raw.hex(), path.read_text()):
        assert secret not in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


def test_load_public_key_accepts_pub_file_and_base64_and_refuses_private_keys(tmp_path: Path) -> None:
    public_key = generate_signing_key(tmp_path / "signing.key")
    assert load_public_key(tmp_path / "signing.pub") == public_key
    assert load_public_key(str(tmp_path / "signing.pub")) == public_key
    assert load_public_key(public_key) == public_key
    assert load_public_key(f"  {public_key}\n") == public_key

    with pytest.raises(ConfigError, match="this is a private key"):
        load_public_key(tmp_path / "signing.key")
    with pytest.raises(ConfigError, match="public key file .*missing.pub does not exist"):
        load_public_key(str(tmp_path / "missing.pub"))
    with pytest.raises(ConfigError, match="neither an existing public key file nor a base64"):
        load_public_key("AAAA")
    (tmp_path / "bad.pub").write_text("not a key\n")
    with pytest.raises(ConfigError, match="bad.pub: does not hold a base64 Ed25519 public key"):
        load_public_key(tmp_path / "bad.pub")


# -- `ts24-migrate keys generate` ------------------------------------------------------


def private_material(folder: Path) -> list[str]:
    """Every form in which the private keys under `folder` could leak into output."""
    found = []
    for path in folder.glob("*.age-identity"):
        found.append(path.read_text().splitlines()[2])  # the AGE-SECRET-KEY-1... line
    for path in folder.glob("*.key"):
        pem = path.read_text()
        raw = serialization.load_pem_private_key(pem.encode(), None).private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        found += [pem.splitlines()[1], base64.b64encode(raw).decode(), raw.hex()]
    return found


def test_cli_keys_generate_prints_only_public_halves(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ts24_migrate.cli.main import main

    out = tmp_path / "keys"
    assert main(["keys", "generate", "--out", str(out), "--custodian", "alice"]) == 0
    printed = capsys.readouterr()

    assert mode_of(out / "alice.age-identity") == 0o600 and mode_of(out / "signing.key") == 0o600
    assert recipient_of(out / "alice.age-identity") in printed.out
    assert (out / "signing.pub").read_text().strip() in printed.out
    assert len(private_material(out)) == 4
    for secret in private_material(out) + ["AGE-SECRET-KEY", "PRIVATE KEY"]:
        assert secret not in printed.out and secret not in printed.err


def test_cli_keys_generate_json_and_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ts24_migrate.cli.main import main

    assert main(["keys", "generate", "--out", str(tmp_path), "--custodian", "bob", "--only", "identity", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {
        "identity_file": str(tmp_path / "bob.age-identity"),
        "recipient": recipient_of(tmp_path / "bob.age-identity"),
        "ok": True,
        "exit_code": 0,
    }
    assert not (tmp_path / "signing.key").exists()

    assert main(["--json", "keys", "generate", "--out", str(tmp_path), "--only", "signing"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["public_key"] == load_public_key(tmp_path / "signing.pub")
    assert result["key_id"] == key_id_of(result["public_key"])
    assert set(result) == {"signing_key_file", "public_key_file", "public_key", "key_id", "ok", "exit_code"}


def test_cli_keys_generate_refuses_to_overwrite_anything(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ts24_migrate.cli.main import main

    assert main(["keys", "generate", "--out", str(tmp_path), "--only", "signing"]) == 0
    before = (tmp_path / "signing.key").read_bytes()
    capsys.readouterr()

    assert main(["keys", "generate", "--out", str(tmp_path), "--custodian", "carol"]) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith("error: ") and "never overwritten" in printed.err
    assert printed.err.count("\n") == 1
    assert (tmp_path / "signing.key").read_bytes() == before
    assert not (tmp_path / "carol.age-identity").exists()  # nothing half made

    assert main(["keys", "generate", "--out", str(tmp_path), "--custodian", "../escape"]) == 2
    assert "--custodian must be" in capsys.readouterr().err


@needs_age
def test_cli_made_keys_work_with_stock_age_in_a_real_process(tmp_path: Path) -> None:
    """The installed command, as an operator runs it: output checked for leaks, keys used by `age`."""
    command = Path(sys.executable).with_name("ts24-migrate")
    done = subprocess.run(
        [str(command), "keys", "generate", "--out", str(tmp_path), "--custodian", "dung"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for secret in private_material(tmp_path) + ["AGE-SECRET-KEY", "PRIVATE KEY"]:
        assert secret not in done.stdout and secret not in done.stderr
    recipient = recipient_of(tmp_path / "dung.age-identity")
    assert f"recipient (add to backup_recipients in sites.yaml): {recipient}" in done.stdout

    encrypted = subprocess.run([AGE, "-r", recipient], input=b"part-0001", capture_output=True, timeout=30)
    decrypted = subprocess.run(
        [AGE, "-d", "-i", str(tmp_path / "dung.age-identity")], input=encrypted.stdout, capture_output=True, timeout=30
    )
    assert decrypted.stdout == b"part-0001", decrypted.stderr


def test_cli_keys_help_has_an_example(capsys: pytest.CaptureFixture) -> None:
    from ts24_migrate.cli.main import main

    assert main(["keys", "generate", "--help"]) == 0
    assert "Example:" in capsys.readouterr().out
