"""Running the app: in the foreground for ``semmatch-tf serve``, or in a background thread on
127.0.0.1 for tests, notebooks and benchmarks (:class:`BackgroundServer`)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from semmatch_tf.serve.app import create_app
from semmatch_tf.serve.service import SearchService

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def serve(service: SearchService, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve ``service`` until interrupted (Ctrl-C). Binds 127.0.0.1 unless told otherwise."""
    check_port(port)
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")


def check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {port!r}")


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class BackgroundServer:
    """A real uvicorn server for ``service`` in a thread; a context manager that starts and stops it.

    Examples:
        >>> with BackgroundServer(service) as server:                          # doctest: +SKIP
        ...     urllib.request.urlopen(server.url + "/search?q=candle").read()  # doctest: +SKIP
    """

    def __init__(self, service: SearchService, *, host: str = DEFAULT_HOST, port: int | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self.server = uvicorn.Server(uvicorn.Config(create_app(service), host=self.host, port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="semmatch-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
