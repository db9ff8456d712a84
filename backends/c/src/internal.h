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
} ev_engine_ops;

int ev_sqlite_open(const char *path, int flags, int busy_timeout_ms, ev_str created_by, void **impl,
                   const ev_engine_ops **ops);
int ev_memory_open(void **impl, const ev_engine_ops **ops);

eventuali_snapshot *ev_snapshot_new(int64_t version, int64_t schema_version, int64_t timestamp,
                                    const void *payload, int64_t payload_len);

#endif
