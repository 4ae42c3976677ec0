"""Serving the API with uvicorn: in the foreground (``python -m core serve``) or on a thread (tests,
benchmarks: a real HTTP server on a free port)."""
from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from core.errors import LatticeError


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info",
          workers: int = 1) -> None:
    """Run ``app`` with uvicorn until interrupted (one process; scale out with more nodes behind nginx)."""
    if not 0 <= int(port) <= 65535:
        raise LatticeError(f"port must be in 0..65535, got {port}")
    uvicorn.run(app, host=host, port=int(port), log_level=log_level, proxy_headers=True, workers=workers)


class ServerThread:
    """A uvicorn server for ``app`` on a thread, on a free port of ``host`` (``with`` it, or start/stop).

    ``url`` is its base URL (``http://127.0.0.1:<port>``) once :meth:`start` returned.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        # proto IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections of a
        # socket that says it is TCP; without it every keep-alive response waits ~40 ms for a
        # delayed ACK (Nagle), which `uvicorn.run`'s own sockets never do
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))  # bound here: the port is ours before uvicorn starts
        self.host, self.port = host, self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True,
                                        name=f"uvicorn-{self.port}")

    def start(self, timeout_s: float = 15.0) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LatticeError(f"the API server on {self.url} did not start within {timeout_s:g} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self._sock.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
