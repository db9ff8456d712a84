/*
 * internal.h - what the parts of the native engine share behind eventuali.h:
 * validated views of request buffers, the read-result builder, the thread's
 * last error, and the engine interface that the memory and SQLite engines
 * implement.
 */
#ifndef EVENTUALI_INTERNAL_H
#define EVENTUALI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "eventuali.h"

#define EV_MAX_NAME_CHARS 255 /* eventuali.records.MAX_STREAM_ID_LENGTH / MAX_NAME_LENGTH */

/* A validated UTF-8 (or byte) string inside a caller's buffer. */
typedef struct ev_str {
    const uint8_t *p;
    int64_t n;     /* bytes */
    int64_t chars; /* code points (text only) */
} ev_str;

typedef struct ev_write {
    ev_str stream_id, stream_type, tenant;
    int64_t expected;
    int64_t first_record, n_records;
} ev_write;

typedef struct ev_rec {
    const uint8_t *event_id; /* 16 bytes */
    ev_str event_type;
    int64_t schema_version, timestamp;
    ev_str metadata, payload;
} ev_rec;

typedef struct ev_append {
    int64_t n_writes;
    ev_write *writes;
    int64_t n_records;
    ev_rec *records;
    int has_checkpoint;
    ev_str checkpoint_name;
    int64_t checkpoint_position;
} ev_append;

typedef struct ev_filter {
    int64_t n_event_types; /* -1: any */
    ev_str *event_types;
    int64_t n_stream_types; /* -1: any */
    ev_str *stream_types;
    int has_prefix;
    ev_str prefix;
    int has_tenant;
    ev_str tenant;
} ev_filter;

/* ---- last error (thread-local) ---- */
int ev_fail(int32_t status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ev_fail_concurrency(ev_str stream_id, int64_t expected, int64_t actual);
int ev_fail_duplicate(const uint8_t *event_id);
int ev_fail_deleted(ev_str stream_id);
int ev_oom(void);
void ev_clear_error(void);
/* printf-able, quoted, truncated rendering of a caller's string for messages */
const char *ev_quote(ev_str s, char *buf, size_t size);

/* ---- request parsing (every buffer from the caller goes through here) ---- */
int ev_utf8_chars(const uint8_t *p, int64_t n, int64_t *chars);
int ev_text_arg(const uint8_t *p, int64_t n, const char *what, int allow_empty, ev_str *out);
int ev_parse_append(const eventuali_append_request *req, ev_append *out);
void ev_append_release(ev_append *a);
/* DUPLICATE_EVENT when an event id appears twice in the request */
int ev_check_batch_duplicates(const ev_append *a);
int ev_parse_filter(const eventuali_filter *f, ev_filter *out);
void ev_filter_release(ev_filter *f);
int ev_filter_matches(const ev_filter *f, ev_str stream_id, ev_str stream_type, ev_str event_type,
                      ev_str tenant);

/* ---- read-result builder ---- */
typedef struct ev_rb ev_rb;
ev_rb *ev_rb_new(void);
int ev_rb_add(ev_rb *rb, int64_t position, const uint8_t *event_id, ev_str stream_id,
              ev_str stream_type, int64_t version, ev_str event_type, int64_t schema_version,
              int64_t timestamp, ev_str tenant, ev_str metadata, ev_str payload);
int64_t ev_rb_count(const ev_rb *rb);
/* The caller's strings stay valid and unchanged at the same address for the
 * whole read (interned strings): lets the builder skip hashing repeats. */
void ev_rb_set_stable(ev_rb *rb);
eventuali_records *ev_rb_finish(ev_rb *rb); /* consumes rb */
void ev_rb_free(ev_rb *rb);

/* ---- hash chain (chain.c): bytes of eventuali/integrity/chain.py ---- */
#define EV_HASH_LEN 32
enum { EV_KIND_EVENT = 1, EV_KIND_DELETE = 2, EV_KIND_TRUNCATE = 3 };
enum {
    EV_CHECK_BROKEN_LINK = EVENTUALI_CHAIN_BROKEN_LINK,
    EV_CHECK_MISSING_ENTRIES = EVENTUALI_CHAIN_MISSING_ENTRIES,
    EV_CHECK_ALTERED = EVENTUALI_CHAIN_ALTERED,
    EV_CHECK_MISSING = EVENTUALI_CHAIN_MISSING,
    EV_CHECK_UNCHAINED = EVENTUALI_CHAIN_UNCHAINED,
    EV_CHECK_OUT_OF_ORDER = EVENTUALI_CHAIN_OUT_OF_ORDER,
    EV_CHECK_UNKNOWN_KIND = EVENTUALI_CHAIN_UNKNOWN_KIND
};

typedef struct ev_chain_entry {
    int64_t seq, kind, position, version;
    ev_str stream_id;
    uint8_t digest[EV_HASH_LEN], hash[EV_HASH_LEN];
} ev_chain_entry;

typedef struct ev_hasher ev_hasher; /* a reusable SHA-256 context */
ev_hasher *ev_hasher_new(void);
void ev_hasher_free(ev_hasher *h);
int ev_event_digest(ev_hasher *h, const uint8_t *event_id, ev_str stream_type, ev_str event_type,
                    int64_t schema_version, int64_t timestamp, ev_str tenant, ev_str metadata,
                    ev_str payload, uint8_t out[EV_HASH_LEN]);
int ev_chain_link(ev_hasher *h, const uint8_t prev[EV_HASH_LEN], int64_t kind, int64_t position,
                  int64_t version, ev_str stream_id, const uint8_t digest[EV_HASH_LEN],
                  uint8_t out[EV_HASH_LEN]);

/* read_chain result builder */
typedef struct ev_cb ev_cb;
ev_cb *ev_cb_new(void);
int ev_cb_add(ev_cb *cb, const ev_chain_entry *e);
eventuali_chain *ev_cb_finish(ev_cb *cb); /* consumes cb; NULL (error set) on out of memory */
void ev_cb_free(ev_cb *cb);

/* The verifier pulls entries (seq order) and records (position order) from
 * an engine; a pulled item stays valid until the next pull of its kind. */
typedef struct ev_vrec {
    int64_t position, version, schema_version, timestamp;
    const uint8_t *event_id;
    ev_str stream_id, stream_type, event_type, tenant, metadata, payload;
} ev_vrec;
typedef struct ev_verify_src {
    void *ctx;
    int (*next_entry)(void *ctx, ev_chain_entry *out, int *has);
    int (*next_record)(void *ctx, ev_vrec *out, int *has);
} ev_verify_src;
int ev_verify_chain(const ev_verify_src *src, eventuali_chain_problems **out);

/* ---- engines ---- */
typedef struct ev_engine_ops {
    int (*append)(void *impl, const ev_append *a, int64_t *positions_out);
    int (*read_stream)(void *impl, ev_str stream_id, int64_t from, int64_t to, int64_t limit,
                       ev_rb *rb);
    int (*read_all)(void *impl, int64_t from, int64_t limit, const ev_filter *f, ev_rb *rb);
    int (*stream_version)(void *impl, ev_str stream_id, int64_t *out);
    int (*head)(void *impl, int64_t *out);
    int (*save_snapshot)(void *impl, ev_str stream_id, int64_t version, int64_t schema_version,
                         int64_t timestamp, ev_str payload);
    int (*load_snapshot)(void *impl, ev_str stream_id, int64_t max_version,
                         eventuali_snapshot **out);
    int (*prune_snapshots)(void *impl, ev_str stream_id, int64_t keep, int64_t *removed);
    int (*get_checkpoint)(void *impl, ev_str name, int64_t *position, int32_t *found);
    int (*set_checkpoint)(void *impl, ev_str name, int64_t position);
    int (*delete_stream)(void *impl, ev_str stream_id, int64_t *removed);
    int (*truncate_stream)(void *impl, ev_str stream_id, int64_t before, int64_t *removed);
    void (*destroy)(void *impl);
    /* hash chain: 1 when the store keeps one; start one (CONFIGURATION if it holds events) */
    int (*chained)(void *impl);
    int (*start_chain)(void *impl); /* memory engine; a SQLite file's chain starts at open */
    /* newest_only: just the last entry */
    int (*read_chain)(void *impl, int64_t from_seq, int64_t limit, int newest_only, ev_cb *cb);
    int (*verify_chain)(void *impl, eventuali_chain_problems **out);
} ev_engine_ops;

/* engine_sqlite_chain.c: the hash chain of a SQLite file (NULL: the file keeps none) */
typedef struct sqlite3 sqlite3;
typedef struct ev_sqchain ev_sqchain;
int ev_sqlite_fail(sqlite3 *db, int rc, const char *doing); /* a SQLite failure as a status */
int ev_sqchain_open(sqlite3 *db, const char *path, int flags, ev_sqchain **out);
void ev_sqchain_free(ev_sqchain *c);
/* inside the caller's write transaction */
int ev_sqchain_append(ev_sqchain *c, const ev_append *a, const int64_t *base, const int64_t *positions);
int ev_sqchain_retention(ev_sqchain *c, int64_t kind, ev_str stream_id, int64_t version);
/* the stream's newest stored version below `before` (0: none) */
int ev_sqchain_newest_below(ev_sqchain *c, ev_str stream_id, int64_t before, int64_t *out);
int ev_sqchain_read(ev_sqchain *c, int64_t from_seq, int64_t limit, int newest_only, ev_cb *cb);
int ev_sqchain_verify(ev_sqchain *c, eventuali_chain_problems **out);

int ev_sqlite_open(const char *path, int flags, int busy_timeout_ms, ev_str created_by, void **impl,
                   const ev_engine_ops **ops);
int ev_memory_open(void **impl, const ev_engine_ops **ops);

/* store.c, for ABI functions in other files: the engine behind a handle,
 * locked (NULL with the error set), and its release */
typedef struct engine ev_engine;
ev_engine *ev_store_enter(eventuali_store *h, const ev_engine_ops **ops, void **impl, uint32_t *caps);
void ev_store_leave(eventuali_store *h, ev_engine *g);

eventuali_snapshot *ev_snapshot_new(int64_t version, int64_t schema_version, int64_t timestamp,
                                    const void *payload, int64_t payload_len);

#endif
