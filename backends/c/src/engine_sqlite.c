/*
 * engine_sqlite.c - the sqlite:// engine: the shared file format of
 * eventuali/schema/sqlite.sql (embedded at build time), the open rules from
 * that file's header, prepared statements kept for the life of the store.
 *
 * Every write transaction starts with BEGIN IMMEDIATE: one writer per file,
 * so positions are assigned in commit order (no reader can page past a
 * position that commits later) and the concurrency check sees the state the
 * insert writes to.  The caller (store.c) serializes calls on one store.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_sql.h" /* generated: static const char ev_schema_sql[] */

#define EV_SCHEMA_VERSION 1

enum {
    S_STREAM_GET,
    S_STREAM_INSERT,
    S_STREAM_SET_VERSION,
    S_EVENT_INSERT,
    S_CHECKPOINT_SET,
    S_CHECKPOINT_GET,
    S_READ_STREAM,
    S_HEAD,
    S_SNAP_SAVE,
    S_SNAP_LOAD,
    S_SNAP_PRUNE,
    S_DELETE_EVENTS,
    S_DELETE_SNAPS,
    S_TOMBSTONE,
    S_TRUNCATE,
    S_ID_EXISTS,
    S_COUNT
};

/* Rows per multi-row INSERT: one statement run opens the table and index
 * cursors once for all of them (10 parameters a row, far below SQLite's limit). */
#define EV_MULTI_ROWS 32

static const char *const SQL[S_COUNT] = {
    [S_STREAM_GET] = "SELECT version, deleted FROM eventuali_streams WHERE stream_id = ?1",
    [S_STREAM_INSERT] = "INSERT INTO eventuali_streams (stream_id, stream_type, tenant, version, deleted) "
                        "VALUES (?1, ?2, ?3, ?4, 0)",
    [S_STREAM_SET_VERSION] = "UPDATE eventuali_streams SET version = ?2 WHERE stream_id = ?1",
    [S_EVENT_INSERT] = "INSERT INTO eventuali_events (event_id, stream_id, stream_type, version, "
                       "event_type, schema_version, timestamp, tenant, metadata, payload) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_CHECKPOINT_SET] = "INSERT INTO eventuali_checkpoints (name, position) VALUES (?1, ?2) "
                         "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    [S_CHECKPOINT_GET] = "SELECT position FROM eventuali_checkpoints WHERE name = ?1",
    [S_READ_STREAM] = "SELECT position, event_id, stream_id, stream_type, version, event_type, "
                      "schema_version, timestamp, tenant, metadata, payload FROM eventuali_events "
                      "WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 "
                      "ORDER BY version LIMIT ?4",
    /* the AUTOINCREMENT counter: the highest position ever assigned */
    [S_HEAD] = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'eventuali_events'), 0)",
    [S_SNAP_SAVE] = "INSERT OR REPLACE INTO eventuali_snapshots "
                    "(stream_id, version, schema_version, timestamp, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_SNAP_LOAD] = "SELECT version, schema_version, timestamp, payload FROM eventuali_snapshots "
                    "WHERE stream_id = ?1 AND version <= ?2 ORDER BY version DESC LIMIT 1",
    [S_SNAP_PRUNE] = "DELETE FROM eventuali_snapshots WHERE stream_id = ?1 AND version NOT IN "
                     "(SELECT version FROM eventuali_snapshots WHERE stream_id = ?1 "
                     "ORDER BY version DESC LIMIT ?2)",
    [S_DELETE_EVENTS] = "DELETE FROM eventuali_events WHERE stream_id = ?1",
    [S_DELETE_SNAPS] = "DELETE FROM eventuali_snapshots WHERE stream_id = ?1",
    [S_TOMBSTONE] = "INSERT INTO eventuali_streams (stream_id, stream_type, tenant, version, deleted) "
                    "VALUES (?1, '', '', 0, 1) ON CONFLICT (stream_id) DO UPDATE SET deleted = 1",
    [S_TRUNCATE] = "DELETE FROM eventuali_events WHERE stream_id = ?1 AND version < ?2",
    [S_ID_EXISTS] = "SELECT 1 FROM eventuali_events WHERE event_id = ?1",
};

typedef struct sq {
    ev_sqchain *chain; /* NULL: the file keeps no hash chain */
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    sqlite3_stmt *multi; /* INSERT of EV_MULTI_ROWS rows */
} sq;

/* Map a SQLite failure to a status, with the SQLite message and what we were doing. */
static int sq_fail(sq *e, int rc, const char *doing) { return ev_sqlite_fail(e ? e->db : NULL, rc, doing); }

int ev_sqlite_fail(sqlite3 *db, int rc, const char *doing) {
    int prim = rc & 0xff;
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return ev_fail(EVENTUALI_ERR_TRANSIENT,
                       "SQLite %s while %s (another process holds the write lock); retry the operation",
                       msg, doing);
    if (prim == SQLITE_NOMEM) return ev_oom();
    return ev_fail(EVENTUALI_ERR_STORAGE, "SQLite error while %s: %s (code %d)", doing, msg, rc);
}

static int exec(sq *e, const char *sql, const char *doing) {
    int rc = sqlite3_exec(e->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? EVENTUALI_OK : sq_fail(e, rc, doing);
}

static sqlite3_stmt *stmt(sq *e, int which) {
    sqlite3_stmt *s = e->st[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static void bind_text(sqlite3_stmt *s, int i, ev_str v) {
    sqlite3_bind_text(s, i, v.n ? (const char *)v.p : "", (int)v.n, SQLITE_STATIC);
}

static ev_str col_text(sqlite3_stmt *s, int i) {
    ev_str v;
    v.p = sqlite3_column_text(s, i);
    v.n = sqlite3_column_bytes(s, i);
    v.chars = 0;
    if (!v.p) v.p = (const uint8_t *)"";
    return v;
}

static ev_str col_blob(sqlite3_stmt *s, int i) {
    ev_str v;
    v.p = sqlite3_column_blob(s, i);
    v.n = sqlite3_column_bytes(s, i);
    v.chars = 0;
    if (!v.p) v.p = (const uint8_t *)"";
    return v;
}

static void rollback(sq *e) {
    if (!sqlite3_get_autocommit(e->db)) sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
}

static void sq_destroy(void *impl) {
    sq *e = impl;
    if (!e) return;
    ev_sqchain_free(e->chain);
    for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(e->st[i]);
    sqlite3_finalize(e->multi);
    sqlite3_close_v2(e->db);
    free(e);
}

/* ---- open ---------------------------------------------------------------- */

static int count_tables(sq *e, int *tables, int *has_meta) {
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(e->db,
                                "SELECT COUNT(*), COALESCE(SUM(name = 'eventuali_meta'), 0) FROM "
                                "sqlite_master WHERE type = 'table'",
                                -1, &s, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *tables = sqlite3_column_int(s, 0);
        *has_meta = sqlite3_column_int(s, 1);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

static int open_fail(sq *e, int rc, const char *path) {
    int prim = rc & 0xff;
    if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT)
        return ev_fail(EVENTUALI_ERR_NOT_A_STORE,
                       "%s is not an eventuali store (SQLite: %s); give the path of an eventuali "
                       "database or of a new file",
                       path, sqlite3_errstr(rc));
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) return sq_fail(e, rc, "opening the store");
    if (prim == SQLITE_NOMEM) return ev_oom();
    return ev_fail(EVENTUALI_ERR_STORAGE, "cannot open SQLite store %s: %s (code %d)", path,
                   e->db ? sqlite3_errmsg(e->db) : sqlite3_errstr(rc), rc);
}

static int create_schema(sq *e, ev_str created_by, const char *path) {
    int tables = 0, has_meta = 0, rc;
    if ((rc = sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
        return open_fail(e, rc, path);
    /* check again inside the write lock: another process may have created it */
    if ((rc = count_tables(e, &tables, &has_meta)) != SQLITE_OK) goto fail;
    if (tables == 0) {
        if ((rc = sqlite3_exec(e->db, ev_schema_sql, NULL, NULL, NULL)) != SQLITE_OK) goto fail;
        sqlite3_stmt *s;
        if ((rc = sqlite3_prepare_v2(e->db, "INSERT INTO eventuali_meta (key, value) VALUES "
                                            "('schema_version', ?1), ('created_by', ?2)",
                                     -1, &s, NULL)) != SQLITE_OK)
            goto fail;
        char ver[16];
        snprintf(ver, sizeof ver, "%d", EV_SCHEMA_VERSION);
        sqlite3_bind_text(s, 1, ver, -1, SQLITE_TRANSIENT);
        bind_text(s, 2, created_by);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) goto fail;
    }
    if ((rc = sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) goto fail;
    return EVENTUALI_OK;
fail:
    rollback(e);
    return open_fail(e, rc, path);
}

static int check_schema_version(sq *e, const char *path) {
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(e->db, "SELECT value FROM eventuali_meta WHERE key = 'schema_version'",
                                -1, &s, NULL);
    if (rc != SQLITE_OK) return open_fail(e, rc, path);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(s);
        if (rc == SQLITE_DONE)
            return ev_fail(EVENTUALI_ERR_NOT_A_STORE,
                           "%s has an eventuali_meta table without a schema_version row; it was not "
                           "written by eventuali",
                           path);
        return open_fail(e, rc, path);
    }
    const char *text = (const char *)sqlite3_column_text(s, 0);
    char *end = NULL;
    long v = text ? strtol(text, &end, 10) : 0;
    int ok = text && end && *end == '\0' && end != text;
    sqlite3_finalize(s);
    if (!ok)
        return ev_fail(EVENTUALI_ERR_NOT_A_STORE, "%s has a malformed eventuali schema_version", path);
    if (v > EV_SCHEMA_VERSION)
        return ev_fail(EVENTUALI_ERR_SCHEMA_VERSION,
                       "%s uses eventuali SQLite schema version %ld, newer than version %d that this "
                       "engine understands; upgrade eventuali-c",
                       path, v, EV_SCHEMA_VERSION);
    /* v < EV_SCHEMA_VERSION: migrations would run here (none yet) */
    return EVENTUALI_OK;
}

extern const ev_engine_ops ev_sqlite_ops;

int ev_sqlite_open(const char *path, int flags, int busy_timeout_ms, ev_str created_by, void **impl,
                   const ev_engine_ops **ops) {
    sq *e = calloc(1, sizeof *e);
    int rc, tables = 0, has_meta = 0;
    if (!e) return ev_oom();
    int read_only = (flags & EVENTUALI_OPEN_READ_ONLY) != 0;
    rc = sqlite3_open_v2(path, &e->db,
                         (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                             SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) goto fail_rc;
    sqlite3_extended_result_codes(e->db, 1);
    sqlite3_busy_timeout(e->db, busy_timeout_ms < 0 ? 5000 : busy_timeout_ms);
    /* journal_mode=WAL fails on a file that is not a database: the first read tells */
    if ((rc = count_tables(e, &tables, &has_meta)) != SQLITE_OK) goto fail_rc;
    if (strcmp(path, ":memory:") != 0 && !read_only) {
        sqlite3_stmt *s;
        if ((rc = sqlite3_prepare_v2(e->db, "PRAGMA journal_mode = WAL", -1, &s, NULL)) != SQLITE_OK) goto fail_rc;
        rc = sqlite3_step(s);
        const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
        int wal = mode && sqlite3_stricmp(mode, "wal") == 0;
        char mode_copy[32] = "";
        if (mode) snprintf(mode_copy, sizeof mode_copy, "%s", mode);
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail_rc;
        if (!wal) {
            rc = ev_fail(EVENTUALI_ERR_STORAGE,
                         "cannot switch SQLite file %s to WAL mode (journal_mode stays '%s'); it "
                         "needs a local file system that supports shared memory",
                         path, mode_copy);
            goto fail_status;
        }
    }
    rc = sqlite3_exec(e->db,
                      (flags & EVENTUALI_OPEN_SYNCHRONOUS_FULL) ? "PRAGMA synchronous = FULL"
                      : (flags & EVENTUALI_OPEN_SYNCHRONOUS_OFF) ? "PRAGMA synchronous = OFF"
                                                                 : "PRAGMA synchronous = NORMAL",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) goto fail_rc;
    if ((rc = sqlite3_exec(e->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL)) != SQLITE_OK) goto fail_rc;
    /* deleted rows are overwritten with zeros, not left in free pages: deleting
     * a stream (a forgotten subject's data key) must leave no bytes of it */
    if ((rc = sqlite3_exec(e->db, "PRAGMA secure_delete = ON", NULL, NULL, NULL)) != SQLITE_OK) goto fail_rc;
    /* reads through a memory map skip a copy per page; a connection setting,
     * not part of the file format */
    sqlite3_exec(e->db, "PRAGMA mmap_size = 268435456", NULL, NULL, NULL);
    /* a 64 MiB page cache keeps the (stream_id, version) index, which every
     * append touches at scattered places, in memory */
    sqlite3_exec(e->db, "PRAGMA cache_size = -65536", NULL, NULL, NULL);
    if (tables == 0 && read_only) {
        rc = ev_fail(EVENTUALI_ERR_NOT_A_STORE,
                     "SQLite file %s is empty; read-only mode opens existing eventuali stores only", path);
        goto fail_status;
    }
    if (tables == 0) {
        if ((rc = create_schema(e, created_by, path)) != EVENTUALI_OK) goto fail_status;
        if ((rc = count_tables(e, &tables, &has_meta)) != SQLITE_OK) goto fail_rc;
    }
    if (!has_meta) {
        rc = ev_fail(EVENTUALI_ERR_NOT_A_STORE,
                     "%s is a SQLite database but not an eventuali store (no eventuali_meta table); "
                     "give the path of an eventuali database or of a new file",
                     path);
        goto fail_status;
    }
    if ((rc = check_schema_version(e, path)) != EVENTUALI_OK) goto fail_status;
    if ((rc = ev_sqchain_open(e->db, path, flags, &e->chain)) != EVENTUALI_OK) goto fail_status;
    for (int i = 0; i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(e->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &e->st[i], NULL);
        if (rc != SQLITE_OK) {
            rc = ev_fail(EVENTUALI_ERR_NOT_A_STORE,
                         "%s does not have the eventuali tables this engine expects (%s); it was not "
                         "written by a compatible eventuali",
                         path, sqlite3_errmsg(e->db));
            goto fail_status;
        }
    }
    {
        static const char head[] = "INSERT INTO eventuali_events (event_id, stream_id, stream_type, version, "
                                   "event_type, schema_version, timestamp, tenant, metadata, payload) VALUES ";
        static const char row[] = "(?,?,?,?,?,?,?,?,?,?),";
        char sql[sizeof head + EV_MULTI_ROWS * sizeof row];
        size_t o = 0;
        memcpy(sql, head, sizeof head - 1);
        o = sizeof head - 1;
        for (int i = 0; i < EV_MULTI_ROWS; i++) {
            memcpy(sql + o, row, sizeof row - 1);
            o += sizeof row - 1;
        }
        sql[o - 1] = '\0'; /* drop the last comma */
        rc = sqlite3_prepare_v3(e->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &e->multi, NULL);
        if (rc != SQLITE_OK) goto fail_rc;
    }
    *impl = e;
    *ops = &ev_sqlite_ops;
    return EVENTUALI_OK;
fail_rc:
    rc = open_fail(e, rc, path);
fail_status:
    sq_destroy(e);
    return rc;
}

/* ---- writes -------------------------------------------------------------- */

static uint64_t str_hash(ev_str v) {
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < v.n; i++) h = (h ^ v.p[i]) * 1099511628211ULL;
    return h;
}

/* Two passes, in the reference engine's order: check every write's stream
 * (deleted, expected version - a stream written twice sees its own earlier
 * write), then insert; a stored event id surfaces in the second pass. */
static int sq_append(void *impl, const ev_append *a, int64_t *positions_out) {
    sq *e = impl;
    int64_t nw = a->n_writes;
    int64_t *base = calloc((size_t)(nw ? nw : 1), sizeof *base);     /* version before write w */
    int8_t *exists = calloc((size_t)(nw ? nw : 1), sizeof *exists);  /* stream row exists at write w */
    uint64_t *hash = calloc((size_t)(nw ? nw : 1), sizeof *hash);
    if (!base || !exists || !hash) {
        free(base);
        free(exists);
        free(hash);
        return ev_oom();
    }
    int status = EVENTUALI_OK;
    int rc = sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        status = sq_fail(e, rc, "starting an append");
        goto out;
    }
    for (int64_t w = 0; w < nw && status == EVENTUALI_OK; w++) {
        const ev_write *wr = &a->writes[w];
        hash[w] = str_hash(wr->stream_id);
        int64_t prev = -1;
        for (int64_t j = w - 1; j >= 0; j--)
            if (hash[j] == hash[w] && a->writes[j].stream_id.n == wr->stream_id.n &&
                memcmp(a->writes[j].stream_id.p, wr->stream_id.p, (size_t)wr->stream_id.n) == 0) {
                prev = j;
                break;
            }
        int64_t current;
        if (prev >= 0) {
            current = base[prev] + a->writes[prev].n_records;
            exists[w] = exists[prev] || a->writes[prev].n_records > 0;
        } else {
            sqlite3_stmt *s = stmt(e, S_STREAM_GET);
            bind_text(s, 1, wr->stream_id);
            current = 0;
            rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                exists[w] = 1;
                current = sqlite3_column_int64(s, 0);
                if (sqlite3_column_int(s, 1)) status = ev_fail_deleted(wr->stream_id);
            } else if (rc != SQLITE_DONE) {
                status = sq_fail(e, rc, "reading a stream's version");
            }
            sqlite3_reset(s);
            if (status) break;
        }
        base[w] = current;
        int64_t exp = wr->expected;
        int ok = exp == EVENTUALI_ANY || (exp == EVENTUALI_NO_STREAM && current == 0) ||
                 (exp == EVENTUALI_STREAM_EXISTS && current > 0) || (exp >= 0 && exp == current);
        if (!ok) status = ev_fail_concurrency(wr->stream_id, exp, current);
    }
    /* insert every record, EV_MULTI_ROWS per statement, then the remainder one by one */
    int64_t w = 0, r = 0, done = 0;
    while (status == EVENTUALI_OK && done < a->n_records) {
        int64_t chunk = a->n_records - done >= EV_MULTI_ROWS ? EV_MULTI_ROWS : 1;
        sqlite3_stmt *s = chunk > 1 ? e->multi : stmt(e, S_EVENT_INSERT);
        if (chunk > 1) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
        }
        for (int64_t k = 0; k < chunk; k++) {
            while (r >= a->writes[w].n_records) { /* next write that has records */
                w++;
                r = 0;
            }
            const ev_write *wr = &a->writes[w];
            const ev_rec *rec = &a->records[wr->first_record + r];
            int p = (int)(10 * k);
            sqlite3_bind_blob(s, p + 1, rec->event_id, 16, SQLITE_STATIC);
            bind_text(s, p + 2, wr->stream_id);
            bind_text(s, p + 3, wr->stream_type);
            sqlite3_bind_int64(s, p + 4, base[w] + r + 1);
            bind_text(s, p + 5, rec->event_type);
            sqlite3_bind_int64(s, p + 6, rec->schema_version);
            sqlite3_bind_int64(s, p + 7, rec->timestamp);
            bind_text(s, p + 8, wr->tenant);
            sqlite3_bind_blob(s, p + 9, rec->metadata.n ? rec->metadata.p : (const uint8_t *)"",
                              (int)rec->metadata.n, SQLITE_STATIC);
            sqlite3_bind_blob(s, p + 10, rec->payload.n ? rec->payload.p : (const uint8_t *)"",
                              (int)rec->payload.n, SQLITE_STATIC);
            r++;
        }
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
            int dup = rc == SQLITE_CONSTRAINT_UNIQUE &&
                      strstr(sqlite3_errmsg(e->db), "eventuali_events.event_id") != NULL;
            if (!dup) status = sq_fail(e, rc, "inserting events");
            sqlite3_reset(s);
            /* which stored id? (ids repeated inside the request were refused earlier) */
            for (int64_t i = done; dup && i < done + chunk; i++) {
                sqlite3_stmt *q = stmt(e, S_ID_EXISTS);
                sqlite3_bind_blob(q, 1, a->records[i].event_id, 16, SQLITE_STATIC);
                int found = sqlite3_step(q) == SQLITE_ROW;
                sqlite3_reset(q);
                if (found) {
                    status = ev_fail_duplicate(a->records[i].event_id);
                    dup = 0;
                }
            }
            if (dup) status = sq_fail(e, rc, "inserting events");
            break;
        }
        /* one writer holds the file and AUTOINCREMENT never reuses a
         * position: the rows of one statement got consecutive positions */
        int64_t last = sqlite3_last_insert_rowid(e->db);
        for (int64_t k = 0; k < chunk; k++) positions_out[done + k] = last - chunk + 1 + k;
        done += chunk;
    }
    for (w = 0; w < nw && status == EVENTUALI_OK; w++) {
        const ev_write *wr = &a->writes[w];
        if (wr->n_records == 0) continue;
        sqlite3_stmt *s = stmt(e, exists[w] ? S_STREAM_SET_VERSION : S_STREAM_INSERT);
        bind_text(s, 1, wr->stream_id);
        if (exists[w]) {
            sqlite3_bind_int64(s, 2, base[w] + wr->n_records);
        } else {
            bind_text(s, 2, wr->stream_type);
            bind_text(s, 3, wr->tenant);
            sqlite3_bind_int64(s, 4, base[w] + wr->n_records);
        }
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) status = sq_fail(e, rc, "updating a stream's version");
    }
    if (status == EVENTUALI_OK && e->chain) status = ev_sqchain_append(e->chain, a, base, positions_out);
    if (status == EVENTUALI_OK && a->has_checkpoint) {
        sqlite3_stmt *s = stmt(e, S_CHECKPOINT_SET);
        bind_text(s, 1, a->checkpoint_name);
        sqlite3_bind_int64(s, 2, a->checkpoint_position);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) status = sq_fail(e, rc, "setting a checkpoint");
    }
    if (status == EVENTUALI_OK) {
        rc = sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) status = sq_fail(e, rc, "committing an append");
    }
    if (status != EVENTUALI_OK) rollback(e);
out:
    free(base);
    free(exists);
    free(hash);
    return status;
}

/* ---- reads --------------------------------------------------------------- */

static int collect(sq *e, sqlite3_stmt *s, ev_rb *rb) {
    int rc, status = EVENTUALI_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ev_str id = col_blob(s, 1);
        status = ev_rb_add(rb, sqlite3_column_int64(s, 0), id.n == 16 ? id.p : NULL, col_text(s, 2),
                           col_text(s, 3), sqlite3_column_int64(s, 4), col_text(s, 5),
                           sqlite3_column_int64(s, 6), sqlite3_column_int64(s, 7), col_text(s, 8),
                           col_blob(s, 9), col_blob(s, 10));
        if (status) break;
    }
    if (!status && rc != SQLITE_DONE) status = sq_fail(e, rc, "reading events");
    sqlite3_reset(s);
    return status;
}

static int sq_read_stream(void *impl, ev_str stream_id, int64_t from, int64_t to, int64_t limit,
                          ev_rb *rb) {
    sq *e = impl;
    sqlite3_stmt *s = stmt(e, S_READ_STREAM);
    bind_text(s, 1, stream_id);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, to < 0 ? INT64_MAX : to);
    sqlite3_bind_int64(s, 4, limit);
    return collect(e, s, rb);
}

static int sq_read_all(void *impl, int64_t from, int64_t limit, const ev_filter *f, ev_rb *rb) {
    sq *e = impl;
    if (f->n_event_types == 0 || f->n_stream_types == 0) return EVENTUALI_OK;
    /* Build the WHERE clause from the filter; values are bound, never spliced. */
    size_t cap = 512 + 4 * (size_t)((f->n_event_types > 0 ? f->n_event_types : 0) +
                                    (f->n_stream_types > 0 ? f->n_stream_types : 0));
    char *sql = malloc(cap);
    if (!sql) return ev_oom();
    size_t o = (size_t)snprintf(sql, cap,
                                "SELECT position, event_id, stream_id, stream_type, version, event_type, "
                                "schema_version, timestamp, tenant, metadata, payload FROM "
                                "eventuali_events WHERE position >= ?");
    if (f->n_event_types > 0) {
        o += (size_t)snprintf(sql + o, cap - o, " AND event_type IN (?");
        for (int64_t i = 1; i < f->n_event_types; i++) o += (size_t)snprintf(sql + o, cap - o, ",?");
        o += (size_t)snprintf(sql + o, cap - o, ")");
    }
    if (f->n_stream_types > 0) {
        o += (size_t)snprintf(sql + o, cap - o, " AND stream_type IN (?");
        for (int64_t i = 1; i < f->n_stream_types; i++) o += (size_t)snprintf(sql + o, cap - o, ",?");
        o += (size_t)snprintf(sql + o, cap - o, ")");
    }
    if (f->has_prefix && f->prefix.n > 0)
        o += (size_t)snprintf(sql + o, cap - o, " AND substr(stream_id, 1, ?) = ?");
    if (f->has_tenant) o += (size_t)snprintf(sql + o, cap - o, " AND tenant = ?");
    snprintf(sql + o, cap - o, " ORDER BY position LIMIT ?");
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(e->db, sql, -1, &s, NULL);
    free(sql);
    if (rc != SQLITE_OK) return sq_fail(e, rc, "preparing read_all");
    int k = 1;
    sqlite3_bind_int64(s, k++, from);
    for (int64_t i = 0; i < f->n_event_types; i++) bind_text(s, k++, f->event_types[i]);
    for (int64_t i = 0; i < f->n_stream_types; i++) bind_text(s, k++, f->stream_types[i]);
    if (f->has_prefix && f->prefix.n > 0) {
        sqlite3_bind_int64(s, k++, f->prefix.chars);
        bind_text(s, k++, f->prefix);
    }
    if (f->has_tenant) bind_text(s, k++, f->tenant);
    sqlite3_bind_int64(s, k++, limit);
    int status = collect(e, s, rb);
    sqlite3_finalize(s);
    return status;
}

static int sq_stream_version(void *impl, ev_str stream_id, int64_t *out) {
    sq *e = impl;
    sqlite3_stmt *s = stmt(e, S_STREAM_GET);
    bind_text(s, 1, stream_id);
    int rc = sqlite3_step(s);
    *out = 0;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(s, 1) ? 0 : sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? EVENTUALI_OK : sq_fail(e, rc, "reading a stream's version");
}

static int sq_head(void *impl, int64_t *out) {
    sq *e = impl;
    sqlite3_stmt *s = stmt(e, S_HEAD);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? EVENTUALI_OK : sq_fail(e, rc, "reading the head position");
}

/* ---- snapshots, checkpoints ---------------------------------------------- */

static int step_done(sq *e, sqlite3_stmt *s, const char *doing) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? EVENTUALI_OK : sq_fail(e, rc, doing);
}

static int sq_save_snapshot(void *impl, ev_str stream_id, int64_t version, int64_t schema_version,
                            int64_t timestamp, ev_str payload) {
    sq *e = impl;
    int rc = sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return sq_fail(e, rc, "starting to save a snapshot");
    sqlite3_stmt *s = stmt(e, S_STREAM_GET);
    bind_text(s, 1, stream_id);
    int status = EVENTUALI_OK;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_int(s, 1)) status = ev_fail_deleted(stream_id);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE) status = sq_fail(e, rc, "reading a stream");
    sqlite3_reset(s);
    if (!status) {
        s = stmt(e, S_SNAP_SAVE);
        bind_text(s, 1, stream_id);
        sqlite3_bind_int64(s, 2, version);
        sqlite3_bind_int64(s, 3, schema_version);
        sqlite3_bind_int64(s, 4, timestamp);
        sqlite3_bind_blob(s, 5, payload.n ? payload.p : (const uint8_t *)"", (int)payload.n, SQLITE_STATIC);
        status = step_done(e, s, "saving a snapshot");
    }
    if (!status) status = exec(e, "COMMIT", "committing a snapshot");
    if (status) rollback(e);
    return status;
}

static int sq_load_snapshot(void *impl, ev_str stream_id, int64_t max_version,
                            eventuali_snapshot **out) {
    sq *e = impl;
    sqlite3_stmt *s = stmt(e, S_SNAP_LOAD);
    bind_text(s, 1, stream_id);
    sqlite3_bind_int64(s, 2, max_version < 0 ? INT64_MAX : max_version);
    int rc = sqlite3_step(s), status = EVENTUALI_OK;
    *out = NULL;
    if (rc == SQLITE_ROW) {
        ev_str p = col_blob(s, 3);
        *out = ev_snapshot_new(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                               sqlite3_column_int64(s, 2), p.p, p.n);
        if (!*out) status = ev_oom();
    } else if (rc != SQLITE_DONE) {
        status = sq_fail(e, rc, "loading a snapshot");
    }
    sqlite3_reset(s);
    return status;
}

static int sq_prune_snapshots(void *impl, ev_str stream_id, int64_t keep, int64_t *removed) {
    sq *e = impl;
    sqlite3_stmt *s = stmt(e, S_SNAP_PRUNE);
    bind_text(s, 1, stream_id);
    sqlite3_bind_int64(s, 2, keep);
    int status = step_done(e, s, "pruning snapshots");
    *removed = status ? 0 : sqlite3_changes64(e->db);
    return status;
}

static int sq_get_checkpoint(void *impl, ev_str name, int64_t *position, int32_t *found) {
    sq *e = impl;
    sqlite3_stmt *s = stmt(e, S_CHECKPOINT_GET);
    bind_text(s, 1, name);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    *position = *found ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? EVENTUALI_OK : sq_fail(e, rc, "reading a checkpoint");
}

static int sq_set_checkpoint(void *impl, ev_str name, int64_t position) {
    sq *e = impl;
    sqlite3_stmt *s = stmt(e, S_CHECKPOINT_SET);
    bind_text(s, 1, name);
    sqlite3_bind_int64(s, 2, position);
    return step_done(e, s, "setting a checkpoint");
}

/* ---- retention ----------------------------------------------------------- */

static int sq_delete_stream(void *impl, ev_str stream_id, int64_t *removed) {
    sq *e = impl;
    int rc = sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return sq_fail(e, rc, "starting a stream deletion");
    sqlite3_stmt *s = stmt(e, S_DELETE_EVENTS);
    bind_text(s, 1, stream_id);
    int status = step_done(e, s, "deleting a stream's events");
    *removed = status ? 0 : sqlite3_changes64(e->db);
    if (!status) {
        s = stmt(e, S_DELETE_SNAPS);
        bind_text(s, 1, stream_id);
        status = step_done(e, s, "deleting a stream's snapshots");
    }
    if (!status) {
        s = stmt(e, S_TOMBSTONE);
        bind_text(s, 1, stream_id);
        status = step_done(e, s, "tombstoning a stream");
    }
    if (!status && e->chain && *removed) status = ev_sqchain_retention(e->chain, EV_KIND_DELETE, stream_id, 0);
    if (!status) status = exec(e, "COMMIT", "committing a stream deletion");
    if (status) {
        rollback(e);
        *removed = 0;
        return status;
    }
    /* The WAL still holds the deleted rows' old page images: copy the zeroed
     * pages back and empty it.  Best effort: a reader that is still open keeps
     * its frames until the next checkpoint (the deletion itself has committed). */
    if (sqlite3_db_readonly(e->db, "main") == 0)
        sqlite3_wal_checkpoint_v2(e->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    return status;
}

static int sq_truncate_stream(void *impl, ev_str stream_id, int64_t before, int64_t *removed) {
    sq *e = impl;
    *removed = 0;
    /* with a chain, the deletion and its entry are one transaction */
    if (e->chain) {
        int rc = sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) return sq_fail(e, rc, "starting a truncation");
    }
    int64_t newest = 0; /* the chain entry names one past the newest removed version */
    int status = e->chain ? ev_sqchain_newest_below(e->chain, stream_id, before, &newest) : EVENTUALI_OK;
    sqlite3_stmt *s = stmt(e, S_TRUNCATE);
    bind_text(s, 1, stream_id);
    sqlite3_bind_int64(s, 2, before);
    if (!status) status = step_done(e, s, "truncating a stream");
    *removed = status ? 0 : sqlite3_changes64(e->db);
    if (e->chain) {
        if (!status && *removed) status = ev_sqchain_retention(e->chain, EV_KIND_TRUNCATE, stream_id, newest + 1);
        if (!status) status = exec(e, "COMMIT", "committing a truncation");
        if (status) {
            rollback(e);
            *removed = 0;
        }
    }
    return status;
}

static int sq_chained(void *impl) { return ((sq *)impl)->chain != NULL; }

static int sq_read_chain(void *impl, int64_t from_seq, int64_t limit, int newest_only, ev_cb *cb) {
    return ev_sqchain_read(((sq *)impl)->chain, from_seq, limit, newest_only, cb);
}

static int sq_verify_chain(void *impl, eventuali_chain_problems **out) {
    return ev_sqchain_verify(((sq *)impl)->chain, out);
}

const ev_engine_ops ev_sqlite_ops = {
    .append = sq_append,
    .read_stream = sq_read_stream,
    .read_all = sq_read_all,
    .stream_version = sq_stream_version,
    .head = sq_head,
    .save_snapshot = sq_save_snapshot,
    .load_snapshot = sq_load_snapshot,
    .prune_snapshots = sq_prune_snapshots,
    .get_checkpoint = sq_get_checkpoint,
    .set_checkpoint = sq_set_checkpoint,
    .delete_stream = sq_delete_stream,
    .truncate_stream = sq_truncate_stream,
    .destroy = sq_destroy,
    .chained = sq_chained,
    .start_chain = NULL, /* a file's chain starts at open (EVENTUALI_OPEN_INTEGRITY_CHAIN) */
    .read_chain = sq_read_chain,
    .verify_chain = sq_verify_chain,
};
