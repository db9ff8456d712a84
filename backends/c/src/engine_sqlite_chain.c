/*
 * engine_sqlite_chain.c - the integrity=chain part of the sqlite:// engine:
 * the eventuali_chain table of eventuali/schema/sqlite_chain.sql (embedded at
 * build time), its entries written inside the engine's own write
 * transactions (so a failed call chains nothing), read_chain, and the check
 * on one read transaction.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "chain_sql.h" /* generated: static const char ev_chain_sql[] */

enum { C_LAST, C_INSERT, C_READ, C_HEAD, C_NEWEST_BELOW, C_COUNT };

static const char *const CSQL[C_COUNT] = {
    [C_LAST] = "SELECT seq, kind, position, stream_id, version, digest, hash FROM eventuali_chain "
               "ORDER BY seq DESC LIMIT 1",
    [C_INSERT] = "INSERT INTO eventuali_chain (seq, kind, position, stream_id, version, digest, hash) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [C_READ] = "SELECT seq, kind, position, stream_id, version, digest, hash FROM eventuali_chain "
               "WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
    [C_HEAD] = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'eventuali_events'), 0)",
    [C_NEWEST_BELOW] = "SELECT COALESCE(max(version), 0) FROM eventuali_events WHERE stream_id = ?1 AND version < ?2",
};

struct ev_sqchain {
    sqlite3 *db;
    sqlite3_stmt *st[C_COUNT];
    ev_hasher *hasher;
};

void ev_sqchain_free(ev_sqchain *c) {
    if (!c) return;
    for (int i = 0; i < C_COUNT; i++) sqlite3_finalize(c->st[i]);
    ev_hasher_free(c->hasher);
    free(c);
}

/* The 'integrity' meta value: 1 found (copied to value), 0 none, <0 SQLite error (negated). */
static int meta_integrity(sqlite3 *db, char *value, size_t size) {
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "SELECT value FROM eventuali_meta WHERE key = 'integrity'", -1, &s, NULL);
    if (rc != SQLITE_OK) return -rc;
    rc = sqlite3_step(s);
    int found = rc == SQLITE_ROW;
    if (found) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        snprintf(value, size, "%s", t ? t : "");
    }
    sqlite3_finalize(s);
    return found ? 1 : (rc == SQLITE_DONE ? 0 : -rc);
}

static int start_chain(sqlite3 *db, const char *path) {
    char value[64];
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return ev_sqlite_fail(db, rc, "starting a hash chain");
    int found = meta_integrity(db, value, sizeof value), status = EVENTUALI_OK;
    if (found < 0) status = ev_sqlite_fail(db, -found, "starting a hash chain");
    if (found == 0) {
        sqlite3_stmt *s;
        int64_t head = 0;
        if ((rc = sqlite3_prepare_v2(db, CSQL[C_HEAD], -1, &s, NULL)) == SQLITE_OK) {
            if ((rc = sqlite3_step(s)) == SQLITE_ROW) head = sqlite3_column_int64(s, 0);
            sqlite3_finalize(s);
        }
        if (rc != SQLITE_ROW) status = ev_sqlite_fail(db, rc, "starting a hash chain");
        else if (head > 0)
            status = ev_fail(EVENTUALI_ERR_CONFIGURATION,
                             "SQLite file '%s' already holds events without a hash chain, so "
                             "integrity=chain cannot cover them; copy the events into a new store "
                             "opened with integrity=chain",
                             path);
        else if ((rc = sqlite3_exec(db, ev_chain_sql, NULL, NULL, NULL)) != SQLITE_OK ||
                 (rc = sqlite3_exec(db, "INSERT INTO eventuali_meta (key, value) VALUES ('integrity', 'chain')",
                                    NULL, NULL, NULL)) != SQLITE_OK)
            status = ev_sqlite_fail(db, rc, "creating the hash chain table");
    }
    if (!status && (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        status = ev_sqlite_fail(db, rc, "starting a hash chain");
    if (status && !sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return status;
}

int ev_sqchain_open(sqlite3 *db, const char *path, int flags, ev_sqchain **out) {
    char value[64] = "";
    *out = NULL;
    int found = meta_integrity(db, value, sizeof value), rc;
    if (found < 0) return ev_sqlite_fail(db, -found, "reading the store's integrity mode");
    if (!found && (flags & EVENTUALI_OPEN_INTEGRITY_CHAIN)) {
        if (flags & EVENTUALI_OPEN_READ_ONLY)
            return ev_fail(EVENTUALI_ERR_STORAGE,
                           "SQLite file '%s' keeps no hash chain and mode=ro cannot start one; open it "
                           "without integrity=chain",
                           path);
        if ((rc = start_chain(db, path))) return rc;
        found = 1;
        strcpy(value, "chain");
    }
    if (!found) return EVENTUALI_OK;
    if (strcmp(value, "chain") != 0)
        return ev_fail(EVENTUALI_ERR_SCHEMA_VERSION,
                       "SQLite file '%s' keeps integrity mode '%s', which this engine does not know; "
                       "upgrade eventuali-c to open it",
                       path, value);
    ev_sqchain *c = calloc(1, sizeof *c);
    if (!c || !(c->hasher = ev_hasher_new())) {
        ev_sqchain_free(c);
        return ev_oom();
    }
    c->db = db;
    for (int i = 0; i < C_COUNT; i++)
        if ((rc = sqlite3_prepare_v3(db, CSQL[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL)) != SQLITE_OK) {
            int status = ev_fail(EVENTUALI_ERR_NOT_A_STORE,
                                 "SQLite file '%s' says it keeps a hash chain but its eventuali_chain "
                                 "table is not usable (%s)",
                                 path, sqlite3_errmsg(db));
            ev_sqchain_free(c);
            return status;
        }
    *out = c;
    return EVENTUALI_OK;
}

static sqlite3_stmt *use(ev_sqchain *c, int which) {
    sqlite3_reset(c->st[which]);
    sqlite3_clear_bindings(c->st[which]);
    return c->st[which];
}

/* Copy a BLOB column into a fixed-size field, zero-padded (a tampered row may have any length). */
static void col_fixed(sqlite3_stmt *s, int i, uint8_t *dst, int size) {
    const void *p = sqlite3_column_blob(s, i);
    int n = sqlite3_column_bytes(s, i);
    memset(dst, 0, (size_t)size);
    if (p && n > 0) memcpy(dst, p, (size_t)(n < size ? n : size));
}

/* text (or, with blob, bytes) of a column: the pointer first, then its length, as SQLite requires */
static ev_str col_str(sqlite3_stmt *s, int i, int blob) {
    ev_str v;
    v.p = blob ? sqlite3_column_blob(s, i) : sqlite3_column_text(s, i);
    v.n = sqlite3_column_bytes(s, i);
    v.chars = 0;
    if (!v.p) v.p = (const uint8_t *)"";
    return v;
}

static void row_entry(sqlite3_stmt *s, ev_chain_entry *e) {
    e->seq = sqlite3_column_int64(s, 0);
    e->kind = sqlite3_column_int64(s, 1);
    e->position = sqlite3_column_int64(s, 2);
    e->stream_id = col_str(s, 3, 0);
    e->version = sqlite3_column_int64(s, 4);
    col_fixed(s, 5, e->digest, EV_HASH_LEN);
    col_fixed(s, 6, e->hash, EV_HASH_LEN);
}

/* The chain's newest (seq, hash); seq 0 and zeros for an empty chain. */
static int last_entry(ev_sqchain *c, int64_t *seq, uint8_t hash[EV_HASH_LEN]) {
    sqlite3_stmt *s = use(c, C_LAST);
    int rc = sqlite3_step(s);
    *seq = 0;
    memset(hash, 0, EV_HASH_LEN);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        col_fixed(s, 6, hash, EV_HASH_LEN);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? EVENTUALI_OK : ev_sqlite_fail(c->db, rc, "reading the chain");
}

static int insert(ev_sqchain *c, int64_t seq, int64_t kind, int64_t position, ev_str stream_id,
                  int64_t version, const uint8_t *digest, const uint8_t *hash) {
    sqlite3_stmt *s = use(c, C_INSERT);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, kind);
    sqlite3_bind_int64(s, 3, position);
    sqlite3_bind_text(s, 4, stream_id.n ? (const char *)stream_id.p : "", (int)stream_id.n, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, version);
    sqlite3_bind_blob(s, 6, digest, EV_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, hash, EV_HASH_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? EVENTUALI_OK : ev_sqlite_fail(c->db, rc, "writing a chain entry");
}

int ev_sqchain_append(ev_sqchain *c, const ev_append *a, const int64_t *base, const int64_t *positions) {
    uint8_t prev[EV_HASH_LEN], digest[EV_HASH_LEN], hash[EV_HASH_LEN];
    int64_t seq;
    int rc = last_entry(c, &seq, prev);
    for (int64_t w = 0; !rc && w < a->n_writes; w++) {
        const ev_write *wr = &a->writes[w];
        for (int64_t r = 0; !rc && r < wr->n_records; r++) {
            const ev_rec *in = &a->records[wr->first_record + r];
            int64_t position = positions[wr->first_record + r], version = base[w] + r + 1;
            rc = ev_event_digest(c->hasher, in->event_id, wr->stream_type, in->event_type, in->schema_version,
                                 in->timestamp, wr->tenant, in->metadata, in->payload, digest);
            if (!rc) rc = ev_chain_link(c->hasher, prev, EV_KIND_EVENT, position, version, wr->stream_id, digest, hash);
            if (!rc) rc = insert(c, ++seq, EV_KIND_EVENT, position, wr->stream_id, version, digest, hash);
            memcpy(prev, hash, EV_HASH_LEN);
        }
    }
    return rc;
}

int ev_sqchain_retention(ev_sqchain *c, int64_t kind, ev_str stream_id, int64_t version) {
    static const uint8_t none[EV_HASH_LEN];
    uint8_t prev[EV_HASH_LEN], hash[EV_HASH_LEN];
    int64_t seq, head = 0;
    int rc = last_entry(c, &seq, prev);
    if (rc) return rc;
    sqlite3_stmt *s = use(c, C_HEAD);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) head = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (step != SQLITE_ROW) return ev_sqlite_fail(c->db, step, "reading the head");
    if ((rc = ev_chain_link(c->hasher, prev, kind, head, version, stream_id, none, hash))) return rc;
    return insert(c, seq + 1, kind, head, stream_id, version, none, hash);
}

int ev_sqchain_newest_below(ev_sqchain *c, ev_str stream_id, int64_t before, int64_t *out) {
    sqlite3_stmt *s = use(c, C_NEWEST_BELOW);
    sqlite3_bind_text(s, 1, stream_id.n ? (const char *)stream_id.p : "", (int)stream_id.n, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, before);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? EVENTUALI_OK : ev_sqlite_fail(c->db, rc, "reading a stream's versions");
}

int ev_sqchain_read(ev_sqchain *c, int64_t from_seq, int64_t limit, int newest_only, ev_cb *cb) {
    sqlite3_stmt *s = use(c, newest_only ? C_LAST : C_READ);
    if (!newest_only) {
        sqlite3_bind_int64(s, 1, from_seq);
        sqlite3_bind_int64(s, 2, limit);
    }
    ev_chain_entry e;
    int rc = SQLITE_DONE, status = EVENTUALI_OK;
    while (!status && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        row_entry(s, &e);
        status = ev_cb_add(cb, &e);
    }
    if (!status && rc != SQLITE_DONE) status = ev_sqlite_fail(c->db, rc, "reading the chain");
    sqlite3_reset(s);
    return status;
}

typedef struct scursor {
    sqlite3 *db;
    sqlite3_stmt *entries, *records;
    uint8_t event_id[16];
} scursor;

static int next_entry(void *ctx, ev_chain_entry *out, int *has) {
    scursor *c = ctx;
    int rc = sqlite3_step(c->entries);
    *has = rc == SQLITE_ROW;
    if (*has) row_entry(c->entries, out);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? EVENTUALI_OK : ev_sqlite_fail(c->db, rc, "reading the chain");
}

static int next_record(void *ctx, ev_vrec *out, int *has) {
    scursor *c = ctx;
    sqlite3_stmt *s = c->records;
    int rc = sqlite3_step(s);
    *has = rc == SQLITE_ROW;
    if (rc == SQLITE_DONE) return EVENTUALI_OK;
    if (rc != SQLITE_ROW) return ev_sqlite_fail(c->db, rc, "reading the events");
    col_fixed(s, 1, c->event_id, 16);
    out->position = sqlite3_column_int64(s, 0);
    out->version = sqlite3_column_int64(s, 4);
    out->schema_version = sqlite3_column_int64(s, 6);
    out->timestamp = sqlite3_column_int64(s, 7);
    out->event_id = c->event_id;
    out->stream_id = col_str(s, 2, 0);
    out->stream_type = col_str(s, 3, 0);
    out->event_type = col_str(s, 5, 0);
    out->tenant = col_str(s, 8, 0);
    out->metadata = col_str(s, 9, 1);
    out->payload = col_str(s, 10, 1);
    return EVENTUALI_OK;
}

int ev_sqchain_verify(ev_sqchain *c, eventuali_chain_problems **out) {
    scursor cur = {c->db, NULL, NULL, {0}};
    int rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL), status = EVENTUALI_OK;
    if (rc != SQLITE_OK) return ev_sqlite_fail(c->db, rc, "starting the chain check");
    if ((rc = sqlite3_prepare_v2(c->db,
                                 "SELECT seq, kind, position, stream_id, version, digest, hash "
                                 "FROM eventuali_chain ORDER BY seq",
                                 -1, &cur.entries, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(c->db,
                                 "SELECT position, event_id, stream_id, stream_type, version, event_type, "
                                 "schema_version, timestamp, tenant, metadata, payload "
                                 "FROM eventuali_events ORDER BY position",
                                 -1, &cur.records, NULL)) != SQLITE_OK)
        status = ev_sqlite_fail(c->db, rc, "preparing the chain check");
    if (!status) {
        ev_verify_src src = {&cur, next_entry, next_record};
        status = ev_verify_chain(&src, out);
    }
    sqlite3_finalize(cur.entries);
    sqlite3_finalize(cur.records);
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL); /* a read transaction: nothing to lose */
    return status;
}
