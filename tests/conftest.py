"""Real test servers, started once per session: moto's S3 server on loopback and a
Kubernetes API server on loopback. Each test gets a fresh bucket and its own objects.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

# Snapshots and colour output must not depend on the developer's terminal.
os.environ.pop("NO_COLOR", None)
# Fake credentials for the test server; the user's real ones must never be used here.
for var in (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "KUBECONFIG",
    "PGDECK_CONFIG",
):
    os.environ.pop(var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

ACCOUNT = "123456789012"
_bucket_ids = itertools.count()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"backups-{next(_bucket_ids):04d}"
    s3.create_bucket(Bucket=name)
    return name


def seed(bucket: str, keys: dict[str, bytes | int], *, sse: str | None = "AES256") -> None:
    """Put objects straight into moto's backend (HTTP puts cost ~5 ms each)."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    for key, body in keys.items():
        data = body if isinstance(body, bytes) else b"\0" * body
        obj = backend.put_object(bucket, key, data)
        if sse:
            obj.encryption = sse


def moto_auth(endpoint: str, enforce: bool) -> None:
    """Switch moto's IAM checks on (unknown keys are then refused) or off."""
    value = b"0" if enforce else b"inf"
    req = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=value,
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(req).read()


def iam_keys(endpoint: str, user: str, actions: str | list[str]) -> tuple[str, str]:
    """A moto IAM user allowed ``actions`` on every resource: its key id and secret."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="pgdeck-test",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def kube_server() -> Iterator[Any]:
    from tests.fakekube import FakeKube

    server = FakeKube().start()
    yield server
    server.stop()


@pytest.fixture
def kube(kube_server: Any) -> Iterator[Any]:
    """The session's Kubernetes API, emptied and fully allowed for each test."""
    kube_server.clear()
    kube_server.allow_all()
    kube_server.requests.clear()
    yield kube_server
    kube_server.clear()
    kube_server.allow_all()


@pytest.fixture
def kubeconfig(tmp_path: Path, kube: Any) -> Path:
    from tests.fakekube import write_kubeconfig

    return write_kubeconfig(tmp_path / "kubeconfig", {"test": kube}, namespace="shop")


SOURCE_SQL = r"""
CREATE ROLE appuser LOGIN PASSWORD 'not-a-real-password';
CREATE DATABASE shop;
CREATE DATABASE "Ünïcode db";
\connect shop
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, mood mood, tags text[], photo bytea);
CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers(id), note text);
CREATE TABLE "Odd ""Quoted"" Table" (v text);
CREATE TABLE events (at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 10;
INSERT INTO customers SELECT g, 'Kundin ' || g || ' – ü', 'ok', ARRAY['a', 'b,c'], '\xdeadbeef' FROM generate_series(1, 50) g;
INSERT INTO orders SELECT g, 1 + g % 50, E'tab\there\nnewline \\ backslash' FROM generate_series(1, 120) g;
INSERT INTO "Odd ""Quoted"" Table" VALUES ('\.'), (E'\\.'), ('x');
INSERT INTO events VALUES ('2026-03-01', 'spring'), ('2026-09-01', 'autumn');
\connect "Ünïcode db"
CREATE TABLE "Grüße" (id serial PRIMARY KEY, text text);
INSERT INTO "Grüße" (text) SELECT 'Grüß ' || g FROM generate_series(1, 7) g;
"""


@pytest.fixture(scope="session")
def source_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running source cluster with the awkward cases, for dumps and for comparisons."""
    import subprocess

    from sandbox import localpg

    pg = localpg.create(tmp_path_factory.mktemp("source-pg") / "data")
    pg.start()
    env = {**os.environ, **pg.env()}
    subprocess.run(
        [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        input=SOURCE_SQL,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    yield pg
    pg.destroy()


@pytest.fixture(scope="session")
def source_dump(source_pg: Any) -> bytes:
    """Real ``pg_dumpall`` output of the source cluster."""
    import subprocess

    env = {**os.environ, **source_pg.env()}
    return subprocess.run(
        [str(source_pg.bindir / "pg_dumpall")], env=env, check=True, capture_output=True
    ).stdout


@pytest.fixture
def target_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh, empty PostgreSQL server to restore into."""
    from sandbox import localpg

    pg = localpg.create(tmp_path_factory.mktemp("target-pg") / "data")
    pg.start()
    yield pg
    pg.destroy()


def table_digests(pg: Any, database: str) -> dict[str, tuple[int, str]]:
    """Every user table of a database: (rows, md5 of its rows in a stable order)."""
    import psycopg
    from psycopg import sql

    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, name in tables:
            q = sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ONLY {}.{} t"
            ).format(sql.Identifier(schema), sql.Identifier(name))
            n, digest = conn.execute(q).fetchone()  # type: ignore[misc]
            out[f"{schema}.{name}"] = (n, digest)
    return out


def storage_config(tmp_path: Path, bucket: str, endpoint: str, **extra: Any) -> Path:
    """A config reading one S3 location, no Kubernetes, cache and archive in tmp_path."""
    data: dict[str, Any] = {
        "kubernetes": {"enabled": False},
        "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": endpoint}],
        "cache": str(tmp_path / "cache"),
        "archive": str(tmp_path / "archive"),
        **extra,
    }
    return write_config(tmp_path / "config.yaml", data)


ORDERS_COPY = "COPY public.orders (id, customer, note) FROM stdin;\n"


def held_mid_copy(source_dump: bytes, rows: int = 240_000) -> tuple[bytes, int]:
    """The source dump with a big orders table, as two gzip members (valid, as pigz's
    concatenations are): the first ends in the middle of the orders rows. A proxy that
    stalls after the first member's bytes holds a restore inside that table's COPY for as
    long as a test needs, whatever the machine's speed. Returns the object and where to
    stall (the row notes are hex, so the first member is several MiB: storage reads 1 MiB
    at a time, and the rows before the stall must reach the COPY)."""
    import hashlib

    def block(start: int, stop: int) -> str:
        return "".join(
            f"{i}\t1\t{hashlib.md5(str(i).encode()).hexdigest() * 2}\n" for i in range(start, stop)
        )

    text = source_dump.decode()
    cut = text.index(ORDERS_COPY) + len(ORDERS_COPY)
    first = gzip.compress((text[:cut] + block(1000, 1000 + rows // 2)).encode(), 1)
    second = gzip.compress((block(1000 + rows // 2, 1000 + rows) + text[cut:]).encode(), 1)
    return first + second, len(first)


@pytest.fixture
def stalling_s3(s3_endpoint: str) -> Iterator[Any]:
    """A proxy in front of moto's server that can stall a download part way."""
    from urllib.parse import urlsplit

    from tests.flakyproxy import FlakyProxy

    parts = urlsplit(s3_endpoint)
    assert parts.hostname and parts.port
    proxy = FlakyProxy(parts.hostname, parts.port).start()
    yield proxy
    proxy.stop()
