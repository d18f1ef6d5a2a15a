"""Reuse of stored tracks: what derived stages are recomputed from, keyed by upstream hash.

- `apps_db_analysisbasis`: one row per completed analysis whose chunks logged their frames:
  `upstream_hash` (`AnalysisParams.upstream_hash`, everything that decides the detections
  and tracks; `params_hash` is unchanged), the sampled frame numbers and their exact
  timestamps, and each track's exact confidence sum (the track row keeps a rounded mean).
  Arrays are little-endian int64 / float64 bytes. A run whose parameters differ from a
  stored analysis only in derived options (lines, zones, confirm_s, ...) finds it here by
  (`video_id`, `upstream_hash`) and recomputes only the derived stages
  (`capstone.runtime.reuse`).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps_db_analysisbasis",
        sa.Column(
            "analysis_id",
            sa.BigInteger(),
            sa.ForeignKey("apps_db_videoanalysis.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "video_id",
            sa.Text(),
            sa.ForeignKey("apps_db_video.video_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("upstream_hash", sa.Text(), nullable=False),
        sa.Column("frames", sa.LargeBinary(), nullable=False),
        sa.Column("timestamps", sa.LargeBinary(), nullable=False),
        sa.Column("track_ids", sa.LargeBinary(), nullable=False),
        sa.Column("confidence_sums", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "ix_analysisbasis_video_upstream", "apps_db_analysisbasis", ["video_id", "upstream_hash"]
    )


def downgrade() -> None:
    op.drop_index("ix_analysisbasis_video_upstream", table_name="apps_db_analysisbasis")
    op.drop_table("apps_db_analysisbasis")
