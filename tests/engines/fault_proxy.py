"""A small fault-injecting HTTP proxy for the engine tests: a real TCP server in front of a real one.

Every client connection carries one request. ``GET`` requests are always
forwarded; the n-th ``POST`` (0-based) gets ``faults(n)``:

``None``        forwarded to the upstream server, its response sent back
``"429"``       answered ``429 Too Many Requests`` (with ``Retry-After: 0``)
``"500"``       answered ``500 Internal Server Error``
``"timeout"``   nothing sent until the client closes the connection (at most ``hold`` seconds)
``"drop"``      the connection is closed as soon as the request is read
``"strip"``     forwarded, and the log-probabilities removed from the JSON reply

The proxy records what it did in ``log`` (one ``(n, fault)`` per POST) and the
request bodies it forwarded in ``forwarded``.
"""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Callable, List, Optional, Tuple


class FaultProxy:
    """Run the proxy on 127.0.0.1 in a thread; ``url`` is its base URL (with ``/v1``)."""

    def __init__(self, upstream_host: str, upstream_port: int, faults: Callable[[int], Optional[str]],
                 hold: float = 120.0):
        self.upstream = (upstream_host, upstream_port)
        self.faults = faults
        self.hold = hold
        self.log: List[Tuple[int, Optional[str]]] = []
        self.forwarded: List[dict] = []
        self._n = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def close(self):
        async def stop():
            self._server.close()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def count(self, fault: Optional[str]) -> int:
        return sum(1 for _, f in self.log if f == fault)

    # ---- HTTP ----------------------------------------------------------------------------------
    @staticmethod
    async def _read_request(reader) -> Tuple[bytes, bytes, dict]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        return head, body, headers

    @staticmethod
    def _response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
        return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n{extra}\r\n").encode() + body

    async def _forward(self, head: bytes, body: bytes) -> Tuple[int, bytes, bytes]:
        reader, writer = await asyncio.open_connection(*self.upstream)
        lines = [ln for ln in head.decode("latin-1").split("\r\n") if ln and not ln.lower().startswith("connection:")]
        writer.write(("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        head_out, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head_out.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head_out.lower():
            payload = _unchunk(payload)
        return status, head_out, payload

    async def _handle(self, reader, writer):
        try:
            head, body, _ = await self._read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        method = head.split(b" ", 1)[0]
        fault = None
        if method == b"POST":
            with self._lock:
                n, self._n = self._n, self._n + 1
            fault = self.faults(n)
            self.log.append((n, fault))
        try:
            if fault == "drop":
                writer.transport.abort()
                return
            if fault == "timeout":  # silent until the client gives up (or ``hold`` passes)
                try:
                    await asyncio.wait_for(reader.read(), self.hold)
                except asyncio.TimeoutError:
                    pass
                writer.transport.abort()
                return
            if fault in ("429", "500"):
                reason = "Too Many Requests" if fault == "429" else "Internal Server Error"
                msg = json.dumps({"error": {"message": f"injected {fault}"}}).encode()
                writer.write(self._response(int(fault), reason, msg, "Retry-After: 0\r\n" if fault == "429" else ""))
                await writer.drain()
                writer.close()
                return
            try:
                status, head_out, payload = await self._forward(head, body)
            except (ConnectionError, OSError):
                writer.transport.abort()  # upstream down: look like it to the client
                return
            if method == b"POST" and status == 200:
                self.forwarded.append(json.loads(body))
            if fault == "strip":
                data = json.loads(payload)
                for choice in data.get("choices", []):
                    choice["logprobs"] = None
                payload = json.dumps(data).encode()
            writer.write(self._response(status, "OK" if status == 200 else "Error", payload))
            await writer.drain()
            writer.close()
        except ConnectionError:
            writer.transport.abort()


def _unchunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return out
