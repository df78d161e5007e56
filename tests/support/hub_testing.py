"""Test helpers shared by the suites (imported from tests/support, which conftest puts on sys.path)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class ApiClient:
    """A synchronous face over httpx.AsyncClient + ASGITransport: the real app, in-process."""

    def __init__(self, app: Any, api_key: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub",
                                         headers=headers)  # fmt: skip

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()
