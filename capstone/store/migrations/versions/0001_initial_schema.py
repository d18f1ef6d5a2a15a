# ruff: noqa: E501
"""Initial schema: pgvector extension, tables, HNSW vector indexes, GIN full-text indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:53:38.270970
"""

import pgvector.sqlalchemy
import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "apps_db_video",
        sa.Column("video_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("source_uri", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=True),
        sa.Column("codec", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("video_id"),
    )
    op.create_index(op.f("ix_apps_db_video_sha256"), "apps_db_video", ["sha256"], unique=False)
    op.create_index(op.f("ix_apps_db_video_status"), "apps_db_video", ["status"], unique=False)
    op.create_table(
        "apps_db_videoanalysis",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("video_id", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("params_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("frames_processed", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("notebook", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["video_id"], ["apps_db_video.video_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("video_id", "params_hash", name="uq_analysis_video_params"),
    )
    op.create_index(
        op.f("ix_apps_db_videoanalysis_status"), "apps_db_videoanalysis", ["status"], unique=False
    )
    op.create_table(
        "apps_db_depthdata",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("video_id", sa.Text(), nullable=False),
        sa.Column("analysis_id", sa.BigInteger(), nullable=False),
        sa.Column("frame_number", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("class_name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("bbox", sa.ARRAY(sa.Float()), nullable=True),
        sa.Column("avg_depth", sa.Float(), nullable=False),
        sa.Column("min_depth", sa.Float(), nullable=False),
        sa.Column("max_depth", sa.Float(), nullable=False),
        sa.Column("depth_variance", sa.Float(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("depth_map", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["analysis_id"], ["apps_db_videoanalysis.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["apps_db_video.video_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_depth_video_frame", "apps_db_depthdata", ["video_id", "frame_number"], unique=False
    )
    op.create_table(
        "apps_db_displaydata",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("video_id", sa.Text(), nullable=False),
        sa.Column("analysis_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("frame_number", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.Float(), nullable=True),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(["analysis_id"], ["apps_db_videoanalysis.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["apps_db_video.video_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_display_video_frame",
        "apps_db_displaydata",
        ["video_id", "kind", "frame_number"],
        unique=False,
    )
    op.create_table(
        "apps_db_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("video_id", sa.Text(), nullable=False),
        sa.Column("analysis_id", sa.BigInteger(), nullable=False),
        sa.Column("frame_number", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("class_name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("bbox", sa.ARRAY(sa.Float()), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "description_tsv",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('english', coalesce(description, '') || ' ' || coalesce(class_name, ''))",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("text_embedding", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
        sa.ForeignKeyConstraint(["analysis_id"], ["apps_db_videoanalysis.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["apps_db_video.video_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_apps_db_event_event_type"), "apps_db_event", ["event_type"], unique=False
    )
    op.create_index(
        "ix_event_analysis_type", "apps_db_event", ["analysis_id", "event_type"], unique=False
    )
    op.create_index(
        "ix_event_text_embedding_hnsw",
        "apps_db_event",
        ["text_embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"text_embedding": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_event_tsv", "apps_db_event", ["description_tsv"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "ix_event_video_frame", "apps_db_event", ["video_id", "frame_number"], unique=False
    )
    op.create_table(
        "apps_db_track",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("video_id", sa.Text(), nullable=False),
        sa.Column("analysis_id", sa.BigInteger(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("class_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("first_frame", sa.Integer(), nullable=False),
        sa.Column("last_frame", sa.Integer(), nullable=False),
        sa.Column("first_timestamp", sa.Float(), nullable=False),
        sa.Column("last_timestamp", sa.Float(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("mean_confidence", sa.Float(), nullable=False),
        sa.Column("best_frame", sa.Integer(), nullable=True),
        sa.Column("best_bbox", sa.ARRAY(sa.Float()), nullable=True),
        sa.Column("best_crop", sa.LargeBinary(), nullable=True),
        sa.Column("avg_depth", sa.Float(), nullable=True),
        sa.Column("min_depth", sa.Float(), nullable=True),
        sa.Column("max_depth", sa.Float(), nullable=True),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(dim=1280), nullable=True),
        sa.Column("reid_embedding", pgvector.sqlalchemy.vector.VECTOR(dim=512), nullable=True),
        sa.ForeignKeyConstraint(["analysis_id"], ["apps_db_videoanalysis.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["apps_db_video.video_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("analysis_id", "track_id", name="uq_track_analysis_track"),
    )
    op.create_index(
        "ix_track_embedding_hnsw",
        "apps_db_track",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_track_reid_embedding_hnsw",
        "apps_db_track",
        ["reid_embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"reid_embedding": "vector_cosine_ops"},
    )
    op.create_table(
        "frame_embeddings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("video_id", sa.Text(), nullable=False),
        sa.Column("analysis_id", sa.BigInteger(), nullable=False),
        sa.Column("frame_number", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(dim=1280), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "description_tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english', coalesce(description, ''))", persisted=True),
            nullable=True,
        ),
        sa.Column("text_embedding", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
        sa.Column("clip_embedding", pgvector.sqlalchemy.vector.VECTOR(dim=512), nullable=True),
        sa.ForeignKeyConstraint(["analysis_id"], ["apps_db_videoanalysis.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["apps_db_video.video_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("analysis_id", "frame_number", name="uq_frame_embedding"),
    )
    op.create_index(
        "ix_frame_clip_embedding_hnsw",
        "frame_embeddings",
        ["clip_embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"clip_embedding": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_frame_description_tsv",
        "frame_embeddings",
        ["description_tsv"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_frame_embeddings_cos_hnsw",
        "frame_embeddings",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_frame_embeddings_hnsw",
        "frame_embeddings",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_l2_ops"},
    )
    op.create_index(
        "ix_frame_text_embedding_hnsw",
        "frame_embeddings",
        ["text_embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"text_embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    op.drop_index(
        "ix_frame_text_embedding_hnsw",
        table_name="frame_embeddings",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"text_embedding": "vector_cosine_ops"},
    )
    op.drop_index(
        "ix_frame_embeddings_hnsw",
        table_name="frame_embeddings",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_l2_ops"},
    )
    op.drop_index(
        "ix_frame_embeddings_cos_hnsw",
        table_name="frame_embeddings",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_index("ix_frame_description_tsv", table_name="frame_embeddings", postgresql_using="gin")
    op.drop_index(
        "ix_frame_clip_embedding_hnsw",
        table_name="frame_embeddings",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"clip_embedding": "vector_cosine_ops"},
    )
    op.drop_table("frame_embeddings")
    op.drop_index(
        "ix_track_reid_embedding_hnsw",
        table_name="apps_db_track",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"reid_embedding": "vector_cosine_ops"},
    )
    op.drop_index(
        "ix_track_embedding_hnsw",
        table_name="apps_db_track",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_table("apps_db_track")
    op.drop_index("ix_event_video_frame", table_name="apps_db_event")
    op.drop_index("ix_event_tsv", table_name="apps_db_event", postgresql_using="gin")
    op.drop_index(
        "ix_event_text_embedding_hnsw",
        table_name="apps_db_event",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"text_embedding": "vector_cosine_ops"},
    )
    op.drop_index("ix_event_analysis_type", table_name="apps_db_event")
    op.drop_index(op.f("ix_apps_db_event_event_type"), table_name="apps_db_event")
    op.drop_table("apps_db_event")
    op.drop_index("ix_display_video_frame", table_name="apps_db_displaydata")
    op.drop_table("apps_db_displaydata")
    op.drop_index("ix_depth_video_frame", table_name="apps_db_depthdata")
    op.drop_table("apps_db_depthdata")
    op.drop_index(op.f("ix_apps_db_videoanalysis_status"), table_name="apps_db_videoanalysis")
    op.drop_table("apps_db_videoanalysis")
    op.drop_index(op.f("ix_apps_db_video_status"), table_name="apps_db_video")
    op.drop_index(op.f("ix_apps_db_video_sha256"), table_name="apps_db_video")
    op.drop_table("apps_db_video")
