"""HEAD requests in bulk, for the encryption checks, at under half of boto3's CPU each.

A week of hourly backups of 500 clusters is 84,000 objects, and a listing never says how
an object is encrypted: the cold weekly review makes one HEAD per object. Against S3's
~100 ms a request, ending within a minute needs ~150 requests in flight, and then the
client's own CPU is the limit: boto3's ``head_object`` spends ~1 ms of Python per call
(its event hooks, endpoint rules, serializer and parser), and 200 threads waiting on
sockets under one GIL double that (bench/head_cpu_bench.py): minutes of one core for
the week, whatever the latency.

``SignedHead`` makes the same requests with the parts of botocore that matter and one
event loop instead of threads: the URL of an object is the one botocore built for the
bucket (learned from a HEAD the client made: endpoint, addressing style and signing
region, as it resolved them, after any redirect), each request is signed by botocore's
own SigV4 signer with the client's credentials (refreshed as the client refreshes them),
and the requests are sent by aiohttp (already installed for the Kubernetes client) on one
connection pool, ``workers`` in flight, with the client's certificate bundle and
timeouts. Only a ``200`` is read here (size, ETag, Last-Modified, encryption); for any
other answer the client is asked again (``fallback``), which brings its retries, region
redirects and error messages. A 404 (an object deleted since the listing) costs one more
request; anything else (a throttle, a redirect, a refused signature, a third transport
error) also switches this path off for good, so that the client alone handles a store in
trouble. A proxy in the environment, credentials of another kind or a signature other
than SigV4 are never tried here (``learn`` returns None).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

# Imported by the store when it first checks in bulk, never at the console's start.
import aiohttp
import botocore
import yarl
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import get_cert_path
from botocore.utils import percent_encode

from services.storage import STOP_POLL, Answer, ObjectHead, parse_s3_time

_SIGV4 = "AWS4-HMAC-SHA256"
_SSE = "x-amz-server-side-encryption"
_STRIKES = 3  # failures in a row (not a 200 or 404) before the client takes every HEAD
_CLIENT_THREADS = 32  # the client's HEADs at once (answers the signed path hands back)


class SignedHead:
    """HEADs of one bucket's objects; see the module's docstring."""

    def __init__(
        self,
        origin: str,
        base_path: str,
        region: str,
        service: str,
        credentials: Any,
        connect_timeout: float,
        read_timeout: float,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._origin = origin  # scheme://host[:port]
        self._base_path = base_path  # "/bucket/" (path style) or "/" (virtual host)
        self._region = region
        self._service = service
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(
            connect=connect_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._tls = tls  # None for http://
        self._user_agent = f"pgdeck botocore/{botocore.__version__} aiohttp/{aiohttp.__version__}"
        self.enabled = True
        self._strikes = 0  # answers in a row that were neither a 200 nor a 404
        self.signed = 0  # answers read here (the rest were the client's)

    @classmethod
    def learn(
        cls,
        url: str,
        authorization: str,
        key: str,
        credentials: Any,
        *,
        connect_timeout: float,
        read_timeout: float,
        ca_bundle: str | None,
    ) -> SignedHead | None:
        """The fast path for a bucket, from the URL and ``Authorization`` header of a
        HEAD of ``key`` that the client sent and S3 answered (``S3Store`` watches one
        through botocore's ``before-send`` event). None where only the client will do.
        The header's key id and signature are not kept."""
        if credentials is None:
            return None
        algorithm, _, fields = authorization.partition(" ")
        scope = ""
        for part in fields.split(","):
            name, _, value = part.strip().partition("=")
            if name == "Credential":
                scope = value
        parts = scope.split("/")  # key-id/date/region/service/aws4_request
        if algorithm != _SIGV4 or len(parts) < 5 or parts[-2] != "s3":
            return None  # SigV4a, S3 Express sessions, anything else: the client's own
        split = urlsplit(url)
        encoded = percent_encode(key, safe="/~")
        if split.scheme not in ("http", "https") or split.query or not split.path.endswith(encoded):
            return None
        proxies = urllib.request.getproxies()
        if split.scheme in proxies and not urllib.request.proxy_bypass(split.hostname or ""):
            return None  # botocore's proxy handling (and its configuration) stays with it
        tls = None
        if split.scheme == "https":  # a bundle that cannot be read: not learned (raises)
            cafile = verify_path(ca_bundle)
            if os.path.isdir(cafile):
                tls = ssl.create_default_context(capath=cafile)
            else:
                tls = ssl.create_default_context(cafile=cafile)
        return cls(
            f"{split.scheme}://{split.netloc}",
            split.path[: len(split.path) - len(encoded)],
            parts[-3],
            parts[-2],
            credentials,
            connect_timeout,
            read_timeout,
            tls,
        )

    def run(
        self,
        keys: Iterable[str],
        workers: int,
        answer: Answer,
        fallback: Callable[[str], ObjectHead],
        stop: threading.Event,
    ) -> None:
        """HEAD every key, ``workers`` in flight, and hand each ``answer`` (an
        ``ObjectHead``, or what ``fallback``, the client's HEAD, raised) as it comes, in
        the loop's thread. Returns when all are answered or soon after ``stop`` is set
        (HEADs in flight are dropped, the client's are not waited for)."""
        todo = list(keys)
        if not todo:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # none in this thread (a worker thread, the command line)
            asyncio.run(self._run(todo, max(1, workers), answer, fallback, stop))
            return
        # Called on an event loop's thread (a coroutine of the console's): its own loop,
        # in a thread of its own, and this one waits as any blocking call would.
        failure: list[BaseException] = []

        def own_loop() -> None:
            try:
                asyncio.run(self._run(todo, max(1, workers), answer, fallback, stop))
            except BaseException as exc:  # said in the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=own_loop, name="pgdeck-heads", daemon=True)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    async def _run(
        self,
        keys: list[str],
        workers: int,
        answer: Answer,
        fallback: Callable[[str], ObjectHead],
        stop: threading.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        # The client's HEADs (any answer but a 200) in threads, boto3 blocking; fewer
        # than the signed ones in flight: the client's path is the careful one.
        clients = cf.ThreadPoolExecutor(min(workers, _CLIENT_THREADS), "pgdeck-head")
        connector = aiohttp.TCPConnector(limit=workers, ssl=self._tls or True)
        pending = iter(keys)
        try:
            async with aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=False
            ) as session:

                async def worker() -> None:
                    for key in pending:  # one iterator: each key taken once
                        if stop.is_set():
                            return
                        got: ObjectHead | Exception | None = await self._head(session, key)
                        if got is None:
                            try:
                                got = await loop.run_in_executor(clients, fallback, key)
                            except Exception as exc:  # the client's error, as it said it
                                got = exc
                        if not stop.is_set():
                            answer(key, got)  # raising ends the run: a bug of ours, said

                tasks = [asyncio.create_task(worker()) for _ in range(min(workers, len(keys)))]
                running: set[asyncio.Task[None]] = set(tasks)
                while running and not stop.is_set():
                    done, running = await asyncio.wait(
                        running, timeout=STOP_POLL, return_when=asyncio.FIRST_EXCEPTION
                    )
                    if any(not t.cancelled() and t.exception() for t in done):
                        break
                for task in running:
                    task.cancel()  # stopped, or a worker failed: what is in flight is dropped
                await asyncio.gather(*tasks, return_exceptions=True)
                for task in tasks:
                    failure = None if task.cancelled() else task.exception()
                    if failure is not None:
                        raise failure
        finally:
            clients.shutdown(wait=False, cancel_futures=True)

    async def _head(self, session: Any, key: str) -> ObjectHead | None:
        """The signed HEAD's answer when it was a 200, else None (ask the client)."""
        if not self.enabled:
            return None
        target = self._base_path + percent_encode(key, safe="/~")
        headers = self._signed_headers(self._origin + target)
        if headers is None:
            self.enabled = False  # credentials that would not refresh: the client says why
            return None
        try:
            # The target as signed, sent as it is (a key's "." segments are its own).
            url = yarl.URL(self._origin + target, encoded=True)
            async with session.head(url, headers=headers, allow_redirects=False) as r:
                status, h = r.status, r.headers
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            status, h = 0, None  # aiohttp already sent it again once on a dropped connection
        head = _object_head(h) if status == 200 and h is not None else None
        if head is not None or status == 404:
            self._strikes = 0
        else:
            # A throttle, a redirect, a refused signature, a transport error: after a few
            # in a row the client, with its backoff and its errors, takes every HEAD.
            self._strikes += 1
            if self._strikes >= _STRIKES:
                self.enabled = False
        if head is not None:
            self.signed += 1
        return head

    def _signed_headers(self, url: str) -> dict[str, str] | None:
        """The request's headers, signed; None when the credentials would not refresh.
        (A frame of its own: the secret is not left in ``_head``'s locals.)"""
        request = AWSRequest(method="HEAD", url=url, headers={"User-Agent": self._user_agent})
        try:
            frozen = self._credentials.get_frozen_credentials()  # refreshed when due
            S3SigV4Auth(frozen, self._service, self._region).add_auth(request)
        except Exception:
            return None
        return dict(request.headers.items())


def _object_head(h: Any) -> ObjectHead | None:
    """A 200's headers as a head; None for what S3 does not send (a Last-Modified of
    "inf", a Content-Length that is no number): the client's then."""
    try:
        modified = h.get("Last-Modified")
        return ObjectHead(
            size=int(h.get("Content-Length") or 0),
            sse=h.get(_SSE) or "",
            etag=(h.get("ETag") or "").strip('"') or None,
            last_modified=parse_s3_time(modified) if modified else None,
        )
    except Exception:
        return None


def verify_path(ca_bundle: str | None) -> str:
    """The certificates the client trusts, as botocore chooses them: the ``ca_bundle``
    setting (AWS_CA_BUNDLE or the profile's), else REQUESTS_CA_BUNDLE, else botocore's
    own bundle (a file, or a directory of hashed certificates)."""
    return str(get_cert_path(ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or True))
