"""What the classifier saw in each track: `apps_db_trackattributes.imagenet`.

- `imagenet` (jsonb, label -> probability): the 10 likeliest ImageNet labels
  (MobileNetV2) of the track's best crop, for every class (people too). Nouns that are
  neither a detector class nor a known fine type are matched against them, ConSE-style
  (`capstone.search.zeroshot`). Rows stored before this revision have none.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps_db_trackattributes", sa.Column("imagenet", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("apps_db_trackattributes", "imagenet")
