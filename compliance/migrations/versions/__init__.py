"""Alembic revisions (a package only so that a built wheel carries them)."""
