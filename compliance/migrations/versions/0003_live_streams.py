"""Live streams and their alerts join the migrated schema (earlier releases made them with
create_all: such tables are adopted as they are); on SQLite the violation table gets AUTOINCREMENT so
a deleted violation's id, cited by the audit log and live alerts, is never handed out again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _exists(table: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(table)


def _violation_autoincrement(on: bool) -> None:
    """SQLite only (PostgreSQL sequences never reuse ids): rebuild the table with or without it."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table('violation', recreate='always', table_kwargs={'sqlite_autoincrement': on}):
        pass


def upgrade() -> None:
    _violation_autoincrement(True)
    if _exists('live_alert') and _exists('live_stream'):
        return
    op.create_table('live_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stream_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('alert_key', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('start', sa.Float(), nullable=False),
    sa.Column('end', sa.Float(), nullable=False),
    sa.Column('speaker', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('matched_text', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('provisional', sa.Boolean(), nullable=False),
    sa.Column('retracted', sa.Boolean(), nullable=False),
    sa.Column('raised_at_s', sa.Float(), nullable=False),
    sa.Column('raised_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('violation_id', sa.Integer(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('live_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_alert_stream_id'), ['stream_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_alert_violation_id'), ['violation_id'], unique=False)

    op.create_table('live_stream',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('call_time', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('sample_rate', sa.Integer(), nullable=False),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('agent_channel', sa.Integer(), nullable=True),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('received_s', sa.Float(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('linked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('live_stream', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_stream_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_stream_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_stream_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_stream_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('live_stream', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_stream_status'))
        batch_op.drop_index(batch_op.f('ix_live_stream_started_at'))
        batch_op.drop_index(batch_op.f('ix_live_stream_call_id'))
        batch_op.drop_index(batch_op.f('ix_live_stream_agent_id'))

    op.drop_table('live_stream')
    with op.batch_alter_table('live_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_alert_violation_id'))
        batch_op.drop_index(batch_op.f('ix_live_alert_stream_id'))

    op.drop_table('live_alert')
    _violation_autoincrement(False)
