"""PayU (South Africa) adapter: SOAP API + Redirect Payment Page (facts:
docs/providers/payu.md). Modules: ``soap`` (envelope, answers, faults), ``provider``
(:class:`PayuProvider`)."""

from novabilling.payments.providers.payu.provider import PayuProvider

__all__ = ["PayuProvider"]
