"""Where and when each object stood during its longest pause:
`apps_db_trackattributes.pause_heat`, `pause_from`, `pause_to`.

- `pause_heat` (integer array): the pause's cell on the 12 x 9 grid of `heat`, holding
  the pause in tenths of a second (`capstone.core.motion.pause_place`), for questions such
  as "where did people stop?";
- `pause_from`, `pause_to` (seconds): when, for "how many people crossed while the bus was
  stopped?". Rows stored before attributes revision 6 have none.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "apps_db_trackattributes",
        sa.Column("pause_heat", postgresql.ARRAY(sa.Integer()), nullable=True),
    )
    op.add_column("apps_db_trackattributes", sa.Column("pause_from", sa.Float(), nullable=True))
    op.add_column("apps_db_trackattributes", sa.Column("pause_to", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("apps_db_trackattributes", "pause_to")
    op.drop_column("apps_db_trackattributes", "pause_from")
    op.drop_column("apps_db_trackattributes", "pause_heat")
