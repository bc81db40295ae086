"""``kit.aesgcm``: AES-256-GCM through OpenSSL gives the GCM specification's answers, the
same bytes as ``cryptography`` (which sealed every token before), and refuses any change."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as Reference

from novabilling.kit.aesgcm import AESGCM, InvalidTag
from novabilling.kit.crypto import Encryptor

# McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13, 14 and 16
VECTORS = [
    ("00" * 32, "00" * 12, "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    (
        "00" * 32,
        "00" * 12,
        "00" * 16,
        "",
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
    ),
    (
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
]


@pytest.mark.parametrize(("key", "nonce", "plain", "aad", "sealed"), VECTORS)
def test_specification_vectors(key: str, nonce: str, plain: str, aad: str, sealed: str) -> None:
    aead = AESGCM(bytes.fromhex(key))
    args = bytes.fromhex(nonce), bytes.fromhex(plain), bytes.fromhex(aad)
    assert aead.encrypt(*args).hex() == sealed
    assert aead.decrypt(args[0], bytes.fromhex(sealed), args[2]).hex() == plain


def test_same_bytes_as_cryptography_and_every_flipped_bit_refused() -> None:
    for n in range(64):
        key, nonce = os.urandom(32), os.urandom(12)
        plain, aad = os.urandom(n * 3), os.urandom(n % 7)
        sealed = AESGCM(key).encrypt(nonce, plain, aad)
        assert sealed == Reference(key).encrypt(nonce, plain, aad)
        assert AESGCM(key).decrypt(nonce, sealed, aad) == plain
        flipped = bytearray(sealed)
        flipped[(n * 5) % len(sealed)] ^= 1 << (n % 8)
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(nonce, bytes(flipped), aad)
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(nonce, sealed, aad + b"x")
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(os.urandom(12), sealed, aad)


def test_short_input_and_wrong_sizes() -> None:
    with pytest.raises(InvalidTag):
        AESGCM(bytes(32)).decrypt(bytes(12), bytes(15), b"")
    with pytest.raises(ValueError):
        AESGCM(bytes(16))
    with pytest.raises(ValueError):
        AESGCM(bytes(32)).encrypt(bytes(16), b"x", b"")


def test_a_token_sealed_by_cryptography_still_opens() -> None:
    """Sealed with ``cryptography``'s AESGCM under key 0..31 and nonce 0..11."""
    token = "v1:AAECAwQFBgcICQoLNGmJd6yTp0T-JPT51J1YriqJsKwamYoF3xlNlyRfn_Ac"
    opened = Encryptor(bytes(range(32))).decrypt(token, aad=b"tenant:42:paystack")
    assert opened == "sk_live_secret é"
