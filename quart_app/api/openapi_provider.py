"""quart-schema's OpenAPI provider, made to always emit a valid document.

quart-schema leaves `responses: {}` on every operation without `@validate_response` (health checks,
DELETEs answering 204, webhooks...). OpenAPI requires at least one response per operation, so
validators reject the document and generated clients choke; such operations get a `default` response.
"""

from __future__ import annotations

from typing import Any

from quart_schema import OpenAPIProvider
from werkzeug.routing import Rule


class ValidOpenAPIProvider(OpenAPIProvider):
    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        for item in paths.values():
            for operation in item.values():
                responses: dict[str, Any] = operation.setdefault("responses", {})
                if not responses:
                    responses["default"] = {"description": operation.get("summary") or "Response"}
        return paths, components
