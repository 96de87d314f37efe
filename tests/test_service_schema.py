"""Property-based API fuzzing with schemathesis from /openapi.json: no input, however odd, makes the
service answer 5xx (the web pages' JSON routes included). Requests carry an admin token so they reach past
authentication.

The same check against a running server (documented command):
    compliance serve &  TOKEN=$(compliance users create fuzz --role admin --token)
    schemathesis run http://127.0.0.1:8000/openapi.json -H "Authorization: Bearer $TOKEN" \\
        --checks not_a_server_error --max-examples 50
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from test_service_support import FakeAnalyzer, db_url, make_users, service_settings, settings_for  # noqa: E402,F401

#: examples per operation (27 operations), on SQLite and on PostgreSQL
EXAMPLES = 5


def test_no_input_makes_the_api_fail_with_5xx(tmp_path, db_url):  # noqa: F811
    from compliance import store
    from compliance.service import create_app

    engine = store.make_engine(db_url)
    token = make_users(engine)["admin"]
    app = create_app(settings_for(tmp_path, db_url), service_settings(max_upload_bytes=2_000_000),
                     analyzer=FakeAnalyzer(), engine=engine, start_workers=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, tried = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/v1/auth/logout":
            continue  # it would revoke the token the other cases use

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            nonlocal tried
            tried += 1
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, response.status_code, response.text[:300]))

        fuzz()
    assert tried > 100
    assert failures == []
