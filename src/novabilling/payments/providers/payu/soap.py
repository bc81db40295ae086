"""PayU's SOAP envelope (facts: docs/providers/payu.md): a WS-Security ``UsernameToken``
header (the SOAP username and password PayU issues), one operation element in the body
(``setTransaction``, ``getTransaction``, ``doTransaction``) and, in the answer, its
``<return>`` element or a ``<Fault>``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novabilling.payments.providers import xmlwire

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
API_NS = "http://soap.api.controller.web.payjar.com/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordText"
)
API_VERSION = "ONE_ZERO"


def envelope(operation: str, body: Mapping[str, Any], *, username: str, password: str) -> bytes:
    """The request document for ``operation`` with ``body`` as its children."""
    root = xmlwire.build(f"{{{SOAP_ENV}}}Envelope", None)
    header = xmlwire.build(f"{{{SOAP_ENV}}}Header", None)
    security = xmlwire.build(
        f"{{{WSSE}}}Security", None, attrib={f"{{{SOAP_ENV}}}mustUnderstand": "1"}
    )
    token = xmlwire.build(
        f"{{{WSSE}}}UsernameToken",
        {f"{{{WSSE}}}Username": username},
        attrib={f"{{{WSU}}}Id": "UsernameToken-9"},
    )
    token.append(xmlwire.build(f"{{{WSSE}}}Password", password, attrib={"Type": PASSWORD_TEXT}))
    security.append(token)
    header.append(security)
    root.append(header)
    payload = xmlwire.build(f"{{{SOAP_ENV}}}Body", None)
    payload.append(xmlwire.build(f"{{{API_NS}}}{operation}", body))
    root.append(payload)
    return xmlwire.to_bytes(root)


@dataclass(frozen=True)
class Answer:
    """A parsed SOAP answer: the operation's ``return`` fields, or a fault."""

    fields: dict[str, Any]
    fault_code: str | None = None
    fault: str | None = None

    @property
    def client_fault(self) -> bool:
        """A fault the caller caused (bad credentials, bad request), not PayU's own."""
        return bool(self.fault_code) and str(self.fault_code).split(":")[-1] == "Client"


def read(content: bytes) -> Answer | None:
    """The answer in ``content``; None when it is not a SOAP envelope at all."""
    root = xmlwire.parse(content)
    if root is None or xmlwire.local(root.tag) != "Envelope":
        return None
    fault = xmlwire.find(root, "Fault")
    if fault is not None:
        flat = xmlwire.fields(fault)
        return Answer(
            {},
            fault_code=xmlwire.text_of(flat.get("faultcode")) or "soap:Server",
            fault=xmlwire.text_of(flat.get("faultstring")) or "SOAP fault",
        )
    found = xmlwire.find(root, "return")
    return Answer(xmlwire.fields(found) if found is not None else {})


def server_fault(content: bytes) -> bool:
    """A 5xx answer worth retrying: anything but a client fault."""
    answer = read(content)
    return answer is None or not answer.client_fault
