"""The PayU simulator's own SOAP reading and writing (it shares nothing with the adapter
it tests): the request's WS-Security username/password, operation and fields; answers as
``<return>`` documents or SOAP faults."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
API_NS = "http://soap.api.controller.web.payjar.com/"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _flat(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        out[_local(child.tag)] = _flat(child) if len(child) else (child.text or "").strip()
    return out


@dataclass(frozen=True)
class SoapRequest:
    operation: str
    fields: dict[str, Any]
    username: str
    password: str


def read_request(body: bytes) -> SoapRequest | None:
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    found = {_local(node.tag): node for node in root.iter()}
    soap_body = found.get("Body")
    if _local(root.tag) != "Envelope" or soap_body is None or len(soap_body) == 0:
        return None
    operation = soap_body[0]
    user, password = found.get("Username"), found.get("Password")
    return SoapRequest(
        operation=_local(operation.tag),
        fields=_flat(operation),
        username=(user.text or "").strip() if user is not None else "",
        password=(password.text or "").strip() if password is not None else "",
    )


def _fill(element: ET.Element, content: Any) -> None:
    if isinstance(content, dict):
        for key, value in content.items():
            if value is not None:
                _fill(ET.SubElement(element, key), value)
    elif content is not None:
        element.text = str(content)


def _envelope(inner: ET.Element) -> bytes:
    root = ET.Element(f"{{{SOAP_ENV}}}Envelope")
    ET.SubElement(root, f"{{{SOAP_ENV}}}Body").append(inner)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def answer(operation: str, fields: dict[str, Any]) -> bytes:
    response = ET.Element(f"{{{API_NS}}}{operation}Response")
    _fill(ET.SubElement(response, "return"), fields)
    return _envelope(response)


def fault(code: str, message: str) -> bytes:
    element = ET.Element(f"{{{SOAP_ENV}}}Fault")
    _fill(element, {"faultcode": f"soap:{code}", "faultstring": message})
    return _envelope(element)


def notification(fields: dict[str, Any]) -> bytes:
    root = ET.Element("PaymentNotification")
    _fill(root, fields)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
