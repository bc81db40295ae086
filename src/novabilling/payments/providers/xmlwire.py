"""XML on the wire for the providers that speak it (DPO's API3G, PayU's SOAP API and IPN).

- ``build(tag, content)`` makes an element tree from plain data: a mapping becomes child
  elements in order, a list repeats the parent's child tag, anything else is text; ``None``
  values are left out. ``to_bytes`` serialises it with an XML declaration (UTF-8).
- ``parse(content)`` reads a body we did not write (a provider's answer, an inbound
  notification): ``None`` for anything that is not well-formed XML, and for any document
  with a DOCTYPE or entity declaration (no provider sends one; refusing them closes the
  entity-expansion tricks outright, on top of expat's own limits).
- ``fields(element)`` flattens an element to ``{local name: text | dict | list}``, ignoring
  namespaces, so adapters read ``fields(root)["Result"]`` whatever the prefixes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")


def local(tag: str) -> str:
    """``{namespace}name`` -> ``name``."""
    return tag.rsplit("}", 1)[-1]


def _fill(element: ET.Element, content: Any) -> None:
    if isinstance(content, Mapping):
        for key, value in content.items():
            if value is None:
                continue
            if isinstance(value, list | tuple):
                for item in value:
                    _fill(ET.SubElement(element, key), item)
            else:
                _fill(ET.SubElement(element, key), value)
    elif content is not None:
        element.text = str(content)


def build(tag: str, content: Any, *, attrib: Mapping[str, str] | None = None) -> ET.Element:
    root = ET.Element(tag, dict(attrib or {}))
    _fill(root, content)
    return root


def to_bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def parse(content: bytes) -> ET.Element | None:
    if not content or any(marker in content for marker in _FORBIDDEN):
        return None
    try:
        return ET.fromstring(content)
    except (ET.ParseError, ValueError):
        return None


def fields(element: ET.Element) -> dict[str, Any]:
    """Children by local name: text for leaves, nested dicts for branches; a repeated name
    becomes a list. Attributes are kept under ``@name``."""
    out: dict[str, Any] = {f"@{local(k)}": v for k, v in element.attrib.items()}
    for child in element:
        name = local(child.tag)
        value: Any = fields(child) if len(child) or child.attrib else (child.text or "").strip()
        if name in out:
            existing = out[name]
            out[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[name] = value
    return out


def find(element: ET.Element, name: str) -> ET.Element | None:
    """The first descendant (or the element itself) whose local name is ``name``."""
    for node in element.iter():
        if local(node.tag) == name:
            return node
    return None


def text_of(value: Any) -> str | None:
    """A flattened field as stripped text (None for branches, lists and blanks)."""
    if isinstance(value, str):
        return value.strip() or None
    return None


def first(items: Any) -> Any:
    """A repeated field's first value; the value itself when it is not repeated."""
    if isinstance(items, Sequence) and not isinstance(items, str):
        return items[0] if items else None
    return items
