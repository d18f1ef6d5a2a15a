"""Where each track was: `apps_db_trackattributes.heat`.

- `heat` (integer[], 12 x 9 = 108 counts, row by row from the top left): how many of the
  track's boxes have their bottom centre in each cell of a grid over the frame
  (`capstone.core.motion.place_counts`). Summed over the tracks a question matches, it is
  the heatmap that answers *where* (`capstone.search.tracks.heatmaps`). Rows stored before
  this revision have none; the attributes stage's revision 2 recomputes them on the next run.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps_db_trackattributes", sa.Column("heat", ARRAY(sa.Integer()), nullable=True))


def downgrade() -> None:
    op.drop_column("apps_db_trackattributes", "heat")
