"""The GraphQL API: schema, per-request context, ASGI app (DESIGN.md §11)."""

from __future__ import annotations

from pacte.api.app import MAX_BODY_BYTES, create_app
from pacte.api.limits import Limits
from pacte.api.schema import build_schema, sdl

__all__ = ["MAX_BODY_BYTES", "Limits", "build_schema", "create_app", "sdl"]
