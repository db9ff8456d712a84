/*
 * fuzz_filter.c - libFuzzer target: eventuali_read_all with fuzzer-built
 * filters (name lists, prefixes, tenants; malformed or consistent) over a
 * small fixed store of each engine.
 */
#include <stdio.h>

#include "fuzz_common.h"

static eventuali_store *stores[2];

static void seed(eventuali_store *s) {
    static const uint8_t ids[3 * 16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                        2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                        3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    int64_t sid_chars[2] = {2, 3}, st_chars[2] = {1, 1}, tn_chars[2] = {0, 1}, exp[2] = {0, 0}, counts[2] = {2, 1};
    int64_t id_lens[3] = {16, 16, 16}, et_chars[3] = {1, 1, 2}, sv[3] = {1, 1, 1}, ts[3] = {0, 1, 2};
    int64_t zero[3] = {0, 0, 0};
    eventuali_append_request q;
    memset(&q, 0, sizeof q);
    q.n_writes = 2;
    q.stream_ids = (eventuali_text_column){(const uint8_t *)"abab2", 5, sid_chars};
    q.stream_types = (eventuali_text_column){(const uint8_t *)"TU", 2, st_chars};
    q.tenants = (eventuali_text_column){(const uint8_t *)"x", 1, tn_chars};
    q.expected_versions = exp;
    q.record_counts = counts;
    q.n_records = 3;
    q.event_ids = (eventuali_bytes_column){ids, 48, id_lens};
    q.event_types = (eventuali_text_column){(const uint8_t *)"ABCD", 4, et_chars};
    q.schema_versions = sv;
    q.timestamps = ts;
    q.metadata = (eventuali_bytes_column){(const uint8_t *)"", 0, zero};
    q.payloads = (eventuali_bytes_column){(const uint8_t *)"", 0, zero};
    int64_t pos[3];
    if (eventuali_append(s, &q, pos)) {
        fprintf(stderr, "seed append failed: %s\n", eventuali_last_error_message());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!stores[0]) {
        if (eventuali_open(EVENTUALI_SCHEME_MEMORY, NULL, 0, 0, -1, NULL, 0, &stores[0]) ||
            eventuali_open(EVENTUALI_SCHEME_SQLITE, (const uint8_t *)":memory:", 8, 0, -1, NULL, 0, &stores[1]))
            abort();
        seed(stores[0]);
        seed(stores[1]);
    }
    reader r = {data, size};
    arena a = {0};
    uint8_t mode = rd_u8(&r);
    int consistent = mode & 1;
    eventuali_filter f;
    memset(&f, 0, sizeof f);
    f.n_event_types = (mode & 2) ? rd_small(&r) : -1;
    f.n_stream_types = (mode & 4) ? rd_small(&r) : -1;
    if (consistent) {
        if (f.n_event_types > 8) f.n_event_types %= 8;
        if (f.n_stream_types > 8) f.n_stream_types %= 8;
    }
    int64_t ne = f.n_event_types > 0 && f.n_event_types < 64 ? f.n_event_types : 0;
    int64_t ns = f.n_stream_types > 0 && f.n_stream_types < 64 ? f.n_stream_types : 0;
    if (f.n_event_types >= 64) f.n_event_types = 0 - (int64_t)(mode & 1); /* keep allocations honest */
    if (f.n_stream_types >= 64) f.n_stream_types = -1;
    text_column(&a, &r, &f.event_types, ne, consistent);
    text_column(&a, &r, &f.stream_types, ns, consistent);
    if (mode & 8) {
        f.has_stream_id_prefix = 1;
        size_t len = rd_u8(&r) % 6;
        f.stream_id_prefix = keep(&a, rd_bytes(&r, len, 0));
        f.stream_id_prefix_len = (mode & 64) ? rd_small(&r) % 8 : (int64_t)len;
        if (f.stream_id_prefix_len > (int64_t)len) f.stream_id_prefix_len = (int64_t)len;
    }
    if (mode & 16) {
        f.has_tenant = 1;
        size_t len = rd_u8(&r) % 4;
        f.tenant = keep(&a, rd_bytes(&r, len, consistent));
        f.tenant_len = (int64_t)len;
    }
    int64_t from = rd_small(&r), limit = rd_small(&r);
    for (int i = 0; i < 2; i++) {
        eventuali_records *recs = NULL;
        int rc = eventuali_read_all(stores[i], from, limit, (mode & 128) ? NULL : &f, &recs);
        if (rc < 0 || rc > EVENTUALI_ERR_CONFIGURATION) abort();
        if (rc == EVENTUALI_OK && (!recs || recs->count > 3)) abort();
        eventuali_records_free(recs);
    }
    arena_free(&a);
    return 0;
}
