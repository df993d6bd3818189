"""HEAD requests for the bulk encryption checks, at a third of boto3's CPU per request.

A week of hourly backups of 500 clusters is 84,000 objects, and a listing never says how
an object is encrypted: the cold weekly review makes one HEAD per object. Against S3's
~100 ms a request, that needs ~150 requests in flight to end within a minute, and then
the client's own CPU is the limit: boto3's ``head_object`` spends 1.0-1.5 ms of Python
per call (its event hooks, endpoint rules, serializer and parser; bench/README.md), two
minutes of one core for the week, under one GIL.

``SignedHead`` makes the same request with the parts of botocore that matter and nothing
else: the URL of an object is the one botocore itself builds for the bucket (learned
from a HEAD the client made: endpoint, addressing style and signing region, as it
resolved them), each request is signed by botocore's own SigV4 signer with the
client's credentials (refreshed as the client refreshes them), and it is sent on a
urllib3 connection pool (botocore's own transport library) with the client's certificate
bundle and timeouts. Only a ``200`` is read here (size, ETag, Last-Modified, encryption);
any other answer returns None and the caller asks the boto3 client again, which brings
its retries, region redirects and error messages: a 404 (an object deleted since the
listing) costs one more request, and anything else (a throttle, a redirect, a refused
signature, a third transport error) also switches this path off for good, so that the
client alone handles a store in trouble. A proxy in the environment, credentials of another
kind or a signature other than SigV4 are never tried here (``learn`` returns None).
"""

from __future__ import annotations

import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

# Imported by the store when it first HEADs, never at the console's start.
import botocore
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import get_cert_path
from botocore.utils import percent_encode

from services.storage import parse_s3_time

_SIGV4 = "AWS4-HMAC-SHA256"
_SSE = "x-amz-server-side-encryption"
_STRIKES = 3  # transport errors before the client takes every HEAD of the store


class SignedHead:
    """HEADs of one bucket's objects; see the module's docstring."""

    def __init__(
        self,
        origin: str,
        base_path: str,
        region: str,
        service: str,
        credentials: Any,
        pool: Any,
        user_agent: str,
    ) -> None:
        self._origin = origin  # scheme://host[:port]
        self._base_path = base_path  # "/bucket/" (path style) or "/" (virtual host)
        self._region = region
        self._service = service
        self._credentials = credentials
        self._pool = pool
        self._user_agent = user_agent
        self.enabled = True
        self._strikes = 0  # transport errors so far (a lost increment only delays _off)

    @classmethod
    def learn(
        cls,
        url: str,
        authorization: str,
        key: str,
        credentials: Any,
        *,
        workers: int,
        connect_timeout: float,
        read_timeout: float,
        ca_bundle: str | None,
    ) -> SignedHead | None:
        """The fast path for a bucket, from the URL and ``Authorization`` header of a
        HEAD of ``key`` that the client sent and S3 answered (``S3Store`` watches one
        through botocore's ``before-send`` event): its endpoint, addressing style and
        signing region are what botocore resolved, after any region redirect. None where
        only the client will do. The header's key id and signature are not kept."""
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
        origin = f"{split.scheme}://{split.netloc}"
        manager = urllib3.PoolManager(
            num_pools=1,
            maxsize=max(1, workers),
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            cert_reqs="CERT_REQUIRED",
            ca_certs=get_cert_path(ca_bundle or True),
        )
        return cls(
            origin,
            split.path[: len(split.path) - len(encoded)],
            parts[-3],
            parts[-2],
            credentials,
            manager.connection_from_url(origin),
            f"pgdeck botocore/{botocore.__version__}",
        )

    def head(self, key: str) -> tuple[int, str, str | None, datetime | None] | None:
        """(size, encryption or "", ETag, Last-Modified) of ``key``, or None: ask the
        client (the answer was not a 200, or this path is off)."""
        if not self.enabled:
            return None
        target = self._base_path + percent_encode(key, safe="/~")
        request = AWSRequest(method="HEAD", url=self._origin + target, headers={})
        request.headers["User-Agent"] = self._user_agent
        try:
            frozen = self._credentials.get_frozen_credentials()  # refreshed when due
            S3SigV4Auth(frozen, self._service, self._region).add_auth(request)
        except Exception:  # a refresh that failed: the client says why
            self._off()
            return None
        try:
            # The target as signed: never parsed again (a key's "." segments stay).
            r = self._pool.urlopen(
                "HEAD",
                target,
                headers=dict(request.headers.items()),
                redirect=False,
                assert_same_host=False,
            )
        except Exception:  # urllib3's errors and the socket's: the client retries them
            self._strikes += 1  # a kept-alive connection the server just closed: not yet
            if self._strikes >= _STRIKES:
                self._off()
            return None
        if r.status != 200:
            if r.status != 404:
                self._off()
            return None
        h = r.headers
        try:
            modified = h.get("Last-Modified")
            return (
                int(h.get("Content-Length") or 0),
                h.get(_SSE) or "",
                (h.get("ETag") or "").strip('"') or None,
                parse_s3_time(modified) if modified else None,
            )
        except (ValueError, TypeError, OverflowError):  # not what S3 sends: the client's
            self._off()
            return None

    def _off(self) -> None:
        self.enabled = False  # one attribute: no lock needed
