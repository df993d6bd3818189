from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.catalog import Catalog
from services.config import Config, KubernetesConfig, StorageLocation
from services.errors import StorageError
from services.storage import SIDECAR, FileStore, S3Store
from tests.conftest import moto_auth, seed

UID_A = "6f1c2d34-0000-4000-8000-00000000000a"
UID_B = "6f1c2d34-0000-4000-8000-00000000000b"


def store(endpoint: str, bucket: str, prefix: str = "spilo") -> S3Store:
    return S3Store(
        StorageLocation(url=f"s3://{bucket}/{prefix}".rstrip("/"), endpoint_url=endpoint)
    )


def key(cluster: str, uid: str, epoch: int, prefix: str = "spilo") -> str:
    return f"{prefix}/{cluster}/{uid}/logical_backups/{epoch}.sql.gz".lstrip("/")


class ListCounter:
    """Counts ListObjectsV2 calls through botocore's public event hooks."""

    def __init__(self, s: S3Store) -> None:
        self.calls: list[dict[str, Any]] = []
        s.client.meta.events.register("provide-client-params.s3.ListObjectsV2", self._seen)

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))


def test_lists_cluster_names_and_backups_under_the_default_prefix(
    s3_endpoint: str, bucket: str
) -> None:
    seed(bucket, {key("acid-a", UID_A, 1_700_000_000 + h * 3600): 100 + h for h in range(5)})
    seed(bucket, {key("acid-b", UID_B, 1_700_000_000): 7, "spilo/README": 1, "other/x": 1})
    s = store(s3_endpoint, bucket)
    assert s.list_clusters() == ["acid-a", "acid-b"]
    objs = s.list_cluster("acid-a")
    assert [o.size for o in objs] == [100, 101, 102, 103, 104]
    assert objs[0].relative_key == f"acid-a/{UID_A}/logical_backups/1700000000.sql.gz"
    assert (
        s.url(objs[0].relative_key)
        == f"s3://{bucket}/spilo/acid-a/{UID_A}/logical_backups/1700000000.sql.gz"
    )
    assert objs[0].storage_class == "STANDARD"


def test_custom_prefix_and_empty_prefix(s3_endpoint: str, bucket: str) -> None:
    seed(bucket, {key("acid-a", UID_A, 1_700_000_000, prefix="team/backups"): 5})
    seed(bucket, {key("acid-root", UID_A, 1_700_000_000, prefix=""): 6})
    assert store(s3_endpoint, bucket, "team/backups").list_clusters() == ["acid-a"]
    assert len(store(s3_endpoint, bucket, "team/backups").list_cluster("acid-a")) == 1
    root = store(s3_endpoint, bucket, "")
    assert "acid-root" in root.list_clusters()
    assert [o.size for o in root.list_cluster("acid-root")] == [6]


def test_wal_and_basebackups_are_skipped_without_paging_through_them(
    s3_endpoint: str, bucket: str
) -> None:
    backups = {
        key("acid-a", uid, 1_700_000_000 + h * 3600): 10 for uid in (UID_A, UID_B) for h in range(3)
    }
    wal = {
        f"spilo/acid-a/{uid}/wal/15/wal_005/{i:024X}.lz4": 1
        for uid in (UID_A, UID_B)
        for i in range(2500)
    }
    early = {f"spilo/acid-a/{UID_A}/a-stray-file": 1}
    seed(bucket, {**backups, **wal, **early})
    s = store(s3_endpoint, bucket)
    counter = ListCounter(s)
    objs = s.list_cluster("acid-a")
    assert len(objs) == 6
    assert {o.relative_key.split("/")[1] for o in objs} == {UID_A, UID_B}
    # 5,000 WAL keys would take 5+ pages; the skip-scan jumps over each subtree instead.
    assert len(counter.calls) <= 5


def test_more_than_a_thousand_objects_are_paged(s3_endpoint: str, bucket: str) -> None:
    seed(bucket, {key("acid-big", UID_A, 1_600_000_000 + h * 3600): 1 for h in range(2345)})
    s = store(s3_endpoint, bucket)
    counter = ListCounter(s)
    objs = s.list_cluster("acid-big")
    assert len(objs) == 2345
    assert len(counter.calls) == 3
    keys = [o.relative_key for o in objs]
    assert keys == sorted(keys)


def test_incremental_listing_asks_only_for_what_is_new(s3_endpoint: str, bucket: str) -> None:
    old = {key("acid-a", UID_A, 1_700_000_000 + h * 3600): 1 for h in range(1500)}
    seed(bucket, old)
    s = store(s3_endpoint, bucket)
    first = s.list_cluster("acid-a")
    newest = first[-1].relative_key
    seed(bucket, {key("acid-a", UID_A, 1_700_000_000 + 1500 * 3600): 2})
    seed(bucket, {key("acid-a", UID_B, 1_800_000_000): 3})  # a new uid: cluster re-created
    counter = ListCounter(s)
    new = s.list_cluster("acid-a", {UID_A: newest})
    assert [o.size for o in new] == [2]
    assert counter.calls[0]["StartAfter"] == "spilo/" + newest
    assert counter.calls[0]["Prefix"] == f"spilo/acid-a/{UID_A}/logical_backups/"
    assert len(counter.calls) == 1
    # A uid named by Kubernetes but not yet known is listed from its start.
    new = s.list_cluster("acid-a", {UID_A: newest, UID_B: f"acid-a/{UID_B}/"})
    assert [o.size for o in new] == [2, 3]


def test_missing_bucket_is_a_clear_message(s3_endpoint: str) -> None:
    s = store(s3_endpoint, "no-such-bucket-here")
    with pytest.raises(StorageError) as exc:
        s.list_clusters()
    assert "bucket 'no-such-bucket-here' does not exist" in str(exc.value)


def test_wrong_credentials_are_a_clear_message_without_the_key(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    moto_auth(s3_endpoint, enforce=True)
    try:
        with pytest.raises(StorageError) as exc:
            store(s3_endpoint, bucket).list_clusters()
    finally:
        moto_auth(s3_endpoint, enforce=False)
    text = str(exc.value)
    assert "rejected your AWS credentials" in text
    assert "AKIAWRONG" not in text and "very-secret" not in text


def test_unreachable_endpoint_is_a_clear_message() -> None:
    s = S3Store(StorageLocation(url="s3://bucket/spilo", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(StorageError, match="cannot reach http://127.0.0.1:9"):
        s.list_clusters()


def test_head_reports_server_side_encryption(s3_endpoint: str, bucket: str, s3: Any) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key("acid-a", UID_A, 1_700_000_000),
        Body=b"x",
        ServerSideEncryption="AES256",
    )
    s3.put_object(Bucket=bucket, Key=key("acid-a", UID_A, 1_700_003_600), Body=b"y")
    s = store(s3_endpoint, bucket)
    assert s.head(f"acid-a/{UID_A}/logical_backups/1700000000.sql.gz").sse == "AES256"
    assert s.head(f"acid-a/{UID_A}/logical_backups/1700003600.sql.gz").sse == ""
    # Last-Modified (an HTTP date, read without dateutil) is the listing's time, to the second
    head = s.head(f"acid-a/{UID_A}/logical_backups/1700000000.sql.gz")
    listed = s3.head_object(Bucket=bucket, Key=key("acid-a", UID_A, 1_700_000_000))
    assert head.last_modified == listed["LastModified"]
    assert head.last_modified is not None and head.last_modified.utcoffset() == timedelta(0)


def test_file_store_reads_the_same_layout(tmp_path: Path) -> None:
    for h in range(3):
        p = tmp_path / "spilo" / key("acid-a", UID_A, 1_700_000_000 + h * 3600, prefix="")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"z" * (h + 1))
    (tmp_path / "spilo" / "acid-a" / UID_A / "wal").mkdir()
    fs = FileStore(StorageLocation(url=f"file://{tmp_path}/spilo"))
    assert fs.list_clusters() == ["acid-a"]
    objs = fs.list_cluster("acid-a")
    assert [o.size for o in objs] == [1, 2, 3]
    assert fs.list_cluster("acid-a", {UID_A: objs[1].relative_key}) == objs[2:]
    assert fs.url(objs[0].relative_key).startswith(f"file://{tmp_path}/spilo/acid-a/")


def test_file_store_missing_directory(tmp_path: Path) -> None:
    fs = FileStore(StorageLocation(url=f"file://{tmp_path}/nope"))
    with pytest.raises(StorageError, match="no such directory"):
        fs.list_clusters()


def _file_backups(root: Path, epochs: list[int]) -> list[str]:
    rels = []
    for epoch in epochs:
        rel = key("acid-a", UID_A, epoch, prefix="")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"z")
        rels.append(rel)
    return rels


def test_file_store_reads_server_side_encryption_from_its_sidecar(tmp_path: Path) -> None:
    root = tmp_path / "spilo"
    enc, plain, unnamed = _file_backups(root, [1_700_000_000, 1_700_003_600, 1_700_007_200])
    fs = FileStore(StorageLocation(url=f"file://{root}"))
    assert not fs.can_tell_sse() and fs.head(enc).sse is None  # a plain directory: unknown
    (root / SIDECAR).write_text(json.dumps({enc: {"sse": "AES256"}, plain: {"sse": ""}}))
    assert fs.can_tell_sse()
    assert fs.head(enc).sse == "AES256"
    assert fs.head(plain).sse == ""  # stored without encryption
    assert fs.head(unnamed).sse is None  # the sidecar does not say
    assert fs.list_clusters() == ["acid-a"]  # the sidecar is no cluster
    (root / SIDECAR).write_text(json.dumps({unnamed: {"sse": "aws:kms"}}))
    assert fs.head(unnamed).sse == "aws:kms" and fs.head(enc).sse is None  # read again
    (root / SIDECAR).write_text("[1, 2]")
    with pytest.raises(StorageError, match=r"\.pgdeck-meta\.json"):
        fs.head(enc)


def test_catalog_asks_a_file_location_for_sse_only_when_it_has_a_sidecar(tmp_path: Path) -> None:
    root = tmp_path / "spilo"
    enc, plain, unnamed = _file_backups(root, [1_700_000_000, 1_700_003_600, 1_700_007_200])
    config = Config(
        path=None,
        kubernetes=KubernetesConfig(enabled=False),
        storage=(StorageLocation(url=f"file://{root}"),),
        cache=tmp_path / "cache",
    )
    catalog = Catalog(config)
    catalog.refresh(kubernetes=False)
    backups = catalog.backups(catalog.find("acid-a"))
    assert [b.sse for b in catalog.with_sse(backups)] == [None, None, None]
    (root / SIDECAR).write_text(json.dumps({enc: {"sse": "AES256"}, plain: {"sse": ""}}))
    by_key = {b.key.removeprefix(f"{root}/"): b.sse for b in catalog.with_sse(backups)}
    assert by_key == {enc: "AES256", plain: "", unnamed: None}
    (root / enc).unlink()  # deleted since the listing: dropped, as on S3
    assert len(catalog.with_sse(backups)) == 2
