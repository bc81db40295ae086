"""A tenant's own SMTP password (``settings.smtp.password``), sealed at rest like provider
credentials (issue 14, defect 12): AES-256-GCM through ``kit.crypto.Encryptor``, bound to
the tenant (aad ``<tenant id>:smtp``), stored as ``"enc:" + token``.

- ``seal_password``: what PATCH /api/tenants/me stores (every incoming password is sealed,
  whatever it looks like).
- ``open_settings``: the ``smtp`` mapping with its password in clear, for the mailer only.
  A password stored before sealing existed (no ``enc:`` prefix) is used as it is;
  ``seal_stored`` (run by ``novabilling migrate``) seals those in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novabilling.kit.crypto import DecryptionError, Encryptor
from novabilling.notifications.mailer import MailError

SEALED_PREFIX = "enc:"


def _aad(tenant_id: str) -> bytes:
    return f"{tenant_id}:smtp".encode()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal_password(
    smtp: Mapping[str, Any], *, encryptor: Encryptor, tenant_id: str
) -> dict[str, Any]:
    """``smtp`` with its (clear) password sealed; no password, nothing to do."""
    out = dict(smtp)
    password = out.get("password")
    if isinstance(password, str) and password:
        out["password"] = SEALED_PREFIX + encryptor.encrypt(password, aad=_aad(tenant_id))
    return out


def seal_stored(
    settings: Mapping[str, Any] | None, *, encryptor: Encryptor, tenant_id: str
) -> dict[str, Any] | None:
    """Settings whose clear SMTP password gets sealed, or None when nothing changes."""
    smtp = (settings or {}).get("smtp")
    if not isinstance(smtp, Mapping):
        return None
    password = smtp.get("password")
    if not isinstance(password, str) or not password or is_sealed(password):
        return None
    sealed = seal_password(smtp, encryptor=encryptor, tenant_id=tenant_id)
    return {**(settings or {}), "smtp": sealed}


def open_settings(
    smtp: Mapping[str, Any], *, encryptor: Encryptor, tenant_id: str
) -> dict[str, Any]:
    """``smtp`` with its password in clear (``MailError`` if it cannot be decrypted)."""
    out = dict(smtp)
    password = out.get("password")
    if is_sealed(password):
        assert isinstance(password, str)
        try:
            out["password"] = encryptor.decrypt(
                password.removeprefix(SEALED_PREFIX), aad=_aad(tenant_id)
            )
        except DecryptionError:
            raise MailError("The stored SMTP password could not be decrypted") from None
    return out
