/*
 * store.c - the ABI functions of eventuali.h: handles, locking, wait_for,
 * and the registry of named memory stores.
 *
 * A handle (eventuali_store) points to an engine (the data: one SQLite
 * connection or one memory store).  Every call on an engine holds its mutex,
 * so calls on one store are serialized and calls on two stores run in
 * parallel.  memory://name opens share one engine, kept for the life of the
 * process, so that every handle in the process sees the same store; every
 * other open has its own engine.  Commits broadcast the engine's condition variable, which is
 * what wait_for() sleeps on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "internal.h"

#ifndef EVENTUALI_LIBRARY_VERSION
#define EVENTUALI_LIBRARY_VERSION "0.1.0"
#endif

/* How often wait_for re-reads the head of a file another process may write. */
#define EV_POLL_US 10000

typedef struct engine {
    const ev_engine_ops *ops;
    void *impl;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* broadcast on every commit and on close */
    uint32_t caps;
    int poll;               /* other processes may write: wait_for polls */
    int64_t refs;           /* handles using this engine (guarded by registry_mu) */
    char *name;             /* memory://name; NULL otherwise */
    struct engine *next;    /* registry list */
} engine;

struct eventuali_store {
    engine *eng;
    atomic_int closed;
    pthread_mutex_t mu; /* guards active, closing */
    pthread_cond_t idle;
    int64_t active; /* calls in progress on this handle */
    uint32_t magic;
};

#define EV_MAGIC 0x45564e54u /* "EVNT": catches a handle that is not one (best effort) */
#define EV_DEAD 0xdeadbeefu

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static engine *named_engines;

/* ---- library ------------------------------------------------------------- */

/* EVENTUALI_ABI_OVERRIDE exists only to build a deliberately mismatched
 * library for the load-time check's test. */
#ifdef EVENTUALI_ABI_OVERRIDE
EVENTUALI_API int32_t eventuali_abi_version(void) { return EVENTUALI_ABI_OVERRIDE; }
#else
EVENTUALI_API int32_t eventuali_abi_version(void) { return EVENTUALI_ABI_VERSION; }
#endif

EVENTUALI_API const char *eventuali_library_version(void) {
    return "eventuali-c " EVENTUALI_LIBRARY_VERSION;
}

EVENTUALI_API const char *eventuali_sqlite_version(void) { return sqlite3_libversion(); }

/* ---- engines ------------------------------------------------------------- */

static engine *engine_new(const ev_engine_ops *ops, void *impl, uint32_t caps, int poll) {
    engine *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g);
        pthread_condattr_destroy(&ca);
        return NULL;
    }
    if (pthread_cond_init(&g->changed, &ca) != 0) {
        pthread_mutex_destroy(&g->mu);
        free(g);
        pthread_condattr_destroy(&ca);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    g->ops = ops;
    g->impl = impl;
    g->caps = caps;
    g->poll = poll;
    g->refs = 1;
    return g;
}

static void engine_destroy(engine *g) {
    g->ops->destroy(g->impl);
    pthread_cond_destroy(&g->changed);
    pthread_mutex_destroy(&g->mu);
    free(g->name);
    free(g);
}

/* Drop one reference; the last one destroys the engine (and unregisters a named one). */
static void engine_release(engine *g) {
    pthread_mutex_lock(&registry_mu);
    int last = --g->refs == 0;
    if (last && g->name) {
        for (engine **pp = &named_engines; *pp; pp = &(*pp)->next)
            if (*pp == g) {
                *pp = g->next;
                break;
            }
    }
    pthread_mutex_unlock(&registry_mu);
    if (last) engine_destroy(g);
}

static const uint32_t MEMORY_CAPS = EVENTUALI_CAP_SNAPSHOTS | EVENTUALI_CAP_CHECKPOINTS |
                                    EVENTUALI_CAP_DELETE | EVENTUALI_CAP_TRUNCATE |
                                    EVENTUALI_CAP_WAIT_FOR;

static int open_memory(ev_str name, engine **out) {
    int rc;
    void *impl;
    const ev_engine_ops *ops;
    if (name.n == 0) {
        if ((rc = ev_memory_open(&impl, &ops))) return rc;
        if (!(*out = engine_new(ops, impl, MEMORY_CAPS, 0))) {
            ops->destroy(impl);
            return ev_oom();
        }
        return EVENTUALI_OK;
    }
    pthread_mutex_lock(&registry_mu);
    for (engine *g = named_engines; g; g = g->next)
        if (strlen(g->name) == (size_t)name.n && memcmp(g->name, name.p, (size_t)name.n) == 0) {
            g->refs++;
            pthread_mutex_unlock(&registry_mu);
            *out = g;
            return EVENTUALI_OK;
        }
    rc = ev_memory_open(&impl, &ops);
    engine *g = NULL;
    if (!rc) {
        g = engine_new(ops, impl, MEMORY_CAPS, 0);
        if (g) g->name = malloc((size_t)name.n + 1);
        if (!g || !g->name) {
            if (g) engine_destroy(g);
            else ops->destroy(impl);
            rc = ev_oom();
        }
    }
    if (!rc) {
        memcpy(g->name, name.p, (size_t)name.n);
        g->name[name.n] = '\0';
        /* the registry's own reference: a named store lives as long as the
         * process, as in the reference engine (open, close, open again: the
         * events are still there) */
        g->refs = 2;
        g->next = named_engines;
        named_engines = g;
        *out = g;
    }
    pthread_mutex_unlock(&registry_mu);
    return rc;
}

EVENTUALI_API int32_t eventuali_open(int32_t scheme, const uint8_t *path, int64_t path_len,
                                     int32_t flags, int32_t busy_timeout_ms, const uint8_t *created_by,
                                     int64_t created_by_len, eventuali_store **out) {
    ev_str p, cb;
    int rc;
    ev_clear_error();
    if (!out) return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_open: out is NULL");
    *out = NULL;
    if (path_len < 0 || path_len > 65536 || (path_len > 0 && !path))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_open: invalid path buffer (length %lld)",
                       (long long)path_len);
    int64_t chars;
    if (ev_utf8_chars(path, path_len, &chars))
        return ev_fail(EVENTUALI_ERR_CONFIGURATION, "store path is not valid UTF-8");
    if (memchr(path ? (const void *)path : "", 0, (size_t)path_len))
        return ev_fail(EVENTUALI_ERR_CONFIGURATION, "store path contains a NUL character");
    p.p = path;
    p.n = path_len;
    p.chars = chars;
    if ((rc = ev_text_arg(created_by, created_by_len, "created_by", 1, &cb))) return rc;
    if (flags & ~(EVENTUALI_OPEN_SYNCHRONOUS_FULL | EVENTUALI_OPEN_SYNCHRONOUS_OFF | EVENTUALI_OPEN_READ_ONLY |
                  EVENTUALI_OPEN_INTEGRITY_CHAIN) ||
        (flags & EVENTUALI_OPEN_SYNCHRONOUS_FULL && flags & EVENTUALI_OPEN_SYNCHRONOUS_OFF))
        return ev_fail(EVENTUALI_ERR_CONFIGURATION, "eventuali_open: invalid flags 0x%x", (unsigned)flags);
    if (busy_timeout_ms < -1)
        return ev_fail(EVENTUALI_ERR_CONFIGURATION, "busy_timeout %d ms is negative; give a timeout >= 0",
                       (int)busy_timeout_ms);
    engine *g = NULL;
    if (scheme == EVENTUALI_SCHEME_MEMORY) {
        rc = open_memory(p, &g);
        if (!rc && (flags & EVENTUALI_OPEN_INTEGRITY_CHAIN)) { /* a shared store: under its lock */
            pthread_mutex_lock(&g->mu);
            rc = g->ops->start_chain(g->impl);
            if (!rc) g->caps |= EVENTUALI_CAP_INTEGRITY;
            pthread_mutex_unlock(&g->mu);
            if (rc) engine_release(g);
        }
    } else if (scheme == EVENTUALI_SCHEME_SQLITE) {
        if (path_len == 0)
            return ev_fail(EVENTUALI_ERR_CONFIGURATION,
                           "no SQLite file named; use 'sqlite://events.db' or 'sqlite://:memory:'");
        char *cpath = malloc((size_t)path_len + 1);
        if (!cpath) return ev_oom();
        memcpy(cpath, path, (size_t)path_len);
        cpath[path_len] = '\0';
        int in_memory = strcmp(cpath, ":memory:") == 0;
        if (in_memory && (flags & EVENTUALI_OPEN_READ_ONLY)) {
            free(cpath);
            return ev_fail(EVENTUALI_ERR_CONFIGURATION, "read-only mode needs a database file, not :memory:");
        }
        void *impl;
        const ev_engine_ops *ops;
        rc = ev_sqlite_open(cpath, flags, busy_timeout_ms, cb, &impl, &ops);
        free(cpath);
        if (!rc) {
            uint32_t caps = MEMORY_CAPS | (in_memory ? 0 : EVENTUALI_CAP_PERSISTENT | EVENTUALI_CAP_MULTI_PROCESS) |
                            (ops->chained(impl) ? EVENTUALI_CAP_INTEGRITY : 0);
            g = engine_new(ops, impl, caps, !in_memory);
            if (!g) {
                ops->destroy(impl);
                rc = ev_oom();
            }
        }
    } else {
        return ev_fail(EVENTUALI_ERR_CONFIGURATION,
                       "eventuali_open: unknown scheme %d; use EVENTUALI_SCHEME_MEMORY (1) or "
                       "EVENTUALI_SCHEME_SQLITE (2)",
                       (int)scheme);
    }
    if (rc) return rc;
    eventuali_store *h = calloc(1, sizeof *h);
    if (!h || pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        engine_release(g);
        return ev_oom();
    }
    if (pthread_cond_init(&h->idle, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        engine_release(g);
        return ev_oom();
    }
    h->eng = g;
    atomic_init(&h->closed, 0);
    h->magic = EV_MAGIC;
    *out = h;
    return EVENTUALI_OK;
}

/* ---- call bracketing ------------------------------------------------------ */

/* Start a call on h: the engine, locked, or NULL with the error set. */
static engine *enter(eventuali_store *h) {
    ev_clear_error();
    if (!h) {
        ev_fail(EVENTUALI_ERR_INVALID_INPUT, "the store handle is NULL; open a store first");
        return NULL;
    }
    if (h->magic != EV_MAGIC) {
        ev_fail(EVENTUALI_ERR_CLOSED, "the store handle is not an open store (freed or invalid)");
        return NULL;
    }
    pthread_mutex_lock(&h->mu);
    if (atomic_load(&h->closed)) {
        pthread_mutex_unlock(&h->mu);
        ev_fail(EVENTUALI_ERR_CLOSED, "the store was closed; open it again to use it");
        return NULL;
    }
    h->active++;
    engine *g = h->eng;
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&g->mu);
    return g;
}

static void leave(eventuali_store *h, engine *g) {
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_lock(&h->mu);
    if (--h->active == 0) pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->mu);
}

ev_engine *ev_store_enter(eventuali_store *h, const ev_engine_ops **ops, void **impl, uint32_t *caps) {
    engine *g = enter(h);
    if (g) {
        *ops = g->ops;
        *impl = g->impl;
        *caps = g->caps;
    }
    return g;
}

void ev_store_leave(eventuali_store *h, ev_engine *g) { leave(h, g); }

#define ENTER(h)                                      \
    engine *g = enter(h);                             \
    if (!g) return eventuali_last_error_detail(NULL); \
    int rc

#define LEAVE(h)     \
    leave((h), g);   \
    return rc

#define STREAM_ARG(var, p, n)                                                         \
    ev_str var;                                                                       \
    if ((rc = ev_text_arg((p), (n), "stream id", 0, &var)) != EVENTUALI_OK) { LEAVE(h); }

EVENTUALI_API int32_t eventuali_capabilities(eventuali_store *h, uint32_t *out) {
    ENTER(h);
    if (!out) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_capabilities: out is NULL");
    } else {
        *out = g->caps;
        rc = EVENTUALI_OK;
    }
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_close(eventuali_store *h) {
    ev_clear_error();
    if (!h) return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "the store handle is NULL");
    if (h->magic != EV_MAGIC)
        return ev_fail(EVENTUALI_ERR_CLOSED, "the store handle is not an open store (freed or invalid)");
    pthread_mutex_lock(&h->mu);
    if (atomic_load(&h->closed)) {
        pthread_mutex_unlock(&h->mu);
        return ev_fail(EVENTUALI_ERR_CLOSED, "the store is already closed");
    }
    atomic_store(&h->closed, 1);
    engine *g = h->eng;
    pthread_mutex_unlock(&h->mu);
    /* wake this handle's waiters, then wait for every call in progress to leave */
    pthread_mutex_lock(&g->mu);
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_lock(&h->mu);
    while (h->active > 0) pthread_cond_wait(&h->idle, &h->mu);
    h->eng = NULL;
    pthread_mutex_unlock(&h->mu);
    engine_release(g);
    return EVENTUALI_OK;
}

EVENTUALI_API void eventuali_store_free(eventuali_store *h) {
    if (!h || h->magic != EV_MAGIC) return;
    if (!atomic_load(&h->closed)) eventuali_close(h);
    pthread_mutex_lock(&h->mu);
    while (h->active > 0) pthread_cond_wait(&h->idle, &h->mu);
    pthread_mutex_unlock(&h->mu);
    h->magic = EV_DEAD;
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ---- events -------------------------------------------------------------- */

EVENTUALI_API int32_t eventuali_append(eventuali_store *h, const eventuali_append_request *request,
                                       int64_t *positions_out) {
    ENTER(h);
    ev_append a;
    rc = ev_parse_append(request, &a);
    if (!rc) rc = ev_check_batch_duplicates(&a);
    if (!rc && a.n_records > 0 && !positions_out)
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_append: positions_out is NULL");
    if (!rc) {
        rc = g->ops->append(g->impl, &a, positions_out);
        if (!rc && a.n_records > 0) pthread_cond_broadcast(&g->changed);
    }
    ev_append_release(&a);
    LEAVE(h);
}

static int finish_read(int rc, ev_rb *rb, eventuali_records **out) {
    if (rc) {
        ev_rb_free(rb);
        return rc;
    }
    *out = ev_rb_finish(rb);
    return *out ? EVENTUALI_OK : ev_oom();
}

EVENTUALI_API int32_t eventuali_read_stream(eventuali_store *h, const uint8_t *stream_id,
                                            int64_t stream_id_len, int64_t from_version,
                                            int64_t to_version, int64_t limit,
                                            eventuali_records **out) {
    ENTER(h);
    if (!out) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_read_stream: out is NULL");
        LEAVE(h);
    }
    *out = NULL;
    STREAM_ARG(sid, stream_id, stream_id_len);
    if (from_version < 1) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "from_version %lld is below 1; versions start at 1",
                     (long long)from_version);
    } else if (to_version < -1 || (to_version >= 0 && to_version < from_version)) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                     "to_version %lld is below from_version %lld; give to_version >= from_version or None",
                     (long long)to_version, (long long)from_version);
    } else if (limit == 0 || limit < -1) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "limit %lld is below 1; give limit >= 1 or None",
                     (long long)limit);
    } else {
        ev_rb *rb = ev_rb_new();
        if (!rb) rc = ev_oom();
        else rc = finish_read(g->ops->read_stream(g->impl, sid, from_version, to_version, limit, rb), rb, out);
    }
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_read_all(eventuali_store *h, int64_t from_position, int64_t limit,
                                         const eventuali_filter *filter, eventuali_records **out) {
    ENTER(h);
    if (!out) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_read_all: out is NULL");
        LEAVE(h);
    }
    *out = NULL;
    if (limit == 0 || limit < -1) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "limit %lld is below 1; give limit >= 1 or None",
                     (long long)limit);
        LEAVE(h);
    }
    ev_filter f;
    if ((rc = ev_parse_filter(filter, &f))) {
        LEAVE(h);
    }
    ev_rb *rb = ev_rb_new();
    if (!rb) rc = ev_oom();
    else rc = finish_read(g->ops->read_all(g->impl, from_position < 1 ? 1 : from_position, limit, &f, rb), rb, out);
    ev_filter_release(&f);
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_stream_version(eventuali_store *h, const uint8_t *stream_id,
                                               int64_t stream_id_len, int64_t *out) {
    ENTER(h);
    STREAM_ARG(sid, stream_id, stream_id_len);
    if (!out) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_stream_version: out is NULL");
    else rc = g->ops->stream_version(g->impl, sid, out);
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_head(eventuali_store *h, int64_t *out) {
    ENTER(h);
    if (!out) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_head: out is NULL");
    else rc = g->ops->head(g->impl, out);
    LEAVE(h);
}

/* ---- snapshots ------------------------------------------------------------ */

EVENTUALI_API int32_t eventuali_save_snapshot(eventuali_store *h, const uint8_t *stream_id,
                                              int64_t stream_id_len, int64_t version,
                                              int64_t schema_version, int64_t timestamp,
                                              const uint8_t *payload, int64_t payload_len) {
    ENTER(h);
    STREAM_ARG(sid, stream_id, stream_id_len);
    if (version < 1) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "snapshot version %lld is below 1", (long long)version);
    } else if (payload_len < 0 || payload_len > INT32_MAX || (payload_len > 0 && !payload)) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "invalid snapshot payload buffer (length %lld)",
                     (long long)payload_len);
    } else {
        ev_str p = {payload, payload_len, 0};
        rc = g->ops->save_snapshot(g->impl, sid, version, schema_version, timestamp, p);
    }
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_load_snapshot(eventuali_store *h, const uint8_t *stream_id,
                                              int64_t stream_id_len, int64_t max_version,
                                              eventuali_snapshot **out) {
    ENTER(h);
    if (!out) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_load_snapshot: out is NULL");
        LEAVE(h);
    }
    *out = NULL;
    STREAM_ARG(sid, stream_id, stream_id_len);
    if (max_version < -1)
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "max_version %lld is invalid; give a version >= 0 or None",
                     (long long)max_version);
    else
        rc = g->ops->load_snapshot(g->impl, sid, max_version, out);
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_prune_snapshots(eventuali_store *h, const uint8_t *stream_id,
                                                int64_t stream_id_len, int64_t keep,
                                                int64_t *removed) {
    ENTER(h);
    STREAM_ARG(sid, stream_id, stream_id_len);
    if (!removed) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_prune_snapshots: removed is NULL");
    else if (keep < 0)
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "keep %lld is negative; give keep >= 0", (long long)keep);
    else
        rc = g->ops->prune_snapshots(g->impl, sid, keep, removed);
    LEAVE(h);
}

/* ---- checkpoints ----------------------------------------------------------- */

EVENTUALI_API int32_t eventuali_get_checkpoint(eventuali_store *h, const uint8_t *name,
                                               int64_t name_len, int64_t *position, int32_t *found) {
    ENTER(h);
    ev_str n;
    if ((rc = ev_text_arg(name, name_len, "checkpoint name", 0, &n))) {
        LEAVE(h);
    }
    if (!position || !found) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_get_checkpoint: NULL output");
    else rc = g->ops->get_checkpoint(g->impl, n, position, found);
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_set_checkpoint(eventuali_store *h, const uint8_t *name,
                                               int64_t name_len, int64_t position) {
    ENTER(h);
    ev_str n;
    if ((rc = ev_text_arg(name, name_len, "checkpoint name", 0, &n))) {
        LEAVE(h);
    }
    if (position < 0)
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "checkpoint position %lld is negative; positions are >= 0",
                     (long long)position);
    else
        rc = g->ops->set_checkpoint(g->impl, n, position);
    LEAVE(h);
}

/* ---- live ------------------------------------------------------------------ */

static void deadline_after(struct timespec *ts, int64_t us) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += us / 1000000;
    ts->tv_nsec += (long)(us % 1000000) * 1000;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int before(const struct timespec *a, const struct timespec *b) {
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

EVENTUALI_API int32_t eventuali_wait_for(eventuali_store *h, int64_t after_position,
                                         int64_t timeout_us, int64_t *head) {
    ENTER(h);
    if (!head) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_wait_for: head is NULL");
        LEAVE(h);
    }
    if (timeout_us < 0) {
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "timeout %lld us is negative; give a timeout >= 0",
                     (long long)timeout_us);
        LEAVE(h);
    }
    /* cap at ~30 years so the deadline arithmetic cannot overflow */
    if (timeout_us > (int64_t)1000000 * 86400 * 365 * 30) timeout_us = (int64_t)1000000 * 86400 * 365 * 30;
    struct timespec deadline, now, slice;
    deadline_after(&deadline, timeout_us);
    for (;;) {
        if ((rc = g->ops->head(g->impl, head))) break;
        if (*head > after_position) break;
        if (atomic_load(&h->closed)) {
            rc = ev_fail(EVENTUALI_ERR_CLOSED, "the store was closed while waiting for new events");
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!before(&now, &deadline)) break;
        if (g->poll) {
            /* another process may commit: wake up every EV_POLL_US to look */
            deadline_after(&slice, EV_POLL_US);
            if (before(&deadline, &slice)) slice = deadline;
        } else {
            slice = deadline;
        }
        int w = pthread_cond_timedwait(&g->changed, &g->mu, &slice);
        if (w != 0 && w != ETIMEDOUT && w != EINTR) {
            rc = ev_fail(EVENTUALI_ERR_STORAGE, "waiting for new events failed (error %d)", w);
            break;
        }
    }
    LEAVE(h);
}

/* ---- retention --------------------------------------------------------------- */

EVENTUALI_API int32_t eventuali_delete_stream(eventuali_store *h, const uint8_t *stream_id,
                                              int64_t stream_id_len, int64_t *removed) {
    ENTER(h);
    STREAM_ARG(sid, stream_id, stream_id_len);
    if (!removed) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_delete_stream: removed is NULL");
    else rc = g->ops->delete_stream(g->impl, sid, removed);
    LEAVE(h);
}

EVENTUALI_API int32_t eventuali_truncate_stream(eventuali_store *h, const uint8_t *stream_id,
                                                int64_t stream_id_len, int64_t before_version,
                                                int64_t *removed) {
    ENTER(h);
    STREAM_ARG(sid, stream_id, stream_id_len);
    if (!removed) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_truncate_stream: removed is NULL");
    else if (before_version < 1)
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "before_version %lld is below 1; versions start at 1",
                     (long long)before_version);
    else
        rc = g->ops->truncate_stream(g->impl, sid, before_version, removed);
    LEAVE(h);
}
