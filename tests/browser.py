"""A real headless browser for tests: Debian's chromium driven by chromium-driver over the
W3C WebDriver protocol (plain JSON over HTTP, so httpx is the whole client).

``require_browser()`` skips locally when chromium is missing and FAILS in CI (.ci/run
installs it). ``browser()`` starts chromedriver on a free port with a fresh profile and
quits both at exit.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.live import IN_CI, free_port

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def require_browser() -> str:
    """The chromedriver path; skip (locally) or fail (CI) when chromium is missing."""
    driver = shutil.which("chromedriver")
    if driver and shutil.which("chromium"):
        return driver
    message = "chromium + chromium-driver are needed (apt-get install chromium chromium-driver)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class Browser:
    def __init__(self, http: httpx.Client, session: str) -> None:
        self.http = http
        self.session = session

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, f"/session/{self.session}{path}", json=body)
        payload = r.json()
        if r.status_code != 200:
            raise AssertionError(f"webdriver {method} {path}: {payload}")
        return payload["value"]

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find_all(self, css: str) -> list[str]:
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [item[ELEMENT] for item in found]

    def xpath_all(self, xpath: str) -> list[str]:
        found = self._call("POST", "/elements", {"using": "xpath", "value": xpath})
        return [item[ELEMENT] for item in found]

    def wait_for(self, css: str, *, count: int = 1, timeout: float = 30) -> list[str]:
        """At least ``count`` elements matching ``css`` (waits up to ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find_all(css)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} '{css}' after {timeout} s")
            time.sleep(0.2)

    def wait_xpath(self, xpath: str, *, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = self.xpath_all(xpath)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no '{xpath}' after {timeout} s")
            time.sleep(0.2)

    def click(self, element: str) -> None:
        self.script("arguments[0].scrollIntoView({block: 'center'});", self.ref(element))
        self._call("POST", f"/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self._call("POST", f"/element/{element}/value", {"text": text})

    def text(self, element: str) -> str:
        value: str = self._call("GET", f"/element/{element}/text")
        return value

    def script(self, source: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": source, "args": list(args)})

    @staticmethod
    def ref(element: str) -> dict[str, str]:
        return {ELEMENT: element}

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", "/screenshot"))


@contextmanager
def browser() -> Iterator[Browser]:
    driver = require_browser()
    port = free_port()
    process = subprocess.Popen(
        [driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    profile = tempfile.mkdtemp(prefix="nb-chromium-")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if http.get("/status").json()["value"]["ready"]:
                        break
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("chromedriver did not start")
                time.sleep(0.1)
            options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}
            r = http.post(
                "/session",
                json={
                    "capabilities": {
                        "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}
                    }
                },
            )
            assert r.status_code == 200, r.text
            session = r.json()["value"]["sessionId"]
            try:
                yield Browser(http, session)
            finally:
                http.delete(f"/session/{session}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)
