"""Local simulators of the payment providers' HTTP APIs (see ``simulators/base.py``).

``create_simulator_app(name)`` imports the provider's module lazily and returns its ASGI
app built from ``NB_SIM_*`` environment variables (``novabilling simulate <provider>``);
``sandbox_credentials(name, base_url)`` the credentials object that points a tenant's
payment-provider configuration at it (None when the module does not say).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from starlette.types import ASGIApp

SIMULATORS: dict[str, str] = {
    "paystack": "novabilling.simulators.paystack",
    "stripe": "novabilling.simulators.stripe",
    "flutterwave": "novabilling.simulators.flutterwave",
    "mpesa": "novabilling.simulators.mpesa",
    "dpo": "novabilling.simulators.dpo",
    "payu": "novabilling.simulators.payu",
    "pesapal": "novabilling.simulators.pesapal",
}


def _module(name: str) -> ModuleType:
    key = name.strip().lower()
    if key not in SIMULATORS:
        known = ", ".join(sorted(SIMULATORS))
        raise KeyError(f"unknown simulator {name!r}; known simulators: {known}")
    return importlib.import_module(SIMULATORS[key])


def create_simulator_app(name: str) -> ASGIApp:
    """The ASGI app of the simulator called ``name`` (case-insensitive)."""
    app: ASGIApp = _module(name).create_app()
    return app


def sandbox_credentials(name: str, base_url: str) -> dict[str, str] | None:
    """Credentials for ``POST /api/payment-providers`` that use the simulator at
    ``base_url`` with its default test keys."""
    build = getattr(_module(name), "sandbox_credentials", None)
    return dict(build(base_url)) if build else None
