"""Secrets at rest and small hashing helpers (DESIGN rule 6).

Provider credentials and tenant DB passwords are sealed with AES-256-GCM (``kit.aesgcm``:
OpenSSL through ``ctypes``; ``cryptography`` cost ~9 MiB per process). A token is
``"v1:" + urlsafe_b64(nonce || ciphertext_with_tag)`` (no padding): the version prefix lets a
later key or algorithm live next to this one. ``aad`` binds a token to its context (for
example ``b"tenant:42:paystack"``) so a ciphertext copied to another row fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets

from novabilling.kit.aesgcm import AESGCM, InvalidTag

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
TOKEN_VERSION = "v1"


class DecryptionError(Exception):
    """A token that is malformed, tampered with, or sealed with another key or aad."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)


class Encryptor:
    """AES-256-GCM with a random 96-bit nonce per message."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"encryption key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, aad: bytes = b"") -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return f"{TOKEN_VERSION}:{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str, *, aad: bytes = b"") -> str:
        version, sep, body = token.partition(":")
        if not sep or version != TOKEN_VERSION:
            raise DecryptionError("unknown token version")
        try:
            raw = _b64decode(body)
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise DecryptionError("token is not valid base64") from exc
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("token is too short")
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag as exc:
            raise DecryptionError("token failed authentication") from exc
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError as exc:  # pragma: no cover - we only seal str
            raise DecryptionError("plaintext is not UTF-8") from exc


def key_from_setting(value: str) -> bytes:
    """Parse ``NB_ENCRYPTION_KEY``: 64 hex chars or urlsafe base64 of 32 bytes."""
    text = value.strip()
    if len(text) == KEY_BYTES * 2:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass  # may still be base64 of another length; fall through
    try:
        raw = _b64decode(text)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ValueError("encryption key must be 64 hex chars or base64 of 32 bytes") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError("encryption key must be 64 hex chars or base64 of 32 bytes")
    return raw


def generate_key_setting() -> str:
    """A fresh key in the hex form ``key_from_setting`` accepts (development bootstrap)."""
    return secrets.token_hex(KEY_BYTES)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def random_hex(nbytes: int) -> str:
    return secrets.token_hex(nbytes)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode("utf-8") if isinstance(a, str) else a
    right = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def hmac_sha256_hex(key: bytes | str, msg: bytes) -> str:
    raw_key = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(raw_key, msg, hashlib.sha256).hexdigest()
