/*
 * chain.c - the hash chain of integrity=chain stores: the canonical bytes
 * (byte for byte those of eventuali/integrity/chain.py), SHA-256 through
 * OpenSSL's libcrypto, the read_chain result builder and the verifier that
 * both engines feed with their entries and records.
 *
 * Why SHA-256: a standard, collision-resistant hash that the CPUs we run on
 * compute in hardware (SHA extensions); measured faster than BLAKE2 here both
 * in Python's hashlib and in OpenSSL (see docs/integrity.md).
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct ev_hasher {
    EVP_MD_CTX *ctx;
    EVP_MD *md;
};

ev_hasher *ev_hasher_new(void) {
    ev_hasher *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL); /* fetched once: no lookup per hash */
    h->ctx = EVP_MD_CTX_new();
    if (!h->md || !h->ctx) {
        ev_hasher_free(h);
        return NULL;
    }
    return h;
}

void ev_hasher_free(ev_hasher *h) {
    if (!h) return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    free(h);
}

/* Bytes to hash, gathered in a buffer so that small fields cost no call each;
 * large ones (payloads) go to the digest directly. */
typedef struct feed {
    EVP_MD_CTX *ctx;
    int ok;
    size_t n;
    uint8_t buf[2048];
} feed;

static void flush(feed *f) {
    if (f->n && f->ok) f->ok = EVP_DigestUpdate(f->ctx, f->buf, f->n) == 1;
    f->n = 0;
}

static void put(feed *f, const void *p, size_t n) {
    if (n > sizeof f->buf - f->n) {
        flush(f);
        if (n > sizeof f->buf / 2) {
            if (f->ok) f->ok = EVP_DigestUpdate(f->ctx, p, n) == 1;
            return;
        }
    }
    if (n) memcpy(f->buf + f->n, p, n);
    f->n += n;
}

static void put64(feed *f, int64_t v) {
    uint8_t b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(u >> (56 - 8 * i));
    put(f, b, 8);
}

/* u32 big-endian length || bytes */
static void put_str(feed *f, ev_str s) {
    uint8_t b[4] = {(uint8_t)(s.n >> 24), (uint8_t)(s.n >> 16), (uint8_t)(s.n >> 8), (uint8_t)s.n};
    put(f, b, 4);
    put(f, s.p, (size_t)s.n);
}

static int start(ev_hasher *h, feed *f) {
    f->ctx = h->ctx;
    f->n = 0;
    f->ok = EVP_DigestInit_ex2(h->ctx, h->md, NULL) == 1;
    return f->ok;
}

static int finish_hash(feed *f, uint8_t out[EV_HASH_LEN]) {
    unsigned int len = 0;
    flush(f);
    if (!f->ok || EVP_DigestFinal_ex(f->ctx, out, &len) != 1 || len != EV_HASH_LEN)
        return ev_fail(EVENTUALI_ERR_STORAGE, "SHA-256 through OpenSSL failed; nothing was written");
    return EVENTUALI_OK;
}

int ev_event_digest(ev_hasher *h, const uint8_t *event_id, ev_str stream_type, ev_str event_type,
                    int64_t schema_version, int64_t timestamp, ev_str tenant, ev_str metadata,
                    ev_str payload, uint8_t out[EV_HASH_LEN]) {
    feed f;
    if (metadata.n > UINT32_MAX || payload.n > UINT32_MAX)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                       "a record's metadata or payload is 4 GiB or more: too large to chain");
    start(h, &f);
    put(&f, event_id, 16);
    put64(&f, schema_version);
    put64(&f, timestamp);
    put_str(&f, stream_type);
    put_str(&f, event_type);
    put_str(&f, tenant);
    put_str(&f, metadata);
    put_str(&f, payload);
    return finish_hash(&f, out);
}

int ev_chain_link(ev_hasher *h, const uint8_t prev[EV_HASH_LEN], int64_t kind, int64_t position,
                  int64_t version, ev_str stream_id, const uint8_t digest[EV_HASH_LEN],
                  uint8_t out[EV_HASH_LEN]) {
    feed f;
    uint8_t k = (uint8_t)kind; /* kinds are 1..3; a stored out-of-range kind is reported, not hashed apart */
    start(h, &f);
    put(&f, prev, EV_HASH_LEN);
    put(&f, &k, 1);
    put64(&f, position);
    put64(&f, version);
    put_str(&f, stream_id);
    put(&f, digest, EV_HASH_LEN);
    return finish_hash(&f, out);
}

/* ---- growable arrays --------------------------------------------------------- */

static int grow(void *arrp, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *p = realloc(*(void **)arrp, (size_t)c * elem);
    if (!p) return -1;
    *(void **)arrp = p;
    *cap = c;
    return 0;
}

typedef struct bytes {
    uint8_t *p;
    int64_t n, cap;
} bytes;

/* append s; its offset in *off */
static int bytes_put(bytes *b, ev_str s, int64_t *off) {
    if (grow(&b->p, &b->cap, b->n + s.n + 1, 1)) return -1;
    *off = b->n;
    if (s.n) memcpy(b->p + b->n, s.p, (size_t)s.n);
    b->n += s.n;
    return 0;
}

/* ---- read_chain result -------------------------------------------------------- */

typedef struct centry {
    int64_t seq, kind, position, version, off, len;
    uint8_t digest[EV_HASH_LEN], hash[EV_HASH_LEN];
} centry;

struct ev_cb {
    eventuali_chain pub; /* first: the caller frees through it */
    centry *v;
    int64_t n, cap;
    bytes strings;
    int64_t *ints;   /* finished: seqs, kinds, positions, versions, offsets (count + 1) */
    uint8_t *hashes; /* finished: digests, then hashes */
};

ev_cb *ev_cb_new(void) { return calloc(1, sizeof(ev_cb)); }

int ev_cb_add(ev_cb *b, const ev_chain_entry *e) {
    int64_t off;
    if (grow(&b->v, &b->cap, b->n + 1, sizeof *b->v) || bytes_put(&b->strings, e->stream_id, &off))
        return ev_oom();
    centry *c = &b->v[b->n++];
    c->seq = e->seq;
    c->kind = e->kind;
    c->position = e->position;
    c->version = e->version;
    c->off = off;
    c->len = e->stream_id.n;
    memcpy(c->digest, e->digest, EV_HASH_LEN);
    memcpy(c->hash, e->hash, EV_HASH_LEN);
    return EVENTUALI_OK;
}

eventuali_chain *ev_cb_finish(ev_cb *b) {
    int64_t n = b->n;
    b->ints = malloc((size_t)(5 * n + 1) * sizeof *b->ints);
    b->hashes = malloc((size_t)(n ? 2 * n * EV_HASH_LEN : 1));
    if (!b->ints || !b->hashes) {
        ev_cb_free(b);
        ev_oom();
        return NULL;
    }
    int64_t *seqs = b->ints, *kinds = seqs + n, *positions = kinds + n, *versions = positions + n,
            *offsets = versions + n;
    for (int64_t i = 0; i < n; i++) {
        const centry *c = &b->v[i];
        seqs[i] = c->seq;
        kinds[i] = c->kind;
        positions[i] = c->position;
        versions[i] = c->version;
        offsets[i] = c->off;
        memcpy(b->hashes + i * EV_HASH_LEN, c->digest, EV_HASH_LEN);
        memcpy(b->hashes + (n + i) * EV_HASH_LEN, c->hash, EV_HASH_LEN);
    }
    offsets[n] = b->strings.n;
    b->pub = (eventuali_chain){n, seqs, kinds, positions, versions,
                               b->strings.p ? b->strings.p : (const uint8_t *)"", offsets, b->hashes,
                               b->hashes + n * EV_HASH_LEN};
    return &b->pub;
}

void ev_cb_free(ev_cb *b) {
    if (!b) return;
    free(b->v);
    free(b->strings.p);
    free(b->ints);
    free(b->hashes);
    free(b);
}

EVENTUALI_API void eventuali_chain_free(eventuali_chain *chain) { ev_cb_free((ev_cb *)chain); }

/* ---- the verifier -------------------------------------------------------------- */

typedef struct prob {
    int32_t check;
    int64_t seq, kind, position, version, other, off, len;
} prob;

typedef struct later { /* a missing record, or a retention entry that chains */
    int64_t seq, kind, position, version, off, len;
    const uint8_t *p; /* strings + off, set once the strings no longer move (for sorting) */
} later;

typedef struct verifier {
    prob *probs;
    int64_t nprobs, capprobs;
    later *missing, *kept;
    int64_t nmissing, capmissing, nkept, capkept;
    bytes strings;
} verifier;

/* a problem whose stream id is already at strings[off .. off + len) */
static int add_prob_at(verifier *v, int32_t check, int64_t seq, int64_t kind, int64_t position,
                       int64_t version, int64_t off, int64_t len, int64_t other) {
    if (grow(&v->probs, &v->capprobs, v->nprobs + 1, sizeof *v->probs)) return ev_oom();
    v->probs[v->nprobs++] = (prob){check, seq, kind, position, version, other, off, len};
    return EVENTUALI_OK;
}

static int add_prob(verifier *v, int32_t check, int64_t seq, int64_t kind, int64_t position,
                    int64_t version, ev_str stream_id, int64_t other) {
    int64_t off;
    if (bytes_put(&v->strings, stream_id, &off)) return ev_oom();
    return add_prob_at(v, check, seq, kind, position, version, off, stream_id.n, other);
}

static int add_later(verifier *v, later **arr, int64_t *n, int64_t *cap, const ev_chain_entry *e) {
    int64_t off;
    if (grow(arr, cap, *n + 1, sizeof **arr) || bytes_put(&v->strings, e->stream_id, &off)) return ev_oom();
    (*arr)[(*n)++] = (later){e->seq, e->kind, e->position, e->version, off, e->stream_id.n, NULL};
    return EVENTUALI_OK;
}

static int cmp_kept(const void *a, const void *b) {
    const later *x = a, *y = b;
    int64_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, (size_t)n) : 0;
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_prob(const void *a, const void *b) {
    const prob *x = a, *y = b;
    if (x->position != y->position) return x->position < y->position ? -1 : 1;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return (x->check > y->check) - (x->check < y->check);
}

/* a later retention entry (delete of the stream, or truncate above its version) removed m */
static int excused(const verifier *v, const later *m) {
    const uint8_t *s = v->strings.p;
    int64_t lo = 0, hi = v->nkept;
    while (lo < hi) { /* first kept entry of m's stream */
        int64_t mid = lo + (hi - lo) / 2;
        const later *k = &v->kept[mid];
        int64_t n = k->len < m->len ? k->len : m->len;
        int c = n ? memcmp(s + k->off, s + m->off, (size_t)n) : 0;
        if (c < 0 || (c == 0 && k->len < m->len)) lo = mid + 1;
        else hi = mid;
    }
    for (int64_t i = lo; i < v->nkept; i++) {
        const later *k = &v->kept[i];
        if (k->len != m->len || (m->len && memcmp(s + k->off, s + m->off, (size_t)m->len) != 0)) break;
        if (k->seq > m->seq && (k->kind == EV_KIND_DELETE || m->version < k->version)) return 1;
    }
    return 0;
}

static int finish(verifier *v, eventuali_chain_problems **out);

int ev_verify_chain(const ev_verify_src *src, eventuali_chain_problems **out) {
    verifier v;
    memset(&v, 0, sizeof v);
    ev_hasher *h = ev_hasher_new();
    if (!h) return ev_oom();
    uint8_t prev[EV_HASH_LEN] = {0}, link[EV_HASH_LEN], digest[EV_HASH_LEN];
    int64_t expected_seq = 1, last_position = 0;
    ev_chain_entry e;
    ev_vrec r;
    int has_e = 0, has_r = 0, rc;
    if ((rc = src->next_record(src->ctx, &r, &has_r))) goto done;
    for (;;) {
        if ((rc = src->next_entry(src->ctx, &e, &has_e)) || !has_e) break;
        if (e.seq != expected_seq &&
            (rc = add_prob(&v, EV_CHECK_MISSING_ENTRIES, e.seq, e.kind, e.position, e.version, e.stream_id,
                           expected_seq)))
            break;
        if ((rc = ev_chain_link(h, prev, e.kind, e.position, e.version, e.stream_id, e.digest, link))) break;
        int linked = memcmp(link, e.hash, EV_HASH_LEN) == 0;
        if (!linked && (rc = add_prob(&v, EV_CHECK_BROKEN_LINK, e.seq, e.kind, e.position, e.version,
                                      e.stream_id, 0)))
            break;
        memcpy(prev, e.hash, EV_HASH_LEN); /* go on from the stored hash: later damage is located too */
        expected_seq = e.seq + 1;
        if (e.kind == EV_KIND_EVENT) {
            if (e.position <= last_position) {
                if ((rc = add_prob(&v, EV_CHECK_OUT_OF_ORDER, e.seq, e.kind, e.position, e.version,
                                   e.stream_id, last_position)))
                    break;
            } else {
                last_position = e.position;
            }
            while (has_r && r.position < e.position) {
                if ((rc = add_prob(&v, EV_CHECK_UNCHAINED, 0, EV_KIND_EVENT, r.position, r.version,
                                   r.stream_id, 0)) ||
                    (rc = src->next_record(src->ctx, &r, &has_r)))
                    goto done;
            }
            if (has_r && r.position == e.position) {
                int same = r.stream_id.n == e.stream_id.n && r.version == e.version &&
                           (e.stream_id.n == 0 || memcmp(r.stream_id.p, e.stream_id.p, (size_t)e.stream_id.n) == 0);
                if (same) {
                    if ((rc = ev_event_digest(h, r.event_id, r.stream_type, r.event_type, r.schema_version,
                                              r.timestamp, r.tenant, r.metadata, r.payload, digest)))
                        break;
                    same = memcmp(digest, e.digest, EV_HASH_LEN) == 0;
                }
                if (!same && (rc = add_prob(&v, EV_CHECK_ALTERED, e.seq, e.kind, e.position, e.version,
                                            e.stream_id, 0)))
                    break;
                if ((rc = src->next_record(src->ctx, &r, &has_r))) break;
            } else if ((rc = add_later(&v, &v.missing, &v.nmissing, &v.capmissing, &e))) {
                break;
            }
        } else if (e.kind == EV_KIND_DELETE || e.kind == EV_KIND_TRUNCATE) {
            /* a retention entry that does not chain excuses nothing */
            if (linked && (rc = add_later(&v, &v.kept, &v.nkept, &v.capkept, &e))) break;
        } else if ((rc = add_prob(&v, EV_CHECK_UNKNOWN_KIND, e.seq, e.kind, e.position, e.version,
                                  e.stream_id, 0))) {
            break;
        }
    }
    while (!rc && has_r) {
        if ((rc = add_prob(&v, EV_CHECK_UNCHAINED, 0, EV_KIND_EVENT, r.position, r.version, r.stream_id, 0)))
            break;
        rc = src->next_record(src->ctx, &r, &has_r);
    }
    if (rc) goto done;
    for (int64_t i = 0; i < v.nkept; i++) v.kept[i].p = v.strings.p + v.kept[i].off;
    if (v.nkept) qsort(v.kept, (size_t)v.nkept, sizeof *v.kept, cmp_kept);
    for (int64_t i = 0; i < v.nmissing; i++) {
        const later *m = &v.missing[i];
        if (excused(&v, m)) continue;
        if ((rc = add_prob_at(&v, EV_CHECK_MISSING, m->seq, m->kind, m->position, m->version, m->off, m->len, 0)))
            goto done;
    }
    rc = finish(&v, out);
done:
    ev_hasher_free(h);
    free(v.probs);
    free(v.missing);
    free(v.kept);
    free(v.strings.p);
    return rc;
}

typedef struct pout {
    eventuali_chain_problems pub; /* first: the caller frees through it */
    int32_t *checks;
    int64_t *ints; /* seqs, kinds, positions, versions, others, offsets (count + 1) */
    uint8_t *strings;
} pout;

static int finish(verifier *v, eventuali_chain_problems **out) {
    int64_t n = v->nprobs;
    pout *o = calloc(1, sizeof *o);
    if (o) {
        o->checks = malloc((size_t)(n ? n : 1) * sizeof *o->checks);
        o->ints = malloc((size_t)(6 * n + 1) * sizeof *o->ints);
        o->strings = malloc((size_t)(v->strings.n ? v->strings.n : 1));
    }
    if (!o || !o->checks || !o->ints || !o->strings) {
        if (o) eventuali_chain_problems_free(&o->pub);
        return ev_oom();
    }
    if (n) qsort(v->probs, (size_t)n, sizeof *v->probs, cmp_prob);
    int64_t *seqs = o->ints, *kinds = seqs + n, *positions = kinds + n, *versions = positions + n,
            *others = versions + n, *offsets = others + n, used = 0;
    for (int64_t i = 0; i < n; i++) {
        const prob *p = &v->probs[i];
        o->checks[i] = p->check;
        seqs[i] = p->seq;
        kinds[i] = p->kind;
        positions[i] = p->position;
        versions[i] = p->version;
        others[i] = p->other;
        offsets[i] = used;
        if (p->len) memcpy(o->strings + used, v->strings.p + p->off, (size_t)p->len);
        used += p->len;
    }
    offsets[n] = used;
    o->pub = (eventuali_chain_problems){n, o->checks, seqs, kinds, positions, versions, others, o->strings, offsets};
    *out = &o->pub;
    return EVENTUALI_OK;
}

EVENTUALI_API void eventuali_chain_problems_free(eventuali_chain_problems *problems) {
    pout *o = (pout *)problems;
    if (!o) return;
    free(o->checks);
    free(o->ints);
    free(o->strings);
    free(o);
}
