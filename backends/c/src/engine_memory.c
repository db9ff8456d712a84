/*
 * engine_memory.c - the memory:// engine: the Backend contract in C data
 * structures (same semantics as the reference engine's dicts and lists).
 *
 * Layout: a log of live records in position order (bisected by read_all), a
 * hash map of streams (each with its live records oldest first, contiguous in
 * version, and its snapshots sorted by version), a hash set of stored event
 * ids, a map of checkpoints and a table of interned names (stream types,
 * event types, tenants - few distinct values, shared by every record).
 *
 * Atomicity: append does every check and every allocation first, then
 * mutates with operations that cannot fail, so a failed append changes
 * nothing visible.  The caller (store.c) holds the store's mutex.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_memory.h"

/* ---- string-keyed hash map (linear probing, no removal) ------------------- */

static uint64_t fnv(const uint8_t *p, int64_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 32);
}

static sentry *smap_find(const smap *m, const uint8_t *key, int64_t len, uint64_t h) {
    if (!m->cap) return NULL;
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].key) {
        sentry *e = &m->slots[i];
        if (e->h == h && e->len == len && memcmp(e->key, key, (size_t)len) == 0) return e;
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

/* room for one more entry without failing later */
static int smap_reserve(smap *m) {
    if ((m->count + 1) * 4 < m->cap * 3) return 0;
    size_t cap = m->cap ? m->cap * 2 : 16;
    sentry *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t k = 0; k < m->cap; k++) {
        if (!m->slots[k].key) continue;
        size_t i = (size_t)m->slots[k].h & (cap - 1);
        while (slots[i].key) i = (i + 1) & (cap - 1);
        slots[i] = m->slots[k];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* the entry for key, created (ptr NULL, num 0) if missing; NULL on out of memory */
static sentry *smap_upsert(smap *m, const uint8_t *key, int64_t len) {
    uint64_t h = fnv(key, len);
    sentry *e = smap_find(m, key, len, h);
    if (e) return e;
    if (smap_reserve(m)) return NULL;
    uint8_t *copy = malloc((size_t)len + 1);
    if (!copy) return NULL;
    if (len) memcpy(copy, key, (size_t)len);
    copy[len] = '\0';
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].key) i = (i + 1) & (m->cap - 1);
    e = &m->slots[i];
    e->h = h;
    e->key = copy;
    e->len = len;
    e->ptr = NULL;
    e->num = 0;
    m->count++;
    return e;
}

/* ---- records, streams, store ---------------------------------------------- */

/* The interned copy of a name (stable address: the map's slots move, this does not). */
static const ev_str *intern_name(mem *m, ev_str v) {
    sentry *e = smap_upsert(&m->names, v.p, v.n);
    if (!e) return NULL;
    if (!e->ptr) {
        ev_str *x = malloc(sizeof *x);
        if (!x) return NULL;
        x->p = e->key;
        x->n = e->len;
        x->chars = 0;
        e->ptr = x;
    }
    return e->ptr;
}

int ev_grow_ptrs(void *arrp, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *p = realloc(*(void **)arrp, (size_t)c * elem);
    if (!p) return -1;
    *(void **)arrp = p;
    *cap = c;
    return 0;
}

/* ---- event id set (linear probing with backward-shift deletion) ------------ */

static size_t id_slot(const uint8_t *id, size_t cap) {
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    a ^= b * 0x9E3779B97F4A7C15ULL;
    a ^= a >> 31;
    a *= 0xBF58476D1CE4E5B9ULL;
    a ^= a >> 29;
    return (size_t)a & (cap - 1);
}

static int ids_contains(const mem *m, const uint8_t *id) {
    if (!m->idcap) return 0;
    for (size_t i = id_slot(id, m->idcap); m->ids[i]; i = (i + 1) & (m->idcap - 1))
        if (memcmp(m->ids[i]->id, id, 16) == 0) return 1;
    return 0;
}

static int ids_reserve(mem *m, size_t extra) {
    if ((m->idcount + extra) * 2 <= m->idcap) return 0;
    size_t cap = m->idcap ? m->idcap : 64;
    while ((m->idcount + extra) * 2 > cap) cap *= 2;
    mrec **slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t k = 0; k < m->idcap; k++) {
        if (!m->ids[k]) continue;
        size_t i = id_slot(m->ids[k]->id, cap);
        while (slots[i]) i = (i + 1) & (cap - 1);
        slots[i] = m->ids[k];
    }
    free(m->ids);
    m->ids = slots;
    m->idcap = cap;
    return 0;
}

static void ids_insert(mem *m, mrec *r) { /* capacity reserved by the caller */
    size_t i = id_slot(r->id, m->idcap);
    while (m->ids[i]) i = (i + 1) & (m->idcap - 1);
    m->ids[i] = r;
    m->idcount++;
}

static void ids_remove(mem *m, const mrec *r) {
    size_t mask = m->idcap - 1, i = id_slot(r->id, m->idcap);
    while (m->ids[i] != r) {
        if (!m->ids[i]) return;
        i = (i + 1) & mask;
    }
    m->ids[i] = NULL;
    m->idcount--;
    /* shift back the entries of the cluster that follows, so lookups still find them */
    for (size_t j = (i + 1) & mask; m->ids[j]; j = (j + 1) & mask) {
        size_t home = id_slot(m->ids[j]->id, m->idcap);
        /* move j to i if home is not cyclically in (i, j] */
        int in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->ids[i] = m->ids[j];
            m->ids[j] = NULL;
            i = j;
        }
    }
}

/* ---- lifecycle --------------------------------------------------------------- */

static void mem_destroy(void *impl) {
    mem *m = impl;
    if (!m) return;
    for (int64_t i = 0; i < m->nlog; i++) free(m->log[i]);
    free(m->log);
    for (size_t k = 0; k < m->streams.cap; k++) {
        mstream *s = m->streams.slots[k].ptr;
        if (m->streams.slots[k].key) free(m->streams.slots[k].key);
        if (!s) continue;
        free(s->recs);
        for (int64_t i = 0; i < s->nsnaps; i++) free(s->snaps[i].payload);
        free(s->snaps);
        free(s);
    }
    free(m->streams.slots);
    for (size_t k = 0; k < m->names.cap; k++) {
        free(m->names.slots[k].key);
        free(m->names.slots[k].ptr);
    }
    free(m->names.slots);
    for (size_t k = 0; k < m->checkpoints.cap; k++) free(m->checkpoints.slots[k].key);
    free(m->checkpoints.slots);
    free(m->ids);
    free(m->chain);
    ev_hasher_free(m->hasher);
    free(m);
}

static mstream *find_stream(mem *m, ev_str id) {
    sentry *e = smap_find(&m->streams, id.p, id.n, fnv(id.p, id.n));
    return e ? e->ptr : NULL;
}

static mstream *stream_upsert(mem *m, ev_str id) {
    sentry *e = smap_upsert(&m->streams, id.p, id.n);
    if (!e) return NULL;
    if (!e->ptr) {
        mstream *s = calloc(1, sizeof *s);
        if (!s) return NULL; /* the entry stays with ptr NULL: treated as absent */
        s->id.p = e->key;
        s->id.n = e->len;
        e->ptr = s;
    }
    return e->ptr;
}

/* Remove records [from, from+n) of stream s (they are live): from the id set,
 * the log and the stream; free them. */
static void remove_records(mem *m, mstream *s, int64_t from, int64_t n) {
    if (n <= 0) return;
    for (int64_t i = from; i < from + n; i++) {
        ids_remove(m, s->recs[i]);
        s->recs[i]->stream = NULL; /* mark for the log compaction below */
    }
    int64_t o = 0;
    for (int64_t i = 0; i < m->nlog; i++)
        if (m->log[i]->stream) m->log[o++] = m->log[i];
    m->nlog = o;
    for (int64_t i = from; i < from + n; i++) free(s->recs[i]);
    memmove(s->recs + from, s->recs + from + n, (size_t)(s->nrecs - from - n) * sizeof *s->recs);
    s->nrecs -= n;
}

/* ---- append ---------------------------------------------------------------------- */

static int mem_append(void *impl, const ev_append *a, int64_t *positions_out) {
    mem *m = impl;
    int status = EVENTUALI_OK;
    mstream **streams = NULL;
    mrec **fresh = NULL;
    int64_t nfresh = 0;
    if (!(streams = calloc((size_t)(a->n_writes ? a->n_writes : 1), sizeof *streams))) return ev_oom();
    if (!(fresh = calloc((size_t)(a->n_records ? a->n_records : 1), sizeof *fresh))) {
        free(streams);
        return ev_oom();
    }
    uint64_t epoch = ++m->epoch;
    /* 1. versions, in write order (a stream written twice sees its earlier write) */
    for (int64_t w = 0; w < a->n_writes; w++) {
        const ev_write *wr = &a->writes[w];
        mstream *s = stream_upsert(m, wr->stream_id);
        if (!s) {
            status = ev_oom();
            goto done;
        }
        streams[w] = s;
        if (s->deleted) {
            status = ev_fail_deleted(wr->stream_id);
            goto done;
        }
        int64_t current = s->epoch == epoch ? s->planned : s->version;
        int64_t exp = wr->expected;
        if (!(exp == EVENTUALI_ANY || exp == current || (exp == EVENTUALI_NO_STREAM && current == 0) ||
              (exp == EVENTUALI_STREAM_EXISTS && current > 0))) {
            status = ev_fail_concurrency(wr->stream_id, exp, current);
            goto done;
        }
        s->epoch = epoch;
        s->planned = current + wr->n_records;
    }
    /* 2. event ids already stored */
    for (int64_t r = 0; r < a->n_records; r++)
        if (ids_contains(m, a->records[r].event_id)) {
            status = ev_fail_duplicate(a->records[r].event_id);
            goto done;
        }
    /* 3. every allocation, before anything changes */
    if (ev_grow_ptrs(&m->log, &m->caplog, m->nlog + a->n_records, sizeof *m->log) ||
        ids_reserve(m, (size_t)a->n_records) ||
        (a->has_checkpoint && !smap_upsert(&m->checkpoints, a->checkpoint_name.p, a->checkpoint_name.n))) {
        status = ev_oom();
        goto done;
    }
    for (int64_t w = 0; w < a->n_writes; w++) {
        const ev_write *wr = &a->writes[w];
        mstream *s = streams[w];
        /* planned holds the final version: reserve for all writes to this stream */
        if (ev_grow_ptrs(&s->recs, &s->caprecs, s->nrecs + (s->planned - s->version), sizeof *s->recs)) {
            status = ev_oom();
            goto done;
        }
        const ev_str *st = wr->n_records ? intern_name(m, wr->stream_type) : NULL;
        const ev_str *tn = wr->n_records ? intern_name(m, wr->tenant) : NULL;
        if (wr->n_records && (!st || !tn)) {
            status = ev_oom();
            goto done;
        }
        for (int64_t r = wr->first_record; r < wr->first_record + wr->n_records; r++) {
            const ev_rec *in = &a->records[r];
            const ev_str *et = intern_name(m, in->event_type);
            mrec *x = malloc(sizeof *x + (size_t)in->metadata.n + (size_t)in->payload.n);
            if (!et || !x) {
                free(x);
                status = ev_oom();
                goto done;
            }
            memcpy(x->id, in->event_id, 16);
            x->stream = s;
            x->stream_type = st;
            x->event_type = et;
            x->tenant = tn;
            x->schema_version = in->schema_version;
            x->timestamp = in->timestamp;
            x->meta_len = in->metadata.n;
            x->payload_len = in->payload.n;
            if (in->metadata.n) memcpy(x->data, in->metadata.p, (size_t)in->metadata.n);
            if (in->payload.n) memcpy(x->data + in->metadata.n, in->payload.p, (size_t)in->payload.n);
            fresh[nfresh++] = x;
        }
    }
    if (m->hasher && (status = ev_mem_chain_append(m, a, streams))) goto done;
    /* 4. commit: nothing below can fail */
    for (int64_t w = 0, k = 0; w < a->n_writes; w++) {
        const ev_write *wr = &a->writes[w];
        mstream *s = streams[w];
        for (int64_t r = 0; r < wr->n_records; r++, k++) {
            mrec *x = fresh[k];
            x->position = ++m->last_position;
            x->version = ++s->version;
            m->log[m->nlog++] = x;
            s->recs[s->nrecs++] = x;
            ids_insert(m, x);
            positions_out[wr->first_record + r] = x->position;
        }
    }
    nfresh = 0;
    if (m->hasher) m->nchain += a->n_records;
    if (a->has_checkpoint)
        smap_upsert(&m->checkpoints, a->checkpoint_name.p, a->checkpoint_name.n)->num = a->checkpoint_position;
done:
    for (int64_t i = 0; i < nfresh; i++) free(fresh[i]);
    free(fresh);
    free(streams);
    return status;
}

/* ---- reads --------------------------------------------------------------------- */

static int add_rec(ev_rb *rb, const mrec *x) {
    ev_str meta = {x->data, x->meta_len, 0}, payload = {x->data + x->meta_len, x->payload_len, 0};
    return ev_rb_add(rb, x->position, x->id, x->stream->id, *x->stream_type, x->version, *x->event_type,
                     x->schema_version, x->timestamp, *x->tenant, meta, payload);
}

static int mem_read_stream(void *impl, ev_str stream_id, int64_t from, int64_t to, int64_t limit,
                           ev_rb *rb) {
    mstream *s = find_stream(impl, stream_id);
    if (!s || s->nrecs == 0) return EVENTUALI_OK;
    ev_rb_set_stable(rb);
    int64_t first = s->recs[0]->version;
    int64_t start = from - first > 0 ? from - first : 0;
    int64_t stop = s->nrecs;
    if (to >= 0 && to - first + 1 < stop) stop = to - first + 1 > 0 ? to - first + 1 : 0;
    if (limit >= 0 && start + limit < stop) stop = start + limit;
    for (int64_t i = start; i < stop; i++) {
        int rc = add_rec(rb, s->recs[i]);
        if (rc) return rc;
    }
    return EVENTUALI_OK;
}

static int mem_read_all(void *impl, int64_t from, int64_t limit, const ev_filter *f, ev_rb *rb) {
    mem *m = impl;
    int64_t lo = 0, hi = m->nlog;
    while (lo < hi) { /* first record with position >= from */
        int64_t mid = lo + (hi - lo) / 2;
        if (m->log[mid]->position < from) lo = mid + 1;
        else hi = mid;
    }
    ev_rb_set_stable(rb);
    int any = f->n_event_types >= 0 || f->n_stream_types >= 0 || f->has_prefix || f->has_tenant;
    for (int64_t i = lo; i < m->nlog; i++) {
        if (limit >= 0 && ev_rb_count(rb) >= limit) break;
        const mrec *x = m->log[i];
        if (any && !ev_filter_matches(f, x->stream->id, *x->stream_type, *x->event_type, *x->tenant))
            continue;
        int rc = add_rec(rb, x);
        if (rc) return rc;
    }
    return EVENTUALI_OK;
}

static int mem_stream_version(void *impl, ev_str stream_id, int64_t *out) {
    mstream *s = find_stream(impl, stream_id);
    *out = (!s || s->deleted) ? 0 : s->version;
    return EVENTUALI_OK;
}

static int mem_head(void *impl, int64_t *out) {
    *out = ((mem *)impl)->last_position;
    return EVENTUALI_OK;
}

/* ---- snapshots -------------------------------------------------------------------- */

static int mem_save_snapshot(void *impl, ev_str stream_id, int64_t version, int64_t schema_version,
                             int64_t timestamp, ev_str payload) {
    mem *m = impl;
    mstream *s = find_stream(m, stream_id);
    if (s && s->deleted) return ev_fail_deleted(stream_id);
    if (!s && !(s = stream_upsert(m, stream_id))) return ev_oom();
    uint8_t *copy = malloc((size_t)payload.n + 1);
    if (!copy) return ev_oom();
    if (payload.n) memcpy(copy, payload.p, (size_t)payload.n);
    int64_t lo = 0, hi = s->nsnaps;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->snaps[mid].version < version) lo = mid + 1;
        else hi = mid;
    }
    msnap snap = {version, schema_version, timestamp, payload.n, copy};
    if (lo < s->nsnaps && s->snaps[lo].version == version) {
        free(s->snaps[lo].payload);
        s->snaps[lo] = snap;
        return EVENTUALI_OK;
    }
    if (ev_grow_ptrs(&s->snaps, &s->capsnaps, s->nsnaps + 1, sizeof *s->snaps)) {
        free(copy);
        return ev_oom();
    }
    memmove(s->snaps + lo + 1, s->snaps + lo, (size_t)(s->nsnaps - lo) * sizeof *s->snaps);
    s->snaps[lo] = snap;
    s->nsnaps++;
    return EVENTUALI_OK;
}

static int mem_load_snapshot(void *impl, ev_str stream_id, int64_t max_version, eventuali_snapshot **out) {
    mstream *s = find_stream(impl, stream_id);
    *out = NULL;
    if (!s) return EVENTUALI_OK;
    for (int64_t i = s->nsnaps - 1; i >= 0; i--) {
        const msnap *x = &s->snaps[i];
        if (max_version >= 0 && x->version > max_version) continue;
        *out = ev_snapshot_new(x->version, x->schema_version, x->timestamp, x->payload, x->len);
        return *out ? EVENTUALI_OK : ev_oom();
    }
    return EVENTUALI_OK;
}

static int mem_prune_snapshots(void *impl, ev_str stream_id, int64_t keep, int64_t *removed) {
    mstream *s = find_stream(impl, stream_id);
    *removed = 0;
    if (!s || s->nsnaps <= keep) return EVENTUALI_OK;
    int64_t drop = s->nsnaps - keep; /* the oldest ones: the array is sorted by version */
    for (int64_t i = 0; i < drop; i++) free(s->snaps[i].payload);
    memmove(s->snaps, s->snaps + drop, (size_t)keep * sizeof *s->snaps);
    s->nsnaps = keep;
    *removed = drop;
    return EVENTUALI_OK;
}

/* ---- checkpoints -------------------------------------------------------------------- */

static int mem_get_checkpoint(void *impl, ev_str name, int64_t *position, int32_t *found) {
    mem *m = impl;
    sentry *e = smap_find(&m->checkpoints, name.p, name.n, fnv(name.p, name.n));
    *found = e != NULL;
    *position = e ? e->num : 0;
    return EVENTUALI_OK;
}

static int mem_set_checkpoint(void *impl, ev_str name, int64_t position) {
    sentry *e = smap_upsert(&((mem *)impl)->checkpoints, name.p, name.n);
    if (!e) return ev_oom();
    e->num = position;
    return EVENTUALI_OK;
}

/* ---- retention ------------------------------------------------------------------------ */

static int mem_delete_stream(void *impl, ev_str stream_id, int64_t *removed) {
    mem *m = impl;
    mstream *s = stream_upsert(m, stream_id);
    if (!s) return ev_oom();
    int chain = m->hasher && s->nrecs; /* an entry when records go */
    int rc = chain ? ev_mem_chain_retention(m, EV_KIND_DELETE, s, 0) : EVENTUALI_OK;
    if (rc) return rc;
    if (chain) m->nchain++;
    *removed = s->nrecs;
    remove_records(m, s, 0, s->nrecs);
    for (int64_t i = 0; i < s->nsnaps; i++) free(s->snaps[i].payload);
    s->nsnaps = 0;
    s->deleted = 1;
    return EVENTUALI_OK;
}

static int mem_truncate_stream(void *impl, ev_str stream_id, int64_t before, int64_t *removed) {
    mem *m = impl;
    mstream *s = find_stream(m, stream_id);
    *removed = 0;
    if (!s || s->nrecs == 0) return EVENTUALI_OK;
    int64_t n = before - s->recs[0]->version; /* versions are contiguous */
    if (n <= 0) return EVENTUALI_OK;
    if (n > s->nrecs) n = s->nrecs;
    /* the entry names one past the newest removed version */
    int rc = m->hasher ? ev_mem_chain_retention(m, EV_KIND_TRUNCATE, s, s->recs[n - 1]->version + 1)
                       : EVENTUALI_OK;
    if (rc) return rc;
    if (m->hasher) m->nchain++;
    remove_records(m, s, 0, n);
    *removed = n;
    return EVENTUALI_OK;
}

static const ev_engine_ops mem_ops = {
    .append = mem_append,
    .read_stream = mem_read_stream,
    .read_all = mem_read_all,
    .stream_version = mem_stream_version,
    .head = mem_head,
    .save_snapshot = mem_save_snapshot,
    .load_snapshot = mem_load_snapshot,
    .prune_snapshots = mem_prune_snapshots,
    .get_checkpoint = mem_get_checkpoint,
    .set_checkpoint = mem_set_checkpoint,
    .delete_stream = mem_delete_stream,
    .truncate_stream = mem_truncate_stream,
    .destroy = mem_destroy,
    .chained = ev_mem_chained,
    .start_chain = ev_mem_start_chain,
    .read_chain = ev_mem_read_chain,
    .verify_chain = ev_mem_verify_chain,
};

int ev_memory_open(void **impl, const ev_engine_ops **ops) {
    mem *m = calloc(1, sizeof *m);
    if (!m) return ev_oom();
    *impl = m;
    *ops = &mem_ops;
    return EVENTUALI_OK;
}
