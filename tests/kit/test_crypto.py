import base64

import pytest

from novabilling.kit.crypto import (
    DecryptionError,
    Encryptor,
    constant_time_equals,
    generate_key_setting,
    hmac_sha256_hex,
    key_from_setting,
    random_hex,
    sha256_hex,
)

KEY = bytes(range(32))


def test_round_trip_and_versioned_token() -> None:
    enc = Encryptor(KEY)
    token = enc.encrypt("sk_live_secret", aad=b"tenant:1")
    assert token.startswith("v1:")
    assert "sk_live_secret" not in token
    assert "=" not in token
    assert enc.decrypt(token, aad=b"tenant:1") == "sk_live_secret"


def test_same_plaintext_gives_different_tokens() -> None:
    enc = Encryptor(KEY)
    assert enc.encrypt("x") != enc.encrypt("x")


def test_unicode_and_empty() -> None:
    enc = Encryptor(KEY)
    for text in ["", "mot de passe é ✓ 🔑"]:
        assert enc.decrypt(enc.encrypt(text)) == text


def test_wrong_key_fails() -> None:
    token = Encryptor(KEY).encrypt("secret")
    with pytest.raises(DecryptionError):
        Encryptor(bytes(32)).decrypt(token)


def test_wrong_aad_fails() -> None:
    enc = Encryptor(KEY)
    token = enc.encrypt("secret", aad=b"tenant:1")
    with pytest.raises(DecryptionError):
        enc.decrypt(token, aad=b"tenant:2")
    with pytest.raises(DecryptionError):
        enc.decrypt(token)


def test_tampered_token_fails() -> None:
    enc = Encryptor(KEY)
    token = enc.encrypt("secret")
    body = bytearray(base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4)))
    body[-1] ^= 1
    tampered = "v1:" + base64.urlsafe_b64encode(bytes(body)).decode().rstrip("=")
    with pytest.raises(DecryptionError):
        enc.decrypt(tampered)


@pytest.mark.parametrize("bad", ["", "v1:", "v2:abcd", "nocolon", "v1:!!!!", "v1:AAAA"])
def test_malformed_tokens_fail(bad: str) -> None:
    with pytest.raises(DecryptionError):
        Encryptor(KEY).decrypt(bad)


def test_key_length_enforced() -> None:
    with pytest.raises(ValueError):
        Encryptor(b"short")


def test_key_from_setting_hex_and_base64() -> None:
    assert key_from_setting(KEY.hex()) == KEY
    assert key_from_setting(KEY.hex().upper()) == KEY
    assert key_from_setting(base64.urlsafe_b64encode(KEY).decode()) == KEY
    assert key_from_setting(base64.urlsafe_b64encode(KEY).decode().rstrip("=")) == KEY
    generated = generate_key_setting()
    assert len(key_from_setting(generated)) == 32


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "zz" * 32, KEY.hex()[:-2], base64.urlsafe_b64encode(bytes(16)).decode(), "a b"],
)
def test_key_from_setting_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        key_from_setting(bad)


def test_hash_helpers() -> None:
    assert sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert len(random_hex(16)) == 32
    assert random_hex(8) != random_hex(8)
    assert constant_time_equals("abc", "abc")
    assert not constant_time_equals("abc", "abd")
    assert constant_time_equals(b"abc", "abc")
    # RFC 4231 test case 2
    assert (
        hmac_sha256_hex("Jefe", b"what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?") == hmac_sha256_hex(
        "Jefe", b"what do ya want for nothing?"
    )
