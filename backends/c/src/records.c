/*
 * records.c - build a read result (eventuali_records) as columns.
 *
 * The Python side pays per object it creates, so the result is shaped for
 * cheap decoding: int64 columns become lists in one tolist(), text fields are
 * indexes into a table of distinct strings (a stream id repeated 1000 times
 * is decoded once), and metadata/payloads are one blob each plus offsets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static int buf_reserve(buf *b, size_t extra) {
    if (b->cap - b->n >= extra) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->n < extra) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
    return 0;
}

struct ev_rb {
    int64_t count;
    buf positions, versions, schema_versions, timestamps;
    buf stream_ids, stream_types, event_types, tenants; /* int32 indexes */
    buf strings, string_offsets;                        /* table */
    buf blob, blob_off, meta_lens, format;
    /* dedup hash: slot -> string index + 1 (0 = empty) */
    int32_t *slots;
    size_t nslots;
    int64_t nstrings;
    /* per text field: the last string seen (pointer, length) and its index -
     * an engine that interns its strings hits this without hashing */
    const uint8_t *last_p[4];
    int64_t last_n[4];
    int32_t last_k[4];
    int stable; /* set by engines whose string pointers never change content */
    int64_t *ints;   /* finished result: the four int64 columns, back to back */
    int32_t *idx;    /* the four int32 columns, back to back */
};

void ev_rb_set_stable(ev_rb *rb) { rb->stable = 1; }

/* The result handed to the caller; `pub` first so the pointer converts both ways. */
typedef struct records_impl {
    eventuali_records pub;
    ev_rb *rb;
} records_impl;

ev_rb *ev_rb_new(void) {
    ev_rb *rb = calloc(1, sizeof *rb);
    if (!rb) return NULL;
    int64_t zero = 0;
    if (buf_put(&rb->string_offsets, &zero, 8) || buf_put(&rb->blob_off, &zero, 8) ||
        buf_put(&rb->format, "=", 1)) {
        ev_rb_free(rb);
        return NULL;
    }
    return rb;
}

void ev_rb_free(ev_rb *rb) {
    if (!rb) return;
    buf *all[] = {&rb->positions, &rb->versions, &rb->schema_versions, &rb->timestamps,
                  &rb->stream_ids, &rb->stream_types, &rb->event_types, &rb->tenants,
                  &rb->strings, &rb->string_offsets, &rb->blob, &rb->blob_off,
                  &rb->meta_lens, &rb->format};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]->p);
    free(rb->slots);
    free(rb->ints);
    free(rb->idx);
    free(rb);
}

int64_t ev_rb_count(const ev_rb *rb) { return rb->count; }

static uint64_t hash_bytes(const uint8_t *p, int64_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int64_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int grow_slots(ev_rb *rb) {
    size_t n = rb->nslots ? rb->nslots * 2 : 64;
    int32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    const int64_t *off = (const int64_t *)rb->string_offsets.p;
    for (int64_t k = 0; k < rb->nstrings; k++) {
        uint64_t h = hash_bytes(rb->strings.p + off[k], off[k + 1] - off[k]);
        size_t i = (size_t)h & (n - 1);
        while (slots[i]) i = (i + 1) & (n - 1);
        slots[i] = (int32_t)(k + 1);
    }
    free(rb->slots);
    rb->slots = slots;
    rb->nslots = n;
    return 0;
}

/* index of `s` in the string table, adding it if new; -1 on out of memory */
static int32_t intern(ev_rb *rb, ev_str s) {
    if ((size_t)(rb->nstrings + 1) * 2 > rb->nslots && grow_slots(rb)) return -1;
    uint64_t h = hash_bytes(s.p, s.n);
    size_t mask = rb->nslots - 1, i = (size_t)h & mask;
    const int64_t *off = (const int64_t *)rb->string_offsets.p;
    while (rb->slots[i]) {
        int32_t k = rb->slots[i] - 1;
        int64_t len = off[k + 1] - off[k];
        if (len == s.n && (len == 0 || memcmp(rb->strings.p + off[k], s.p, (size_t)len) == 0)) return k;
        i = (i + 1) & mask;
    }
    if (rb->nstrings >= INT32_MAX - 1) return -1;
    if (buf_put(&rb->strings, s.p, (size_t)s.n)) return -1;
    int64_t end = (int64_t)rb->strings.n;
    if (buf_put(&rb->string_offsets, &end, 8)) return -1;
    int32_t k = (int32_t)rb->nstrings++;
    rb->slots[i] = k + 1;
    return k;
}

static int32_t intern_cached(ev_rb *rb, int field, ev_str s) {
    if (!rb->stable) return intern(rb, s); /* e.g. SQLite reuses its column buffers */
    if (rb->last_p[field] == s.p && rb->last_n[field] == s.n && s.p != NULL) return rb->last_k[field];
    int32_t k = intern(rb, s);
    rb->last_p[field] = s.p;
    rb->last_n[field] = s.n;
    rb->last_k[field] = k;
    return k;
}

/* "<n>s" for Python's struct module; snprintf costs more than the rest of a record */
static size_t put_count(char *out, int64_t n) {
    char tmp[24];
    size_t k = 0;
    uint64_t v = n < 0 ? 0 : (uint64_t)n;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < k; i++) out[i] = tmp[k - 1 - i];
    out[k] = 's';
    return k + 1;
}

int ev_rb_add(ev_rb *rb, int64_t position, const uint8_t *event_id, ev_str stream_id,
              ev_str stream_type, int64_t version, ev_str event_type, int64_t schema_version,
              int64_t timestamp, ev_str tenant, ev_str metadata, ev_str payload) {
    int32_t si = intern_cached(rb, 0, stream_id), st = intern_cached(rb, 1, stream_type),
            et = intern_cached(rb, 2, event_type), tn = intern_cached(rb, 3, tenant);
    if (si < 0 || st < 0 || et < 0 || tn < 0) return ev_oom();
    uint8_t zero_id[16] = {0};
    char fmt[64];
    size_t flen = 0;
    memcpy(fmt, "16s", 3);
    flen = 3 + put_count(fmt + 3, metadata.n);
    flen += put_count(fmt + flen, payload.n);
    if (buf_put(&rb->positions, &position, 8) || buf_put(&rb->versions, &version, 8) ||
        buf_put(&rb->schema_versions, &schema_version, 8) ||
        buf_put(&rb->timestamps, &timestamp, 8) ||
        buf_put(&rb->stream_ids, &si, 4) || buf_put(&rb->stream_types, &st, 4) ||
        buf_put(&rb->event_types, &et, 4) || buf_put(&rb->tenants, &tn, 4) ||
        buf_put(&rb->blob, event_id ? event_id : zero_id, 16) ||
        buf_put(&rb->blob, metadata.p, (size_t)metadata.n) ||
        buf_put(&rb->blob, payload.p, (size_t)payload.n) ||
        buf_put(&rb->meta_lens, &metadata.n, 8) || buf_put(&rb->format, fmt, flen))
        return ev_oom();
    int64_t end = (int64_t)rb->blob.n;
    if (buf_put(&rb->blob_off, &end, 8)) return ev_oom();
    rb->count++;
    return EVENTUALI_OK;
}

eventuali_records *ev_rb_finish(ev_rb *rb) {
    records_impl *r = calloc(1, sizeof *r);
    if (!r || buf_put(&rb->format, "", 1)) { /* NUL-terminate the struct format */
        free(r);
        ev_rb_free(rb);
        return NULL;
    }
    size_t n = (size_t)rb->count;
    rb->ints = malloc(4 * (n ? n : 1) * sizeof *rb->ints);
    rb->idx = malloc(4 * (n ? n : 1) * sizeof *rb->idx);
    if (!rb->ints || !rb->idx) {
        free(r);
        ev_rb_free(rb);
        return NULL;
    }
    const buf *i64[4] = {&rb->positions, &rb->versions, &rb->schema_versions, &rb->timestamps};
    const buf *i32[4] = {&rb->stream_ids, &rb->stream_types, &rb->event_types, &rb->tenants};
    for (size_t k = 0; k < 4 && n; k++) {
        memcpy(rb->ints + k * n, i64[k]->p, n * sizeof *rb->ints);
        memcpy(rb->idx + k * n, i32[k]->p, n * sizeof *rb->idx);
    }
    r->rb = rb;
    eventuali_records *p = &r->pub;
    p->count = rb->count;
    p->positions = rb->ints;
    p->versions = rb->ints + n;
    p->schema_versions = rb->ints + 2 * n;
    p->timestamps = rb->ints + 3 * n;
    p->stream_ids = rb->idx;
    p->stream_types = rb->idx + n;
    p->event_types = rb->idx + 2 * n;
    p->tenants = rb->idx + 3 * n;
    p->n_strings = rb->nstrings;
    p->strings = rb->strings.p;
    p->string_offsets = (const int64_t *)rb->string_offsets.p;
    p->blob = rb->blob.p;
    p->blob_offsets = (const int64_t *)rb->blob_off.p;
    p->metadata_lens = (const int64_t *)rb->meta_lens.p;
    p->struct_format = (const char *)rb->format.p;
    return p;
}

EVENTUALI_API void eventuali_records_free(eventuali_records *records) {
    if (!records) return;
    records_impl *r = (records_impl *)records;
    ev_rb_free(r->rb);
    free(r);
}

eventuali_snapshot *ev_snapshot_new(int64_t version, int64_t schema_version, int64_t timestamp,
                                    const void *payload, int64_t payload_len) {
    /* one block: the struct, then the payload bytes */
    eventuali_snapshot *s = malloc(sizeof *s + (size_t)payload_len + 1);
    if (!s) return NULL;
    uint8_t *data = (uint8_t *)(s + 1);
    if (payload_len) memcpy(data, payload, (size_t)payload_len);
    s->version = version;
    s->schema_version = schema_version;
    s->timestamp = timestamp;
    s->payload = data;
    s->payload_len = payload_len;
    return s;
}

EVENTUALI_API void eventuali_snapshot_free(eventuali_snapshot *snapshot) { free(snapshot); }
