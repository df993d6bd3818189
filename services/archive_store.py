"""Where the archive's bytes live: a local directory or an S3 prefix, written once each.

Both stores offer the same few operations to ``services.archive``: create an object that
must not exist yet (never replacing one), read, list, delete, and append an entry to the
audit chain. Locally an object is written to a temporary file, fsynced, hard-linked to
its name (``link`` fails when the name exists, where ``rename`` would replace it) and the
directory fsynced; the audit log is one file appended under an exclusive ``flock``. On
S3 every put is conditional (``If-None-Match: *``), so an object is never overwritten and
a bucket with Object Lock keeps every one; the audit log is one object per entry,
``audit/<seq>.json``, and two writers racing for a sequence number cannot both win.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from services.config import StorageLocation
from services.errors import ArchiveError

AUDIT_LOG = "audit.log"
AUDIT_HEAD = "audit.head"  # local only: the sequence and hash of the newest line
AUDIT_DIR = "audit"  # S3: one object per entry
GENESIS = "0" * 64  # the "previous hash" of the first entry
_AUDIT_KEY = re.compile(r"^audit/(\d{12})\.json$")
_FIX = "check `archive:` in the config, the permissions and free space"

Build = Callable[[int, str], bytes]  # (seq, prev) -> the entry's bytes, without newline


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Exists(Exception):
    """The name is taken: nothing was written (and nothing replaced)."""


class ArchiveStore(Protocol):
    where: str  # the archive as the user wrote it: a path or s3://bucket/prefix

    def url(self, key: str) -> str: ...

    def check_writable(self) -> None: ...

    def put_new(self, key: str, data: bytes) -> None: ...

    def get(self, key: str, limit: int | None = None) -> bytes | None:
        """The object's bytes (at most ``limit`` of them), or None when there is none."""
        ...

    def keys(self, folder: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def append_audit(self, build: Build) -> tuple[int, bytes]: ...

    def audit_entries(self) -> list[tuple[str, bytes]]: ...

    def audit_head(self) -> tuple[int, str] | None: ...

    def entry_name(self, position: int) -> str: ...


def open_store(spec: Path | StorageLocation) -> ArchiveStore:
    if isinstance(spec, StorageLocation):
        return S3ArchiveStore(spec)
    return LocalStore(spec)


# --- a local directory ----------------------------------------------------------------------
class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    def url(self, key: str) -> str:
        return str(self.root / key)

    def entry_name(self, position: int) -> str:
        return f"{self.root / AUDIT_LOG} line {position}"

    def check_writable(self) -> None:
        """The directory takes a new file and the audit log can be appended to (and its
        last line continues the chain), before a restore starts rather than after."""
        import tempfile

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
            log = self.root / AUDIT_LOG
            if log.exists():
                fd = os.open(log, os.O_RDWR | os.O_APPEND)
                try:
                    _last_seq(fd, log)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise ArchiveError(
                f"archive {self.root} is not writable ({exc.strerror or exc})", _FIX
            ) from exc

    def put_new(self, key: str, data: bytes) -> None:
        path = self.root / key
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # fails when the name exists: never replaces
            except FileExistsError:
                raise Exists(key) from None
            except OSError as exc:
                if exc.errno not in (1, 38, 95):  # EPERM, ENOSYS, EOPNOTSUPP: no hard links
                    raise
                _create_exclusive(path, data)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise ArchiveError(f"cannot write {path} ({exc.strerror or exc})", _FIX) from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def get(self, key: str, limit: int | None = None) -> bytes | None:
        try:
            with open(self.root / key, "rb") as f:
                return f.read(-1 if limit is None else limit)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ArchiveError(f"cannot read {self.root / key} ({exc.strerror})") from exc

    def keys(self, folder: str) -> list[str]:
        try:
            names = os.listdir(self.root / folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise ArchiveError(f"cannot read {self.root / folder} ({exc.strerror})") from exc
        return sorted(f"{folder}/{n}" for n in names if not n.startswith("."))

    def delete(self, key: str) -> None:
        path = self.root / key
        try:
            path.unlink(missing_ok=True)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise ArchiveError(f"cannot delete {path} ({exc.strerror})") from exc

    def append_audit(self, build: Build) -> tuple[int, bytes]:
        """One line under an exclusive lock, fsynced; then the head record. The new
        sequence number is past both the last line and the head, so a log whose last
        lines were deleted keeps the gap visible instead of reusing their numbers."""
        log = self.root / AUDIT_LOG
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            created = not log.exists()
            fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ArchiveError(f"cannot write {log} ({exc.strerror})", _FIX) from exc
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            last_seq, last = _last_seq(fd, log)
            head = self.audit_head()
            if (
                head is not None
                and last is not None
                and last_seq
                and (head[0] < last_seq or (head[0] == last_seq and head[1] != digest(last)))
            ):
                # Chaining onto an edited last entry would make the edit look whole.
                raise ArchiveError(
                    f"{log}: its last entry no longer matches {AUDIT_HEAD}; nothing was appended",
                    "run pgdeck audit verify to see what changed",
                )
            seq = max(last_seq, head[0] if head else 0) + 1
            line = build(seq, digest(last) if last is not None else GENESIS)
            data = line + b"\n"
            if os.write(fd, data) != len(data):
                raise OSError(28, "short write")
            os.fsync(fd)
            if created:
                _fsync_dir(self.root)
            self._write_head(seq, digest(line))
            return seq, line
        except OSError as exc:
            raise ArchiveError(f"cannot append to {log} ({exc.strerror or exc})", _FIX) from exc
        finally:
            os.close(fd)  # releases the lock

    def _write_head(self, seq: int, sha: str) -> None:
        head = self.root / AUDIT_HEAD
        tmp = self.root / f".{AUDIT_HEAD}.{secrets.token_hex(4)}.tmp"
        try:
            with open(tmp, "xb") as f:
                f.write(json.dumps({"seq": seq, "sha256": sha}).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, head)  # the one file that is replaced: a pointer, not evidence
            _fsync_dir(self.root)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def audit_head(self) -> tuple[int, str] | None:
        """The head record, or None when there is none or it is unreadable."""
        try:
            data = json.loads((self.root / AUDIT_HEAD).read_bytes())
            return int(data["seq"]), str(data["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def audit_entries(self) -> list[tuple[str, bytes]]:
        log = self.root / AUDIT_LOG
        try:
            data = log.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ArchiveError(f"cannot read {log} ({exc.strerror})") from exc
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return [(self.entry_name(i), line) for i, line in enumerate(lines, 1)]


def _last_seq(fd: int, log: Path) -> tuple[int, bytes | None]:
    """The sequence number and bytes of the log's last line (0, None for an empty log).
    Lines from before the chain (no ``seq``) count by their position."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise OSError(0, f"{log} ends in an incomplete line: run `pgdeck audit verify`")
    last, pos = b"", size - 1  # read backwards from the final newline, a block at a time
    while pos > 0:
        step = min(4096, pos)
        pos -= step
        last = os.pread(fd, step, pos) + last
        cut = last.rfind(b"\n")
        if cut >= 0:
            last = last[cut + 1 :]
            break
    try:
        entry = json.loads(last)
    except ValueError:
        raise OSError(
            0, f"the last line of {log} is not an audit entry: run `pgdeck audit verify`"
        ) from None
    if isinstance(entry, dict) and isinstance(entry.get("seq"), int):
        return entry["seq"], last
    with os.fdopen(os.dup(fd), "rb") as f:  # a log from before the chain
        f.seek(0)
        return sum(1 for _ in f), last


def _create_exclusive(path: Path, data: bytes) -> None:
    """For file systems without hard links: O_EXCL still never replaces a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- an S3 prefix -----------------------------------------------------------------------------
class S3ArchiveStore:
    def __init__(self, location: StorageLocation, client: Any = None) -> None:
        self.location = location
        self.where = location.url
        self.bucket = location.bucket
        self.prefix = location.prefix + "/" if location.prefix else ""
        self._client = client
        self._lock = threading.Lock()
        self._last_audit_key: str | None = None  # listings of audit/ start after it

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from services.storage import make_s3_client

                self._client = make_s3_client(self.location, workers=8)
            return self._client

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def entry_name(self, position: int) -> str:
        return f"audit entry {position} ({self.url(f'{AUDIT_DIR}/{position:012d}.json')})"

    def check_writable(self) -> None:
        """The bucket exists and answers. S3 cannot be asked whether a put would be
        allowed without making one (and under Object Lock a probe object stays for good):
        the restore's ``running`` record, written before anything else, is that put."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            failure = _failure(exc, "write", self.where, self.location)
            if isinstance(failure, ArchiveError):
                why = failure.message.removeprefix(f"cannot write {self.where}: ")
                raise ArchiveError(
                    f"archive {self.where} is not writable: {why}", failure.hint
                ) from exc
            raise failure from exc

    def put_new(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                IfNoneMatch="*",
                ContentType="text/markdown" if key.endswith(".md") else "application/json",
            )
        except Exception as exc:
            if _taken(exc):
                raise Exists(key) from None
            raise _failure(exc, "write", self.url(key), self.location) from exc

    def get(self, key: str, limit: int | None = None) -> bytes | None:
        extra = {} if limit is None else {"Range": f"bytes=0-{max(limit, 1) - 1}"}
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key, **extra)
            return bytes(r["Body"].read())
        except Exception as exc:
            if _status(exc) == 404 and _code(exc) != "NoSuchBucket":
                return None
            if limit is not None and _status(exc) == 416:  # a range of an empty object
                return b""
            raise _failure(exc, "read", self.url(key), self.location) from exc

    def keys(self, folder: str, start_after: str | None = None) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self.prefix}{folder}/"}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        try:
            while True:
                page = self.client.list_objects_v2(**kwargs)
                out += [o["Key"][len(self.prefix) :] for o in page.get("Contents", ())]
                if not page.get("IsTruncated"):
                    return sorted(out)
                kwargs.pop("StartAfter", None)
                kwargs["ContinuationToken"] = page["NextContinuationToken"]
        except Exception as exc:
            raise _failure(exc, "list", self.url(folder + "/"), self.location) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            raise _failure(exc, "delete", self.url(key), self.location) from exc

    def append_audit(self, build: Build) -> tuple[int, bytes]:
        """The next ``audit/<seq>.json``, put only if absent; a writer that loses the race
        for a number reads the new last entry and tries the next one."""
        for _ in range(100):
            keys = [k for k in self.keys(AUDIT_DIR, self._last_audit_key) if _AUDIT_KEY.match(k)]
            last_key = keys[-1] if keys else self._last_audit_key
            seq, prev = 0, GENESIS
            if last_key is not None:
                m = _AUDIT_KEY.match(last_key)
                assert m is not None
                seq = int(m[1])
                body = self.get(last_key)
                if body is None:
                    raise ArchiveError(f"{self.url(last_key)} vanished while appending")
                prev = digest(_strip(body))
            line = build(seq + 1, prev)
            key = f"{AUDIT_DIR}/{seq + 1:012d}.json"
            try:
                self.put_new(key, line + b"\n")
            except Exists:
                self._last_audit_key = last_key
                continue
            self._last_audit_key = key
            return seq + 1, line
        raise ArchiveError(
            f"cannot append to the audit log in {self.where}: too many writers at once",
            "try again",
        )

    def audit_entries(self) -> list[tuple[str, bytes]]:
        import concurrent.futures as cf

        keys = [k for k in self.keys(AUDIT_DIR) if _AUDIT_KEY.match(k)]
        with cf.ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(self.get, keys))
        out = []
        for i, body in enumerate(bodies, 1):
            if body is not None:  # deleted between the listing and the read
                out.append((self.entry_name(i), _strip(body)))
        return out

    def audit_head(self) -> tuple[int, str] | None:
        return None  # entries are objects that are never replaced: no head to keep


def _strip(body: bytes) -> bytes:
    return body[:-1] if body.endswith(b"\n") else body


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _taken(exc: Exception) -> bool:
    # 412: the key exists; 409: another conditional write of that key is in flight.
    return _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or _status(exc) in (
        412,
        409,
    )


def _failure(exc: Exception, what: str, url: str, location: StorageLocation) -> Exception:
    """One line naming the archive and why, never a credential."""
    import botocore.exceptions as bx

    if isinstance(exc, ArchiveError):
        return exc
    code, status = _code(exc), _status(exc)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        why, hint = "no AWS credentials found", "set AWS_PROFILE or archive.profile"
    elif isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        why = f"cannot reach {location.endpoint_url or 'the S3 endpoint'}"
        hint = "check archive.endpoint_url and the network"
    elif code == "NoSuchBucket" or (status == 404 and what != "read"):
        why, hint = f"bucket {location.bucket!r} does not exist", "fix `archive:` in the config"
    elif code in ("AccessDenied", "AllAccessDisabled") or status == 403:
        need = {"write": "s3:PutObject", "delete": "s3:DeleteObject", "list": "s3:ListBucket"}
        why = "access denied"
        hint = f"the archive needs {need.get(what, 's3:GetObject')} on {location.url}"
    elif code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
        why, hint = f"the storage rejected your AWS credentials ({code})", "check the profile"
    elif isinstance(exc, bx.ClientError):
        why, hint = f"storage error {code or status}", _FIX
    elif isinstance(exc, bx.BotoCoreError):
        why, hint = str(exc), _FIX
    else:
        return exc
    return ArchiveError(f"cannot {what} {url}: {why}", hint)
