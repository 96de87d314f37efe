"""Property-based API fuzzing with schemathesis from /openapi.json: no input, however odd, makes the
service answer 5xx (the web pages' JSON routes included). Requests carry an admin token so they reach past
authentication.

The same check against a running server (documented command):
    compliance serve &  TOKEN=$(compliance users create fuzz --role admin --token)
    schemathesis run http://127.0.0.1:8000/openapi.json -H "Authorization: Bearer $TOKEN" \\
        --checks not_a_server_error --max-examples 50 --phases examples,coverage,fuzzing

It runs on PostgreSQL when COMPLIANCE_TEST_PG_URL is set (stricter: NUL bytes, integer ranges), else
on SQLite.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from test_service_support import (PG_URL, FakeAnalyzer, drop_pg_database, make_users, pg_database_url,  # noqa: E402
                                  service_settings, settings_for)

#: examples per operation
EXAMPLES = 8


@pytest.fixture()
def fuzz_db(tmp_path):
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'fuzz.db'}"
        return
    url = pg_database_url()
    try:
        yield url
    finally:
        drop_pg_database(url)


def test_no_input_makes_the_api_fail_with_5xx(tmp_path, fuzz_db):
    from compliance import store
    from compliance.service import create_app

    db_url = fuzz_db
    engine = store.make_engine(db_url)
    token = make_users(engine)["admin"]
    app = create_app(settings_for(tmp_path, db_url), service_settings(max_upload_bytes=2_000_000),
                     analyzer=FakeAnalyzer(), engine=engine, start_workers=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, tried = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if "logout" in operation.path:
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
