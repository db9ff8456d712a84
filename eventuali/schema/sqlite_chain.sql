-- eventuali SQLite hash chain (URL option integrity=chain), shared by every engine.
--
-- Created, with the eventuali_meta row ('integrity', 'chain'), in one BEGIN
-- IMMEDIATE transaction when a store that holds no event yet is opened with
-- integrity=chain.  From then on the chain is a property of the file: every
-- engine that opens it (with or without the option) appends an entry per event
-- in the append transaction, and one per delete_stream / truncate_stream that removes records.
-- Insert-only: entries are never updated or deleted.  Byte layout of digest and
-- hash: eventuali/integrity/chain.py.
CREATE TABLE IF NOT EXISTS eventuali_chain (
    seq       INTEGER PRIMARY KEY,   -- 1, 2, ... in commit order
    kind      INTEGER NOT NULL,      -- 1 event, 2 delete_stream, 3 truncate_stream
    position  INTEGER NOT NULL,      -- the event's position; the head, for retention
    stream_id TEXT NOT NULL,
    version   INTEGER NOT NULL,      -- the event's version; before_version for truncate
    digest    BLOB NOT NULL,         -- 32 bytes; zeros for retention entries
    hash      BLOB NOT NULL          -- 32 bytes
);
