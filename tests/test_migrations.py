"""Alembic migrations: they build the whole schema (analysis + service) on SQLite and PostgreSQL,
match the SQLModel tables exactly, go down and up again, and adopt a database made by create_all."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from test_service_support import db_url  # noqa: F401


def _diffs(engine):
    from compliance import store  # noqa: F401
    from compliance.live import storage  # noqa: F401
    from compliance.service import models  # noqa: F401

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)


def test_migrations_build_exactly_the_models_and_go_down_and_up(db_url):  # noqa: F811
    from compliance import migrations, store

    engine = store.make_engine(db_url)
    assert migrations.current_revision(engine) == migrations.head_revision()
    assert _diffs(engine) == []
    names = set(inspect(engine).get_table_names())
    assert {"call", "speaker", "utterance", "violation", "app_user", "api_token", "job", "batch", "blob",
            "audit_log", "call_secret", "live_stream", "live_alert"} <= names
    migrations.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrations.upgrade(engine)
    assert _diffs(engine) == []
    store.make_engine(db_url)  # opening it again is a no-op
    assert migrations.current_revision(engine) == migrations.head_revision()


def test_a_database_from_before_migrations_is_adopted_with_its_data(tmp_path):
    from compliance import migrations, store

    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    engine = create_engine(url)
    migrations.upgrade(engine, "0001")  # the tables exactly as create_all made them ...
    with engine.begin() as conn:  # ... without Alembic's bookkeeping
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO call (id, sha256, source_name, duration, channels, language, models, created_at) "
                          "VALUES (1, :sha, 'old.flac', 10, 2, 'zh', '{}', '2026-01-01 00:00:00')"), {"sha": "a" * 64})
        conn.execute(text("INSERT INTO violation (call_id, rule_id, title, category, severity, kind, start, \"end\", "
                          "role, matched_text, context, reason, pack, regulation, suggestion) VALUES "
                          "(1, 'r', 't', 'c', 'high', 'utterance', 1, 2, 'agent', 'm', 'c', 'x', '', '', '')"))
    engine.dispose()
    engine = store.make_engine(url)
    assert migrations.current_revision(engine) == migrations.head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT source_name, agent_id FROM call")).one() == ("old.flac", None)
        assert conn.execute(text("SELECT status FROM violation")).scalar_one() == "open"


def test_the_store_keeps_its_promises_on_both_databases(db_url, monkeypatch):  # noqa: F811
    import pytest
    from sqlmodel import Session, func, select

    from compliance import store
    from test_store import _result

    engine = store.make_engine(db_url)

    def count(session, table):
        return session.exec(select(func.count()).select_from(table)).one()

    with Session(engine) as s:
        first = store.save_call(s, _result(), meta={"agent_id": "A1", "product": "fund"})
        again = store.save_call(s, _result(n_viol=3))
        assert first.id == again.id and count(s, store.CallRecord) == 1 and count(s, store.ViolationRecord) == 1
        replaced = store.save_call(s, _result(n_viol=2), replace=True)
        assert replaced.agent_id == "A1" and count(s, store.ViolationRecord) == 2  # metadata survives a replace
        assert {v.status for v in s.exec(select(store.ViolationRecord)).all()} == {"open"}
    monkeypatch.setattr(store, "_add_violations", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with Session(engine) as s:
        with pytest.raises(RuntimeError):
            store.save_call(s, _result(sha="b" * 64))
    with Session(engine) as s:
        assert count(s, store.CallRecord) == 1 and store.find_call(s, "b" * 64) is None
    engine.dispose()


def test_redetection_keeps_the_review_status_of_findings_that_remain(tmp_path):
    from sqlmodel import Session, select

    from compliance import store
    from compliance.types import Violation
    from test_store import _result

    engine = store.make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with Session(engine) as s:
        call = store.save_call(s, _result())
        record = s.exec(select(store.ViolationRecord)).one()
        record.status = "confirmed"
        s.add(record)
        s.commit()
        kept = _result().violations[0]
        new = Violation(rule_id="zh.other", title="t", category="c", severity="low", start=5, end=6, speaker="CH0",
                        role="agent", matched_text="x", context="x", reason="r")
        store.replace_violations(s, call.id, [kept, new])
        statuses = {v.rule_id: v.status for v in s.exec(select(store.ViolationRecord)).all()}
    assert statuses == {"zh.guarantee": "confirmed", "zh.other": "open"}


def test_live_tables_made_by_an_older_release_are_adopted(tmp_path):
    """Before 0003 the live tables came from create_all: the upgrade keeps them and their rows."""
    from compliance import migrations, store
    from compliance.live import storage

    url = f"sqlite:///{tmp_path / 'old-live.db'}"
    engine = create_engine(url)
    migrations.upgrade(engine, "0002")
    SQLModel.metadata.create_all(engine, tables=[storage.LiveStreamRecord.__table__, storage.LiveAlertRecord.__table__])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO live_stream (id, sample_rate, channels, status, complete, received_s, started_at) "
                          "VALUES ('s1', 16000, 2, 'ended', 1, 12.5, '2026-01-01 00:00:00')"))
    engine.dispose()
    engine = store.make_engine(url)
    assert migrations.current_revision(engine) == migrations.head_revision()
    assert _diffs(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, received_s FROM live_stream")).one() == ("s1", 12.5)


def test_sqlite_never_hands_out_a_deleted_violation_id_again(tmp_path):
    """Audit entries and live alerts cite violation ids: re-analysis deletes violations, and a
    new one must not take over the id of the last deleted row."""
    from sqlmodel import Session, select

    from compliance import store
    from test_store import _result

    engine = store.make_engine(f"sqlite:///{tmp_path / 'ids.db'}")
    with Session(engine) as s:
        call = store.save_call(s, _result(n_viol=2))
        before = sorted(v.id for v in s.exec(select(store.ViolationRecord)).all())
        store.replace_violations(s, call.id, [])
        store.replace_violations(s, call.id, _result(n_viol=2).violations)
        after = sorted(v.id for v in s.exec(select(store.ViolationRecord)).all())
    assert len(after) == 2 and min(after) > max(before)
