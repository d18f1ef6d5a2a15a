"""Property-based API testing: schemathesis against the app's own OpenAPI schema.

Every operation, with valid and with invalid generated input, with and without a token:
no 5xx, every status code documented, every response matching its schema and content type.
Runs in-process (ASGI) against the real embedded database and moto's S3.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_service import API_KEY, service_env  # noqa: F401  (fixture)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_every_operation_conforms_to_its_schema(
    service_env: str,  # noqa: F811
    with_token: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import _clear_caches

    monkeypatch.setenv("REQUIRE_AUTH_FOR_READS", "1")
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(1024 * 1024))
    _clear_caches()
    from service.app import create_app

    app = create_app()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {API_KEY}"} if with_token else {}
    started = time.monotonic()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                # ?wait=true on /analyze would run real analyses; keep calls short.
                if case.operation.path == "/analyze":
                    case.query = {**(case.query or {}), "wait": "false"}
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                # No invalid input exists for an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE and not operation.body
    assert operations >= 15
    assert time.monotonic() - started < 120
