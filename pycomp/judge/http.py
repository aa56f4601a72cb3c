"""Asynchronous JSON requests to a set of HTTP endpoints: bounded concurrency, retries with backoff.

Used by the ``openai`` judge backend (:mod:`pycomp.judge.openai_backend`). A
:class:`EndpointPool` keeps one ``httpx.AsyncClient`` on an event loop of its
own (a daemon thread), so the synchronous judge loop can hand it a batch at a
time while connections stay open between batches. Each request goes to the
endpoint with the fewest requests in flight; a request that fails with a
retryable error (HTTP 429 and 5xx, a timeout, a refused or dropped
connection) is retried on the next endpoint after an exponential backoff
(``Retry-After`` is honoured), so one slow or restarting replica does not stop
the run. Any other HTTP error is final and reported with the server's message.
"""
from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

__all__ = ["EndpointError", "EndpointPool", "RetryPolicy", "RETRY_STATUS"]

#: HTTP statuses that are retried (rate limits and server-side failures).
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(RuntimeError):
    """A request that failed for good (after its retries, or with a final HTTP error).

    Attributes
    ----------
    url : str
        The endpoint URL of the last attempt.
    model : str
        The model named in the request.
    index : int or None
        Position of the prompt in the batch given to the backend.
    status : int or None
        HTTP status of the last attempt (None: no response).
    """

    def __init__(self, message: str, *, url: str, model: str, index: Optional[int] = None,
                 status: Optional[int] = None):
        self.url, self.model, self.index, self.status = url, model, index, status
        super().__init__(message)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried.

    Attributes
    ----------
    retries : int
        Attempts after the first one.
    backoff : float
        First wait in seconds; doubled after each failure (with +-25% jitter).
    max_backoff : float
        Longest single wait (also caps a server's ``Retry-After``).
    timeout : float
        Seconds to wait for a response before the attempt counts as timed out.
    """

    retries: int = 6
    backoff: float = 0.5
    max_backoff: float = 20.0
    timeout: float = 120.0

    def wait(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds to sleep before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        base = min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)
        return base * random.uniform(0.75, 1.25)


def _retry_after(headers) -> Optional[float]:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def server_message(response) -> str:
    """The error text of a server response (``{"error": {"message": ...}}`` or the raw body), shortened."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body.get("message", body))
        if isinstance(err, dict):
            err = err.get("message", err)
        text = str(err)
    else:
        text = response.text
    text = " ".join(text.split())
    return text[:500] + ("..." if len(text) > 500 else "")


class EndpointPool:
    """POST JSON requests to several base URLs with bounded concurrency and retries.

    Parameters
    ----------
    base_urls : sequence of str
        Base URLs such as ``http://127.0.0.1:8000/v1``; requests are spread over them.
    concurrency : int
        Most requests in flight at once, over all endpoints together.
    headers : dict, optional
        Sent with every request (e.g. ``Authorization``).
    policy : RetryPolicy, optional
    """

    def __init__(self, base_urls: Sequence[str], concurrency: int = 16, headers: Optional[dict] = None,
                 policy: Optional[RetryPolicy] = None):
        if not base_urls:
            raise ValueError("give at least one base URL")
        if int(concurrency) < 1:
            raise ValueError(f"concurrency={concurrency} must be >= 1")
        self.base_urls = [str(u).rstrip("/") for u in base_urls]
        self.concurrency = int(concurrency)
        self.headers = dict(headers or {})
        self.policy = policy or RetryPolicy()
        self.in_flight = [0] * len(self.base_urls)
        #: attempts that were retried, by reason (for reports and tests)
        self.retried = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._client = None
        self._lock = threading.Lock()

    # ---- the event loop thread -------------------------------------------------------------
    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                import httpx

                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="pycomp-http", daemon=True)
                thread.start()
                limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)

                async def make():
                    return httpx.AsyncClient(headers=self.headers, limits=limits,
                                             timeout=httpx.Timeout(self.policy.timeout, connect=10.0))

                self._client = asyncio.run_coroutine_threadsafe(make(), loop).result()
                self._loop, self._thread = loop, thread
        return self._loop

    def run(self, coroutine):
        """Run ``coroutine`` on the pool's loop and return its result (blocking)."""
        loop = self._start()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def close(self) -> None:
        """Close the connections and stop the loop thread (the pool starts again on next use)."""
        with self._lock:
            loop, self._loop = self._loop, None
            if loop is None:
                return
            client, self._client = self._client, None
            if self._thread.is_alive():
                try:
                    asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
                except Exception:  # noqa: BLE001 - closing is best effort; the loop stops either way
                    pass
                loop.call_soon_threadsafe(loop.stop)
                self._thread.join(timeout=10)
            if not self._thread.is_alive():
                loop.close()

    def __del__(self):  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass

    # ---- requests ----------------------------------------------------------------------------
    def get_json(self, path: str, url: Optional[str] = None) -> Any:
        """GET ``{url}{path}`` (default: every base URL in turn until one answers); JSON body.

        Raises
        ------
        EndpointError
            No endpoint answered with 2xx.
        """
        return self.run(self._get(path, url))

    async def _get(self, path: str, url: Optional[str]):
        import httpx

        last = None
        for base in ([url] if url else self.base_urls):
            try:
                response = await self._client.get(base + path, timeout=min(self.policy.timeout, 30.0))
            except httpx.HTTPError as exc:
                last = EndpointError(f"could not reach {base}{path}: {type(exc).__name__}: {exc}", url=base, model="")
                continue
            if response.status_code // 100 == 2:
                return response.json()
            last = EndpointError(f"{base}{path} answered HTTP {response.status_code}: {server_message(response)}",
                                 url=base, model="", status=response.status_code)
        raise last

    def post_many(self, path: str, payloads: Sequence[dict], parse: Callable[[dict, int, str], Any],
                  model: str = "") -> List[Any]:
        """POST every payload to ``{endpoint}{path}``; ``parse(json, index, url)`` turns each reply into a result.

        Results come back in the order of ``payloads``. The first request that fails
        for good cancels the others and is raised.

        Raises
        ------
        EndpointError
            A final HTTP error, or retries used up (naming URL, model and index).
        Exception
            Whatever ``parse`` raises for a reply (also cancelling the rest).
        """
        return self.run(self._post_many(path, list(payloads), parse, model))

    async def _post_many(self, path, payloads, parse, model):
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(index: int, payload: dict):
            async with semaphore:
                return await self._post(path, payload, parse, index, model)

        tasks = [asyncio.ensure_future(one(i, p)) for i, p in enumerate(payloads)]
        try:
            return await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _pick(self, avoid: Optional[int]) -> int:
        order = sorted(range(len(self.base_urls)), key=lambda k: (k == avoid and len(self.base_urls) > 1,
                                                                   self.in_flight[k], k))
        return order[0]

    async def _post(self, path, payload, parse, index, model):
        import httpx

        policy = self.policy
        endpoint = None
        for attempt in range(policy.retries + 1):
            endpoint = self._pick(endpoint)
            url = self.base_urls[endpoint] + path
            self.in_flight[endpoint] += 1
            retry_after = None
            try:
                response = await self._client.post(url, json=payload)
            except httpx.TimeoutException as exc:
                reason, status = "timeout", None
                detail = f"no response within {policy.timeout:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                reason, detail, status = "connection", f"{type(exc).__name__}: {exc or 'connection failed'}", None
            else:
                status = response.status_code
                if status // 100 == 2:
                    try:
                        body = response.json()
                    except ValueError:
                        reason, detail = "bad-json", f"HTTP {status} with a body that is not JSON"
                    else:
                        return parse(body, index, self.base_urls[endpoint])
                elif status in RETRY_STATUS or status >= 500:
                    reason, detail = f"http-{status}", f"HTTP {status}: {server_message(response)}"
                    retry_after = _retry_after(response.headers)
                else:
                    raise EndpointError(
                        f"{url} refused the request for model {model!r} (prompt {index} of the batch): "
                        f"HTTP {status}: {server_message(response)}",
                        url=self.base_urls[endpoint], model=model, index=index, status=status)
            finally:
                self.in_flight[endpoint] -= 1
            self.retried[reason] = self.retried.get(reason, 0) + 1
            if attempt == policy.retries:
                raise EndpointError(
                    f"{url} failed for model {model!r} (prompt {index} of the batch) after "
                    f"{policy.retries + 1} attempts; last: {detail}. Is the server running and reachable?",
                    url=self.base_urls[endpoint], model=model, index=index, status=status)
            await asyncio.sleep(policy.wait(attempt + 1, retry_after))
        raise AssertionError("unreachable")  # pragma: no cover
