"""The simulator's own ``<API3G>`` XML reading and writing (it shares nothing with the
adapter it tests): flat documents of text fields, nested mappings for sub-levels."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def _fill(element: ET.Element, content: Any) -> None:
    if isinstance(content, dict):
        for key, value in content.items():
            _fill(ET.SubElement(element, key), value)
    elif content is not None:
        element.text = str(content)


def document(fields: dict[str, Any]) -> bytes:
    root = ET.Element("API3G")
    _fill(root, fields)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def read(body: bytes) -> ET.Element | None:
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return None
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def text(root: ET.Element, path: str) -> str:
    node = root.find(path)
    return (node.text or "").strip() if node is not None else ""
