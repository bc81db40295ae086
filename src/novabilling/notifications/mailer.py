"""Delivering email: one ``Mailer`` protocol, an SMTP mailer and an ``.eml`` file mailer.

SMTP URL schemes (``NB_SMTP_URL``; user and password are percent-decoded):

* ``smtp://user:pass@host:port`` — plain connection, upgraded with STARTTLS **when the
  server offers it** (opportunistic). Default port 587.
* ``smtp+starttls://…`` — STARTTLS is required; a server that does not offer it fails.
  Default port 587.
* ``smtps://…`` — implicit TLS from the first byte. Default port 465.

Certificates are always verified. ``?timeout=<seconds>`` overrides the default timeout (10 s)
that applies to connecting and to each SMTP command.

A tenant's own settings (``settings.smtp``: host, port, secure, user, password, from,
fromName) map onto the same config: ``secure: true`` is implicit TLS, otherwise
opportunistic STARTTLS (nodemailer's meaning, which the original used).

The embedded default is ``FileMailer(<NB_DATA_DIR>/mail)``: each message becomes one
``.eml`` file whose name sorts by time.

Every failure is a ``MailError`` carrying the server's reply text and never the password.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from novabilling.errors import BusinessRule
from novabilling.kit.clock import SystemClock
from novabilling.notifications.views import Mailbox

DEFAULT_TIMEOUT_SECONDS = 10.0
_DEFAULT_PORTS = {"smtp": 587, "smtp+starttls": 587, "smtps": 465}


class MailError(BusinessRule):
    """Sending failed. ``message`` holds the SMTP reply (code and text) or the network error.

    A ``BusinessRule`` (400) so ``POST /api/tenants/me/smtp/test`` can surface it as is.
    """

    default_message = "Sending email failed"


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    tls: str  # "implicit" | "starttls" (required) | "opportunistic"
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def __repr__(self) -> str:  # never print the password
        return (
            f"SmtpConfig(host={self.host!r}, port={self.port}, tls={self.tls!r}, "
            f"username={self.username!r}, timeout={self.timeout})"
        )


def parse_smtp_url(url: str) -> SmtpConfig:
    """``smtp[s]://[user[:pass]@]host[:port][?timeout=s]`` -> ``SmtpConfig`` (see module doc)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MailError(f"Invalid SMTP URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise MailError("Invalid SMTP URL: scheme must be smtp, smtp+starttls or smtps")
    if not parts.hostname:
        raise MailError("Invalid SMTP URL: host is missing")
    timeout = DEFAULT_TIMEOUT_SECONDS
    query = parse_qs(parts.query)
    if "timeout" in query:
        try:
            timeout = float(query["timeout"][-1])
        except ValueError:
            raise MailError("Invalid SMTP URL: timeout must be a number") from None
    tls = {"smtps": "implicit", "smtp+starttls": "starttls", "smtp": "opportunistic"}[scheme]
    return SmtpConfig(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )


def sender_from_settings(smtp: Mapping[str, Any] | None) -> Mailbox | None:
    """The ``from``/``fromName`` of a tenant's ``settings.smtp``, if an address is set."""
    if not smtp or not str(smtp.get("from") or "").strip():
        return None
    return Mailbox(address=str(smtp["from"]).strip(), name=str(smtp.get("fromName") or "").strip())


class SmtpMailer:
    """Sends through an SMTP server with aiosmtplib; one connection per message."""

    def __init__(
        self,
        url: str | None = None,
        *,
        config: SmtpConfig | None = None,
        sender: Mailbox | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if config is None:
            if url is None:
                raise MailError("SMTP is not configured")
            config = parse_smtp_url(url)
        self.config = config
        self.sender = sender  # the tenant's own From, when its settings name one
        self.tls_context = tls_context  # e.g. a private CA; default: system trust store

    @classmethod
    def from_tenant_settings(
        cls, smtp: Mapping[str, Any], *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> SmtpMailer:
        host = str(smtp.get("host") or "").strip()
        if not host:
            raise MailError("SMTP settings are incomplete: host is missing")
        secure = smtp.get("secure") in (True, "true", "True", "1", 1)
        try:
            port = int(smtp.get("port") or (465 if secure else 587))
        except (TypeError, ValueError):
            raise MailError("SMTP settings are invalid: port must be a number") from None
        config = SmtpConfig(
            host=host,
            port=port,
            tls="implicit" if secure else "opportunistic",
            username=str(smtp["user"]) if smtp.get("user") else None,
            password=str(smtp["password"]) if smtp.get("password") else None,
            timeout=timeout,
        )
        return cls(config=config, sender=sender_from_settings(smtp))

    async def send(self, message: EmailMessage) -> None:
        cfg = self.config
        try:
            await aiosmtplib.send(
                message,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password,
                use_tls=cfg.tls == "implicit",
                start_tls={"starttls": True, "opportunistic": None}.get(cfg.tls, False),
                timeout=cfg.timeout,
                tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise MailError(self._clean(f"SMTP recipients refused: {text}")) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(self._clean(f"SMTP error {exc.code}: {exc.message}")) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise MailError(
                self._clean(f"SMTP delivery to {cfg.host}:{cfg.port} failed: {detail}")
            ) from None

    def _clean(self, text: str) -> str:
        password = self.config.password
        return text.replace(password, "****") if password else text


class FileMailer:
    """Writes each message to ``<directory>/<UTC time>-<seq>-<random>.eml`` atomically.

    Names sort in sending order (time, then a per-process sequence). The file appears
    complete or not at all: written to a hidden temp file, fsynced, then renamed.
    """

    _sequence = itertools.count(1)

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def send(self, message: EmailMessage) -> None:
        data = message.as_bytes()
        stamp = f"{SystemClock().now():%Y%m%dT%H%M%S.%fZ}"
        name = f"{stamp}-{next(self._sequence):06d}-{secrets.token_hex(4)}.eml"
        try:
            await asyncio.to_thread(self._write, name, data)
        except OSError as exc:
            raise MailError(f"Writing {name} to {self.directory} failed: {exc}") from None

    def _write(self, name: str, data: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / name
        temp = self.directory / f".{name}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        return target


class MemoryMailer:
    """Keeps sent messages in ``outbox``; a test double for services that send mail."""

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.outbox.append(message)


def default_mailer(*, smtp_url: str | None, data_dir: Path) -> Mailer:
    """The system mailer: ``NB_SMTP_URL`` when set, else ``.eml`` files in ``data_dir/mail``."""
    if smtp_url:
        return SmtpMailer(smtp_url)
    return FileMailer(Path(data_dir) / "mail")
