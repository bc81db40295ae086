"""Local simulators of the payment providers' HTTP APIs (see ``simulators/base.py``).

``create_simulator_app(name)`` imports the provider's module lazily and returns its ASGI
app built from ``NB_SIM_*`` environment variables (``novabilling simulate <provider>``).
"""

from __future__ import annotations

import importlib

from starlette.types import ASGIApp

SIMULATORS: dict[str, str] = {
    "paystack": "novabilling.simulators.paystack",
    "stripe": "novabilling.simulators.stripe",
    "flutterwave": "novabilling.simulators.flutterwave",
    "mpesa": "novabilling.simulators.mpesa",
}


def create_simulator_app(name: str) -> ASGIApp:
    """The ASGI app of the simulator called ``name`` (case-insensitive)."""
    key = name.strip().lower()
    if key not in SIMULATORS:
        known = ", ".join(sorted(SIMULATORS))
        raise KeyError(f"unknown simulator {name!r}; known simulators: {known}")
    module = importlib.import_module(SIMULATORS[key])
    app: ASGIApp = module.create_app()
    return app
