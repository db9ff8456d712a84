/*
 * engine_memory_chain.c - the hash chain of a memory:// store with
 * integrity=chain: entries computed before an append or a retention call
 * commits (so a failure changes nothing), read_chain, and the check over the
 * live log.
 */
#include <string.h>

#include "engine_memory.h"

/* ---- hash chain ------------------------------------------------------------------ */

static const uint8_t *chain_prev(const mem *m) {
    static const uint8_t genesis[EV_HASH_LEN];
    return m->nchain ? m->chain[m->nchain - 1].hash : genesis;
}

/* Compute the entries of an append in m->chain[nchain ..) without counting
 * them (the caller commits by adding n_records to nchain); versions replay
 * the plan of step 1, so a stream written twice continues its own count. */
int ev_mem_chain_append(mem *m, const ev_append *a, mstream **streams) {
    if (ev_grow_ptrs(&m->chain, &m->capchain, m->nchain + a->n_records, sizeof *m->chain)) return ev_oom();
    for (int64_t w = 0; w < a->n_writes; w++) streams[w]->planned = streams[w]->version;
    const uint8_t *prev = chain_prev(m);
    int64_t k = m->nchain, position = m->last_position;
    for (int64_t w = 0; w < a->n_writes; w++) {
        const ev_write *wr = &a->writes[w];
        mstream *s = streams[w];
        int64_t base = s->planned;
        s->planned += wr->n_records;
        for (int64_t r = 0; r < wr->n_records; r++) {
            const ev_rec *in = &a->records[wr->first_record + r];
            mchain *c = &m->chain[k++];
            c->kind = EV_KIND_EVENT;
            c->position = ++position;
            c->version = base + r + 1;
            c->stream = s;
            int rc = ev_event_digest(m->hasher, in->event_id, wr->stream_type, in->event_type,
                                     in->schema_version, in->timestamp, wr->tenant, in->metadata,
                                     in->payload, c->digest);
            if (!rc) rc = ev_chain_link(m->hasher, prev, c->kind, c->position, c->version, s->id, c->digest, c->hash);
            if (rc) return rc;
            prev = c->hash;
        }
    }
    return EVENTUALI_OK;
}

/* The entry of a delete/truncate in m->chain[nchain], not yet counted. */
int ev_mem_chain_retention(mem *m, int64_t kind, mstream *s, int64_t version) {
    static const uint8_t none[EV_HASH_LEN];
    if (ev_grow_ptrs(&m->chain, &m->capchain, m->nchain + 1, sizeof *m->chain)) return ev_oom();
    mchain *c = &m->chain[m->nchain];
    c->kind = kind;
    c->position = m->last_position;
    c->version = version;
    c->stream = s;
    memset(c->digest, 0, EV_HASH_LEN);
    return ev_chain_link(m->hasher, chain_prev(m), kind, c->position, version, s->id, none, c->hash);
}

int ev_mem_chained(void *impl) { return ((mem *)impl)->hasher != NULL; }

int ev_mem_start_chain(void *impl) {
    mem *m = impl;
    if (m->hasher) return EVENTUALI_OK;
    if (m->streams.count || m->last_position)
        return ev_fail(EVENTUALI_ERR_CONFIGURATION,
                       "this memory store already holds events without a hash chain, so "
                       "integrity=chain cannot cover them; use a new store name");
    return (m->hasher = ev_hasher_new()) ? EVENTUALI_OK : ev_oom();
}

static void chain_entry(const mem *m, int64_t i, ev_chain_entry *e) {
    const mchain *c = &m->chain[i];
    e->seq = i + 1;
    e->kind = c->kind;
    e->position = c->position;
    e->version = c->version;
    e->stream_id = c->stream->id;
    memcpy(e->digest, c->digest, EV_HASH_LEN);
    memcpy(e->hash, c->hash, EV_HASH_LEN);
}

int ev_mem_read_chain(void *impl, int64_t from_seq, int64_t limit, int newest_only, ev_cb *cb) {
    mem *m = impl;
    int64_t start = newest_only ? m->nchain - 1 : from_seq - 1, stop = m->nchain;
    if (start < 0) start = newest_only ? m->nchain : 0;
    if (!newest_only && limit >= 0 && limit < stop - start) stop = start + limit; /* no overflow */
    ev_chain_entry e;
    for (int64_t i = start; i < stop; i++) {
        chain_entry(m, i, &e);
        int rc = ev_cb_add(cb, &e);
        if (rc) return rc;
    }
    return EVENTUALI_OK;
}

typedef struct mcursor {
    const mem *m;
    int64_t entry, record;
} mcursor;

static int next_entry(void *ctx, ev_chain_entry *out, int *has) {
    mcursor *c = ctx;
    *has = c->entry < c->m->nchain;
    if (*has) chain_entry(c->m, c->entry++, out);
    return EVENTUALI_OK;
}

static int next_record(void *ctx, ev_vrec *out, int *has) {
    mcursor *c = ctx;
    *has = c->record < c->m->nlog;
    if (!*has) return EVENTUALI_OK;
    const mrec *x = c->m->log[c->record++];
    *out = (ev_vrec){x->position, x->version, x->schema_version, x->timestamp, x->id,
                     x->stream->id, *x->stream_type, *x->event_type, *x->tenant,
                     {x->data, x->meta_len, 0}, {x->data + x->meta_len, x->payload_len, 0}};
    return EVENTUALI_OK;
}

int ev_mem_verify_chain(void *impl, eventuali_chain_problems **out) {
    mcursor c = {impl, 0, 0};
    ev_verify_src src = {&c, next_entry, next_record};
    return ev_verify_chain(&src, out);
}

