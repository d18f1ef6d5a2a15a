"""Long videos: time chunks with their own leases, and staging tables for streamed rows.

- `apps_db_analysischunk`: one row per time chunk of an analysis (lease, progress, the
  chunk's stage state once done).
- `apps_db_videoanalysis.chunks_total / chunks_done`: progress in chunks.
- `staging_<result table>`: the rows of a running analysis, COPYed during the pass with the
  chunk that wrote them (`chunk`, `seq` keeps their order). Readers never look here; the
  publish step moves an analysis's rows into the result tables in one transaction. Each is
  `LIKE` its result table minus `id` and generated columns: a column added to a result table
  must be added to its staging table too.
- `staging_track`: per chunk, one compact summary per chunk-local track.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STAGED = ("apps_db_event", "apps_db_depthdata", "apps_db_displaydata", "frame_embeddings")
GENERATED = {"apps_db_event": ("description_tsv",), "frame_embeddings": ("description_tsv",)}


def upgrade() -> None:
    op.add_column(
        "apps_db_videoanalysis",
        sa.Column("chunks_total", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "apps_db_videoanalysis",
        sa.Column("chunks_done", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "apps_db_analysischunk",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "analysis_id",
            sa.BigInteger(),
            sa.ForeignKey("apps_db_videoanalysis.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("start_frame", sa.Integer(), nullable=False),
        sa.Column("end_frame", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False, server_default="pending"),
        sa.Column("frames_expected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("frames_processed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("state", JSONB(), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("analysis_id", "chunk_index", name="uq_chunk_analysis_index"),
    )
    for table in STAGED:
        staging = f"staging_{table}"
        op.execute(f"CREATE TABLE {staging} (LIKE {table})")
        drops = ", ".join(f"DROP COLUMN {c}" for c in ("id", *GENERATED.get(table, ())))
        op.execute(
            f"ALTER TABLE {staging} {drops}, ADD COLUMN chunk integer NOT NULL, "
            "ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY, "
            f"ADD FOREIGN KEY (analysis_id) REFERENCES apps_db_videoanalysis (id) "
            "ON DELETE CASCADE"
        )
        op.execute(f"CREATE INDEX ix_{staging}_analysis_chunk ON {staging} (analysis_id, chunk)")
    op.create_table(
        "staging_track",
        sa.Column(
            "analysis_id",
            sa.BigInteger(),
            sa.ForeignKey("apps_db_videoanalysis.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("staged_id", sa.BigInteger(), nullable=False),
        sa.Column("summary", JSONB(), nullable=False),
        sa.Column("best_crop", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("analysis_id", "staged_id"),
    )


def downgrade() -> None:
    op.drop_table("staging_track")
    for table in STAGED:
        op.execute(f"DROP TABLE staging_{table}")
    op.drop_table("apps_db_analysischunk")
    op.drop_column("apps_db_videoanalysis", "chunks_done")
    op.drop_column("apps_db_videoanalysis", "chunks_total")
