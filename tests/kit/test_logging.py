import io
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import structlog

from novabilling.kit import logging as log_module
from novabilling.kit.logging import (
    REDACTED,
    bind_context,
    bound_context,
    clear_context,
    configure_logging,
    current_context,
    flush_logs,
    get_logger,
    is_secret_key,
    redact_secrets,
)
from novabilling.kit.redaction import register_secret, scrub


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    clear_context()
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "client_secret",
        "access_token",
        "refreshToken",
        "api_key",
        "X-Api-Key",
        "apiKey",
        "Authorization",
        "credentials",
        "SECRET_KEY",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["event", "tenant_id", "request_id", "amount_minor", "job"])
def test_plain_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_redact_processor_nested() -> None:
    event = {
        "event": "provider.configured",
        "tenant_id": "t1",
        "password": "hunter2",
        "config": {"public_key": "pk", "secret_key": "sk", "nested": [{"token": "abc"}]},
        "headers": {"authorization": "Bearer xyz", "accept": "json"},
    }
    out = redact_secrets(None, "info", event)
    assert out["password"] == REDACTED
    assert out["tenant_id"] == "t1"
    assert out["config"]["public_key"] == "pk"
    assert out["config"]["secret_key"] == REDACTED
    assert out["config"]["nested"][0]["token"] == REDACTED
    assert out["headers"] == {"authorization": REDACTED, "accept": "json"}


def test_json_output_redacts_and_binds_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO")
    bind_context(request_id="req-1", tenant_id="ten-1")
    with bound_context(job="billing.tick"):
        get_logger("test").info("invoice.finalized", api_key="nb_live_x", invoice_id="inv1")
    get_logger("test").debug("hidden.debug")
    flush_logs()
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "invoice.finalized"
    assert line["api_key"] == REDACTED
    assert line["invoice_id"] == "inv1"
    assert line["request_id"] == "req-1"
    assert line["tenant_id"] == "ten-1"
    assert line["job"] == "billing.tick"
    assert line["level"] == "info"
    assert "nb_live_x" not in json.dumps(line)
    assert "job" not in current_context()


def test_stdlib_logs_go_through_same_chain(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="WARNING")
    bind_context(request_id="req-2")
    logging.getLogger("thirdparty").warning("boom %s", "x", extra={"token": "t0k"})
    flush_logs()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "boom x"
    assert line["request_id"] == "req-2"


def test_console_mode_and_bad_level() -> None:
    configure_logging(json=False, level="debug")
    get_logger().info("console.works", secret="s")
    with pytest.raises(ValueError):
        configure_logging(json=True, level="LOUD")


# --- issue 14: off the event loop, no locals, nothing secret-shaped -------------------------


def _explode(api_key: str) -> None:
    local_canary = "CANARY-LOCAL-VALUE"  # noqa: F841 - must never be printed
    raise RuntimeError(f"upstream refused Bearer {api_key}")


@pytest.mark.parametrize("json_mode", [True, False])
def test_exceptions_render_without_locals_and_scrubbed(json_mode: bool) -> None:
    stream = io.StringIO()
    configure_logging(json=json_mode, level="INFO", stream=stream)
    key = "sk_live_" + "ab" * 32
    try:
        _explode(key)
    except RuntimeError:
        get_logger("test").exception("request.unhandled")
    logging.getLogger("stdlib").error("with %s", "args", exc_info=ValueError("x"))
    flush_logs()
    text = stream.getvalue()
    assert "Traceback" in text and "upstream refused" in text
    assert "CANARY-LOCAL-VALUE" not in text
    assert key not in text and "sk_live_***" in text
    assert "with args" in text


def test_stdlib_records_keep_the_callers_context() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    with bound_context(request_id="req-ctx"):
        logging.getLogger("sqlalchemy.x").warning("from a library")
    flush_logs()
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "req-ctx" and line["event"] == "from a library"


def test_a_full_queue_drops_instead_of_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller never waits for the writer: with the writer stuck, logging stays fast
    and what did not fit is counted, then reported."""
    gate = threading.Event()

    class StuckStream(io.StringIO):
        def write(self, text: str) -> int:
            gate.wait(10)
            return super().write(text)

    monkeypatch.setattr(log_module, "QUEUE_SIZE", 5)
    stream = StuckStream()
    configure_logging(json=True, level="INFO", stream=stream)
    started = time.perf_counter()
    for index in range(200):
        get_logger("test").info("flood", n=index)
    assert time.perf_counter() - started < 2.0
    gate.set()
    flush_logs()
    get_logger("test").info("after.flood")
    flush_logs()
    lines = [json.loads(line) for line in stream.getvalue().strip().splitlines()]
    assert lines[-1]["event"] == "after.flood"
    written = sum(1 for line in lines if line["event"] == "flood")
    dropped = sum(line.get("log_records_dropped", 0) for line in lines)
    assert written + dropped == 200 and dropped > 100


@pytest.mark.parametrize(
    ("raw", "hidden"),
    [
        (
            "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
            "abcdefghijklmnopqrstuvwxyz012345",
        ),
        ("key sk_live_" + "0f" * 32, "0f" * 32),
        ("paystack sk_test_6b0f3c2e8a9d4f1b7c5e2a0d9f8b7c6a5e4d3c2b", "6b0f3c2e8a9d4f1b7c5e"),
        ("flw FLWSECK_TEST-abcdef0123456789-X", "abcdef0123456789"),
        ("stripe whsec_abcdefghij0123456789", "abcdefghij0123456789"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0MSJ9.c2lnbmF0dXJlLXBhcnQ", "c2lnbmF0dXJlLXBhcnQ"),
        ("hash $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g", "aGFzaGhhc2g"),
        ("dsn postgresql+asyncpg://nb:s3cr3t-pw@db:5432/x", "s3cr3t-pw"),
    ],
)
def test_scrub_removes_secret_shapes(raw: str, hidden: str) -> None:
    assert hidden not in scrub(raw)


def test_scrub_removes_registered_values_and_keeps_plain_text() -> None:
    value = "registered-" + "9" * 20
    register_secret(value, "short")
    assert scrub(f"x {value} y") == "x *** y"
    assert (
        scrub("short words, Basic plan, bearer of news")
        == "short words, Basic plan, bearer of news"
    )


def test_configuring_again_with_the_same_settings_keeps_the_writer() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    writer = log_module._State.writer
    configure_logging(json=True, level="INFO", stream=stream)
    assert log_module._State.writer is writer  # no new thread for the same settings
    configure_logging(json=True, level="WARNING", stream=stream)
    assert log_module._State.writer is not writer
    writer = log_module._State.writer
    structlog.reset_defaults()  # someone replaced a part of it: configured again
    configure_logging(json=True, level="WARNING", stream=stream)
    assert log_module._State.writer is not writer
    get_logger("test").warning("still.written")
    flush_logs()
    assert json.loads(stream.getvalue().strip().splitlines()[-1])["event"] == "still.written"


def test_a_logger_used_before_reconfiguring_follows_the_new_settings() -> None:
    """Loggers are cached on first use (module-level ``log``): the level and the renderer
    in force at each call apply, not those of the first call."""
    early = get_logger("early")
    first = io.StringIO()
    configure_logging(json=True, level="WARNING", stream=first)
    early.info("hidden.at.warning")
    second = io.StringIO()
    configure_logging(json=False, level="INFO", stream=second)
    early.info("shown.at.info")
    flush_logs()
    assert "hidden.at.warning" not in first.getvalue() + second.getvalue()
    line = second.getvalue().strip().splitlines()[-1]
    assert "shown.at.info" in line and not line.startswith("{")  # console, not JSON
