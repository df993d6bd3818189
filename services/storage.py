"""Object storage holding the operator's logical backups: S3 (or compatible) and file://.

A store lists the backups under one location without reading anything else: it finds
cluster names with one delimited listing, then walks each cluster's prefix with a
*skip-scan*: keys sort as ``<uid>/logical_backups/<epoch>.sql.gz``, so whenever the
listing strays into another subtree (WAL, basebackups) or into objects already known,
the next request jumps past them with ``StartAfter`` instead of paging through them.
"""

from __future__ import annotations

import concurrent.futures as cf
import email.utils
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlsplit

from services.config import CatalogConfig, StorageLocation
from services.errors import ConfigError, PgdeckError, StorageError, StorageStalled
from services.operator import BACKUP_DIR, parse_backup_key
from services.text import safe_text

if TYPE_CHECKING:
    from services.signed_head import SignedHead

_BACKUPS = BACKUP_DIR + "/"
SIDECAR = ".pgdeck-meta.json"  # object metadata beside a file:// copy (see FileStore)
# One past "/" in byte order: StartAfter "<uid>0" lands after every key under "<uid>/".
_PAST_SUBTREE = chr(ord("/") + 1)
DEFAULT_TIMEOUT = CatalogConfig().storage_timeout_seconds  # catalog.storage_timeout_seconds
ATTEMPTS = 4  # tries of one request (botocore's standard retry mode, with backoff)
_LEARN_TRIES = 3  # client HEADs that may fail (deleted objects) before a bulk check's rest
STOP_POLL = 0.1  # seconds between a bulk check's looks at its ``stop``


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A backup object as a listing shows it (relative key: ``<cluster>/<uid>/...``)."""

    relative_key: str
    size: int
    storage_class: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectHead:
    size: int
    sse: str | None  # "" stored without server-side encryption; None: the store cannot tell
    etag: str | None
    last_modified: datetime | None


# Given each HEAD's answer (its head, or the error it raised), from another thread.
Answer = Callable[[str, ObjectHead | Exception], None]


class BackupStore(Protocol):
    location: StorageLocation

    def list_clusters(self) -> list[str]: ...

    def list_cluster(
        self, cluster: str, known: Mapping[str, str] | None = None
    ) -> list[StoredObject]: ...

    def head(self, relative_key: str) -> ObjectHead: ...

    def can_tell_sse(self) -> bool: ...

    def heads(
        self,
        relative_keys: Iterable[str],
        workers: int,
        answer: Answer,
        stop: threading.Event,
    ) -> None: ...

    def open_range(
        self, relative_key: str, start: int, if_match: str | None = None
    ) -> tuple[Iterator[bytes], int, str | None]: ...

    def url(self, relative_key: str) -> str: ...

    def full_key(self, relative_key: str) -> str: ...

    def take_refused(self) -> list[str]: ...


def open_store(
    location: StorageLocation, workers: int = 16, timeout: float = DEFAULT_TIMEOUT
) -> BackupStore:
    if location.scheme == "s3":
        return S3Store(location, workers=workers, timeout=timeout)
    if location.scheme == "file":
        return FileStore(location)
    raise ConfigError(f"storage url {location.url!r}: unsupported scheme")


class _Unknown:
    """Not learned yet."""


_UNKNOWN = _Unknown()


class S3Store:
    """A location in S3 or S3-compatible storage, read with the user's own credentials."""

    def __init__(
        self,
        location: StorageLocation,
        workers: int = 16,
        client: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.location = location
        self.bucket = location.bucket
        self.prefix = location.prefix + "/" if location.prefix else ""
        self._client = client
        self._session: Any = None  # the client's, when this store built it
        self._workers = workers
        self.timeout = timeout
        self._lock = threading.Lock()
        self._signed: SignedHead | None | _Unknown = _UNKNOWN  # see ``heads``
        self._watching = threading.local()  # .seen: the requests of a learning HEAD

    @property
    def client(self) -> Any:
        # Built lazily and once: boto3 clients are thread-safe, sessions are not.
        with self._lock:
            if self._client is None:
                self._session = s3_session(self.location)
                client = _client_of(self._session, self.location, self._workers, self.timeout)
                # Registered once, before any other thread has the client (a client's
                # events must not change while it is shared); it records only in the
                # thread of a learning HEAD (``_learning_head``), and only that HEAD.
                client.meta.events.register(
                    "before-send.s3.HeadObject", self._watch, unique_id="pgdeck-learn"
                )
                self._client = client
            return self._client

    def _watch(self, request: Any, **_: Any) -> None:
        seen = getattr(self._watching, "seen", None)
        if seen is not None:
            auth = request.headers.get("Authorization")
            if auth:
                seen.append((str(request.url), auth.decode() if isinstance(auth, bytes) else auth))

    def url(self, relative_key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{relative_key}"

    def full_key(self, relative_key: str) -> str:
        return self.prefix + relative_key

    def list_clusters(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix, "Delimiter": "/"}
        while True:
            page = self._call("list_objects_v2", **kwargs)
            for cp in page.get("CommonPrefixes", ()):
                name = cp["Prefix"][len(self.prefix) :].rstrip("/")
                if name:
                    names.append(name)
            if not page.get("IsTruncated"):
                return names
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def list_cluster(
        self, cluster: str, known: Mapping[str, str] | None = None
    ) -> list[StoredObject]:
        """Backups under ``<prefix>/<cluster>/``.

        With ``known`` (uid -> newest relative key known, or ``<cluster>/<uid>/`` for a
        uid with nothing known yet), only what is new under those uids: one tight listing
        per uid, starting after the newest key (keys sort by time under a uid). Without
        it, a skip-scan of the whole cluster prefix.
        """
        if known:
            found: list[StoredObject] = []
            for uid, last in sorted(known.items()):
                found.extend(
                    self._list_new(f"{self.prefix}{cluster}/{uid}/{_BACKUPS}", self.prefix + last)
                )
            return found
        return self._skip_scan(f"{self.prefix}{cluster}/")

    def _list_new(self, prefix: str, start_after: str) -> list[StoredObject]:
        found: list[StoredObject] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after > prefix:
            kwargs["StartAfter"] = start_after
        while True:
            page = self._call("list_objects_v2", **kwargs)
            found.extend(self._stored(obj) for obj in page.get("Contents", ()))
            if not page.get("IsTruncated"):
                return found
            kwargs.pop("StartAfter", None)
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _skip_scan(self, base: str) -> list[StoredObject]:
        """Every backup under ``base``, jumping over other subtrees (WAL, basebackups)
        whenever a page ends inside one instead of paging through it."""
        found: list[StoredObject] = []
        start: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
            if start:
                kwargs["StartAfter"] = start
            page = self._call("list_objects_v2", **kwargs)
            last = None
            for obj in page.get("Contents", ()):
                last = obj["Key"]
                uid, _, rest = last[len(base) :].partition("/")
                if rest.startswith(_BACKUPS):
                    found.append(self._stored(obj))
            if not page.get("IsTruncated") or last is None:
                return found
            uid, _, rest = last[len(base) :].partition("/")
            if rest.startswith(_BACKUPS):
                start = last
            elif rest < _BACKUPS:
                start = max(last, f"{base}{uid}/{_BACKUPS}")
            else:
                start = f"{base}{uid}{_PAST_SUBTREE}"

    def _stored(self, obj: dict[str, Any]) -> StoredObject:
        return StoredObject(
            relative_key=obj["Key"][len(self.prefix) :],
            size=int(obj.get("Size", 0)),
            storage_class=obj.get("StorageClass"),
            etag=(obj.get("ETag") or "").strip('"') or None,
        )

    def can_tell_sse(self) -> bool:
        return True

    def take_refused(self) -> list[str]:
        return []  # a bucket has no links

    def head(self, relative_key: str) -> ObjectHead:
        key = self.prefix + relative_key
        return self._head_of(self._call("head_object", Bucket=self.bucket, Key=key))

    @staticmethod
    def _head_of(r: Mapping[str, Any]) -> ObjectHead:
        return ObjectHead(
            size=int(r.get("ContentLength", 0)),
            sse=r.get("ServerSideEncryption") or "",
            etag=(r.get("ETag") or "").strip('"') or None,
            last_modified=r.get("LastModified"),
        )

    def heads(
        self,
        relative_keys: Iterable[str],
        workers: int,
        answer: Answer,
        stop: threading.Event,
    ) -> None:
        """HEAD every key, ``workers`` in flight, handing each ``answer`` (its head, or
        the error its HEAD raised) as it comes, from another thread; returns when all are
        answered or soon after ``stop`` is set. The first is the client's, and teaches
        the store its request; the rest are signed and sent without boto3's pipeline
        (``SignedHead``), each answer but a 200 asked of the client again."""
        todo = list(relative_keys)
        signed = self._signed
        tries = 0
        while isinstance(signed, _Unknown) and todo and tries < _LEARN_TRIES:
            if stop.is_set():
                return
            rel, tries = todo.pop(0), tries + 1
            got: ObjectHead | Exception
            try:
                got = self._learning_head(self.prefix + rel)
            except Exception as exc:  # the caller judges it (and may stop)
                got = exc
            answer(rel, got)
            if isinstance(got, Exception) and not is_gone(got):
                break  # a failing store (stalled, refused): not HEAD after HEAD in turn
            signed = self._signed
        if signed is None or isinstance(signed, _Unknown) or not signed.enabled:
            threaded_heads(self.head, todo, workers, answer, stop)
            return

        def fallback(full_key: str) -> ObjectHead:
            return self.head(full_key[len(self.prefix) :])

        signed.run(
            (self.prefix + rel for rel in todo),
            workers,
            lambda key, got: answer(key[len(self.prefix) :], got),
            fallback,
            stop,
        )

    def _learning_head(self, key: str) -> ObjectHead:
        """The client's HEAD of ``key``, watched (botocore's ``before-send`` event, in
        this thread) for the URL and signature scope a ``SignedHead`` needs. A store
        whose client was given (its credentials are the caller's) never learns."""
        _ = self.client  # built, and with it the session (unless it was given)
        if self._session is None:
            self._signed = None
            return self._head_of(self._call("head_object", Bucket=self.bucket, Key=key))
        seen: list[tuple[str, str]] = []
        self._watching.seen = seen
        try:
            r = self._call("head_object", Bucket=self.bucket, Key=key)
        finally:
            self._watching.seen = None
        if seen:
            from services.signed_head import SignedHead

            try:
                core = self._session._session  # botocore's, under boto3's
                self._signed = SignedHead.learn(
                    *seen[-1],  # the one answered, after any redirect
                    key,
                    self._session.get_credentials(),
                    connect_timeout=attempt_timeout(self.timeout),
                    read_timeout=attempt_timeout(self.timeout),
                    ca_bundle=core.get_config_variable("ca_bundle"),
                )
            except Exception:  # nothing learned: the client keeps every HEAD
                self._signed = None
        return self._head_of(r)

    def open_range(
        self, relative_key: str, start: int, if_match: str | None = None
    ) -> tuple[Iterator[bytes], int, str | None]:
        """The object's bytes from ``start`` on, its whole size and its ETag."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + relative_key}
        if start:
            kwargs["Range"] = f"bytes={start}-"
        if if_match:
            kwargs["IfMatch"] = if_match
        r = self._call("get_object", **kwargs)
        total = int(r.get("ContentLength", 0)) + start
        rng = r.get("ContentRange")  # "bytes 100-199/200"
        if rng and "/" in rng:
            total = int(rng.rsplit("/", 1)[1])

        def body() -> Iterator[bytes]:
            from botocore.exceptions import ReadTimeoutError

            stream = r["Body"]
            try:
                yield from stream.iter_chunks(1 << 20)
            except ReadTimeoutError as exc:  # said as a stall; resumed or not by the caller
                raise self._error(exc, kwargs["Key"]) from exc
            finally:
                stream.close()

        return body(), total, r.get("ETag")

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, op)(**kwargs)
        except Exception as exc:  # botocore raises many unrelated classes
            raise self._error(exc, kwargs.get("Key")) from exc

    def _error(self, exc: Exception, key: str | None) -> Exception:
        endpoint = getattr(getattr(self._client, "meta", None), "endpoint_url", None)
        return s3_error(exc, self.location, key, self.timeout, endpoint)


def is_gone(exc: Exception) -> bool:
    """A HEAD's 404: the object was deleted since the last listing (retention)."""
    return isinstance(exc, PgdeckError) and "not found" in str(exc)


def threaded_heads(
    head: Callable[[str], ObjectHead],
    relative_keys: Iterable[str],
    workers: int,
    answer: Answer,
    stop: threading.Event,
) -> None:
    """``heads`` as one ``head`` per thread, ``workers`` at a time (a file:// copy, a
    store whose client was given or that could not learn its requests). Once ``stop`` is
    set, queued HEADs are dropped and those in flight are not waited for (a stalled
    endpoint's timeout each)."""
    todo = list(relative_keys)

    def one(rel: str) -> None:
        if stop.is_set():
            return
        try:
            got: ObjectHead | Exception = head(rel)
        except Exception as exc:  # botocore's own classes too: the caller judges
            got = exc
        if not stop.is_set():
            answer(rel, got)

    pool = cf.ThreadPoolExecutor(max(1, min(workers, len(todo) or 1)))
    try:
        pending = {pool.submit(one, rel) for rel in todo}
        while pending and not stop.is_set():
            done, pending = cf.wait(pending, STOP_POLL, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                fut.result()  # an ``answer`` that raised: a bug, said
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def make_s3_client(
    location: StorageLocation, workers: int = 16, timeout: float = DEFAULT_TIMEOUT
) -> Any:
    """A client whose every request is bounded: an endpoint that accepts a connection
    and then says nothing fails the call within about ``timeout`` seconds (see
    ``attempt_timeout``), never retries x a long timeout."""
    return _client_of(s3_session(location), location, workers, timeout)


def s3_session(location: StorageLocation) -> Any:
    """The boto3 session of ``location``'s profile (or the environment's credentials)."""
    import boto3
    import botocore.exceptions
    import botocore.session

    core = botocore.session.Session()
    # Listings carry a LastModified per key, and botocore's default parser (dateutil)
    # is most of the client's CPU on a 72,000-key catalog; ISO 8601 first is 6x cheaper.
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_s3_time
    )
    try:
        return boto3.session.Session(botocore_session=core, profile_name=location.profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(
            f"storage {location.url}: AWS profile {location.profile!r} not found",
            "fix storage[].profile or your ~/.aws/config",
        ) from exc


def _client_of(session: Any, location: StorageLocation, workers: int, timeout: float) -> Any:
    import botocore.config

    s3_options: dict[str, Any] = {}
    if location.addressing_style:
        s3_options["addressing_style"] = location.addressing_style
    cfg = botocore.config.Config(
        # botocore's standard retry mode: exponential backoff with jitter on throttling
        # and transient errors, shared by every call (no hand-written retry loop).
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
        connect_timeout=attempt_timeout(timeout),
        read_timeout=attempt_timeout(timeout),
        max_pool_connections=max(10, workers),
        s3=cast(Any, s3_options or None),
    )
    return session.client(
        "s3",
        endpoint_url=location.endpoint_url,
        region_name=location.region,
        config=cfg,
    )


def parse_s3_time(value: str) -> datetime:
    """A listing's ISO 8601 time, or a HEAD's ``Last-Modified`` (RFC 7231's IMF-fixdate),
    each with the standard library's own parser; anything else as botocore reads it
    (dateutil: ~0.2 ms a call, as much CPU as the rest of a HEAD's parsing)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        pass
    if value[-4:] == " GMT":
        try:
            return email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
    import botocore.utils

    return botocore.utils.parse_timestamp(value)


def attempt_timeout(timeout: float) -> float:
    """How long one try of a request waits for a connection or for its next bytes: a
    ``timeout`` holds the ATTEMPTS tries of a request (plus botocore's backoff between
    them: under half a second after timeouts) and the one stall a transfer is resumed
    after (see ``compressed_chunks``)."""
    return timeout / (ATTEMPTS + 1)


def _endpoint(exc: Exception, location: StorageLocation, client_endpoint: str | None) -> str:
    """The endpoint that failed, as scheme://host[:port] (never a path or a query): the
    one the error names, else the configured one, else the client's (AWS's regional)."""
    for url in (
        getattr(exc, "kwargs", {}).get("endpoint_url"),
        location.endpoint_url,
        client_endpoint,
    ):
        parts = urlsplit(str(url or ""))
        if parts.netloc:  # user:password@ never shown
            return safe_text(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}")
    return "the S3 endpoint"


def s3_error(
    exc: Exception,
    location: StorageLocation,
    key: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    client_endpoint: str | None = None,
) -> Exception:
    """One clear line for what boto3 raised, never with a credential in it."""
    import botocore.exceptions as bx

    where = safe_text(f"s3://{location.bucket}/{key}" if key else location.url)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return StorageError(
            f"{where}: no AWS credentials found",
            "set AWS_PROFILE, storage[].profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        endpoint = _endpoint(exc, location, client_endpoint)
        return StorageError(
            f"{where}: cannot reach {endpoint}", "check storage[].endpoint_url and the network"
        )
    if isinstance(exc, bx.ReadTimeoutError):
        return StorageStalled(
            f"{where}: the storage endpoint {_endpoint(exc, location, client_endpoint)} stalled "
            f"(no answer within {timeout:g} s)",
            "check the endpoint and the network, or raise catalog.storage_timeout_seconds",
        )
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return StorageError(
                f"{where}: bucket {location.bucket!r} does not exist",
                "check the bucket name in storage[].url or the operator's logical_backup_s3_bucket",
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
            return StorageError(
                f"{where}: the storage rejected your AWS credentials ({code})",
                "check the access key, secret and profile in use",
            )
        if code in ("AccessDenied", "AllAccessDisabled") or status == 403:
            return StorageError(
                f"{where}: access denied",
                "your credentials need s3:ListBucket and s3:GetObject on this bucket",
            )
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return StorageError(f"{where}: object not found", "refresh the catalog")
        return StorageError(f"{where}: storage error {code or status}: {err.get('Message', '')}")
    if isinstance(exc, bx.BotoCoreError):
        return StorageError(f"{where}: {exc}")
    if isinstance(exc, PgdeckError):
        return exc
    # Something botocore let through (an answer it could not read, such as a
    # Last-Modified of "inf"): one line, never the text, which --debug shows.
    return StorageError(
        f"{where}: the storage sent an answer that could not be read ({type(exc).__name__})",
        "run with --debug for the details",
    )


class FileStore:
    """A local copy of the same layout (``file:///srv/backups/spilo``).

    A directory has no server-side encryption to report. When the copy keeps what S3 said
    of each object in a sidecar, ``<root>/.pgdeck-meta.json`` mapping relative keys to
    ``{"sse": "AES256" | "aws:kms" | ""}`` (as ``aws s3api head-object`` reports it),
    ``head`` returns that; for an object the sidecar does not name, ``sse`` is None.

    Symbolic links are followed only while they stay inside the root (compared by real
    path): a copy may link objects or directories to one another, but a link (file or
    directory, at any depth) that leads outside the root is never listed, statted or
    read. Listing skips it and remembers it (``take_refused``); reading it is refused.
    """

    def __init__(self, location: StorageLocation) -> None:
        self.location = location
        self.root = Path(location.url.removeprefix("file://"))
        self._lock = threading.Lock()
        self._meta: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._base = str(self.root).rstrip("/") + "/"  # joined as text: called per object
        self._refused: set[str] = set()

    def url(self, relative_key: str) -> str:
        return "file://" + self._base + relative_key

    def full_key(self, relative_key: str) -> str:
        return self._base + relative_key

    # --- staying inside the root ------------------------------------------------------------
    def _real(self, path: str | Path) -> str | None:
        """``path``'s real path when it lies inside the root, else None."""
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real if real == root or real.startswith(root.rstrip(os.sep) + os.sep) else None

    def _refuse(self, relative: str) -> None:
        with self._lock:
            self._refused.add(relative)

    def take_refused(self) -> list[str]:
        """Relative paths of the links listing skipped since the last call (they lead
        outside the root), sorted."""
        with self._lock:
            out, self._refused = sorted(self._refused), set()
        return out

    def _outside(self, relative_key: str) -> StorageError:
        return StorageError(
            f"{safe_text(self.url(relative_key))}: a link leading outside "
            f"{safe_text(self.location.url)}: refused",
            "replace the link by the file, or point storage[].url at the directory it is in",
        )

    def _resolve(self, relative_key: str) -> str:
        real = self._real(self.root / relative_key)
        if real is None:
            raise self._outside(relative_key)
        return real

    # --- listing ----------------------------------------------------------------------------
    def list_clusters(self) -> list[str]:
        if not self.root.is_dir():
            raise StorageError(
                f"{self.location.url}: no such directory", "check storage[].url in the config"
            )
        names = []
        for e in os.scandir(self.root):
            if e.is_symlink() and self._real(e.path) is None:
                self._refuse(e.name)
            elif e.is_dir():
                names.append(e.name)
        return sorted(names)

    def list_cluster(
        self, cluster: str, known: Mapping[str, str] | None = None
    ) -> list[StoredObject]:
        found: list[StoredObject] = []
        cdir = self.root / cluster
        if self._real(cdir) is None:
            if os.path.lexists(cdir):
                self._refuse(cluster)
            return found
        try:
            uids = sorted(e.name for e in os.scandir(cdir) if e.is_dir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"{self.url(cluster)}: cannot be read ({exc.strerror})") from exc
        for uid in uids:
            last = (known or {}).get(uid)
            for name, size in self._scan_backups(f"{cluster}/{uid}/{BACKUP_DIR}"):
                rel = f"{cluster}/{uid}/{BACKUP_DIR}/{name}"
                if last is not None and rel <= last:
                    continue
                if parse_backup_key(rel) is not None:
                    found.append(StoredObject(relative_key=rel, size=size))
        return found

    def _scan_backups(self, relative_dir: str) -> Iterator[tuple[str, int]]:
        """(name, size) of the files in one backups directory; a link (the directory, or
        a file in it) that leads outside the root is skipped and remembered."""
        directory = self.root / relative_dir
        if self._real(directory) is None:  # the uid directory or logical_backups links out
            if os.path.lexists(directory):
                self._refuse(relative_dir)
            return
        try:
            entries: Iterable[os.DirEntry[str]] = sorted(
                os.scandir(directory), key=lambda e: e.name
            )
        except FileNotFoundError:
            return
        for e in entries:
            if e.is_symlink() and self._real(e.path) is None:
                self._refuse(f"{relative_dir}/{e.name}")
            elif e.is_file():
                yield e.name, e.stat().st_size

    # --- reading ----------------------------------------------------------------------------
    def can_tell_sse(self) -> bool:
        """Only with a sidecar: a plain directory knows nothing of encryption."""
        return self._sidecar() is not None

    def head(self, relative_key: str) -> ObjectHead:
        try:
            st = os.stat(self._resolve(relative_key))
        except FileNotFoundError as exc:
            raise StorageError(
                f"{safe_text(self.url(relative_key))}: object not found",
                "check the path or run `pgdeck backups`",
            ) from exc
        meta = (self._sidecar() or {}).get(relative_key)
        sse = meta.get("sse") if isinstance(meta, dict) else None
        return ObjectHead(
            size=st.st_size,
            sse=sse if isinstance(sse, str) else None,
            etag=None,
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def heads(
        self,
        relative_keys: Iterable[str],
        workers: int,
        answer: Answer,
        stop: threading.Event,
    ) -> None:
        threaded_heads(self.head, relative_keys, 1, answer, stop)  # local: one at a time

    def _sidecar(self) -> dict[str, Any] | None:
        """``.pgdeck-meta.json``: what S3 would say of each object, read again when it changes."""
        path = self.root / SIDECAR
        try:
            st = os.stat(self._resolve(SIDECAR))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"{path}: cannot be read ({exc.strerror})") from exc
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if self._meta is not None and self._meta[0] == stamp:
                return self._meta[1]
            try:
                data = json.loads(Path(self._resolve(SIDECAR)).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise StorageError(
                    f"{path}: not a JSON object of keys to metadata ({exc})",
                    f"fix or remove {SIDECAR}",
                ) from exc
            if not isinstance(data, dict):
                raise StorageError(
                    f"{path}: not a JSON object of keys to metadata", f"fix or remove {SIDECAR}"
                )
            self._meta = (stamp, data)
            return data

    def open_range(
        self, relative_key: str, start: int, if_match: str | None = None
    ) -> tuple[Iterator[bytes], int, str | None]:
        real = self._resolve(relative_key)
        try:
            # O_NOFOLLOW: a link put in the resolved file's place meanwhile is not opened.
            f = os.fdopen(os.open(real, os.O_RDONLY | os.O_NOFOLLOW), "rb")
        except FileNotFoundError as exc:
            raise StorageError(
                f"{safe_text(self.url(relative_key))}: object not found",
                "check the path or run `pgdeck backups`",
            ) from exc
        except OSError as exc:
            raise StorageError(
                f"{safe_text(self.url(relative_key))}: cannot be read ({exc.strerror})"
            ) from exc
        size = os.fstat(f.fileno()).st_size
        f.seek(start)

        def body() -> Iterator[bytes]:
            with f:
                while chunk := f.read(1 << 20):
                    yield chunk

        return body(), size, None
