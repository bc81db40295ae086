import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from novabilling.kit.logging import (
    REDACTED,
    bind_context,
    bound_context,
    clear_context,
    configure_logging,
    current_context,
    get_logger,
    is_secret_key,
    redact_secrets,
)


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
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "boom x"
    assert line["request_id"] == "req-2"


def test_console_mode_and_bad_level() -> None:
    configure_logging(json=False, level="debug")
    get_logger().info("console.works", secret="s")
    with pytest.raises(ValueError):
        configure_logging(json=True, level="LOUD")
