"""Signed documents: what Lethe hands out (the technical file, an erasure receipt, an access copy)
carries an Ed25519 signature that anyone can check with the installation's public key alone.

The key
    The key ring's *document signing key* (:meth:`lethe.keyring.KeyRing.sign_document`), derived
    from the catalog-wide key and distinct from the audit checkpoints' key: one key, one use. Its
    public half is published without an account (``GET /api/signing-key``, the portal page,
    ``lethe signature public-key``) and named by its fingerprint, the SHA-256 of its 32 raw bytes.

What is signed
    The ASCII message ``lethe-document:v1:{kind}:{sha256}:{signed_at}``: the document's kind (so a
    receipt's signature can never pass for a technical file's), the SHA-256 (hex) of the document's
    bytes, and when it was signed (ISO 8601, UTC, to the second).

    - A *file* (``technical_documentation.json``, an access copy's ``export.json``...) is signed
      as it lies on disk; its signature record sits beside it in ``FILE.sig.json``.
    - A *JSON object* (an erasure receipt) is signed over its canonical JSON, every member but
      ``signature`` (keys sorted, separators ``,`` and ``:``, ASCII; ``jq -cSj 'del(.signature)'``
      makes the same bytes), and the record is its ``signature`` member. A receipt made before
      signing has none: it is reported ``unsigned (made before signing)``, never as a forgery.

The signature record: ``kind``, ``algorithm`` (``Ed25519``), ``sha256``, ``signed_at``,
``key_sha256`` (the fingerprint of the key that signed) and ``signature`` (base64), plus ``file``
for a file. :func:`verify` checks a record against the bytes and a public key given by the person
checking; it never takes the key from the record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lethe.catalog.audit_log import key_fingerprint
from lethe.errors import InputError, NotFoundError
from lethe.storage import atomic_write

if TYPE_CHECKING:
    from lethe.keyring import KeyRing

DOMAIN = "lethe-document:v1"
ALGORITHM = "Ed25519"
#: The signature record of ``FILE`` is ``FILE`` + this.
SUFFIX = ".sig.json"
MESSAGE_FORMAT = DOMAIN + ":{kind}:{sha256}:{signed_at}"

_KIND = re.compile(r"[a-z][a-z0-9-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_MAX_KEY_FILE_BYTES = 64 * 1024

#: How to check a signed file with OpenSSL (3.0 or later), ``jq``, ``sha256sum`` and ``base64``; the
#: same steps are in docs/privacy.md ("Signed documents and how to check them") and in every access
#: copy. ``FILE`` is the document, ``FILE.sig.json`` its signature, ``lethe-signing-key.pem`` the
#: published public key.
OPENSSL_RECIPE = """\
SIG="$FILE.sig.json"
printf 'lethe-document:v1:%s:%s:%s' "$(jq -r .kind "$SIG")" \\
  "$(sha256sum "$FILE" | cut -d' ' -f1)" "$(jq -r .signed_at "$SIG")" > message.txt
jq -r .signature "$SIG" | base64 -d > signature.bin
openssl pkeyutl -verify -pubin -inkey lethe-signing-key.pem -rawin -in message.txt -sigfile signature.bin
"""
#: The same for a JSON object that carries its own ``signature`` (an erasure receipt in ``RECEIPT``).
OPENSSL_RECIPE_EMBEDDED = """\
printf 'lethe-document:v1:%s:%s:%s' "$(jq -r .signature.kind "$RECEIPT")" \\
  "$(jq -cSj 'del(.signature)' "$RECEIPT" | sha256sum | cut -d' ' -f1)" \\
  "$(jq -r .signature.signed_at "$RECEIPT")" > message.txt
jq -r .signature.signature "$RECEIPT" | base64 -d > signature.bin
openssl pkeyutl -verify -pubin -inkey lethe-signing-key.pem -rawin -in message.txt -sigfile signature.bin
"""

UNSIGNED = "unsigned (made before signing)"


def receipt_jobs(outcome: Mapping[str, Any]) -> list[str]:
    """The erasure jobs of a request's outcome whose receipts the answer offers the requester."""
    return [
        str(r["job_id"]) for r in outcome.get("receipts") or [] if isinstance(r, Mapping) and "job_id" in r
    ]


def canonical_json(value: Any) -> bytes:
    """The bytes a JSON object is signed over: keys sorted, no spaces, ASCII only."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"this value has no canonical JSON form: {exc}") from exc
    return text.encode("ascii")


def signed_message(kind: str, sha256: str, signed_at: str) -> bytes:
    return MESSAGE_FORMAT.format(kind=kind, sha256=sha256, signed_at=signed_at).encode("ascii")


def _timestamp(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="seconds")


def public_pem(public_key: bytes) -> str:
    """The raw Ed25519 public key as a PEM ``PUBLIC KEY`` block (what OpenSSL reads)."""
    key = Ed25519PublicKey.from_public_bytes(public_key)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_info(keyring: KeyRing) -> dict[str, str]:
    """What a data subject needs to check a signature: the key in hex and PEM, and its fingerprint."""
    key = keyring.document_public_key()
    return {
        "algorithm": ALGORITHM,
        "use": "signed documents of this installation: technical file, erasure receipts, access copies",
        "public_key": key.hex(),
        "key_sha256": key_fingerprint(key),
        "pem": public_pem(key),
        "message_format": MESSAGE_FORMAT,
    }


def sign_bytes(
    keyring: KeyRing, kind: str, data: bytes, *, at: datetime, file: str | None = None
) -> dict[str, str]:
    """The signature record of ``data`` as a document of ``kind`` (see the module)."""
    if not _KIND.fullmatch(kind):
        raise InputError(f"a document kind is lower-case letters, digits and '-', not {kind!r}")
    sha256 = hashlib.sha256(data).hexdigest()
    signed_at = _timestamp(at)
    signature = keyring.sign_document(signed_message(kind, sha256, signed_at))
    record = {"kind": kind, "algorithm": ALGORITHM}
    if file is not None:
        record["file"] = file
    return record | {
        "sha256": sha256,
        "signed_at": signed_at,
        "key_sha256": key_fingerprint(keyring.document_public_key()),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def record_bytes(record: Mapping[str, str]) -> bytes:
    """A signature record as the ``.sig.json`` file holds it."""
    return (json.dumps(dict(record), indent=2) + "\n").encode()


def sign_file(keyring: KeyRing, kind: str, path: Path, *, at: datetime) -> Path:
    """Sign the file at ``path`` as it lies on disk; its record goes to ``FILE.sig.json`` beside it,
    with ``HOW_TO_CHECK`` (the key and the steps, in plain words). Returns the record's path."""
    record = sign_bytes(keyring, kind, _read(path, "document"), at=at, file=path.name)
    target = signature_path(path)
    atomic_write(target, record_bytes(record))
    atomic_write(path.with_name(HOW_TO_CHECK), how_to_check(public_key_info(keyring), path.name).encode())
    return target


#: The plain-text note written beside a signed file (:func:`sign_file`).
HOW_TO_CHECK = "how-to-check-the-signature.txt"


def how_to_check(key: Mapping[str, str], file: str) -> str:
    """How the person who receives ``file`` checks its signature, with the key that made it."""
    return (
        f"How to check that {file} is the file we made, unchanged\n\n"
        f"{file} is signed with our Ed25519 signing key; the signature is in {file}{SUFFIX}.\n"
        f"The key's fingerprint (SHA-256 of its 32 bytes): {key['key_sha256']}\n"
        "Check that this fingerprint is the one we publish (our request portal, and the address\n"
        "/api/signing-key of our service): a key found beside a file proves nothing by itself.\n\n"
        f"The public key, hexadecimal: {key['public_key']}\n"
        f"The public key, PEM (save it as lethe-signing-key.pem):\n{key['pem']}\n"
        f"With Lethe: lethe signature verify {file} --public-key {key['public_key']}\n\n"
        "With OpenSSL 3 (and jq, sha256sum, base64), in this folder:\n"
        f"FILE={file}\n{OPENSSL_RECIPE}"
        "It prints 'Signature Verified Successfully' for the file as we made it, and\n"
        "'Signature Verification Failure' if a single byte of it was changed.\n"
    )


def sign_object(keyring: KeyRing, kind: str, value: Mapping[str, Any], *, at: datetime) -> dict[str, Any]:
    """``value`` with its ``signature`` member: the record over its canonical JSON."""
    body = {k: v for k, v in value.items() if k != "signature"}
    return body | {"signature": sign_bytes(keyring, kind, canonical_json(body), at=at)}


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of checking one signature: ``valid``, ``invalid`` (with the reason) or
    ``unsigned`` (an object made before signing, which is no forgery)."""

    status: str
    reason: str
    kind: str | None = None
    sha256: str | None = None
    signed_at: str | None = None
    key_sha256: str | None = None
    label: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "invalid"

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "ok": self.ok,
            "reason": self.reason,
            "kind": self.kind,
            "sha256": self.sha256,
            "signed_at": self.signed_at,
            "key_sha256": self.key_sha256,
            "label": self.label,
        }


def _malformed(what: str) -> Check:
    return Check("invalid", f"the signature record is malformed: {what}")


def verify(data: bytes, record: object, public_key: bytes, *, label: str | None = None) -> Check:
    """Check ``record`` (a signature record) against ``data`` under ``public_key`` (raw, 32 bytes)."""
    if not isinstance(record, Mapping):
        return _malformed("it is not a JSON object")
    kind, sha256, signed_at = record.get("kind"), record.get("sha256"), record.get("signed_at")
    key_sha256, signature = record.get("key_sha256"), record.get("signature")
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        return _malformed("no valid kind")
    if record.get("algorithm", ALGORITHM) != ALGORITHM:
        return _malformed(f"algorithm {record.get('algorithm')!r}, not {ALGORITHM}")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        return _malformed("no valid sha256")
    if not isinstance(signed_at, str) or not signed_at.isascii() or not signed_at:
        return _malformed("no valid signed_at")
    try:
        raw = base64.b64decode(str(signature), validate=True)
    except (binascii.Error, ValueError):
        return _malformed("the signature is not base64")
    facts = {"kind": kind, "sha256": sha256, "signed_at": signed_at, "label": label}
    mine = key_fingerprint(public_key)
    if key_sha256 != mine:
        reason = f"signed by another key (fingerprint {key_sha256}), not the key given ({mine})"
        return Check("invalid", reason, key_sha256=str(key_sha256), **facts)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        reason = (
            f"the document was changed after it was signed: its sha256 is {actual}, the signature "
            f"covers {sha256}"
        )
        return Check("invalid", reason, key_sha256=mine, **facts)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw, signed_message(kind, sha256, signed_at))
    except InvalidSignature:
        reason = "the signature does not verify: the signature record was altered, or another key made it"
        return Check("invalid", reason, key_sha256=mine, **facts)
    reason = f"valid: {kind} signed at {signed_at} by the key {mine[:16]}..."
    return Check("valid", reason, key_sha256=mine, **facts)


def verify_object(value: Mapping[str, Any], public_key: bytes, *, label: str | None = None) -> Check:
    """Check a JSON object that carries its own ``signature`` member (see the module)."""
    record = value.get("signature")
    if record is None:
        return Check("unsigned", UNSIGNED, label=label)
    body = {k: v for k, v in value.items() if k != "signature"}
    return verify(canonical_json(body), record, public_key, label=label)


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def verify_file(path: Path, public_key: bytes, *, signature: Path | None = None) -> list[Check]:
    """Check a signed file: against ``signature`` (default ``FILE.sig.json``) when that exists;
    otherwise ``path`` must be JSON carrying its own signature: an object (a receipt), a list of
    them (``erasure_receipts.json``), or a request's outcome with its ``receipts``."""
    data = _read(path, "document")
    detached = signature if signature is not None else signature_path(path)
    if signature is not None or detached.is_file():
        try:
            record = json.loads(_read(detached, "signature file"))
        except ValueError:
            return [_malformed(f"{detached.name} is not JSON")]
        return [verify(data, record, public_key, label=path.name)]
    try:
        value = json.loads(data)
    except ValueError:
        raise NotFoundError(
            f"no signature: no {detached.name} beside {path.name}, which is not JSON"
        ) from None
    found = _signed_objects(value)
    if not found:
        raise NotFoundError(f"no signature: no {detached.name} beside {path.name}, and none inside it")
    return [verify_object(item, public_key, label=label) for label, item in found]


def _signed_objects(value: object) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects of a JSON document that carry (or, made before signing, lack) a signature."""
    if isinstance(value, Mapping):
        if "signature" in value or "job_id" in value:
            return [(_label(value), value)]
        outcome = value.get("outcome")
        nested = value.get("receipts") or (outcome.get("receipts") if isinstance(outcome, Mapping) else None)
        return _signed_objects(nested) if isinstance(nested, list) else []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [(_label(v), v) for v in value if isinstance(v, Mapping)]
    return []


def _label(value: Mapping[str, Any]) -> str:
    return f"erasure job {value['job_id']}" if "job_id" in value else "document"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no {what} {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def parse_public_key(given: str) -> bytes:
    """A raw Ed25519 public key from what a person has: 64 hexadecimal digits, or a file holding
    them, a PEM ``PUBLIC KEY``, or the JSON of ``GET /api/signing-key``."""
    text = given.strip()
    if _HEX_KEY.fullmatch(text):
        return bytes.fromhex(text)
    path = Path(given).expanduser()
    if not path.is_file():
        raise InputError(
            f"the public key {given!r} is neither 64 hexadecimal digits nor a file holding an Ed25519 "
            "public key (hex, PEM, or the JSON of GET /api/signing-key)"
        )
    if path.stat().st_size > _MAX_KEY_FILE_BYTES:
        raise InputError(f"{path} is too large to be a public key")
    content = _read(path, "public key file").decode("utf-8", "replace").strip()
    if content.startswith("{"):
        try:
            content = str(json.loads(content).get("public_key", ""))
        except (ValueError, AttributeError):
            raise InputError(f"{path} is JSON without a public_key member") from None
    if _HEX_KEY.fullmatch(content):
        return bytes.fromhex(content)
    try:
        key = serialization.load_pem_public_key(content.encode())
    except ValueError:
        raise InputError(f"{path} holds no Ed25519 public key (hex or PEM)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path} holds a public key that is not Ed25519")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
