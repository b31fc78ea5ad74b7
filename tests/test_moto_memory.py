"""The moto server's memory report (``LAVA_MOTO_MEMORY_REPORT``) names what each service keeps."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from devstack import moto_memory


def test_holdings_count_what_moto_keeps() -> None:
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName="kept",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for sk in "abc":
            db.put_item(TableName="kept", Item={"pk": {"S": "p"}, "sk": {"S": sk}})
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="kept-bucket")
        s3.put_object(Bucket="kept-bucket", Key="k", Body=b"12345")
        found = moto_memory.holdings()
    assert found["dynamodb"]["kept"] == {"items": 3}
    assert found["s3"]["kept-bucket"] == {"keys": 1, "versions": 1, "bytes": 5}
    assert found["tracked"]["dynamodb"] >= 3


def test_no_report_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAVA_MOTO_MEMORY_REPORT", raising=False)
    assert not moto_memory.start_from_environment()
