"""What a log line must never carry (STYLE convention 14; issue 14, defect 2).

Two layers:

- ``is_secret_key``: structured fields whose *name* says secret (``password``,
  ``api_key``, ``Authorization`` ...) are replaced by ``***`` (``kit.logging``).
- ``scrub``: the finished text of every line (exception messages and tracebacks included)
  loses anything *shaped* like a secret — our API keys, provider keys, bearer tokens, JWTs,
  argon2 hashes, the password part of URLs — and every value registered with
  ``register_secret`` (the process's own ``NB_SECRET_KEY``, ``NB_ENCRYPTION_KEY``, SMTP and
  database passwords).
"""

from __future__ import annotations

import functools
import re
import threading

REDACTED = "***"

# Compared against the key lowercased with "_" and "-" removed, so "api_key", "X-Api-Key",
# "apiKey" and "client_secret" all match.
_SECRET_KEY_PATTERN = re.compile(
    r"password|passwd|secret|token|apikey|authorization|credential|cookie|privatekey|passkey"
)

# (a substring every match contains, pattern, replacement): the regex only runs when
# the cheap substring test finds its anchor (most log lines contain none).
_SHAPES = [
    # our API keys (sk_live_ + 64 hex), Paystack / Stripe secret and restricted keys
    (("_live_", "_test_"), re.compile(r"\b((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{8,}"), r"\1***"),
    (("whsec_",), re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"), "whsec_***"),
    (("FLWSECK",), re.compile(r"\bFLWSECK(?:_TEST)?-[A-Za-z0-9-]{8,}"), "FLWSECK-***"),
    (
        ("bearer", "basic"),  # tested on the lower-cased text
        re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9._~+/=-]{16,}"),
        r"\1\2***",
    ),
    (
        ("eyJ",),
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        "***jwt***",
    ),
    (("$argon2",), re.compile(r"\$argon2(?:id|i|d)\$[^\s'\";]+"), "$argon2***"),
    # scheme://user:password@host -> scheme://user:***@host
    (("://",), re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@"), r"\1***@"),
]
_CASELESS = frozenset({"bearer", "basic"})

_MIN_REGISTERED = 8  # never register short values: "***"-ing every "USD" helps nobody


class _Registry:
    lock = threading.Lock()
    values: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None


def register_secret(*values: str | None) -> None:
    """Scrub these exact values from every future log line (process-wide)."""
    fresh = {v for v in values if v and len(v) >= _MIN_REGISTERED}
    if not fresh - _Registry.values:
        return
    with _Registry.lock:
        merged = _Registry.values | fresh
        ordered = sorted(merged, key=len, reverse=True)  # longest first
        _Registry.pattern = re.compile("|".join(re.escape(v) for v in ordered))
        _Registry.values = frozenset(merged)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Cached: log lines use the same few dozen keys over and over."""
    normalized = key.lower().replace("_", "").replace("-", "")
    return _SECRET_KEY_PATTERN.search(normalized) is not None


def scrub(text: str) -> str:
    """``text`` without anything shaped like a secret or registered as one."""
    registered = _Registry.pattern
    if registered is not None:
        text = registered.sub(REDACTED, text)
    lowered = text.lower()
    for anchors, pattern, replacement in _SHAPES:
        if any((a in lowered) if a in _CASELESS else (a in text) for a in anchors):
            text = pattern.sub(replacement, text)
            lowered = text.lower()
    return text
