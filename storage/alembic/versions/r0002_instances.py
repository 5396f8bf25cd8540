"""Several instances on one database: job leases, result-button presses, album parts.

- ``jobs.claimed_by`` / ``jobs.lease_until``: the instance working a job and until when its
  claim holds unless renewed (bot/jobs/queue.py); another instance takes the job only after.
- ``presses``: a result button's press and the job it made, so that a burst of presses makes
  one job whichever instance each press reaches (bot/jobs/presses.py).
- ``album_parts``: an album's images as they arrive, so that the parts of one media group are
  gathered whichever instance each reaches (bot/albums.py).

Revision ID: 0002_instances
Revises: 0001_baseline
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_instances"
down_revision: str | None = "0001_baseline"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.Text()))
        batch.add_column(sa.Column("lease_until", sa.Text()))
    op.create_table(
        "presses",
        sa.Column("press_key", sa.Text(), primary_key=True),
        sa.Column("job_id", sa.BigInteger()),
        sa.Column("made_at", sa.Text(), nullable=False),
    )
    op.create_index("presses_made_at", "presses", ["made_at"])
    op.create_table(
        "album_parts",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("media_group_id", sa.Text(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.Text(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("arrived_at", sa.Text(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("chat_id", "media_group_id", "update_id"),
    )
    op.create_index("album_parts_arrived_at", "album_parts", ["arrived_at"])


def downgrade() -> None:
    op.drop_index("album_parts_arrived_at", "album_parts")
    op.drop_table("album_parts")
    op.drop_index("presses_made_at", "presses")
    op.drop_table("presses")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
