"""S3 event parsing (the job's `batch.events`, the handler's minimal parser) and job names."""

from __future__ import annotations

import json

import pytest

from batch import lambda_handler
from batch.events import MalformedEventError, parse_message


def _record(key: str, name: str = "ObjectCreated:Put", bucket: str = "raw") -> dict:
    return {
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10, "eTag": "e"}},
    }


def test_url_encoded_keys_several_records_and_duplicates() -> None:
    body = json.dumps(
        {
            "Records": [
                _record("videos/v-1/my+clip%282%29.mp4"),
                _record("videos/v-1/my+clip%282%29.mp4", "ObjectCreated:CompleteMultipartUpload"),
                _record("videos/v-2/b.mp4"),
                _record("videos/v-3/gone.mp4", "ObjectRemoved:Delete"),
            ]
        }
    )
    objects = parse_message(body)
    assert [(o.bucket, o.key) for o in objects] == [
        ("raw", "videos/v-1/my clip(2).mp4"),
        ("raw", "videos/v-2/b.mp4"),
    ]
    assert objects[0].uri == "s3://raw/videos/v-1/my clip(2).mp4" and objects[0].size == 10
    assert lambda_handler.created_objects(body) == [
        ("raw", "videos/v-1/my clip(2).mp4"),
        ("raw", "videos/v-2/b.mp4"),
    ]


def test_test_event_is_ignored() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "raw"})
    assert parse_message(body) == []
    assert lambda_handler.created_objects(body) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json at all", "not JSON"),
        ("[]", "no S3 event Records"),
        ('{"Records": []}', "no S3 event Records"),
        ('{"Records": [42]}', "not an object"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "lacks s3.bucket.name"),
        (json.dumps({"Records": [_record("videos/../../etc/passwd")]}), "invalid object key"),
        (json.dumps({"Records": [{**_record("a.mp4"), "eventSource": "aws:sns"}]}), "not an S3"),
    ],
)
def test_malformed_bodies_are_rejected(body: str, reason: str) -> None:
    with pytest.raises(MalformedEventError, match=reason):
        parse_message(body)


@pytest.mark.parametrize("body", ["not json", "[]", '{"Records": [{"eventName": 1}]}'])
def test_handler_parser_rejects_garbage(body: str) -> None:
    with pytest.raises(lambda_handler.BadRecord):
        lambda_handler.created_objects(body)


def test_job_names_are_deterministic_and_valid() -> None:
    import re

    one = lambda_handler.job_name("raw", "videos/test-001/clip one.mp4")
    assert one == lambda_handler.job_name("raw", "videos/test-001/clip one.mp4")
    assert one != lambda_handler.job_name("other", "videos/test-001/clip one.mp4")
    long = lambda_handler.job_name("raw", "x/" * 400 + "ü.mp4")
    for name in (one, long, lambda_handler.job_name_of([("a", "1.mp4"), ("a", "2.mp4")])):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", name), name


def test_handler_lambda_module_imports_only_stdlib_and_boto3() -> None:
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(lambda_handler.__file__).read_text())
    modules = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    outside = {m for m in modules if m not in sys.stdlib_module_names and m != "__future__"}
    assert outside == {"boto3"}
