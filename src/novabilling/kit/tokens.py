"""JWTs: access tokens, refresh tokens and portal tokens are signed with different keys
derived from ``NB_SECRET_KEY``, so one can never pass for another."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
_IAT_LEEWAY_SECONDS = 60


def _derive(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class RefreshClaims:
    tenant_id: str
    token_id: str
    family_id: str


@dataclass(frozen=True)
class PortalClaims:
    """A customer portal token: one customer (by id and ``externalId``) of one tenant."""

    tenant_id: str
    customer_id: str
    external_id: str


class TokenError(Exception):
    pass


class TokenSigner:
    def __init__(self, secret: str, *, access_minutes: int, refresh_days: int) -> None:
        self._access_key = _derive(secret, "access-token")
        self._refresh_key = _derive(secret, "refresh-token")
        self._portal_key = _derive(secret, "portal-token")
        self.access_ttl = timedelta(minutes=access_minutes)
        self.refresh_ttl = timedelta(days=refresh_days)

    def access_token(self, *, tenant_id: str, email: str, now: datetime) -> str:
        claims = {
            "sub": tenant_id,
            "email": email,
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "typ": "access",
        }
        return jwt.encode(claims, self._access_key, algorithm=ALGORITHM)

    def refresh_token(self, *, tenant_id: str, token_id: str, family_id: str, now: datetime) -> str:
        claims = {
            "sub": tenant_id,
            "jti": token_id,
            "fam": family_id,
            "iat": int(now.timestamp()),
            "exp": int((now + self.refresh_ttl).timestamp()),
            "typ": "refresh",
        }
        return jwt.encode(claims, self._refresh_key, algorithm=ALGORITHM)

    def portal_token(self, claims: PortalClaims, *, now: datetime, expires: datetime) -> str:
        body = {
            "sub": claims.tenant_id,
            "cus": claims.customer_id,
            "ext": claims.external_id,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "typ": "portal",
        }
        return jwt.encode(body, self._portal_key, algorithm=ALGORITHM)

    def read_portal(self, token: str, *, now: datetime) -> PortalClaims:
        """The claims of a valid, unexpired portal token, or raise TokenError."""
        claims = self._decode(token, self._portal_key, now)
        customer, external = claims.get("cus"), claims.get("ext")
        if claims.get("typ") != "portal" or not isinstance(customer, str):
            raise TokenError("not a portal token")
        if not isinstance(external, str):
            raise TokenError("not a portal token")
        return PortalClaims(str(claims["sub"]), customer, external)

    def read_access(self, token: str, *, now: datetime) -> str:
        """Return the tenant id of a valid access token, or raise TokenError."""
        claims = self._decode(token, self._access_key, now)
        if claims.get("typ") != "access":
            raise TokenError("not an access token")
        return str(claims["sub"])

    def read_refresh(self, token: str, *, now: datetime) -> RefreshClaims:
        claims = self._decode(token, self._refresh_key, now)
        if claims.get("typ") != "refresh" or "jti" not in claims or "fam" not in claims:
            raise TokenError("not a refresh token")
        return RefreshClaims(str(claims["sub"]), str(claims["jti"]), str(claims["fam"]))

    @staticmethod
    def _decode(token: str, key: bytes, now: datetime) -> dict[str, object]:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                # time claims are checked below against our Clock, not the system time
                options={
                    "require": ["sub", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or exp <= int(now.timestamp()):
            raise TokenError("token expired")
        if not isinstance(iat, int) or iat > int(now.timestamp()) + _IAT_LEEWAY_SECONDS:
            raise TokenError("token issued in the future")
        return claims
