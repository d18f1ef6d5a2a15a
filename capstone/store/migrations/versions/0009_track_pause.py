"""How long each object stood still while it moved at other times:
`apps_db_trackattributes.pause_s`.

- `pause_s` (seconds): the longest pause (`capstone.core.motion`), for questions such as
  "did anyone stop?" (`pause>=2`). Rows stored before attributes revision 5 have none.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps_db_trackattributes", sa.Column("pause_s", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("apps_db_trackattributes", "pause_s")
