"""How a tenant's customer e-mails are sent: the tenant's own SMTP server when its
settings name one (``settings.smtp``), else the process mailer; and the plumbing every
e-mail job handler shares (load the tenant, open its database, send what the work built).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.kit.jobs import Job, JobHandler
from novabilling.notifications.mailer import Mailer, SmtpMailer, sender_from_settings
from novabilling.notifications.smtp_settings import open_settings
from novabilling.notifications.views import Mailbox
from novabilling.runtime import Runtime
from novabilling.tenancy.profiles import TenantProfile

log = structlog.get_logger(__name__)

# (runtime, tenant session, tenant, job data) -> the message to send, or None for nothing
EmailWork = Callable[
    [Runtime, AsyncSession, TenantProfile, dict[str, Any]], Awaitable[EmailMessage | None]
]


def mailer_for(runtime: Runtime, tenant: TenantProfile) -> tuple[Mailer, Mailbox]:
    """The mailer and sender address for ``tenant``'s messages."""
    smtp = tenant.settings.get("smtp")
    if isinstance(smtp, dict) and smtp.get("host"):
        smtp = open_settings(smtp, encryptor=runtime.encryptor, tenant_id=tenant.id)
        return SmtpMailer.from_tenant_settings(smtp), sender_from_settings(smtp) or runtime.sender
    return runtime.mailer, runtime.sender


def email_handler(runtime: Runtime, work: EmailWork) -> JobHandler:
    """A job handler running ``work`` in the tenant's database, then sending its message
    (after the commit: a render that stored a PDF is kept even if SMTP fails)."""

    async def handle(job: Job) -> None:
        tenant_id = str(job.data["tenant_id"])
        tenant = await runtime.tenant_profiles.get(tenant_id)
        maker = await runtime.engines.sessionmaker(tenant_id)
        async with maker() as session:
            message = await work(runtime, session, tenant, job.data)
            await session.commit()
        if message is None:
            return
        mailer, _ = mailer_for(runtime, tenant)
        await mailer.send(message)
        log.info("email.sent", job=job.name)

    return handle
