"""A loopback S3 server (moto) and the buckets tests make on it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import boto3

from reelforge.storage import Storage, open_storage

ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the loopback S3 server, and how to reach it."""

    url: str
    endpoint: str
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY

    def open(self) -> Storage:
        return open_storage(
            self.url,
            s3_endpoint_url=self.endpoint,
            s3_access_key_id=self.access_key_id,
            s3_secret_access_key=self.secret_access_key,
        )


def create_bucket(endpoint: str) -> S3Bucket:
    name = f"reelforge-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    ).create_bucket(Bucket=name)
    return S3Bucket(url=f"s3://{name}/archive", endpoint=endpoint)
