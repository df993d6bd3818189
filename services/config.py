"""The configuration file, parsed once into typed objects.

``config.example.yaml`` at the project's root is the contract: every key it shows is
read here, and any other key is an error naming the file and the key's path. Secrets are
never kept here (credentials come from the AWS chain and the kubeconfig).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from platformdirs import user_cache_dir, user_config_dir, user_data_dir
from yaml.reader import ReaderError

from services.errors import ConfigError
from services.text import safe_text

ENV_CONFIG = "PGDECK_CONFIG"


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    kubeconfig: Path | None = None  # None: $KUBECONFIG, ~/.kube/config, or in-cluster
    contexts: tuple[str, ...] = ()  # empty: the current context
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    manifests: Path | None = None  # a directory of YAML instead of a live API
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class StorageLocation:
    url: str  # s3://bucket/prefix or file:///path/prefix
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: str | None = None  # "path" or "virtual"; None: boto3 decides

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
    workers: int = 16  # parallel listings against object storage
    full_refresh_hours: float = 6.0  # an incremental refresh cannot see deletions
    storage_timeout_seconds: float = 60.0  # a storage endpoint silent this long has failed


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """Thresholds of the weekly review (``pgdeck review``, the review screen)."""

    since_days: float = 7.0  # the window reviewed
    grace_minutes: float = 60.0  # a run is missing once this long passed without its object
    size_window: int = 24  # an object is compared with the median of this many before it
    size_low_ratio: float = 0.5  # under this share of that median: a sudden drop
    size_high_ratio: float = 2.0  # over this multiple: a sudden jump
    near_empty_bytes: int = 1024  # under this: near-empty (an empty cluster's dump is ~1.5 KB)
    expect_sse: str | None = None  # "AES256", "aws:kms"; None: the operator's setting, else any


@dataclass(frozen=True, slots=True)
class Target:
    """A PostgreSQL server to restore into. The DSN may name a password; it is never shown."""

    name: str
    dsn: str
    production: bool = False

    def __repr__(self) -> str:  # the DSN may hold a password
        return f"Target(name={self.name!r}, production={self.production})"


@dataclass(frozen=True, slots=True)
class Check:
    """A team's integrity check: a query that must return no rows in ``database``."""

    name: str
    database: str
    sql: str


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None  # None when no file was found: defaults only
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    storage: tuple[StorageLocation, ...] = ()  # empty: discovered from the operator
    # Where reviews and restore reports go: a local directory, or an S3 location (its
    # url is s3://bucket/prefix) whose objects are written once and never overwritten.
    archive: Path | StorageLocation = field(
        default_factory=lambda: Path(user_data_dir("pgdeck")) / "archive"
    )
    cache: Path = field(default_factory=lambda: Path(user_cache_dir("pgdeck")))
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    targets: tuple[Target, ...] = ()
    checks: tuple[Check, ...] = ()
    review: ReviewConfig = field(default_factory=ReviewConfig)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


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


def load_config(explicit: str | None = None) -> Config:
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
    return _Reader(path).config(data)


class _Reader:
    """Walks the parsed YAML, checking each key against the schema as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}", "see config.example.yaml")

    def mapping(self, value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where or "top level", f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(_join(where, str(key)), f"unknown key (known: {known})")
        return value

    def string(self, value: Any, where: str, *, optional: bool = True) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or (not optional and not value):
            raise self.fail(where, f"expected a string, got {_kind(value)}")
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list of strings, got {_kind(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{where}[{i}]", f"expected a string, got {_kind(item)}")
        return tuple(value)

    def a_path(self, value: Any, where: str) -> Path | None:
        text = self.string(value, where)
        if text is None:
            return None
        path = Path(os.path.expandvars(text)).expanduser()
        return path if path.is_absolute() else (self.base / path)

    def number(self, value: Any, where: str, convert: Callable[[Any], Any], low: float) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {_kind(value)}")
        if value < low:
            raise self.fail(where, f"must be at least {low}")
        return convert(value)

    def config(self, data: Any) -> Config:
        top = self.mapping(
            data,
            "",
            {
                "kubernetes",
                "storage",
                "archive",
                "cache",
                "catalog",
                "targets",
                "validation",
                "review",
            },
        )
        defaults = Config(path=self.path)
        return Config(
            path=self.path,
            kubernetes=self.kubernetes(top.get("kubernetes")),
            storage=self.storage(top.get("storage")),
            archive=self.archive(top.get("archive")) or defaults.archive,
            cache=self.a_path(top.get("cache"), "cache") or defaults.cache,
            catalog=self.catalog(top.get("catalog")),
            targets=self.targets(top.get("targets")),
            checks=self.checks(top.get("validation")),
            review=self.review(top.get("review")),
        )

    def targets(self, value: Any) -> tuple[Target, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(
                "targets", f"expected a mapping of names to targets, got {_kind(value)}"
            )
        out = []
        for name, item in value.items():
            where = f"targets.{name}"
            m = self.mapping(item, where, {"dsn", "production"})
            dsn = self.string(m.get("dsn"), f"{where}.dsn", optional=False)
            production = m.get("production", False)
            if not isinstance(production, bool):
                raise self.fail(
                    f"{where}.production", f"expected true or false, got {_kind(production)}"
                )
            assert dsn is not None
            out.append(Target(name=str(name), dsn=dsn, production=production))
        return tuple(out)

    def checks(self, value: Any) -> tuple[Check, ...]:
        if value is None:
            return ()
        m = self.mapping(value, "validation", {"checks"})
        items = m.get("checks") or []
        if not isinstance(items, list):
            raise self.fail("validation.checks", f"expected a list, got {_kind(items)}")
        out = []
        for i, item in enumerate(items):
            where = f"validation.checks[{i}]"
            c = self.mapping(item, where, {"name", "database", "sql"})
            name = self.string(c.get("name"), f"{where}.name", optional=False)
            database = self.string(c.get("database"), f"{where}.database", optional=False)
            sql = self.string(c.get("sql"), f"{where}.sql", optional=False)
            assert name and database and sql
            out.append(Check(name=name, database=database, sql=sql))
        return tuple(out)

    def kubernetes(self, value: Any) -> KubernetesConfig:
        if value is None:
            return KubernetesConfig()
        if value is False:
            return KubernetesConfig(enabled=False)
        where = "kubernetes"
        m = self.mapping(
            value, where, {"kubeconfig", "contexts", "namespaces", "manifests", "enabled"}
        )
        enabled = m.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail(f"{where}.enabled", f"expected true or false, got {_kind(enabled)}")
        manifests = self.a_path(m.get("manifests"), f"{where}.manifests")
        if manifests is not None and not manifests.is_dir():
            raise self.fail(f"{where}.manifests", f"{manifests} is not a directory")
        return KubernetesConfig(
            kubeconfig=self.a_path(m.get("kubeconfig"), f"{where}.kubeconfig"),
            contexts=self.strings(m.get("contexts"), f"{where}.contexts"),
            namespaces=self.strings(m.get("namespaces"), f"{where}.namespaces"),
            manifests=manifests,
            enabled=enabled,
        )

    def storage(self, value: Any) -> tuple[StorageLocation, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail("storage", f"expected a list of locations, got {_kind(value)}")
        return tuple(self.location(item, f"storage[{i}]") for i, item in enumerate(value))

    def location(self, item: Any, where: str) -> StorageLocation:
        m = self.mapping(
            item, where, {"url", "endpoint_url", "region", "profile", "addressing_style"}
        )
        url = self.string(m.get("url"), f"{where}.url", optional=False)
        assert url is not None
        url = self.location_url(url, f"{where}.url")
        style = self.string(m.get("addressing_style"), f"{where}.addressing_style")
        if style not in (None, "path", "virtual"):
            raise self.fail(f"{where}.addressing_style", "expected path or virtual")
        endpoint = self.string(m.get("endpoint_url"), f"{where}.endpoint_url")
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise self.fail(f"{where}.endpoint_url", "expected an http:// or https:// URL")
        return StorageLocation(
            url=url,
            endpoint_url=endpoint,
            region=self.string(m.get("region"), f"{where}.region"),
            profile=self.string(m.get("profile"), f"{where}.profile"),
            addressing_style=style,
        )

    def archive(self, value: Any) -> Path | StorageLocation | None:
        """A path, ``s3://bucket/prefix``, or a mapping with ``url`` and the S3 settings a
        storage location takes (endpoint_url, region, profile, addressing_style)."""
        if value is None:
            return None
        if isinstance(value, dict):
            location = self.location(value, "archive")
            if location.scheme == "s3":
                return location
            extra = [k for k, v in value.items() if k != "url" and v is not None]
            if extra:
                raise self.fail(f"archive.{extra[0]}", "applies to s3:// archives only")
            return Path(location.url.removeprefix("file://"))
        text = self.string(value, "archive", optional=False) or ""
        if text.startswith("s3://"):
            return StorageLocation(url=self.location_url(text, "archive"))
        if text.startswith("file://"):
            return Path(self.location_url(text, "archive").removeprefix("file://"))
        return self.a_path(text, "archive")

    def location_url(self, url: str, where: str) -> str:
        parts = urlsplit(url)
        if parts.scheme == "s3":
            if len(parts.netloc) < 3:
                raise self.fail(where, f"{url!r} has no bucket (expected s3://bucket/prefix)")
            return f"s3://{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise self.fail(where, f"{url!r}: file URLs take an absolute path (file:///...)")
            path = Path(os.path.expandvars(parts.path)).expanduser()
            return "file://" + str(path).rstrip("/")
        raise self.fail(where, f"{url!r}: expected s3://bucket/prefix or file:///path")

    def catalog(self, value: Any) -> CatalogConfig:
        if value is None:
            return CatalogConfig()
        m = self.mapping(
            value, "catalog", {"workers", "full_refresh_hours", "storage_timeout_seconds"}
        )
        d = CatalogConfig()
        return CatalogConfig(
            workers=self.number(m.get("workers", d.workers), "catalog.workers", int, 1),
            full_refresh_hours=self.number(
                m.get("full_refresh_hours", d.full_refresh_hours),
                "catalog.full_refresh_hours",
                float,
                0,
            ),
            storage_timeout_seconds=self.number(
                m.get("storage_timeout_seconds", d.storage_timeout_seconds),
                "catalog.storage_timeout_seconds",
                float,
                1,
            ),
        )

    def review(self, value: Any) -> ReviewConfig:
        d = ReviewConfig()
        if value is None:
            return d
        m = self.mapping(
            value,
            "review",
            {
                "since_days",
                "grace_minutes",
                "size_window",
                "size_low_ratio",
                "size_high_ratio",
                "near_empty_bytes",
                "expect_sse",
            },
        )

        def num(key: str, convert: Callable[[Any], Any], low: float) -> Any:
            return self.number(m.get(key, getattr(d, key)), f"review.{key}", convert, low)

        return ReviewConfig(
            since_days=num("since_days", float, 0),
            grace_minutes=num("grace_minutes", float, 0),
            size_window=num("size_window", int, 3),
            size_low_ratio=num("size_low_ratio", float, 0),
            size_high_ratio=num("size_high_ratio", float, 1),
            near_empty_bytes=num("near_empty_bytes", int, 0),
            expect_sse=self.string(m.get("expect_sse"), "review.expect_sse"),
        )


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)
