"""What an eventuali SQLite file holds, read without changing it (for the CLI and support).

Uses sqlite-utils for the table introspection; opens the file read-only, so it
works on a store another process is writing and never creates or migrates one.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlite_utils

from eventuali.errors import NotAnEventualiStoreError, StorageError


def inspect_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Schema version, creator, row counts, head position and streams of the file at ``path``."""
    path = Path(path).resolve()
    if not path.is_file():
        raise StorageError(f"no SQLite file at {str(path)!r}; give the path of an eventuali database")
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        db = sqlite_utils.Database(conn)
        tables = set(db.table_names())
    except sqlite3.DatabaseError as exc:
        raise NotAnEventualiStoreError(
            f"{str(path)!r} is not a SQLite database ({exc}); give the path of an eventuali database"
        ) from exc
    try:
        if "eventuali_meta" not in tables:
            raise NotAnEventualiStoreError(
                f"{str(path)!r} is a SQLite database but not an eventuali store "
                f"(tables: {', '.join(sorted(tables)) or 'none'})"
            )
        meta = {row["key"]: row["value"] for row in db["eventuali_meta"].rows}
        head = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'eventuali_events'").fetchone()
        streams = db.execute(
            "SELECT count(*), coalesce(sum(deleted), 0) FROM eventuali_streams"
        ).fetchone()
        return {
            "path": str(path),
            "schema_version": int(meta.get("schema_version", 0)),
            "created_by": meta.get("created_by"),
            "journal_mode": db.journal_mode,
            "head": head[0] if head else 0,
            "events": db["eventuali_events"].count,
            "streams": streams[0],
            "deleted_streams": streams[1],
            "snapshots": db["eventuali_snapshots"].count,
            "checkpoints": db["eventuali_checkpoints"].count,
            "size_bytes": path.stat().st_size,
        }
    finally:
        conn.close()
