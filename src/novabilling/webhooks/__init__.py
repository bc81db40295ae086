"""Inbound provider webhooks (inbox) and outbound tenant webhooks."""
