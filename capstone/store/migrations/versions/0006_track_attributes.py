"""Track attributes: what a track looks like and does, for filters and questions.

- `apps_db_trackattributes`: one row per (analysis, final track id) made by the
  `attributes` stage (`capstone.stages.attributes`) at publish: times, mean confidence,
  colour as a Berlin & Kay basic term with its shares, direction, displacement, path,
  speed (px/s; m/s with a ground calibration), median size, fine ImageNet type with
  scores, and `plausible` / `doubts` (whether the track may be counted in an answer).
  Indexed for the filters questions use: (analysis, class), (analysis, colour),
  (analysis, direction). Rows are written only at publish, so there is no staging twin.
  Analyses stored before this revision have no rows here until they are run again.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "apps_db_trackattributes"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "video_id",
            sa.Text(),
            sa.ForeignKey("apps_db_video.video_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "analysis_id",
            sa.BigInteger(),
            sa.ForeignKey("apps_db_videoanalysis.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("class_name", sa.String(), nullable=False),
        sa.Column("t_start", sa.Float(), nullable=False),
        sa.Column("t_end", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("color", sa.String(), nullable=True),
        sa.Column("color_shares", JSONB(), nullable=True),
        sa.Column("direction", sa.String(), nullable=True),
        sa.Column("dx_px", sa.Float(), nullable=True),
        sa.Column("dy_px", sa.Float(), nullable=True),
        sa.Column("path_px", sa.Float(), nullable=True),
        sa.Column("speed_px_s", sa.Float(), nullable=True),
        sa.Column("speed_m_s", sa.Float(), nullable=True),
        sa.Column("width_px", sa.Float(), nullable=True),
        sa.Column("height_px", sa.Float(), nullable=True),
        sa.Column("size_frac", sa.Float(), nullable=True),
        sa.Column("fine_type", sa.String(), nullable=True),
        sa.Column("fine_types", JSONB(), nullable=True),
        sa.Column("plausible", sa.Boolean(), nullable=False),
        sa.Column("doubts", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.UniqueConstraint("analysis_id", "track_id", name="uq_trackattributes_analysis_track"),
    )
    op.create_index("ix_trackattributes_analysis_class", TABLE, ["analysis_id", "class_name"])
    op.create_index("ix_trackattributes_analysis_color", TABLE, ["analysis_id", "color"])
    op.create_index("ix_trackattributes_analysis_direction", TABLE, ["analysis_id", "direction"])


def downgrade() -> None:
    op.drop_index("ix_trackattributes_analysis_direction", table_name=TABLE)
    op.drop_index("ix_trackattributes_analysis_color", table_name=TABLE)
    op.drop_index("ix_trackattributes_analysis_class", table_name=TABLE)
    op.drop_table(TABLE)
