"""The HTTP and WebSocket API: what the CLI, the dashboard and other programs use."""

from hub.api.app import create_app

__all__ = ["create_app"]
