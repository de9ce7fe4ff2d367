"""Amazon S3 (or any S3-compatible endpoint) as a wukong data store, through boto3.

S3 keeps task outputs; it has no atomic counter and no list, so it is a *data store* only and a
job pairs it with a metadata store (``storage="redis://..."``, ``data_storage="s3"``). Objects go
under ``s3://bucket/prefix/`` + the job's key. Batch reads and writes run in parallel on a thread
pool sized like the HTTP connection pool, because S3's latency is per request, not per byte.

Credentials come from the normal AWS chain (environment, shared files, instance roles), never from
wukong's configuration; an ``endpoint_url`` points at another S3 server (MinIO, moto, Ceph).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from wukong.backends.options import BackendOptions
from wukong.backends.storage.base import ObjectStorageBackend, StorageCapabilities, translate_errors
from wukong.errors import StorageError

_DELETE_BATCH = 1000  # S3's DeleteObjects limit
_MISSING_CODES = {"NoSuchKey", "404"}
_S3_MAX_OBJECT = 5 * 1024**4


class S3Options(BackendOptions):
    """Options of the ``s3`` store.

    Attributes:
        url: ``s3://bucket`` or ``s3://bucket/prefix``; the bucket must exist.
        endpoint_url: another S3 server's address (``http://127.0.0.1:9000``); ``None`` for AWS.
        region_name: the bucket's region; ``None`` takes the AWS chain's.
        max_connections: parallel requests (and HTTP connections) per process.
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds before a stalled request fails.

    """

    url: str
    endpoint_url: str | None = None
    region_name: str | None = None
    max_connections: int = Field(default=32, ge=1)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0


_translated = translate_errors(BotoCoreError, ClientError)


class S3Storage(ObjectStorageBackend):
    """A bucket (and key prefix) on S3 or an S3-compatible server: an object store only."""

    name = "s3"
    Options = S3Options
    capabilities = StorageCapabilities(atomic_counters=False, max_object_bytes=_S3_MAX_OBJECT)

    def __init__(self, **options: Any):
        super().__init__(**options)
        address = urllib.parse.urlsplit(self.options.url)
        if address.scheme != "s3" or not address.netloc:
            raise StorageError(f"not an S3 URL: {self.options.url!r} (s3://bucket/prefix)")
        self.bucket = address.netloc
        self.prefix = address.path.strip("/") + "/" if address.path.strip("/") else ""
        self._s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=self.options.endpoint_url,
            region_name=self.options.region_name,
            config=Config(
                max_pool_connections=self.options.max_connections,
                connect_timeout=self.options.connect_timeout,
                read_timeout=self.options.read_timeout,
                retries={"mode": "standard"},
            ),
        )
        self._pool = ThreadPoolExecutor(self.options.max_connections, thread_name_prefix="wukong-s3")

    def describe(self) -> str:
        """Name the bucket, prefix and endpoint."""
        where = f" at {self.options.endpoint_url}" if self.options.endpoint_url else ""
        return f"{self.name} store s3://{self.bucket}/{self.prefix}{where}"

    @_translated
    def check(self) -> None:
        """HEAD the bucket: it must exist and the credentials must reach it."""
        self._s3.head_bucket(Bucket=self.bucket)

    @_translated
    def put(self, key: str, value: bytes) -> None:
        """PUT one object."""
        self._s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=value)

    @_translated
    def put_many(self, items: Mapping[str, bytes]) -> None:
        """PUT the objects in parallel."""
        if len(items) == 1:
            self.put(*next(iter(items.items())))
            return
        for future in [self._pool.submit(self.put, key, value) for key, value in items.items()]:
            future.result()

    def _get(self, key: str) -> bytes | None:
        try:
            reply = self._s3.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING_CODES:
                return None
            raise
        return reply["Body"].read()

    @_translated
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """GET the objects in parallel; a missing key gives ``None``."""
        if len(keys) <= 1:
            return [self._get(key) for key in keys]
        return list(self._pool.map(self._get, keys))

    @_translated
    def delete_many(self, keys: Iterable[str]) -> None:
        """DeleteObjects, a thousand keys a request."""
        batch: list[dict[str, str]] = []
        for key in keys:
            batch.append({"Key": self.prefix + key})
            if len(batch) == _DELETE_BATCH:
                self._delete(batch)
                batch = []
        if batch:
            self._delete(batch)

    def _delete(self, batch: list[dict[str, str]]) -> None:
        reply = self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        if reply.get("Errors"):
            first = reply["Errors"][0]
            raise StorageError(
                f"{self.describe()} could not delete {len(reply['Errors'])} object(s), e.g. "
                f"{first.get('Key')!r}: {first.get('Code')}: {first.get('Message')}"
            )

    @_translated
    def list_keys(self, prefix: str) -> list[str]:
        """List the objects under the store's prefix + ``prefix``."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        start = len(self.prefix)
        return sorted(item["Key"][start:] for page in pages for item in page.get("Contents", ()))

    def close(self) -> None:
        """Stop the request threads and close the HTTP connections."""
        self._pool.shutdown(wait=True)
        self._s3.close()
