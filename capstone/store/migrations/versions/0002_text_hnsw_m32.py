"""Denser HNSW graphs for the 384-d text embeddings: m 32, ef_construction 128.

Text embeddings of templated descriptions crowd into dense clusters, where an m 16 graph
leaves near neighbours unreached. bench/search.py at 1M x 384 (scan depth 2000): recall@10
0.91 with m 16 / ef_construction 64, 0.99 with m 32 / 128; the build takes about 3x as long
(it is a one-off per index; small tables build in milliseconds). The image (1280-d), re-id
and CLIP indexes keep m 16 (recall 0.99 at 100k x 1280).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TEXT_INDEXES = (
    ("ix_event_text_embedding_hnsw", "apps_db_event"),
    ("ix_frame_text_embedding_hnsw", "frame_embeddings"),
)


def _rebuild(m: int, ef_construction: int) -> None:
    for name, table in TEXT_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(
            f"CREATE INDEX {name} ON {table} USING hnsw (text_embedding vector_cosine_ops) "
            f"WITH (m = {m}, ef_construction = {ef_construction})"
        )


def upgrade() -> None:
    _rebuild(32, 128)


def downgrade() -> None:
    _rebuild(16, 64)
