/*
 * fuzz_append.c - libFuzzer target: eventuali_append with fuzzer-built
 * requests (malformed or consistent) on a memory and a SQLite :memory:
 * store, followed by reads.  The library must answer every input with a
 * status, never a crash, leak or undefined behaviour.
 */
#include <stdio.h>

#include "fuzz_common.h"

static eventuali_store *stores[2];
static unsigned long runs;

static void open_stores(void) {
    for (int i = 0; i < 2; i++) {
        if (stores[i]) eventuali_store_free(stores[i]);
        stores[i] = NULL;
        /* with the hash chain: every accepted record is also hashed (and a failed append chains nothing) */
        int rc = i == 0 ? eventuali_open(EVENTUALI_SCHEME_MEMORY, NULL, 0, EVENTUALI_OPEN_INTEGRITY_CHAIN, -1,
                                         NULL, 0, &stores[i])
                        : eventuali_open(EVENTUALI_SCHEME_SQLITE, (const uint8_t *)":memory:", 8,
                                         EVENTUALI_OPEN_INTEGRITY_CHAIN, -1,
                                         (const uint8_t *)"fuzz", 4, &stores[i]);
        if (rc) {
            fprintf(stderr, "cannot open store %d: %s\n", i, eventuali_last_error_message());
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (runs++ % 2000 == 0) open_stores(); /* bound memory: start over now and then */
    reader r = {data, size};
    arena a = {0};
    uint8_t mode = rd_u8(&r);
    int consistent = mode & 1;
    eventuali_store *store = stores[(mode >> 1) & 1];
    eventuali_append_request req;
    memset(&req, 0, sizeof req);
    int64_t nw = rd_u8(&r) % 5, nr = rd_u8(&r) % 9;
    if (!consistent && (mode & 4)) nw = rd_small(&r);
    if (!consistent && (mode & 8)) nr = rd_small(&r);
    /* claimed counts are either backed by arrays of that size or absurd
     * (negative, or beyond the library's 2^40 bound): claiming 100 with
     * arrays of 1 would be the caller breaking the pointer contract */
    if (nw >= 64) nw = INT64_MAX;
    if (nr >= 64) nr = INT64_MAX;
    int64_t cw = nw > 0 && nw < 64 ? nw : 0, cr = nr > 0 && nr < 64 ? nr : 0; /* allocated sizes */
    req.n_writes = nw;
    req.n_records = nr;
    text_column(&a, &r, &req.stream_ids, cw, consistent);
    text_column(&a, &r, &req.stream_types, cw, consistent);
    text_column(&a, &r, &req.tenants, cw, consistent);
    req.expected_versions = int_array(&a, &r, cw, 0, 0);
    int64_t *counts = int_array(&a, &r, cw, 0, 0);
    if (consistent) { /* spread the records over the writes */
        int64_t left = cr;
        for (int64_t w = 0; w < cw; w++) {
            counts[w] = w == cw - 1 ? left : (left ? rd_u8(&r) % (left + 1) : 0);
            left -= counts[w];
        }
        for (int64_t w = 0; w < cw; w++) {
            int64_t *ev = (int64_t *)req.expected_versions;
            ev[w] = (int64_t)(rd_u8(&r) % 6) - 3;
        }
    }
    req.record_counts = counts;
    bytes_column(&a, &r, &req.event_ids, cr, consistent, 16);
    text_column(&a, &r, &req.event_types, cr, consistent);
    req.schema_versions = int_array(&a, &r, cr, consistent, 1);
    req.timestamps = int_array(&a, &r, cr, 0, 0);
    bytes_column(&a, &r, &req.metadata, cr, consistent, 0);
    bytes_column(&a, &r, &req.payloads, cr, consistent, 0);
    if (mode & 16) {
        req.has_checkpoint = 1;
        size_t len = rd_u8(&r) % 12;
        req.checkpoint_name = keep(&a, rd_bytes(&r, len, consistent));
        req.checkpoint_name_len = (int64_t)len;
        req.checkpoint_position = rd_small(&r);
    }
    if (mode & 32) { /* a NULL column pointer now and then */
        switch (rd_u8(&r) % 4) {
        case 0: req.record_counts = NULL; break;
        case 1: req.event_ids.lens = NULL; break;
        case 2: req.stream_ids.chars = NULL; break;
        default: req.timestamps = NULL; break;
        }
    }
    int64_t positions[64];
    int rc = eventuali_append(store, &req, positions);
    if (rc < 0 || rc > EVENTUALI_ERR_CONFIGURATION) abort();
    if (rc == EVENTUALI_OK && nr > 0 && positions[0] <= 0) abort();
    eventuali_records *recs = NULL;
    if (eventuali_read_all(store, 1, 50, NULL, &recs) != EVENTUALI_OK) abort();
    eventuali_records_free(recs);
    if (cw > 0 && req.stream_ids.chars && req.stream_ids.data_len > 0) {
        recs = NULL;
        eventuali_read_stream(store, req.stream_ids.data, req.stream_ids.data_len < 8 ? req.stream_ids.data_len : 8,
                              1, -1, -1, &recs);
        eventuali_records_free(recs);
    }
    arena_free(&a);
    return 0;
}
