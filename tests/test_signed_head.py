"""Bulk HEADs signed by botocore's signer and sent by aiohttp (``S3Store.heads``,
``SignedHead``): the same answers as the client's, with moto checking every signature,
the client taking over for every answer but a 200, and a stop that does not wait."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from services.config import StorageLocation
from services.errors import StorageError
from services.signed_head import SignedHead, verify_path
from services.storage import ObjectHead, S3Store
from tests.conftest import iam_keys, moto_auth, seed
from tests.flakyproxy import FlakyProxy

UID = "6f1c2d34-0000-4000-8000-00000000000a"
REL = f"acid-a/{UID}/logical_backups/1700000000.sql.gz"


class ClientHeads:
    """HEADs the store's boto3 client made (botocore's public event hooks)."""

    def __init__(self, store: S3Store) -> None:
        self.keys: list[str] = []
        store.client.meta.events.register("provide-client-params.s3.HeadObject", self._seen)

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        self.keys.append(params["Key"])


def store_of(endpoint: str, bucket: str, prefix: str = "spilo", **kw: Any) -> S3Store:
    url = f"s3://{bucket}/{prefix}".rstrip("/")
    timeout = kw.pop("timeout", 60.0)
    return S3Store(StorageLocation(url=url, endpoint_url=endpoint, **kw), timeout=timeout)


def heads(
    store: S3Store, rels: list[str], workers: int = 8, stop: threading.Event | None = None
) -> dict[str, ObjectHead | Exception]:
    got: dict[str, ObjectHead | Exception] = {}
    store.heads(rels, workers, got.__setitem__, stop or threading.Event())
    return got


def signed(store: S3Store) -> SignedHead:
    assert isinstance(store._signed, SignedHead)
    return store._signed


def client_head(s3: Any, bucket: str, key: str) -> tuple[int, str, str, Any]:
    r = s3.head_object(Bucket=bucket, Key=key)
    return (
        r["ContentLength"],
        r.get("ServerSideEncryption") or "",
        r["ETag"].strip('"'),
        r["LastModified"],
    )


@pytest.mark.parametrize("prefix", ["spilo", "", "team/backups"])
@pytest.mark.parametrize("style", [None, "path"])
def test_answers_equal_the_clients_for_every_key_shape(
    s3_endpoint: str, bucket: str, s3: Any, prefix: str, style: str | None
) -> None:
    rels = [
        REL,
        f"acid-a/{UID}/logical_backups/1700003600.sql.gz",
        "acid b/ü+ü %41?x=1#frag/logical_backups/1.sql.gz",  # hostile but legal key bytes
        "x/../y/./z~//logical_backups/2.sql.gz",  # dot segments are a key's own bytes
        "semi;colon/a&b=c/logical_backups/3.sql.gz",
        "..%2F..%2Fother-bucket/logical_backups/4.sql.gz",
        "tab\tand\x7fdel/" + "long" * 200 + "/logical_backups/5.sql.gz",
    ]
    base = f"{prefix}/" if prefix else ""
    for i, rel in enumerate(rels):
        seed(bucket, {base + rel: 10 + i}, sse=None if i == 1 else "AES256")
    seed(bucket, {base + "y/z~/logical_backups/2.sql.gz": 99})  # what ".." would reach
    s = store_of(s3_endpoint, bucket, prefix, addressing_style=style)
    client = ClientHeads(s)
    got = heads(s, rels)
    for rel in rels:
        h = got[rel]
        assert isinstance(h, ObjectHead), h
        assert (h.size, h.sse, h.etag, h.last_modified) == client_head(s3, bucket, base + rel)
    assert got[rels[1]].sse == ""  # type: ignore[union-attr]  # stored without encryption
    assert client.keys == [base + rels[0]]  # the client's first, which the store learned from
    assert signed(s).enabled and signed(s).signed == len(rels) - 1


def test_signatures_hold_when_the_server_checks_them(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real IAM user's key, with moto checking each request's SigV4 signature: a path
    # that signed wrongly would be refused (and handed to the client, which would count).
    key_id, secret = iam_keys(s3_endpoint, f"reader-{bucket}", "s3:*")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    odd = "odd key ü/logical_backups/9.sql.gz"
    seed(bucket, {f"spilo/{REL}": 5, f"spilo/{odd}": 6})
    s = store_of(s3_endpoint, bucket)
    client = ClientHeads(s)
    moto_auth(s3_endpoint, enforce=True)
    try:
        got = heads(s, [REL, odd], workers=1)  # the first the client's, learned from
        again = heads(s, [REL, odd])
    finally:
        moto_auth(s3_endpoint, enforce=False)
    assert [h.size for h in (got[REL], got[odd], again[REL], again[odd])] == [5, 6, 5, 6]  # type: ignore[union-attr]
    assert client.keys == [f"spilo/{REL}"]
    assert signed(s).signed == 3 and signed(s).enabled

    # Learned while the server let everyone in; then it checks, and refuses this key: each
    # signed HEAD is refused, the client asks again (and says why); three refusals in a
    # row and the path is off.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    wrong = store_of(s3_endpoint, bucket)
    wrong_client = ClientHeads(wrong)
    assert heads(wrong, [REL])[REL].size == 5  # type: ignore[union-attr]
    moto_auth(s3_endpoint, enforce=True)
    try:
        for _ in range(3):
            assert signed(wrong).enabled
            refused = heads(wrong, [REL])[REL]
            assert isinstance(refused, StorageError) and "access denied" in str(refused)
            assert "not-the-secret" not in str(refused) and "AKIAWRONG" not in str(refused)
    finally:
        moto_auth(s3_endpoint, enforce=False)
    assert wrong_client.keys == [f"spilo/{REL}"] * 4
    assert not signed(wrong).enabled


def test_a_deleted_object_is_the_clients_not_found_and_the_path_stays_on(
    s3_endpoint: str, bucket: str
) -> None:
    seed(bucket, {f"spilo/{REL}": 5})
    s = store_of(s3_endpoint, bucket)
    client = ClientHeads(s)
    gone = "acid-a/gone/logical_backups/1.sql.gz"
    got = heads(s, [gone, REL], workers=1)  # the client's, learning: the first teaches nothing
    assert isinstance(got[gone], StorageError) and "object not found" in str(got[gone])
    got = heads(s, [gone, REL], workers=1)  # signed; the 404 asked again of the client
    assert isinstance(got[gone], StorageError) and "object not found" in str(got[gone])
    assert got[REL].size == 5  # type: ignore[union-attr]
    assert client.keys == [f"spilo/{gone}", f"spilo/{REL}", f"spilo/{gone}"]
    assert signed(s).enabled and signed(s).signed == 1


def test_cut_connections_hand_the_store_to_the_client(s3_endpoint: str, bucket: str) -> None:
    seed(bucket, {f"spilo/{REL}": 5})
    host, port = s3_endpoint.removeprefix("http://").split(":")
    with FlakyProxy(host, int(port)) as proxy:
        s = store_of(proxy.url, bucket)
        client = ClientHeads(s)
        assert heads(s, [REL, REL])[REL].size == 5  # type: ignore[union-attr]
        assert len(client.keys) == 1 and signed(s).signed == 1
        # One connection dropped: aiohttp sends an idempotent request again, once.
        proxy.cut_after(10, match=b"HEAD ")
        assert heads(s, [REL])[REL].size == 5  # type: ignore[union-attr]
        assert proxy.cuts == 1 and len(client.keys) == 1 and signed(s).signed == 2

        def strike() -> None:
            # Mid status line, then a reset, twice: the signed HEAD fails, the client answers.
            before = len(client.keys)
            proxy.cut_after(10, times=2, match=b"HEAD ")
            assert heads(s, [REL])[REL].size == 5  # type: ignore[union-attr]
            assert len(client.keys) == before + 1

        strike()
        strike()
        assert heads(s, [REL])[REL].size == 5  # type: ignore[union-attr]  # signed: all's well
        assert signed(s).signed == 3
        strike()
        strike()
        assert signed(s).enabled  # two in a row since the last answer
        strike()
        assert not signed(s).enabled  # three in a row: the client's from now on
        assert proxy.cuts == 11
        before = len(client.keys)
        assert heads(s, [REL])[REL].size == 5  # type: ignore[union-attr]
        assert len(client.keys) == before + 1 and signed(s).signed == 3 and proxy.cuts == 11


def test_a_stop_drops_what_is_in_flight(s3_endpoint: str, bucket: str) -> None:
    seed(bucket, {f"spilo/{REL}": 5})
    host, port = s3_endpoint.removeprefix("http://").split(":")
    with FlakyProxy(host, int(port)) as proxy:
        # Each try may wait 20 s for an answer (timeout / 5); the server sends nothing.
        s = store_of(proxy.url, bucket, timeout=100)
        assert heads(s, [REL])[REL].size == 5  # type: ignore[union-attr]  # learned
        proxy.stall_after(0, times=50, match=b"HEAD ")
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        began = time.monotonic()
        got = heads(s, [REL] * 20, workers=4, stop=stop)
        waited = time.monotonic() - began
    assert got == {}  # nothing answered, nothing made up
    assert waited < 10  # not a try's 20 s: the stalled HEADs were dropped


def test_a_given_client_or_a_proxy_keeps_to_the_client(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(bucket, {f"spilo/{REL}": 5})
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    given = S3Store(
        StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=s3_endpoint), client=client
    )
    assert heads(given, [REL, REL])[REL].size == 5  # type: ignore[union-attr]
    assert given._signed is None  # its credentials are the caller's business
    # A proxy for the endpoint: botocore's proxy handling stays with botocore.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    url = f"{s3_endpoint}/{bucket}/spilo/{REL}"
    auth = AUTH.format(region="us-east-1", service="s3")
    creds = boto3.session.Session().get_credentials()
    kw: dict[str, Any] = {"connect_timeout": 1, "read_timeout": 1, "ca_bundle": None}
    assert SignedHead.learn(url, auth, f"spilo/{REL}", creds, **kw) is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert SignedHead.learn(url, auth, f"spilo/{REL}", creds, **kw) is not None


AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEEXAMPLE12/20261202/{region}/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64
)


@pytest.mark.parametrize(
    ("url", "auth", "learned"),
    [
        # botocore's own URLs for AWS (no request can reach AWS here): virtual host, path
        (
            "https://acme.s3.eu-central-1.amazonaws.com/spilo/a%20b/1.sql.gz",
            AUTH.format(region="eu-central-1", service="s3"),
            ("https://acme.s3.eu-central-1.amazonaws.com", "/", "eu-central-1"),
        ),
        (
            "https://s3.eu-central-1.amazonaws.com/acme/spilo/a%20b/1.sql.gz",
            AUTH.format(region="eu-central-1", service="s3"),
            ("https://s3.eu-central-1.amazonaws.com", "/acme/", "eu-central-1"),
        ),
        # what the client's signer alone can do
        (
            "https://acme.s3.amazonaws.com/spilo/a%20b/1.sql.gz",
            "AWS4-ECDSA-P256-SHA256 Credential=AKIAEXAMPLEEXAMPLE12/20261202/s3/aws4_request",
            None,
        ),
        (
            "https://acme--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com/spilo/a%20b/1.sql.gz",
            AUTH.format(region="us-east-1", service="s3express"),
            None,
        ),
        (
            "https://acme.s3.amazonaws.com/spilo/a%20b/1.sql.gz?versionId=1",
            AUTH.format(region="us-east-1", service="s3"),
            None,
        ),
        (
            "https://acme.s3.amazonaws.com/spilo/other/1.sql.gz",
            AUTH.format(region="us-east-1", service="s3"),
            None,
        ),
    ],
)
def test_learns_only_what_it_can_sign_alike(
    url: str, auth: str, learned: tuple[str, str, str] | None
) -> None:
    got = SignedHead.learn(
        url,
        auth,
        "spilo/a b/1.sql.gz",
        boto3.session.Session().get_credentials(),
        connect_timeout=1,
        read_timeout=1,
        ca_bundle=None,
    )
    if learned is None:
        assert got is None
    else:
        assert got is not None
        assert (got._origin, got._base_path, got._region) == learned


class _OddHeads(http.server.BaseHTTPRequestHandler):
    """An endpoint answering every HEAD with 200; a key holding "odd" gets headers no S3
    sends (a Last-Modified of "inf", a Content-Length that is not a number)."""

    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
        odd = "odd" in self.path
        self.send_response(200)
        self.send_header("Last-Modified", "inf" if odd else "Tue, 01 Dec 2026 23:00:07 GMT")
        self.send_header("ETag", '"abc"')
        self.send_header("x-amz-server-side-encryption", "AES256")
        self.send_header("Content-Length", "many" if "odd-1" in self.path else "12")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def test_answers_no_s3_sends_are_one_line_errors_not_tracebacks() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OddHeads)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        s = store_of(f"http://127.0.0.1:{server.server_address[1]}", "bkt", timeout=5)
        rels = [REL] + [f"acid-a/{UID}/logical_backups/odd-{i}.sql.gz" for i in range(3)]
        got = heads(s, rels, workers=1)
    finally:
        server.shutdown()
        server.server_close()
    assert got[REL].size == 12  # type: ignore[union-attr]  # the client's, learned from
    for rel in rels[1:]:
        err = got[rel]
        assert isinstance(err, StorageError)  # what botocore could not read either
        assert "could not be read (" in str(err) and "--debug" in str(err)
    assert not signed(s).enabled  # three in a row


def test_trusts_the_certificates_botocore_would(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from botocore.httpsession import get_cert_path

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    assert verify_path(None) == get_cert_path(True)  # botocore's own bundle
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corp.pem"))
    assert verify_path(None) == str(tmp_path / "corp.pem")  # botocore's fallback too
    assert verify_path(str(tmp_path / "aws.pem")) == str(tmp_path / "aws.pem")  # ca_bundle first


def test_called_on_an_event_loops_thread(s3_endpoint: str, bucket: str) -> None:
    other = f"acid-a/{UID}/logical_backups/1700003600.sql.gz"
    seed(bucket, {f"spilo/{REL}": 5, f"spilo/{other}": 6})
    s = store_of(s3_endpoint, bucket)

    async def from_a_coroutine() -> dict[str, ObjectHead | Exception]:
        return heads(s, [REL, other])  # blocks this loop as any blocking call would

    got = asyncio.run(from_a_coroutine())
    assert [got[REL].size, got[other].size] == [5, 6]  # type: ignore[union-attr]
    assert signed(s).signed == 1


def test_an_answer_that_raises_ends_the_run_and_is_said(s3_endpoint: str, bucket: str) -> None:
    rels = [f"acid-a/{UID}/logical_backups/{1700000000 + 3600 * i}.sql.gz" for i in range(40)]
    seed(bucket, {f"spilo/{rel}": 5 for rel in rels})
    s = store_of(s3_endpoint, bucket)
    calls: list[str] = []

    def broken(rel: str, got: ObjectHead | Exception) -> None:
        calls.append(rel)
        raise LookupError("a bug in the caller")

    with pytest.raises(LookupError):  # the learning HEAD's answer: said, not swallowed
        s.heads(rels, 4, broken, threading.Event())
    assert calls == rels[:1]
    calls.clear()
    with pytest.raises(LookupError):  # a signed HEAD's answer: the other workers stop
        s.heads(rels, 4, broken, threading.Event())
    assert 1 <= len(calls) <= 4  # at most the answers already in hand


def test_a_certificate_bundle_missing_keeps_http_signed_and_https_unlearned(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seed(bucket, {f"spilo/{REL}": 5})
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    s = store_of(s3_endpoint, bucket)  # http://: no certificate is read
    assert heads(s, [REL, REL])[REL].size == 5  # type: ignore[union-attr]
    assert signed(s).signed == 1
    with pytest.raises(OSError):  # https: the store keeps its client (not learned)
        SignedHead.learn(
            f"https://acme.s3.amazonaws.com/spilo/{REL}",
            AUTH.format(region="us-east-1", service="s3"),
            f"spilo/{REL}",
            boto3.session.Session().get_credentials(),
            connect_timeout=1,
            read_timeout=1,
            ca_bundle=str(tmp_path / "gone.pem"),
        )
