"""A lean HTTP/1.1 transport for the openai SDK's HTTP client, on the standard library's ``http.client``.

The SDK takes a custom transport through its documented ``http_client=DefaultHttpxClient(transport=...)``; it keeps
its own request building, headers, retries, timeouts and error types, and only the exchange on the socket is ours.
Used for plain ``http://`` endpoints with no proxy in the environment (a local vLLM, Ollama, llama.cpp or LiteLLM
server): there, the SDK's default transport is the larger part of the per-call CPU of a gate that makes thousands
of calls (``benchmarks/run.py``, row f). TLS, proxies and HTTP/2 stay with the SDK's default transport.
"""

from __future__ import annotations

import http.client
import importlib
import select
import threading
import urllib.request
from types import ModuleType
from typing import Any

def uses_stdlib(choice: str, base_url: str | None) -> bool:
    """``auto``: the stdlib transport for an ``http://`` base URL that no proxy variable in the environment covers."""
    if choice != "auto":
        return choice == "stdlib"
    if not base_url or not base_url.lower().startswith("http://"):
        return False
    proxies = urllib.request.getproxies()
    if not (proxies.get("http") or proxies.get("all")):
        return True
    host = base_url[len("http://"):].split("/", 1)[0]
    return bool(urllib.request.proxy_bypass(host))


def httpx_of(openai: ModuleType) -> ModuleType:
    """The httpx module the SDK is built on (``httpx2`` in recent releases, ``httpx`` before)."""
    for klass in openai.DefaultHttpxClient.__mro__:
        root = klass.__module__.split(".")[0]
        if klass.__name__ == "Client" and root in ("httpx2", "httpx"):
            return importlib.import_module(root)
    return importlib.import_module("httpx")


def stdlib_http_client(openai: ModuleType) -> Any:
    """The SDK's ``DefaultHttpxClient`` on the stdlib transport; like the SDK's own client, it closes its
    connections when it is garbage collected."""

    class StdlibHttpClient(openai.DefaultHttpxClient):  # type: ignore[misc, name-defined]
        def __del__(self) -> None:
            if not self.is_closed:
                try:
                    self.close()
                except Exception:  # noqa: BLE001 - never raise from a finalizer
                    pass

    return StdlibHttpClient(transport=stdlib_transport(httpx_of(openai)))


def stdlib_transport(httpx: ModuleType) -> Any:
    """A transport for ``httpx``'s ``Client`` that speaks HTTP/1.1 with keep-alive through ``http.client``."""

    class StdlibTransport(httpx.BaseTransport):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}
            self._lock = threading.Lock()

        def handle_request(self, request: Any) -> Any:
            url = request.url
            if url.scheme != "http":
                raise httpx.UnsupportedProtocol(f"this transport speaks plain http, not {url.scheme}://",
                                                request=request)
            timeout = request.extensions.get("timeout", {})
            key = (url.host, url.port or 80)
            body = request.read()
            conn = self._take(key)
            if conn is not None:
                try:
                    return self._exchange(conn, key, request, body, timeout)
                except _Stale:
                    pass  # the server closed a kept-alive connection under the request (its keep-alive timeout
                    # raced our reuse): sent once more, on a new connection
            conn = http.client.HTTPConnection(key[0], key[1], timeout=timeout.get("connect"))
            try:
                conn.connect()
            except TimeoutError as exc:
                raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
            except OSError as exc:
                raise httpx.ConnectError(str(exc), request=request) from exc
            try:
                return self._exchange(conn, key, request, body, timeout)
            except _Stale as stale:
                raise httpx.RemoteProtocolError(str(stale.__cause__), request=request) from stale.__cause__

        def _take(self, key: tuple[str, int]) -> http.client.HTTPConnection | None:
            """An idle connection the server has not closed (a closed one reads as ready: EOF)."""
            with self._lock:
                idle = self._idle.get(key)
                while idle:
                    conn = idle.pop()
                    if conn.sock is not None and not select.select([conn.sock], [], [], 0)[0]:
                        return conn
                    conn.close()
            return None

        def _exchange(self, conn: http.client.HTTPConnection, key: tuple[str, int], request: Any, body: bytes,
                      timeout: dict[str, float | None]) -> Any:
            sock = conn.sock
            assert sock is not None
            sent = False
            try:
                sock.settimeout(timeout.get("write"))
                target = request.url.raw_path.decode("ascii")
                conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in request.headers.raw:
                    conn.putheader(name, value)
                conn.endheaders(body)  # headers and a bytes body in one send
                sent = True
                sock.settimeout(timeout.get("read"))
                response = conn.getresponse()
                content = response.read()
            except TimeoutError as exc:
                conn.close()
                error = httpx.ReadTimeout if sent else httpx.WriteTimeout
                raise error(str(exc) or "timed out", request=request) from exc
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                raise _Stale() from exc
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}", request=request) from exc
            if response.will_close:
                conn.close()
            else:
                with self._lock:
                    self._idle.setdefault(key, []).append(conn)
            return httpx.Response(
                response.status, headers=response.getheaders(), stream=httpx.ByteStream(content),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode("ascii", "replace")},
            )

        def close(self) -> None:
            with self._lock:
                for idle in self._idle.values():
                    for conn in idle:
                        conn.close()
                self._idle.clear()

    return StdlibTransport()


class _Stale(Exception):
    """The connection was closed or reset under the request, before any response."""
