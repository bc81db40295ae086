"""Mailers against a real aiosmtpd server on loopback, and the ``.eml`` file mailer."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from novabilling.kit.clock import SystemClock
from novabilling.notifications.mailer import (
    FileMailer,
    MailError,
    MemoryMailer,
    SmtpMailer,
    default_mailer,
    parse_smtp_url,
    sender_from_settings,
)
from tests.notifications.test_messages import EXPECTED, PDF, all_kinds, bodies

PASSWORD = "s3cr3t-p@ss"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class Refuser(Collector):
    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        return "550 5.1.1 Mailbox unavailable: no such user here"


def check_password(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == b"acme"
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def start(handler: Collector, **tls: Any) -> Iterator[tuple[Collector, int]]:
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,
        authenticator=check_password,
        **tls,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    yield from start(Collector())


@pytest.fixture
def refusing_server() -> Iterator[tuple[Collector, int]]:
    yield from start(Refuser())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a self-signed 127.0.0.1 cert."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = SystemClock().now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def received(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_smtp_mailer_delivers_every_kind(smtp_server: tuple[Collector, int]) -> None:
    handler, port = smtp_server
    mailer = SmtpMailer(f"smtp://acme:{PASSWORD}@127.0.0.1:{port}?timeout=5")
    kinds = all_kinds()
    for message in kinds.values():
        await mailer.send(message)

    assert len(handler.envelopes) == len(kinds)
    for kind, envelope in zip(kinds, handler.envelopes, strict=True):
        assert envelope.mail_from == "billing@acme.test"
        assert envelope.rcpt_tos == ["zoe@example.com"]
        message = received(envelope)
        subject, phrases = EXPECTED[kind]
        assert message["Subject"] == subject
        assert message["To"] == "Zoë Okafor <zoe@example.com>"
        text, html = bodies(message)
        for phrase in phrases:
            assert phrase in text and phrase in html, (kind, phrase)

    invoice = received(handler.envelopes[list(kinds).index("invoice_issued")])
    [attachment] = list(invoice.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "invoice-INV-00001.pdf"
    assert attachment.get_content() == PDF  # type: ignore[attr-defined]


async def test_tenant_settings_mailer_sends_with_its_own_login(
    smtp_server: tuple[Collector, int],
) -> None:
    handler, port = smtp_server
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "secure": False,
        "user": "acme",
        "password": PASSWORD,
        "from": "hello@acme.test",
        "fromName": "Acme",
    }
    mailer = SmtpMailer.from_tenant_settings(settings, timeout=5)
    assert mailer.sender is not None and mailer.sender.address == "hello@acme.test"
    assert PASSWORD not in repr(mailer.config)
    await mailer.send(all_kinds()["smtp_test"])
    assert received(handler.envelopes[0])["Subject"] == "SMTP test from Acme"


async def test_wrong_password_is_a_mail_error_without_the_password(
    smtp_server: tuple[Collector, int],
) -> None:
    _, port = smtp_server
    wrong = PASSWORD + "-wrong"
    mailer = SmtpMailer(f"smtp://acme:{wrong}@127.0.0.1:{port}?timeout=5")
    with pytest.raises(MailError) as caught:
        await mailer.send(all_kinds()["smtp_test"])
    assert "535" in caught.value.message
    assert wrong not in str(caught.value) and PASSWORD not in str(caught.value)


async def test_refused_recipient_raises_with_the_smtp_text(
    refusing_server: tuple[Collector, int],
) -> None:
    handler, port = refusing_server
    mailer = SmtpMailer(f"smtp://acme:{PASSWORD}@127.0.0.1:{port}?timeout=5")
    with pytest.raises(MailError) as caught:
        await mailer.send(all_kinds()["payment_received"])
    text = str(caught.value)
    assert "550" in text
    assert "Mailbox unavailable: no such user here" in text
    assert "zoe@example.com" in text
    assert PASSWORD not in text
    assert handler.envelopes == []


async def test_nothing_listening_fails_fast() -> None:
    port = free_port()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?timeout=1")
    started = time.monotonic()
    with pytest.raises(MailError, match=f"127.0.0.1:{port}"):
        await mailer.send(all_kinds()["smtp_test"])
    assert time.monotonic() - started < 1.5


async def test_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts TCP, never says hello
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        mailer = SmtpMailer(f"smtp://u:{PASSWORD}@127.0.0.1:{port}?timeout=0.3")
        started = time.monotonic()
        with pytest.raises(MailError) as caught:
            await mailer.send(all_kinds()["smtp_test"])
    assert time.monotonic() - started < 2
    assert "failed" in str(caught.value) and PASSWORD not in str(caught.value)


def test_url_parsing() -> None:
    plain = parse_smtp_url("smtp://user%40acme:p%3Ass@mail.acme.test")
    assert (plain.host, plain.port, plain.tls) == ("mail.acme.test", 587, "opportunistic")
    assert (plain.username, plain.password) == ("user@acme", "p:ss")
    implicit = parse_smtp_url("smtps://mail.acme.test")
    assert (implicit.port, implicit.tls, implicit.username) == (465, "implicit", None)
    assert parse_smtp_url("smtp+starttls://h:2525").tls == "starttls"
    assert parse_smtp_url("smtp://h:25?timeout=2.5").timeout == 2.5
    for bad in ("http://h", "smtp://", "smtp://h:99999", "smtp://h?timeout=x"):
        with pytest.raises(MailError, match="Invalid SMTP URL"):
            parse_smtp_url(bad)


def test_tenant_settings_secure_means_implicit_tls() -> None:
    mailer = SmtpMailer.from_tenant_settings({"host": "smtp.acme.test", "secure": True})
    assert (mailer.config.port, mailer.config.tls) == (465, "implicit")
    assert mailer.sender is None
    with pytest.raises(MailError, match="host is missing"):
        SmtpMailer.from_tenant_settings({"port": 25})
    assert sender_from_settings({"from": " a@b.test ", "fromName": "B"}) is not None


async def test_file_mailer_writes_sortable_parseable_eml(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "mail")
    kinds = all_kinds()
    for message in kinds.values():
        await mailer.send(message)
    files = sorted((tmp_path / "mail").iterdir())
    assert [f.suffix for f in files] == [".eml"] * len(kinds)  # no temp files left behind
    assert len({f.name for f in files}) == len(kinds)
    subjects = []
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        subjects.append(message["Subject"])
    assert subjects == [EXPECTED[kind][0] for kind in kinds]  # name order == send order
    invoice = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(invoice, EmailMessage)
    [attachment] = list(invoice.iter_attachments())
    assert attachment.get_content() == PDF  # type: ignore[attr-defined]


async def test_file_mailer_error_is_a_mail_error(tmp_path: Path) -> None:
    blocker = tmp_path / "mail"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(MailError, match="failed"):
        await FileMailer(blocker).send(all_kinds()["smtp_test"])


async def test_default_mailer_and_memory_mailer(tmp_path: Path) -> None:
    assert isinstance(default_mailer(smtp_url=None, data_dir=tmp_path), FileMailer)
    assert isinstance(default_mailer(smtp_url="smtp://h", data_dir=tmp_path), SmtpMailer)
    memory = MemoryMailer()
    await memory.send(all_kinds()["smtp_test"])
    assert [m["Subject"] for m in memory.outbox] == ["SMTP test from Acme"]


async def test_smtps_uses_implicit_tls(
    certificate: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_tls, client_tls = certificate
    for handler, port in start(Collector(), ssl_context=server_tls):
        mailer = SmtpMailer(
            f"smtps://acme:{PASSWORD}@127.0.0.1:{port}?timeout=5", tls_context=client_tls
        )
        await mailer.send(all_kinds()["smtp_test"])
        assert received(handler.envelopes[0])["Subject"] == "SMTP test from Acme"
        # a client that does not trust the certificate refuses to talk
        untrusting = SmtpMailer(f"smtps://127.0.0.1:{port}?timeout=5")
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            await untrusting.send(all_kinds()["smtp_test"])


async def test_smtp_upgrades_with_starttls_when_offered(
    certificate: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_tls, client_tls = certificate
    # require_starttls: the server refuses mail on a plain session, so delivery proves the upgrade
    for handler, port in start(Collector(), tls_context=server_tls, require_starttls=True):
        for scheme in ("smtp", "smtp+starttls"):
            mailer = SmtpMailer(
                f"{scheme}://acme:{PASSWORD}@127.0.0.1:{port}?timeout=5", tls_context=client_tls
            )
            await mailer.send(all_kinds()["smtp_test"])
        assert len(handler.envelopes) == 2


async def test_required_starttls_fails_when_not_offered(smtp_server: tuple[Collector, int]) -> None:
    _, port = smtp_server
    mailer = SmtpMailer(f"smtp+starttls://127.0.0.1:{port}?timeout=5")
    with pytest.raises(MailError, match="STARTTLS|starttls"):
        await mailer.send(all_kinds()["smtp_test"])
