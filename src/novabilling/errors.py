"""Domain errors. Services raise these; only the HTTP layer (``novabilling.http_errors``)
turns them into the contract's error body (contract README §7)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One broken rule on one wire field (dotted path, e.g. ``items.0.unitAmount``)."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error a service may raise. ``status`` is the HTTP status it maps to."""

    status: int = 400
    default_message: str = "Bad Request"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class Invalid(DomainError):
    """Input that breaks a rule: 400 ``Validation failed`` naming the field(s)."""

    status = 400
    default_message = "Validation failed"

    def __init__(self, field: str, message: str | None = None) -> None:
        text = message if message else f"{field} is invalid"
        if not text.startswith(field + " "):
            text = f"{field} {text}"
        self.errors = [FieldError(field=field, message=text)]
        super().__init__("Validation failed")


class FieldRule(Invalid):
    """A rule the contract words as its own 400 message (e.g. ``Percentage discount must
    be between 0 and 100``) that is still about one field: that message, and ``errors``
    naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.errors = [FieldError(field=field, message=message)]
        self.message = message
        self.args = (message,)


class BusinessRule(DomainError):
    """A request that is well formed but not allowed in the current state (400)."""

    status = 400


class Unauthorized(DomainError):
    status = 401
    default_message = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    default_message = "Forbidden"


class NotFound(DomainError):
    status = 404
    default_message = "Not found"


class Conflict(DomainError):
    status = 409
    default_message = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    default_message = "Payload Too Large"


class RateLimited(DomainError):
    status = 429
    default_message = "Too Many Requests"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ServiceUnavailable(DomainError):
    status = 503
    default_message = "Service Unavailable"


class ProvisioningFailed(DomainError):
    status = 500
    default_message = "Tenant provisioning failed"
