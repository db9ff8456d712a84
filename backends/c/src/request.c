/*
 * request.c - validate every buffer that comes from the caller and turn it
 * into views (ev_str) the engines can trust.
 *
 * This is the library's attack surface, so it is fuzzed (fuzz/): counts and
 * lengths are checked for sign and overflow before any arithmetic, text is
 * walked as UTF-8 (which also validates it) and must end exactly where the
 * caller said, and every failure is an EVENTUALI_ERR_INVALID_INPUT status
 * whose message names the value and the fix.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Decode exactly `chars` code points from p[0..n); return bytes used, or -1. */
static int64_t utf8_take(const uint8_t *p, int64_t n, int64_t chars) {
    int64_t i = 0;
    for (int64_t c = 0; c < chars; c++) {
        if (i >= n) return -1;
        uint8_t b = p[i];
        if (b == 0) return -1; /* NUL: refused like invalid UTF-8 (C strings, SQLite text) */
        if (b < 0x80) {
            i += 1;
            continue;
        }
        int len;
        uint32_t cp;
        if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
            cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            cp = b & 0x0F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            cp = b & 0x07;
        } else {
            return -1;
        }
        if (n - i < len) return -1;
        for (int k = 1; k < len; k++) {
            uint8_t cb = p[i + k];
            if ((cb & 0xC0) != 0x80) return -1;
            cp = (cp << 6) | (cb & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return -1; /* overlong, surrogate or out of range */
        i += len;
    }
    return i;
}

int ev_utf8_chars(const uint8_t *p, int64_t n, int64_t *chars) {
    int64_t c = 0, i = 0;
    while (i < n) {
        int64_t used = utf8_take(p + i, n - i, 1);
        if (used < 0) return -1;
        i += used;
        c++;
    }
    *chars = c;
    return 0;
}

int ev_text_arg(const uint8_t *p, int64_t n, const char *what, int allow_empty, ev_str *out) {
    int64_t chars;
    if (n < 0) return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s has negative length %lld", what, (long long)n);
    if (n > 0 && p == NULL)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s is a NULL pointer with length %lld", what, (long long)n);
    if (ev_utf8_chars(p, n, &chars) != 0)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s is not valid UTF-8 or contains a NUL character", what);
    if (!allow_empty && chars == 0)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s is empty; give a non-empty string", what);
    if (chars > EV_MAX_NAME_CHARS) {
        char q[96];
        ev_str s = {p, n, chars};
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                       "%s %s is %lld characters long; the limit is %d", what,
                       ev_quote(s, q, sizeof q), (long long)chars, EV_MAX_NAME_CHARS);
    }
    out->p = p;
    out->n = n;
    out->chars = chars;
    return EVENTUALI_OK;
}

/* Split a text column of `count` strings; each must be 0..255 chars (or 1.. if !allow_empty). */
static int split_text(const eventuali_text_column *col, int64_t count, const char *what,
                      int allow_empty, ev_str *out, size_t stride) {
    if (count == 0) {
        if (col->data_len != 0)
            return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                           "%s column holds %lld bytes for 0 strings", what, (long long)col->data_len);
        return EVENTUALI_OK;
    }
    if (col->data_len < 0 || (col->data_len > 0 && col->data == NULL))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s column is missing or has a negative length", what);
    /* never offset a NULL pointer, even by 0 (data may be NULL when data_len is 0) */
    const uint8_t *data = col->data ? col->data : (const uint8_t *)"";
    int64_t off = 0;
    for (int64_t i = 0; i < count; i++) {
        int64_t chars, used;
        if (col->chars == NULL) { /* NUL-separated: this string ends at the next NUL or the end */
            if (i > 0) {
                if (off >= col->data_len || data[off] != 0)
                    return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                                   "%s column holds fewer NUL-separated strings than the %lld expected",
                                   what, (long long)count);
                off++;
            }
            const uint8_t *nul = off < col->data_len ? memchr(data + off, 0, (size_t)(col->data_len - off)) : NULL;
            int64_t end = nul ? (int64_t)(nul - data) : col->data_len;
            if (ev_utf8_chars(data + off, end - off, &chars) != 0)
                return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s %lld is not valid UTF-8", what, (long long)i);
            used = end - off;
        } else {
            chars = col->chars[i];
            if (chars < 0 || chars > col->data_len - off)
                return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                               "%s %lld: length %lld does not fit in the %lld bytes left", what,
                               (long long)i, (long long)chars, (long long)(col->data_len - off));
            used = utf8_take(data + off, col->data_len - off, chars);
        }
        if (used < 0)
            return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                           "%s %lld is not valid UTF-8, contains a NUL character or is shorter than %lld characters", what,
                           (long long)i, (long long)chars);
        ev_str s = {data + off, used, chars};
        if (!allow_empty && chars == 0)
            return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s %lld is empty; give a non-empty string",
                           what, (long long)i);
        if (chars > EV_MAX_NAME_CHARS) {
            char q[96];
            return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                           "%s %s is %lld characters long; the limit is %d", what,
                           ev_quote(s, q, sizeof q), (long long)chars, EV_MAX_NAME_CHARS);
        }
        *(ev_str *)((char *)out + (size_t)i * stride) = s;
        off += used;
    }
    if (off != col->data_len)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                       "%s column: the strings use %lld bytes but the buffer holds %lld", what,
                       (long long)off, (long long)col->data_len);
    return EVENTUALI_OK;
}

static int split_bytes(const eventuali_bytes_column *col, int64_t count, const char *what,
                       ev_str *out, size_t stride) {
    if (count == 0) {
        if (col->data_len != 0)
            return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                           "%s column holds %lld bytes for 0 values", what, (long long)col->data_len);
        return EVENTUALI_OK;
    }
    if (col->data_len < 0 || col->lens == NULL || (col->data_len > 0 && col->data == NULL))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "%s column is missing or has a negative length", what);
    int64_t off = 0;
    for (int64_t i = 0; i < count; i++) {
        int64_t len = col->lens[i];
        if (len < 0 || len > col->data_len - off)
            return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                           "%s %lld: length %lld does not fit in the %lld bytes left", what,
                           (long long)i, (long long)len, (long long)(col->data_len - off));
        ev_str s = {col->data + off, len, 0};
        *(ev_str *)((char *)out + (size_t)i * stride) = s;
        off += len;
    }
    if (off != col->data_len)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                       "%s column: the values use %lld bytes but the buffer holds %lld", what,
                       (long long)off, (long long)col->data_len);
    return EVENTUALI_OK;
}

void ev_append_release(ev_append *a) {
    free(a->writes);
    free(a->records);
    a->writes = NULL;
    a->records = NULL;
}

int ev_parse_append(const eventuali_append_request *req, ev_append *out) {
    int rc;
    memset(out, 0, sizeof *out);
    if (req == NULL) return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "append request is NULL");
    int64_t nw = req->n_writes, nr = req->n_records;
    /* 2^40 writes/records is far beyond memory; the bound keeps size arithmetic safe */
    if (nw < 0 || nw > ((int64_t)1 << 40))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "append request: invalid number of writes %lld", (long long)nw);
    if (nr < 0 || nr > ((int64_t)1 << 40))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "append request: invalid number of records %lld", (long long)nr);
    if (nw > 0 && (req->expected_versions == NULL || req->record_counts == NULL))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "append request: expected_versions or record_counts is NULL");
    if (nr > 0 && (req->schema_versions == NULL || req->timestamps == NULL))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "append request: schema_versions or timestamps is NULL");
    out->n_writes = nw;
    out->n_records = nr;
    /* at least one element each, so that &writes[0] is always a valid address */
    if ((out->writes = calloc((size_t)(nw ? nw : 1), sizeof *out->writes)) == NULL) return ev_oom();
    if ((out->records = calloc((size_t)(nr ? nr : 1), sizeof *out->records)) == NULL) {
        ev_append_release(out);
        return ev_oom();
    }
    rc = split_text(&req->stream_ids, nw, "stream id", 0, &out->writes[0].stream_id, sizeof(ev_write));
    if (!rc) rc = split_text(&req->stream_types, nw, "stream type", 1, &out->writes[0].stream_type, sizeof(ev_write));
    if (!rc) rc = split_text(&req->tenants, nw, "tenant", 1, &out->writes[0].tenant, sizeof(ev_write));
    if (!rc) rc = split_text(&req->event_types, nr, "event type", 0, &out->records[0].event_type, sizeof(ev_rec));
    if (!rc) rc = split_bytes(&req->metadata, nr, "metadata", &out->records[0].metadata, sizeof(ev_rec));
    if (!rc) rc = split_bytes(&req->payloads, nr, "payload", &out->records[0].payload, sizeof(ev_rec));
    if (rc) goto fail;
    /* event ids: every one exactly 16 bytes */
    if (nr > 0) {
        const eventuali_bytes_column *ids = &req->event_ids;
        if (ids->lens == NULL || ids->data == NULL || ids->data_len != 16 * nr) {
            for (int64_t i = 0; ids->lens && i < nr; i++)
                if (ids->lens[i] != 16) {
                    rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                                 "event id of record %lld is %lld bytes; an event id is a 16-byte UUID "
                                 "(uuid.UUID(...).bytes)",
                                 (long long)i, (long long)ids->lens[i]);
                    goto fail;
                }
            rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                         "event id column holds %lld bytes for %lld records; each event id is 16 bytes",
                         (long long)ids->data_len, (long long)nr);
            goto fail;
        }
        for (int64_t i = 0; i < nr; i++) {
            if (ids->lens[i] != 16) {
                rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                             "event id of record %lld is %lld bytes; an event id is a 16-byte UUID "
                             "(uuid.UUID(...).bytes)",
                             (long long)i, (long long)ids->lens[i]);
                goto fail;
            }
            out->records[i].event_id = ids->data + 16 * i;
            if (req->schema_versions[i] < 0) {
                rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                             "schema version of record %lld is %lld; it must be >= 0", (long long)i,
                             (long long)req->schema_versions[i]);
                goto fail;
            }
            out->records[i].schema_version = req->schema_versions[i];
            out->records[i].timestamp = req->timestamps[i];
        }
    } else if (req->event_ids.data_len != 0) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "event id column holds bytes for 0 records");
        goto fail;
    }
    int64_t next = 0;
    for (int64_t w = 0; w < nw; w++) {
        int64_t exp = req->expected_versions[w], cnt = req->record_counts[w];
        if (exp < EVENTUALI_STREAM_EXISTS) {
            char q[96];
            rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                         "expected version %lld for stream %s is invalid; use a version >= 0, "
                         "ANY (-1), NO_STREAM (-2) or STREAM_EXISTS (-3)",
                         (long long)exp, ev_quote(out->writes[w].stream_id, q, sizeof q));
            goto fail;
        }
        if (cnt < 0 || cnt > nr - next) {
            rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                         "write %lld claims %lld records but only %lld are left in the request",
                         (long long)w, (long long)cnt, (long long)(nr - next));
            goto fail;
        }
        out->writes[w].expected = exp;
        out->writes[w].first_record = next;
        out->writes[w].n_records = cnt;
        next += cnt;
    }
    if (next != nr) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                     "the writes own %lld records but the request holds %lld", (long long)next,
                     (long long)nr);
        goto fail;
    }
    out->has_checkpoint = req->has_checkpoint != 0;
    if (out->has_checkpoint) {
        rc = ev_text_arg(req->checkpoint_name, req->checkpoint_name_len, "checkpoint name", 0,
                         &out->checkpoint_name);
        if (rc) goto fail;
        if (req->checkpoint_position < 0) {
            rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                         "checkpoint position %lld is negative; positions are >= 0",
                         (long long)req->checkpoint_position);
            goto fail;
        }
        out->checkpoint_position = req->checkpoint_position;
    }
    return EVENTUALI_OK;
fail:
    ev_append_release(out);
    return rc;
}

static uint64_t id_hash(const uint8_t *id) {
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    a ^= b * 0x9E3779B97F4A7C15ULL;
    a ^= a >> 29;
    return a * 0xBF58476D1CE4E5B9ULL;
}

int ev_check_batch_duplicates(const ev_append *a) {
    if (a->n_records < 2) return EVENTUALI_OK;
    size_t n = 16;
    while (n < (size_t)a->n_records * 2) n *= 2;
    int64_t *slots = malloc(n * sizeof *slots);
    if (!slots) return ev_oom();
    memset(slots, 0xff, n * sizeof *slots); /* -1 = empty */
    int rc = EVENTUALI_OK;
    for (int64_t i = 0; i < a->n_records && !rc; i++) {
        const uint8_t *id = a->records[i].event_id;
        size_t k = (size_t)id_hash(id) & (n - 1);
        while (slots[k] >= 0) {
            if (memcmp(a->records[slots[k]].event_id, id, 16) == 0) {
                rc = ev_fail_duplicate(id);
                break;
            }
            k = (k + 1) & (n - 1);
        }
        slots[k] = i;
    }
    free(slots);
    return rc;
}

void ev_filter_release(ev_filter *f) {
    free(f->event_types);
    free(f->stream_types);
    f->event_types = f->stream_types = NULL;
}

static int parse_name_list(int64_t n, const eventuali_text_column *col, const char *what,
                           ev_str **out) {
    *out = NULL;
    if (n < -1 || n > 1000000)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "filter: invalid number of %ss %lld", what, (long long)n);
    if (n <= 0) return EVENTUALI_OK;
    if ((*out = calloc((size_t)n, sizeof **out)) == NULL) return ev_oom();
    return split_text(col, n, what, 0, *out, sizeof **out);
}

int ev_parse_filter(const eventuali_filter *f, ev_filter *out) {
    int rc;
    memset(out, 0, sizeof *out);
    out->n_event_types = out->n_stream_types = -1;
    if (f == NULL) return EVENTUALI_OK;
    out->n_event_types = f->n_event_types;
    out->n_stream_types = f->n_stream_types;
    rc = parse_name_list(f->n_event_types, &f->event_types, "event type", &out->event_types);
    if (!rc) rc = parse_name_list(f->n_stream_types, &f->stream_types, "stream type", &out->stream_types);
    if (!rc && f->has_stream_id_prefix) {
        out->has_prefix = 1;
        rc = ev_text_arg(f->stream_id_prefix, f->stream_id_prefix_len, "stream id prefix", 1, &out->prefix);
    }
    if (!rc && f->has_tenant) {
        out->has_tenant = 1;
        rc = ev_text_arg(f->tenant, f->tenant_len, "tenant", 1, &out->tenant);
    }
    if (rc) ev_filter_release(out);
    return rc;
}

static int str_eq(ev_str a, ev_str b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, (size_t)a.n) == 0); }

static int in_list(ev_str s, int64_t n, const ev_str *list) {
    if (n < 0) return 1;
    for (int64_t i = 0; i < n; i++)
        if (str_eq(s, list[i])) return 1;
    return 0;
}

int ev_filter_matches(const ev_filter *f, ev_str stream_id, ev_str stream_type, ev_str event_type,
                      ev_str tenant) {
    if (!in_list(event_type, f->n_event_types, f->event_types)) return 0;
    if (!in_list(stream_type, f->n_stream_types, f->stream_types)) return 0;
    if (f->has_prefix &&
        (stream_id.n < f->prefix.n || (f->prefix.n && memcmp(stream_id.p, f->prefix.p, (size_t)f->prefix.n) != 0)))
        return 0;
    if (f->has_tenant && !str_eq(tenant, f->tenant)) return 0;
    return 1;
}
