"""S3 event notifications as they arrive in SQS message bodies.

A body is one JSON document with `Records`, each an S3 event; object keys are URL-encoded
(`+` for spaces). S3 sends an `s3:TestEvent` when a notification is configured: it names
no object and is ignored. Anything else that is not an S3 event is rejected with
`MalformedEventError`.

>>> body = ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", '
...         '"s3": {"bucket": {"name": "raw"}, "object": {"key": "videos/a/my+clip.mp4"}}}]}')
>>> [(o.bucket, o.key) for o in parse_message(body)]
[('raw', 'videos/a/my clip.mp4')]
>>> parse_message('{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "raw"}')
[]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from batch.lambda_handler import strict_json
from capstone.errors import InputError
from capstone.io.s3 import validate_key

MAX_BODY_CHARS = 256 * 1024


class MalformedEventError(InputError):
    """An SQS message body that is not an S3 event notification."""

    code = "malformed_event"


@dataclass(frozen=True)
class S3Object:
    """One object named by an `ObjectCreated` record."""

    bucket: str
    key: str
    event_name: str = "ObjectCreated:Put"
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_test_event(data: Any) -> bool:
    """The `s3:TestEvent` S3 sends when a notification configuration is saved."""
    return isinstance(data, dict) and data.get("Event") == "s3:TestEvent"


def parse_message(body: str | bytes) -> list[S3Object]:
    """The created objects named by one SQS message body, in order, duplicates removed.

    Returns `[]` for `s3:TestEvent` and for events that create nothing (e.g.
    `ObjectRemoved`). Raises `MalformedEventError` for anything that is not an S3 event.
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEventError("message body is not UTF-8 text") from None
    if len(body) > MAX_BODY_CHARS:
        raise MalformedEventError(f"message body is {len(body)} characters; too large")
    try:
        data = strict_json(body)
    except json.JSONDecodeError as exc:
        raise MalformedEventError(f"message body is not JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # too deep, NaN, 1e999, a 5,000-digit int
        raise MalformedEventError(f"message body is not plain JSON ({exc})") from None
    if is_test_event(data):
        return []
    records = data.get("Records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        raise MalformedEventError("message body has no S3 event Records")
    objects: list[S3Object] = []
    for number, record in enumerate(records, 1):
        try:
            found = _parse_record(record, number)
        except MalformedEventError:
            raise
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise MalformedEventError(f"record {number}: {type(exc).__name__}: {exc}") from None
        if found is not None and all(found.uri != o.uri for o in objects):
            objects.append(found)
    return objects


def _parse_record(record: Any, number: int) -> S3Object | None:
    where = f"record {number}"
    if not isinstance(record, dict):
        raise MalformedEventError(f"{where} is not an object")
    source = record.get("eventSource")
    if source not in (None, "aws:s3"):
        raise MalformedEventError(f"{where} is not an S3 event (eventSource {source!r})")
    name = record.get("eventName")
    if not isinstance(name, str):
        raise MalformedEventError(f"{where} has no eventName")
    if not name.startswith("ObjectCreated:"):
        return None
    try:
        bucket = record["s3"]["bucket"]["name"]
        obj = record["s3"]["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError):
        raise MalformedEventError(f"{where} lacks s3.bucket.name or s3.object.key") from None
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str):
        raise MalformedEventError(f"{where} has an empty bucket or key")
    try:
        key = validate_key(unquote_plus(raw_key))
    except InputError as exc:
        raise MalformedEventError(f"{where}: {exc}") from None
    size = obj.get("size")
    if isinstance(size, bool) or not isinstance(size, int | float) or not 0 <= size < 2**63:
        size = None  # informational only: the job reads the object itself
    return S3Object(
        bucket=bucket,
        key=key,
        event_name=name,
        size=None if size is None else int(size),
        etag=obj.get("eTag") if isinstance(obj.get("eTag"), str) else None,
        sequencer=obj.get("sequencer") if isinstance(obj.get("sequencer"), str) else None,
        version_id=obj.get("versionId") if isinstance(obj.get("versionId"), str) else None,
    )
