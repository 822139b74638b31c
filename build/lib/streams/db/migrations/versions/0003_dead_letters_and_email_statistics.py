"""Dead letters kept for analysis and replay, and the daily email statistics.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:24:14.406894

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('origin_topic', sa.String(length=255), nullable=True),
    sa.Column('origin_partition', sa.Integer(), nullable=True),
    sa.Column('origin_offset', sa.BigInteger(), nullable=True),
    sa.Column('target_agent', sa.String(length=100), nullable=True),
    sa.Column('event_id', sa.String(length=36), nullable=True),
    sa.Column('event_type', sa.String(length=100), nullable=True),
    sa.Column('key', sa.LargeBinary(), nullable=True),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('error_type', sa.String(length=100), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=False),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replay_count', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic', 'partition', 'offset')
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_error_type'), ['error_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letters_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letters_event_type'), ['event_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letters_failed_at'), ['failed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letters_origin_topic'), ['origin_topic'], unique=False)

    op.create_table('email_statistics',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('delivery_rate', sa.Float(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )


def downgrade() -> None:
    op.drop_table('email_statistics')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_origin_topic'))
        batch_op.drop_index(batch_op.f('ix_dead_letters_failed_at'))
        batch_op.drop_index(batch_op.f('ix_dead_letters_event_type'))
        batch_op.drop_index(batch_op.f('ix_dead_letters_event_id'))
        batch_op.drop_index(batch_op.f('ix_dead_letters_error_type'))

    op.drop_table('dead_letters')
