"""Auth0 over HTTP: the JWKS document and /userinfo."""

from __future__ import annotations

from typing import Any

import aiohttp

from .errors import ProviderFailed, ProviderTimeout


class Auth0Client:
    def __init__(self, base_url: str, timeout: float, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = http

    async def _get_json(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self.http.get(
                self.base_url + path, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                if response.status >= 400:
                    text = await response.text()
                    raise ProviderFailed("auth0", response.status, f"HTTP {response.status} {text}")
                data = await response.json(content_type=None)
        except TimeoutError:
            raise ProviderTimeout("auth0", self.timeout) from None
        except aiohttp.ClientError as exc:
            raise ProviderFailed("auth0", None, f"{type(exc).__name__}: {exc}") from None
        except ValueError:
            raise ProviderFailed("auth0", None, "response was not JSON") from None
        if not isinstance(data, dict):
            raise ProviderFailed("auth0", None, "response was not a JSON object")
        return data

    async def jwks(self) -> dict[str, Any]:
        return await self._get_json("/.well-known/jwks.json")

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        return await self._get_json("/userinfo", {"Authorization": f"Bearer {access_token}"})
