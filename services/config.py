"""The configuration file, parsed once into typed objects.

``config.example.yaml`` at the project's root is the contract, and the frozen
dataclasses below are its only description: each field is a key, with its type and its
default; what a type cannot say (a number's least value, the strings allowed, a check)
is in the field's metadata, read by the one reader in ``services.config_reader``. Any
other key is an error naming the file and the key's path. A new key is one field here
(and its line in config.example.yaml), e.g. in ``CatalogConfig``::

    retries: int = field(default=4, metadata={"at_least": 1})  # tries of a listing

Fields are checked in their order, so it decides which of two wrong keys is reported.
Secrets are never kept here (credentials come from the AWS chain and the kubeconfig); the
one value that may hold a password, a target's DSN, is left out of ``repr``.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from platformdirs import user_cache_dir, user_config_dir, user_data_dir
from yaml.reader import ReaderError

from services.config_reader import Invalid, Reader
from services.errors import ConfigError
from services.text import safe_text

ENV_CONFIG = "PGDECK_CONFIG"


def _location_url(url: str) -> str:
    """``s3://bucket/prefix`` or ``file:///path``, without a trailing slash."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if len(parts.netloc) < 3:
            raise Invalid(f"{url!r} has no bucket (expected s3://bucket/prefix)")
        return f"s3://{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise Invalid(f"{url!r}: file URLs take an absolute path (file:///...)")
        path = Path(os.path.expandvars(parts.path)).expanduser()
        return "file://" + str(path).rstrip("/")
    raise Invalid(f"{url!r}: expected s3://bucket/prefix or file:///path")


def _http_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise Invalid("expected an http:// or https:// URL")
    return url


JOBS_MAX = 64  # data sessions a restore may load table data on at once


def _restore_jobs(jobs: int) -> int:
    if jobs > JOBS_MAX:
        raise Invalid(f"must be at most {JOBS_MAX}")
    return jobs


def _a_directory(path: Path) -> Path:
    if not path.is_dir():
        raise Invalid(f"{path} is not a directory")
    return path


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    enabled: bool = True  # false (or `kubernetes: false`): storage only
    # A directory of YAML instead of a live API.
    manifests: Path | None = field(default=None, metadata={"check": _a_directory})
    kubeconfig: Path | None = None  # None: $KUBECONFIG, ~/.kube/config, or in-cluster
    contexts: tuple[str, ...] = ()  # empty: the current context
    namespaces: tuple[str, ...] = ()  # empty: all namespaces


@dataclass(frozen=True, slots=True)
class StorageLocation:
    # s3://bucket/prefix or file:///path/prefix, kept without a trailing slash
    url: str = field(metadata={"check": _location_url})
    # None: boto3 decides
    addressing_style: str | None = field(default=None, metadata={"one_of": ("path", "virtual")})
    endpoint_url: str | None = field(default=None, metadata={"check": _http_url})
    region: str | None = None
    profile: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        parts = urlsplit(self.url)
        if parts.scheme == "file":
            return ""
        return parts.path.strip("/")


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    # listings in flight against object storage. A refresh makes one listing per cluster,
    # each waiting out S3's latency: 50 lets 100 clusters refresh in 1 + 2 round trips
    # (bench/README.md); lower it for a small S3-compatible server.
    workers: int = field(default=50, metadata={"at_least": 1})
    # HEADs in flight for the encryption checks (a HEAD costs the server a fraction of a
    # listing). A cold review HEADs every object of its week: 84,000 for 500 clusters;
    # 200 in flight is 2,000 a second, 42 s at S3's ~100 ms (S3 serves 5,500 a second
    # per prefix; bench/README.md).
    head_workers: int = field(default=200, metadata={"at_least": 1})
    # an incremental refresh cannot see deletions
    full_refresh_hours: float = field(default=6.0, metadata={"at_least": 0})
    # a storage endpoint silent this long has failed
    storage_timeout_seconds: float = field(default=60.0, metadata={"at_least": 1})
    # objects whose encryption is HEADed after each refresh in the console, newest first
    sse_check_per_refresh: int = field(default=5000, metadata={"at_least": 0})


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """Thresholds of the weekly review (``pgdeck review``, the review screen)."""

    # the window reviewed
    since_days: float = field(default=7.0, metadata={"at_least": 0})
    # a run is missing once this long passed without its object
    grace_minutes: float = field(default=60.0, metadata={"at_least": 0})
    # an object is compared with the median of this many before it
    size_window: int = field(default=24, metadata={"at_least": 3})
    # under this share of that median: a sudden drop
    size_low_ratio: float = field(default=0.5, metadata={"at_least": 0})
    # over this multiple: a sudden jump
    size_high_ratio: float = field(default=2.0, metadata={"at_least": 1})
    # under this: near-empty (an empty cluster's dump is ~1.5 KB)
    near_empty_bytes: int = field(default=1024, metadata={"at_least": 0})
    expect_sse: str | None = None  # "AES256", "aws:kms"; None: the operator's setting, else any


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _size(reader: Reader, value: Any, where: str) -> int:
    """A size in bytes: a whole number, or a string such as ``512MiB`` or ``8GiB``
    (K, M, G and T count in 1024s, with or without the i)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if m is None:
        raise Invalid("expected a size in bytes, such as 8589934592 or 8GiB")
    return int(float(m[1]) * _UNITS[(m[2] or "")[:1].lower()])


# Settings a restore may give its own sessions on the target (``restore.session_settings``):
# only those that are the session's own (any user may SET them, they change nothing a
# backup restores and nothing another session sees) and that pay on a restore. Anything a
# backup's own SETs control (search_path, client_encoding, standard_conforming_strings,
# check_function_bodies, row_security, the timeouts, ...) and anything server-wide (fsync,
# wal_level, ...) is refused: the dump's SETs stay as they are, and the server's
# durability is its operator's.
_MEMORY = re.compile(r"^([1-9][0-9]{0,9})(kB|MB|GB)$")
_MEMORY_KB = {"kB": 1, "MB": 1 << 10, "GB": 1 << 20}


def _memory(low_kb: int) -> Any:
    def check(value: Any) -> str:
        m = _MEMORY.match(value) if isinstance(value, str) else None
        if m is None:
            raise Invalid("expected a size with its unit, such as 256MB or 1GB (kB, MB, GB)")
        kb = int(m[1]) * _MEMORY_KB[m[2]]
        if not low_kb <= kb <= 2147483647:
            raise Invalid(f"must be between {low_kb}kB and 2TB")
        return value

    return check


def _one_of(*allowed: str) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, bool):  # YAML reads a bare on/off as a boolean
            value = "on" if value else "off"
        if value not in allowed:
            raise Invalid("expected " + ", ".join(allowed))
        return str(value)

    return check


AUTO = "auto"  # max_parallel_maintenance_workers: 0 with --jobs 2 or more, else the server's


def _workers(value: Any) -> str:
    if value == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
        raise Invalid("expected auto or a whole number from 0 to 1024")
    return str(value)


SESSION_SETTINGS: dict[str, Any] = {
    "maintenance_work_mem": _memory(1024),
    "work_mem": _memory(64),
    "synchronous_commit": _one_of("on", "off", "local", "remote_write", "remote_apply"),
    "max_parallel_maintenance_workers": _workers,
}
# The defaults, as PostgreSQL's manual tells a bulk load to tune ("Populating a Database":
# increase maintenance_work_mem; "Non-Durable Settings": synchronous_commit off), kept to
# what a session may do on its own:
# - maintenance_work_mem 256MB (server default 64MB): CREATE INDEX sorts in memory instead
#   of spilling sorted runs to temporary files, and ADD FOREIGN KEY's check and a primary
#   key's build take the same budget. Each session builds one index at a time, so the
#   target gives at most (jobs + 1) x 256MB, and only during the post-data.
# - synchronous_commit off: a COPY's or a DDL's commit returns without waiting for its WAL
#   to reach disk (or a synchronous standby); the WAL writer flushes it within
#   3 x wal_writer_delay. Unlike fsync off it "does not create any risk of database
#   inconsistency" (the manual): a crash can lose only the last commits, and a crash
#   during a restore fails it anyway.
#   pgdeck still makes the end durable: before it validates, one synchronous commit on
#   the main session flushes every WAL record before it (RestoreEngine._flush).
# - max_parallel_maintenance_workers auto: with --jobs N of 2 or more, 0. The data sessions
#   are the restore's parallelism; a build that also starts the server's parallel workers
#   (2 by default) puts three processes per session on the target's cores, and an
#   operator's cluster often has one or two. Measured on 2 cores (bench/README.md): the
#   post-data's session time fell from ~5 s to ~4 s per session. With --jobs 1 the one
#   session's builds keep the server's own value, which then pays.
# Not set: pg_restore's TRUNCATE-before-COPY in the COPY's transaction only saves WAL at
# wal_level minimal, which an operator's cluster (streaming replicas, Patroni) never runs.
DEFAULT_SESSION_SETTINGS: tuple[tuple[str, str], ...] = (
    ("maintenance_work_mem", "256MB"),
    ("synchronous_commit", "off"),
    ("max_parallel_maintenance_workers", AUTO),
)


def session_settings_for(
    settings: tuple[tuple[str, str], ...], jobs: int
) -> tuple[tuple[str, str], ...]:
    """The settings a restore with ``jobs`` data sessions gives its sessions: ``auto``
    resolved (0 with 2 or more, left to the server with 1)."""
    out: list[tuple[str, str]] = []
    for name, value in settings:
        if value == AUTO:
            if jobs < 2:
                continue
            value = "0"
        out.append((name, value))
    return tuple(out)


def _session_settings(reader: Reader, value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """The defaults, with the file's mapping over them (null drops a default: the server's
    own value then holds); a name off the allow-list, or a value its setting would not
    take, is refused."""
    if value is None:
        return DEFAULT_SESSION_SETTINGS
    if not isinstance(value, dict):
        raise Invalid("expected a mapping of setting names to values")
    out = dict(DEFAULT_SESSION_SETTINGS)
    for name, given in value.items():
        key = f"{where}.{name}"
        check = SESSION_SETTINGS.get(name) if isinstance(name, str) else None
        if check is None:
            raise reader.fail(
                key,
                "not a setting a restore may give its sessions (allowed: "
                + ", ".join(SESSION_SETTINGS)
                + ")",
            )
        if given is None:
            out.pop(name, None)
            continue
        try:
            out[name] = check(given)
        except Invalid as exc:
            raise reader.fail(key, str(exc)) from None
    return tuple(out.items())


@dataclass(frozen=True, slots=True)
class RestoreConfig:
    """How ``pgdeck restore`` (and the wizard, and restore tests) load a backup."""

    # sessions loading table data at once (--jobs); 1: one session does everything
    jobs: int = field(default=1, metadata={"at_least": 1, "check": _restore_jobs})
    # what the spool may hold: table data read while every data session is busy waits
    # in temporary files; past this the reader waits for a session instead
    spool_limit: int = field(default=8 << 30, metadata={"read": _size})
    # where the spool files go (None: the system's temporary directory)
    spool_dir: Path | None = field(default=None, metadata={"check": _a_directory})
    # settings of pgdeck's own sessions on the target (SESSION_SETTINGS, the allow-list)
    session_settings: tuple[tuple[str, str], ...] = field(
        default=DEFAULT_SESSION_SETTINGS, metadata={"read": _session_settings}
    )


@dataclass(frozen=True, slots=True)
class Target:
    """A PostgreSQL server to restore into. The DSN may name a password; it is never shown."""

    name: str  # its key under `targets`
    dsn: str = field(repr=False)
    production: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    """A team's integrity check: a query that must return no rows in ``database``."""

    name: str
    database: str
    sql: str


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    checks: tuple[Check, ...] = ()


def _namespace(name: str) -> str:
    if len(name) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name):
        raise Invalid(f"{name!r} is not a Kubernetes namespace name")
    return name


def _team(name: str) -> str:
    # The team begins every staging cluster's name, which must stay a DNS-1035 label.
    if len(name) > 20 or not re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", name):
        raise Invalid(f"{name!r}: expected a short DNS label (a-z, 0-9, -; at most 20)")
    return name


def _address(template: str) -> str:
    """``host:port`` with ``{cluster}`` and ``{namespace}`` filled in, and nothing else."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise Invalid(f"{template!r} is not a template ({exc})") from None
    unknown = names - {"cluster", "namespace"}
    if unknown:
        raise Invalid(f"unknown placeholder {{{sorted(unknown)[0]}}} (known: cluster, namespace)")
    host, sep, port = template.format(cluster="c", namespace="n").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise Invalid(f"{template!r}: expected host:port")
    return template


@dataclass(frozen=True, slots=True)
class StagingConfig:
    """Where restore tests create their throwaway ``postgresql`` clusters."""

    # the only namespace restore tests write to
    namespace: str = field(default="pgdeck-staging", metadata={"check": _namespace})
    # the staging clusters' teamId (and their names' prefix)
    team: str = field(default="pgdeck", metadata={"check": _team})
    # how the tests reach a staging primary (in the cluster: its Service)
    address: str = field(
        default="{cluster}.{namespace}.svc.cluster.local:5432", metadata={"check": _address}
    )
    # from a workstation: reach the primary through a port-forward made with the
    # Kubernetes API instead of `address` (--port-forward, the same)
    port_forward: bool = False
    max_parallel: int = field(default=4, metadata={"at_least": 1})  # tests at once
    # The volume is this multiple of the gzip dump's size. The operator's backup job
    # expects a dump of a fifth of the databases' size (dump.sh's --expected-size), so
    # the restored databases take about 5x the dump on disk, indexes included; the WAL
    # a bulk load writes and room to spare bring it to 8x.
    volume_headroom: float = field(default=8.0, metadata={"at_least": 1})
    min_volume_gib: int = field(default=1, metadata={"at_least": 1})  # never smaller
    # the operator's Running and a Ready master pod, within this long
    ready_timeout_seconds: float = field(default=600.0, metadata={"at_least": 1})


@dataclass(frozen=True, slots=True)
class RtoOverride:
    """One cluster's own recovery time objective."""

    name: str  # its key under `restore_tests.clusters`: the source cluster's name
    rto_minutes: float = field(metadata={"at_least": 0})


def _dns_subdomain(name: str) -> str:
    # The names of a Secret, a ConfigMap or a service account (RFC 1123 subdomains).
    if len(name) > 253 or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", name):
        raise Invalid(f"{name!r} is not a Kubernetes object name")
    return name


def _image(ref: str) -> str:
    # A reference the Job can pull, nothing a shell or YAML could read as more than one.
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$", ref) or len(ref) > 512:
        raise Invalid(f"{ref!r} is not an image reference (e.g. registry.example.com/pgdeck:0.1.0)")
    return ref


def _file_name(name: str) -> str:
    if not re.match(r"^[-._A-Za-z0-9]+$", name) or name in (".", ".."):
        raise Invalid(f"{name!r} is not a key of a ConfigMap")
    return name


@dataclass(frozen=True, slots=True)
class RestoreTestsConfig:
    """The recovery time objective a restore test measures its time-to-restore against,
    and how ``restore-test --in-cluster`` runs each test as a Kubernetes Job."""

    rto_minutes: float = field(default=60.0, metadata={"at_least": 0})  # every cluster's
    clusters: tuple[RtoOverride, ...] = field(
        default=(), metadata={"named": "name", "items": "clusters"}
    )
    # the image built from the Dockerfile; --in-cluster needs it
    image: str | None = field(default=None, metadata={"check": _image})
    service_account: str = field(default="pgdeck", metadata={"check": _dns_subdomain})
    # a Secret of AWS_* variables the Jobs load (envFrom); None: the pod's identity only
    secret: str | None = field(default=None, metadata={"check": _dns_subdomain})
    # the Jobs read pgdeck's configuration from this ConfigMap's key config_file
    config_map: str = field(default="pgdeck-config", metadata={"check": _dns_subdomain})
    config_file: str = field(default="restore-test.yaml", metadata={"check": _file_name})
    job_deadline_seconds: int = field(default=43200, metadata={"at_least": 60})
    # a Job's pod that cannot start (its image not pulled, its Secret or ConfigMap
    # missing) fails the test after this long, not at the deadline hours later
    pod_start_timeout_seconds: float = field(default=300.0, metadata={"at_least": 1})

    def rto_for(self, cluster: str) -> float:
        """Minutes: the cluster's own objective, else the default."""
        own = next((c for c in self.clusters if c.name == cluster), None)
        return own.rto_minutes if own is not None else self.rto_minutes


def _archive(reader: Reader, value: Any, where: str) -> Path | StorageLocation:
    """A path, ``s3://bucket/prefix``, or a mapping with ``url`` and the S3 settings a
    storage location takes (endpoint_url, region, profile, addressing_style)."""
    if isinstance(value, dict):
        location = reader.section(StorageLocation, value, where)
        if location.scheme == "s3":
            return location
        extra = [k for k, v in value.items() if k != "url" and v is not None]
        if extra:
            raise reader.fail(f"{where}.{extra[0]}", "applies to s3:// archives only")
        return Path(location.url.removeprefix("file://"))
    text = reader.string(value, where, required=True)
    if text.startswith("s3://"):
        return StorageLocation(url=_location_url(text))
    if text.startswith("file://"):
        return Path(_location_url(text).removeprefix("file://"))
    return reader.a_path(text)


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None  # None when no file was found: defaults only
    kubernetes: KubernetesConfig = field(
        default_factory=KubernetesConfig, metadata={"off": "enabled"}
    )
    # empty: discovered from the operator
    storage: tuple[StorageLocation, ...] = field(default=(), metadata={"items": "locations"})
    # Where reviews and restore reports go: a local directory, or an S3 location (its
    # url is s3://bucket/prefix) whose objects are written once and never overwritten.
    archive: Path | StorageLocation = field(
        default_factory=lambda: Path(user_data_dir("pgdeck")) / "archive",
        metadata={"read": _archive},
    )
    cache: Path = field(default_factory=lambda: Path(user_cache_dir("pgdeck")))
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    targets: tuple[Target, ...] = field(default=(), metadata={"named": "name", "items": "targets"})
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    restore: RestoreConfig = field(default_factory=RestoreConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    staging: StagingConfig = field(default_factory=StagingConfig)
    restore_tests: RestoreTestsConfig = field(default_factory=RestoreTestsConfig)

    @property
    def checks(self) -> tuple[Check, ...]:
        """``validation.checks`` of the file, the one part of ``validation`` a restore needs."""
        return self.validation.checks

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


@dataclass(frozen=True, slots=True)
class KubernetesOverride:
    """The Kubernetes a run reads instead of the file's ``kubernetes`` section's choice:
    ``kubectl pgdeck``'s ``--context``, ``-n``, ``-A`` and ``--kubeconfig``."""

    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    kubeconfig: Path | None = None

    def apply(self, cfg: KubernetesConfig) -> KubernetesConfig:
        changes: dict[str, Any] = {}
        if self.context is not None or self.kubeconfig is not None:
            # a context or a kubeconfig names a live API: not the file's manifests, not off
            changes.update(enabled=True, manifests=None)
        if self.context is not None:
            changes["contexts"] = (self.context,)
        if self.kubeconfig is not None:
            changes["kubeconfig"] = self.kubeconfig
        if self.namespace is not None:
            changes["namespaces"] = (self.namespace,)
        if self.all_namespaces:
            changes["namespaces"] = ()
        return replace(cfg, **changes)


def find_config_file(explicit: str | None) -> Path | None:
    """``--config FILE``, then ``$PGDECK_CONFIG``, then the user's XDG config dir."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} not found", "check the --config path")
        return path
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} (from ${ENV_CONFIG}) not found",
                f"fix or unset ${ENV_CONFIG}",
            )
        return path
    path = Path(user_config_dir("pgdeck")) / "config.yaml"
    return path if path.is_file() else None


def load_config(
    explicit: str | None = None, kubernetes: KubernetesOverride | None = None
) -> Config:
    """The configuration file found (or the defaults), with ``kubernetes`` applied over
    its ``kubernetes`` section."""
    config = _load_file(explicit)
    if kubernetes is None:
        return config
    return replace(config, kubernetes=kubernetes.apply(config.kubernetes))


def _load_file(explicit: str | None) -> Config:
    path = find_config_file(explicit)
    if path is None:
        return Config(path=None)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    if b"\0" in data:
        raise ConfigError(
            f"{path}: a binary file, not a YAML configuration",
            "pass the configuration file (see config.example.yaml)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})",
            "save the configuration as UTF-8",
        ) from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    try:
        data = yaml.safe_load(text)
    except ReaderError as exc:  # a character YAML does not allow in a document
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"{path}: not valid YAML at line {line}: character "
            f"{safe_text(chr(exc.character)) if isinstance(exc.character, int) else '?'}"
            " is not allowed",
            "remove the control character",
        ) from exc
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    return Reader(path).section(Config, data, "", path=path)
