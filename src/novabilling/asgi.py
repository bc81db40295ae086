"""ASGI entry point for uvicorn workers: ``novabilling.asgi:app``."""

from novabilling.app import create_app

app = create_app()
