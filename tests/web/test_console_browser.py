"""The API console in a real headless chromium against a real ``novabilling serve``: the
OpenAPI 3.1 document renders (every operation, no "Unable to render this definition"),
Authorize takes an API key, and "Try it out" on GET /api/customers answers 200.

Set NB_CONSOLE_SCREENSHOT=<file.png> to keep a screenshot of the console (docs/).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.browser import Browser, browser
from tests.live import api_server, register

pytestmark = pytest.mark.long(seconds=30)

_METHODS = {"get", "post", "put", "patch", "delete"}
_CUSTOMERS_GET = "//div[contains(@class,'opblock-get')][.//*[@data-path='/api/customers']]"


def _operations_seen(page: Browser, *, expected: int, timeout: float = 60) -> set[str]:
    """Every operation block the console renders, scrolling from top to bottom: Swagger
    UI renders only the tag sections near the viewport, so a document of 150+ operations
    never has them all in the page at once."""
    page.wait_for(".opblock")
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    page.script("window.scrollTo(0, 0); return 1")
    while time.monotonic() < deadline:
        seen.update(
            page.script("return Array.from(document.querySelectorAll('.opblock')).map(e => e.id)")
        )
        if len(seen) >= expected:
            break
        at_end = page.script(
            "const y = window.scrollY; window.scrollBy(0, window.innerHeight * 0.8);"
            " return window.scrollY === y"
        )
        time.sleep(0.2)
        if at_end:
            seen.update(
                page.script(
                    "return Array.from(document.querySelectorAll('.opblock')).map(e => e.id)"
                )
            )
            break
    page.script("window.scrollTo(0, 0); return 1")
    return seen


def _scroll_to(page: Browser, xpath: str, *, timeout: float = 60) -> None:
    """Scroll down until ``xpath`` is rendered (see ``_operations_seen``)."""
    deadline = time.monotonic() + timeout
    page.script("window.scrollTo(0, 0); return 1")
    while not page.xpath_all(xpath):
        assert time.monotonic() < deadline, f"no '{xpath}' after scrolling {timeout} s"
        page.script("window.scrollBy(0, window.innerHeight * 0.5); return 1")
        time.sleep(0.2)


def _authorize_with_key(page: Browser, key: str) -> None:
    page.click(page.wait_for(".auth-wrapper .btn.authorize")[0])
    forms = page.wait_for(".modal-ux .auth-container", count=2)
    assert "apiKey" in page.text(forms[0]) and "accessToken" in page.text(forms[1])
    page.type(page.find_all(".modal-ux .auth-container:first-child input")[0], key)
    page.click(page.find_all(".modal-ux .auth-container:first-child .btn.authorize")[0])
    page.wait_xpath("(//div[contains(@class,'auth-container')])[1]//button[.='Logout']")
    page.click(page.find_all(".modal-ux .btn-done")[0])


def _try_customers(page: Browser) -> tuple[str, str, str]:
    _scroll_to(page, _CUSTOMERS_GET)
    page.click(
        page.wait_xpath(f"{_CUSTOMERS_GET}//button[contains(@class,'opblock-summary-control')]")
    )
    page.click(page.wait_xpath(f"{_CUSTOMERS_GET}//button[contains(@class,'try-out__btn')]"))
    page.click(page.wait_xpath(f"{_CUSTOMERS_GET}//button[contains(@class,'execute')]"))
    status = page.wait_xpath(
        f"{_CUSTOMERS_GET}//table[contains(@class,'live-responses-table')]"
        "//tbody//td[contains(@class,'response-col_status')]"
    )
    body = page.wait_xpath(f"{_CUSTOMERS_GET}//*[contains(@class,'response-col_description')]//pre")
    curl = page.wait_xpath(f"{_CUSTOMERS_GET}//*[contains(@class,'curl-command')]")
    return page.text(status), page.text(body), page.text(curl)


def test_console_renders_the_spec_and_try_it_out_answers_200(tmp_path: Path) -> None:
    with api_server(tmp_path) as server:
        creds = register(server.url)
        created = httpx.post(
            f"{server.url}/api/customers",
            json={
                "externalId": "cus-1",
                "email": "ngozi@example.com",
                "name": "Ngozi Eze",
                "currency": "NGN",
            },
            headers={"Authorization": f"Bearer {creds['apiKey']}"},
        )
        assert created.status_code == 201, created.text
        spec = httpx.get(f"{server.url}/api/openapi.json").json()
        operations = sum(len(set(ops) & _METHODS) for ops in spec["paths"].values())
        with browser() as page:
            for path in ("/api/reference", "/api/docs"):
                page.get(server.url + path)
                rendered = _operations_seen(page, expected=operations)
                assert len(rendered) == operations, (len(rendered), operations)
                html = page.script("return document.body.innerText")
                assert "Unable to render" not in html
                assert not page.find_all(".errors-wrapper")
            assert "OAS 3.1" in page.script("return document.body.innerText")
            _authorize_with_key(page, creds["apiKey"])
            status, body, curl = _try_customers(page)
            shot = os.environ.get("NB_CONSOLE_SCREENSHOT")
            if shot:
                block = page.wait_xpath(
                    f"{_CUSTOMERS_GET}//*[contains(@class,'responses-wrapper')]"
                )
                page.script("arguments[0].scrollIntoView({block: 'start'})", page.ref(block))
                Path(shot).write_bytes(page.screenshot())
    assert status.startswith("200"), (status, body)
    assert "ngozi@example.com" in body
    assert f"Bearer {creds['apiKey']}" in curl
