"""Signed documents (issue 19 item 5): an erasure receipt and an access copy carry an Ed25519
signature that the person checks with the published public key alone, on the command line without
any data folder, or with OpenSSL; a changed byte, a changed field, another key or an altered
signature fails, saying why; a receipt made before signing is reported as such, never as a forgery.
The key is published without an account and is not the audit key."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import text
from typer.testing import CliRunner

from lethe.catalog.audit_log import key_fingerprint
from lethe.cli import app as cli_app
from lethe.engine import Lethe
from lethe.privacy import signatures

from api_support import serve
from conftest import catalog_sql, copy_gallery, make_settings, use_data_dir

pytestmark = pytest.mark.storage


def photo(fixtures_dir: Path, person: str, name: str) -> bytes:
    return (fixtures_dir / "identities" / person / name).read_bytes()


def run_request(lethe: Lethe, kind: str, probe: bytes) -> int:
    requests = lethe.requests
    opened = requests.open(kind=kind, photos=[probe], contact="someone@example.org", actor="op")
    requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
    requests.run(opened.id, actor="dpo", auto_only=True)
    return opened.id


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.output


def openssl_skip_reason(tmp_path: Path) -> str | None:
    """Why OpenSSL cannot check an Ed25519 signature over raw bytes here (None: it can)."""
    if shutil.which("openssl") is None:
        return "no openssl on this machine"
    key = Ed25519PrivateKey.generate()
    (tmp_path / "probe.pem").write_text(signatures.public_pem(key.public_key().public_bytes_raw()))
    (tmp_path / "probe.msg").write_bytes(b"probe")
    (tmp_path / "probe.sig").write_bytes(key.sign(b"probe"))
    done = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "probe.pem",
            "-rawin",
            "-in",
            "probe.msg",
            "-sigfile",
            "probe.sig",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"this openssl cannot verify Ed25519 over raw input (-rawin): {done.stderr.strip()[:200]}"
    return None


def recipe(script: str, folder: Path, pem: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run the documented OpenSSL steps in ``folder`` with the published key saved as the docs say."""
    (folder / "lethe-signing-key.pem").write_text(pem)
    setup = "".join(f"{name}={value}\n" for name, value in variables.items())
    return subprocess.run(
        ["bash", "-c", "set -e\n" + setup + script], cwd=folder, capture_output=True, text=True, check=False
    )


def test_an_erasure_receipt_is_signed_and_checked_with_the_key_alone(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        request_id = run_request(lethe, "erasure", photo(fixtures_dir, "joe_biden", "biden.jpg"))
        view = lethe.requests.get(request_id)
        [receipt] = view.outcome["receipts"]
        job = int(receipt["job_id"])
        key = lethe.keyring.document_public_key()
        # What the request shows is what the job keeps: the same signed receipt, read back.
        stored = lethe.gate.receipt(job)
        assert stored is not None and stored.as_dict() == receipt
        assert receipt["signature"]["kind"] == "erasure-receipt"
        assert receipt["signature"]["key_sha256"] == key_fingerprint(key)
        assert signatures.verify_object(receipt, key).status == "valid"
        # The answer to the requester says where the signed receipt is and how to check it.
        assert f"erasure job {job}" in (lethe.requests.answer_draft(request_id) or "")
        outcome_file = tmp_path / "request.json"
        outcome_file.write_text(json.dumps(view.as_dict(), default=str))

    use_data_dir(monkeypatch, data)
    receipt_file = tmp_path / "receipt.json"
    code, output = cli("erasure", "receipt", str(job), "--out", str(receipt_file))
    assert code == 0, output
    assert json.loads(receipt_file.read_text()) == receipt

    # The person holds no data folder: only the file and the published key.
    nowhere = tmp_path / "no-data-folder"
    use_data_dir(monkeypatch, nowhere)
    code, output = cli("signature", "verify", str(receipt_file), "--public-key", key.hex())
    assert code == 0, output
    assert f"erasure job {job}: valid: erasure-receipt signed at" in output
    code, output = cli("signature", "verify", str(outcome_file), "--public-key", key.hex(), "--json")
    assert code == 0 and [c["status"] for c in json.loads(output)["checks"]] == ["valid"]
    code, output = cli("signature", "verify", str(receipt_file))
    assert code == 2 and "pass --public-key" in output
    assert not nowhere.exists()  # nothing was created to find a key

    def tampered(change: dict[str, object], name: str) -> tuple[int, str]:
        path = tmp_path / name
        path.write_text(json.dumps(receipt | change))
        return cli("signature", "verify", str(path), "--public-key", key.hex())

    code, output = tampered({"erased_faces": [*receipt["erased_faces"], 999999]}, "more-faces.json")
    assert code == 6 and "INVALID" in output and "changed after it was signed" in output
    code, output = tampered({"reason": "retention"}, "other-reason.json")
    assert code == 6 and "changed after it was signed" in output
    raw = bytearray(base64.b64decode(receipt["signature"]["signature"]))
    raw[0] ^= 1
    forged = receipt["signature"] | {"signature": base64.b64encode(bytes(raw)).decode()}
    code, output = tampered({"signature": forged}, "forged.json")
    assert code == 6 and "the signature does not verify" in output
    code, output = tampered(
        {"signature": receipt["signature"] | {"signed_at": "2020-01-01T00:00:00+00:00"}}, "redated.json"
    )
    assert code == 6 and "the signature does not verify" in output
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    code, output = cli("signature", "verify", str(receipt_file), "--public-key", other.hex())
    assert code == 6 and "signed by another key" in output
    unsigned = {k: v for k, v in receipt.items() if k != "signature"}
    (tmp_path / "old.json").write_text(json.dumps(unsigned))
    code, output = cli("signature", "verify", str(tmp_path / "old.json"), "--public-key", key.hex())
    assert code == 0 and "unsigned (made before signing)" in output

    # OpenSSL, as docs/privacy.md shows it, over the receipt's canonical JSON (jq makes the bytes).
    reason = openssl_skip_reason(tmp_path) or (None if shutil.which("jq") else "no jq on this machine")
    if reason is not None:
        pytest.skip(f"the OpenSSL recipe for receipts was not run: {reason}")
    pem = signatures.public_pem(key)
    checked = recipe(signatures.OPENSSL_RECIPE_EMBEDDED, tmp_path, pem, RECEIPT="receipt.json")
    assert checked.returncode == 0 and "Signature Verified Successfully" in checked.stdout, checked.stderr
    failed = recipe(signatures.OPENSSL_RECIPE_EMBEDDED, tmp_path, pem, RECEIPT="more-faces.json")
    assert failed.returncode != 0 and "Signature Verification Failure" in failed.stdout + failed.stderr


def test_receipts_made_before_signing_stay_valid_in_the_evidence_pack(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        run_request(lethe, "erasure", photo(fixtures_dir, "joe_biden", "biden.jpg"))
        key = lethe.keyring.document_public_key().hex()
    # The first receipt as a Lethe before signing wrote it: no signature member.
    with catalog_sql(data) as sql:
        job, stored = sql.execute(text("SELECT id, receipt FROM erasure_job ORDER BY id")).one()
        old = {k: v for k, v in json.loads(stored).items() if k != "signature"}
        sql.execute(
            text("UPDATE erasure_job SET receipt = :r WHERE id = :i"), {"r": json.dumps(old), "i": job}
        )
    with Lethe(make_settings(data)) as lethe:
        assert lethe.gate.receipt(job).signature is None  # type: ignore[union-attr]
        run_request(lethe, "erasure", photo(fixtures_dir, "rose_leslie", "img1.jpg"))
        lethe.compliance_pack(tmp_path / "pack", actor="dpo")
    pack = tmp_path / "pack" / "erasure_receipts.json"
    use_data_dir(monkeypatch, tmp_path / "elsewhere")
    code, output = cli("signature", "verify", str(pack), "--public-key", key, "--json")
    assert code == 0, output
    checks = json.loads(output)["checks"]
    assert [c["status"] for c in checks] == ["unsigned", "valid"]
    assert (
        checks[0]["reason"] == "unsigned (made before signing)" and checks[0]["label"] == f"erasure job {job}"
    )
    listed = json.loads(pack.read_text())
    listed[1]["vectors_removed"] += 1
    pack.write_text(json.dumps(listed))
    code, output = cli("signature", "verify", str(pack), "--public-key", key)
    assert code == 6 and "INVALID erasure job" in output and "unsigned (made before signing)" in output


def test_an_access_copy_is_signed_and_fails_after_an_edit(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        request_id = run_request(lethe, "access", photo(fixtures_dir, "rose_leslie", "img1.jpg"))
        folder = lethe.requests.export_path(request_id)
        info = signatures.public_key_info(lethe.keyring)
        draft = lethe.requests.answer_draft(request_id) or ""
    export = folder / "export.json"
    assert json.loads(export.read_text())["faces"], "the copy lists the person's faces"
    record = json.loads((folder / "export.json.sig.json").read_text())
    assert record["kind"] == "access-export" and record["file"] == "export.json"
    note = (folder / signatures.HOW_TO_CHECK).read_text()
    assert info["public_key"] in note and info["key_sha256"] in note and "openssl pkeyutl" in note
    assert "export.json.sig.json" in (folder / "index.html").read_text()
    assert signatures.HOW_TO_CHECK in draft and "public signing key" in draft

    use_data_dir(monkeypatch, tmp_path / "elsewhere")
    code, output = cli("signature", "verify", str(export), "--public-key", info["public_key"])
    assert code == 0 and "valid: access-export" in output, output
    reason = openssl_skip_reason(tmp_path)
    if reason is None:
        checked = recipe(signatures.OPENSSL_RECIPE, folder, info["pem"], FILE="export.json")
        assert "Signature Verified Successfully" in checked.stdout, checked.stderr

    edited = export.read_bytes().replace(b'"faces"', b'"Faces"', 1)
    assert edited != export.read_bytes()
    export.write_bytes(edited)
    code, output = cli("signature", "verify", str(export), "--public-key", info["public_key"])
    assert code == 6 and "changed after it was signed" in output
    if reason is None:
        failed = recipe(signatures.OPENSSL_RECIPE, folder, info["pem"], FILE="export.json")
        assert failed.returncode != 0 and "Signature Verification Failure" in failed.stdout + failed.stderr
    else:
        pytest.skip(f"the OpenSSL recipe was not run: {reason}")


def test_the_signing_key_is_public_and_is_not_the_audit_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    with serve(data) as client:
        published = client.get("/api/signing-key")
        assert published.status_code == 200, published.text  # no login
        body = published.json()
        keyring = client.app.state.lethe.engine.keyring  # type: ignore[attr-defined]
        assert body["public_key"] == keyring.document_public_key().hex()
        assert body["key_sha256"] == key_fingerprint(keyring.document_public_key())
        portal = client.get("/portal")
        assert (
            portal.status_code == 200
            and body["key_sha256"] in portal.text
            and "/api/signing-key" in portal.text
        )
        # One key per use: a document signature never checks as an audit signature.
        message = signatures.signed_message("technical-documentation", "0" * 64, "2026-12-07T00:00:00+00:00")
        signed = keyring.sign_document(message)
        assert keyring.document_public_key() != keyring.audit_public_key()
        with pytest.raises(InvalidSignature):
            Ed25519PublicKey.from_public_bytes(keyring.audit_public_key()).verify(signed, message)
    use_data_dir(monkeypatch, data)
    code, output = cli("signature", "public-key", "--json")
    assert code == 0 and json.loads(output) == body
    code, output = cli("signature", "public-key", "--pem")
    assert code == 0 and output == body["pem"]
    # The key in every form a person may hold it: hex, a PEM file, the endpoint's JSON saved.
    (tmp_path / "key.pem").write_text(body["pem"])
    (tmp_path / "key.json").write_text(json.dumps(body))
    for given in (body["public_key"], str(tmp_path / "key.pem"), str(tmp_path / "key.json")):
        assert signatures.parse_public_key(given) == bytes.fromhex(body["public_key"])


def test_bad_input_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_data_dir(monkeypatch, tmp_path / "none")
    document = tmp_path / "document.json"
    document.write_text('{"hello": "world"}')
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    code, output = cli("signature", "verify", str(document), "--public-key", "not-a-key")
    assert code == 2 and "neither 64 hexadecimal digits nor a file" in output
    (tmp_path / "rsa.txt").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    code, output = cli("signature", "verify", str(document), "--public-key", str(tmp_path / "rsa.txt"))
    assert code == 2 and "holds no Ed25519 public key" in output
    code, output = cli("signature", "verify", str(tmp_path / "missing.json"), "--public-key", key)
    assert code == 3 and "no document" in output
    code, output = cli("signature", "verify", str(document), "--public-key", key)
    assert code == 3 and "no signature" in output
    (tmp_path / "document.json.sig.json").write_text("[1, 2]")
    code, output = cli("signature", "verify", str(document), "--public-key", key)
    assert code == 6 and "malformed" in output


def test_the_documented_openssl_steps_are_the_tested_ones() -> None:
    """docs/privacy.md shows the very steps the tests above run (and every access copy carries)."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "privacy.md").read_text()
    for line in (signatures.OPENSSL_RECIPE + signatures.OPENSSL_RECIPE_EMBEDDED).splitlines():
        assert line in page, line
