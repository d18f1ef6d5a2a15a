"""The analysis row is the work queue's entry; events page by keyset.

- `apps_db_videoanalysis.source_uri`: the object this analysis reads, so analysis worker
  processes (not the request-serving API processes) can pick `pending` rows up.
- `ix_event_analysis_frame_id (analysis_id, frame_number, id)`: keyset pagination of events
  (`after=<frame>:<id>`), so a deep page costs what the first page costs.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps_db_videoanalysis", sa.Column("source_uri", sa.String(), nullable=True))
    op.create_index(
        "ix_event_analysis_frame_id", "apps_db_event", ["analysis_id", "frame_number", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_event_analysis_frame_id", table_name="apps_db_event")
    op.drop_column("apps_db_videoanalysis", "source_uri")
