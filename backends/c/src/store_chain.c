/*
 * store_chain.c - the hash-chain functions of eventuali.h: argument checks,
 * the store's lock (through store.c), and the engine's chain operations.
 */
#include <stdlib.h>

#include "internal.h"

static int not_chained(void) {
    return ev_fail(EVENTUALI_ERR_CONFIGURATION,
                   "this store keeps no hash chain; open it with the URL option integrity=chain "
                   "(a store that holds no event yet)");
}

static int32_t read_chain(eventuali_store *h, int64_t from_seq, int64_t limit, int newest_only,
                          eventuali_chain **out) {
    const ev_engine_ops *ops;
    void *impl;
    uint32_t caps;
    if (out) *out = NULL;
    ev_engine *g = ev_store_enter(h, &ops, &impl, &caps);
    if (!g) return eventuali_last_error_detail(NULL);
    int rc;
    ev_cb *cb = NULL;
    if (!out) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_read_chain: out is NULL");
    else if (!(caps & EVENTUALI_CAP_INTEGRITY)) rc = not_chained();
    else if (from_seq < 1)
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "from_seq must be >= 1, got %lld", (long long)from_seq);
    else if (limit < -1 || limit == 0)
        rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "limit must be >= 1 (or -1: none), got %lld", (long long)limit);
    else if (!(cb = ev_cb_new()))
        rc = ev_oom();
    else if ((rc = ops->read_chain(impl, from_seq, limit, newest_only, cb)) == EVENTUALI_OK) {
        *out = ev_cb_finish(cb); /* consumes cb */
        cb = NULL;
        if (!*out) rc = eventuali_last_error_detail(NULL);
    }
    ev_cb_free(cb);
    ev_store_leave(h, g);
    return rc;
}

EVENTUALI_API int32_t eventuali_read_chain(eventuali_store *store, int64_t from_seq, int64_t limit,
                                           eventuali_chain **out) {
    return read_chain(store, from_seq, limit, 0, out);
}

EVENTUALI_API int32_t eventuali_chain_head(eventuali_store *store, eventuali_chain **out) {
    return read_chain(store, 1, -1, 1, out);
}

EVENTUALI_API int32_t eventuali_verify_chain(eventuali_store *h, eventuali_chain_problems **out) {
    const ev_engine_ops *ops;
    void *impl;
    uint32_t caps;
    if (out) *out = NULL;
    ev_engine *g = ev_store_enter(h, &ops, &impl, &caps);
    if (!g) return eventuali_last_error_detail(NULL);
    int rc;
    if (!out) rc = ev_fail(EVENTUALI_ERR_INVALID_INPUT, "eventuali_verify_chain: out is NULL");
    else if (!(caps & EVENTUALI_CAP_INTEGRITY)) rc = not_chained();
    else rc = ops->verify_chain(impl, out);
    ev_store_leave(h, g);
    return rc;
}
