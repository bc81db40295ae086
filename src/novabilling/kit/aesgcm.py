"""AES-256-GCM from the OpenSSL library the interpreter already loaded (``ssl``, ``hashlib``).

``cryptography`` (Rust bindings over a statically linked OpenSSL) cost every API and
worker process ~9 MiB resident (7 MiB of it its shared object) for the one primitive
``kit.crypto`` seals secrets with; PyJWT and redis-py import it too when it is installed
(docs/benchmarks.md, Memory). This module calls OpenSSL's EVP AEAD interface through
``ctypes``: the same algorithm and wire form (12-byte nonce, ciphertext, 16-byte tag
appended), so tokens sealed before decrypt unchanged; tests check it against NIST's test
vectors and against ``cryptography`` (a development dependency).

A cipher context is created and freed per call (no state shared between threads).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib  # noqa: F401 - loads the interpreter's libcrypto before it is looked up
from collections.abc import Iterator

_GCM_GET_TAG = 0x10  # EVP_CTRL_AEAD_GET_TAG
_GCM_SET_TAG = 0x11  # EVP_CTRL_AEAD_SET_TAG
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class InvalidTag(Exception):
    """The ciphertext, tag, nonce or associated data do not match the key."""


def _load() -> ctypes.CDLL:
    def names() -> Iterator[str | None]:
        yield from ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so")
        yield ctypes.util.find_library("crypto")  # runs ldconfig: only if the rest failed

    for name in names():
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "EVP_aes_256_gcm"):
            break
    else:  # pragma: no cover - every supported platform has OpenSSL 1.1 or 3
        raise ImportError("OpenSSL's libcrypto (EVP_aes_256_gcm) was not found")
    ptr, size, out_len = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)
    buf = ctypes.c_char_p
    lib.EVP_CIPHER_CTX_new.restype = ptr
    lib.EVP_CIPHER_CTX_new.argtypes = []
    lib.EVP_CIPHER_CTX_free.restype = None
    lib.EVP_CIPHER_CTX_free.argtypes = [ptr]
    lib.EVP_aes_256_gcm.restype = ptr
    lib.EVP_aes_256_gcm.argtypes = []
    lib.EVP_CIPHER_CTX_ctrl.restype = size
    lib.EVP_CIPHER_CTX_ctrl.argtypes = [ptr, size, size, ptr]
    for direction in ("Encrypt", "Decrypt"):
        init = getattr(lib, f"EVP_{direction}Init_ex")
        init.restype = size
        init.argtypes = [ptr, ptr, ptr, buf, buf]
        update = getattr(lib, f"EVP_{direction}Update")
        update.restype = size
        update.argtypes = [ptr, ptr, out_len, buf, size]
        final = getattr(lib, f"EVP_{direction}Final_ex")
        final.restype = size
        final.argtypes = [ptr, ptr, out_len]
    return lib


_lib = _load()
_CIPHER = _lib.EVP_aes_256_gcm()


def _check(ok: int, what: str) -> None:
    if ok != 1:
        raise RuntimeError(f"OpenSSL {what} failed")


class AESGCM:
    """``encrypt(nonce, data, aad) -> ciphertext || tag`` and its inverse, with a 32-byte
    key and a 12-byte nonce (the interface of ``cryptography``'s class of the same name,
    for the sizes ``kit.crypto`` uses)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"AES-256-GCM needs a {KEY_BYTES}-byte key")
        self._key = bytes(key)

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        _nonce(nonce)
        ctx = _lib.EVP_CIPHER_CTX_new()
        if not ctx:  # pragma: no cover - out of memory
            raise MemoryError("EVP_CIPHER_CTX_new")
        try:
            _check(_lib.EVP_EncryptInit_ex(ctx, _CIPHER, None, self._key, nonce), "init")
            written = ctypes.c_int(0)
            if aad:
                _check(_lib.EVP_EncryptUpdate(ctx, None, written, aad, len(aad)), "aad")
            out = ctypes.create_string_buffer(len(data) + TAG_BYTES)
            _check(_lib.EVP_EncryptUpdate(ctx, out, written, data, len(data)), "update")
            total = written.value
            final = ctypes.c_int(0)
            _check(_lib.EVP_EncryptFinal_ex(ctx, ctypes.byref(out, total), final), "final")
            total += final.value
            tag = ctypes.create_string_buffer(TAG_BYTES)
            _check(_lib.EVP_CIPHER_CTX_ctrl(ctx, _GCM_GET_TAG, TAG_BYTES, tag), "tag")
            return out.raw[:total] + tag.raw
        finally:
            _lib.EVP_CIPHER_CTX_free(ctx)

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        _nonce(nonce)
        if len(data) < TAG_BYTES:
            raise InvalidTag("ciphertext shorter than its tag")
        sealed, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
        ctx = _lib.EVP_CIPHER_CTX_new()
        if not ctx:  # pragma: no cover - out of memory
            raise MemoryError("EVP_CIPHER_CTX_new")
        try:
            _check(_lib.EVP_DecryptInit_ex(ctx, _CIPHER, None, self._key, nonce), "init")
            written = ctypes.c_int(0)
            if aad:
                _check(_lib.EVP_DecryptUpdate(ctx, None, written, aad, len(aad)), "aad")
            out = ctypes.create_string_buffer(max(len(sealed), 1))
            _check(_lib.EVP_DecryptUpdate(ctx, out, written, sealed, len(sealed)), "update")
            total = written.value
            tag_buf = ctypes.create_string_buffer(tag, TAG_BYTES)
            _check(_lib.EVP_CIPHER_CTX_ctrl(ctx, _GCM_SET_TAG, TAG_BYTES, tag_buf), "tag")
            final = ctypes.c_int(0)
            if _lib.EVP_DecryptFinal_ex(ctx, ctypes.byref(out, total), final) != 1:
                raise InvalidTag("authentication failed")
            return out.raw[: total + final.value]
        finally:
            _lib.EVP_CIPHER_CTX_free(ctx)


def _nonce(nonce: bytes) -> None:
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"AES-GCM here takes a {NONCE_BYTES}-byte nonce")
