"""Running the API inside another program (the demo, tests): uvicorn in a background thread."""

from __future__ import annotations

import threading
import time

import uvicorn

from omtx_hub.app import create_app
from omtx_hub.hub import Hub

__all__ = ["BackgroundServer"]


class BackgroundServer:
    def __init__(self, hub: Hub, host: str, port: int) -> None:
        config = uvicorn.Config(create_app(hub=hub), host=host, port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start on {self.url} (is the port in use?)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
