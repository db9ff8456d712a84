/*
 * fuzz_args.c - libFuzzer target: every other call that takes a buffer from
 * the caller (stream ids, checkpoint names, snapshot payloads, store names)
 * with fuzzer bytes and fuzzer integers, on both engines (chained stores:
 * retention writes chain entries; read_chain and verify_chain take fuzzer
 * integers, and every check must find the chain intact).
 */
#include "fuzz_common.h"

static eventuali_store *stores[2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!stores[0]) {
        if (eventuali_open(EVENTUALI_SCHEME_MEMORY, NULL, 0, EVENTUALI_OPEN_INTEGRITY_CHAIN, -1, NULL, 0, &stores[0]) ||
            eventuali_open(EVENTUALI_SCHEME_SQLITE, (const uint8_t *)":memory:", 8, EVENTUALI_OPEN_INTEGRITY_CHAIN, -1,
                           NULL, 0, &stores[1]))
            abort();
    }
    reader r = {data, size};
    uint8_t op = rd_u8(&r), which = rd_u8(&r) & 1;
    int64_t a1 = rd_small(&r), a2 = rd_small(&r);
    size_t len = r.n > 300 ? 300 : r.n;
    uint8_t *text = rd_bytes(&r, len, 0);
    int64_t n = (int64_t)len, out = 0;
    int32_t found = 0;
    eventuali_store *s = stores[which];
    eventuali_records *recs = NULL;
    eventuali_snapshot *snap = NULL;
    int rc = 0;
    eventuali_chain *chain = NULL;
    eventuali_chain_problems *problems = NULL;
    switch (op % 13) {
    case 11: rc = eventuali_read_chain(s, a1, a2, &chain); break;
    case 12:
        rc = eventuali_verify_chain(s, &problems);
        if (rc == 0 && problems->count != 0) abort(); /* only the engine wrote: intact */
        break;
    case 0: rc = eventuali_read_stream(s, text, n, a1, a2, rd_small(&r), &recs); break;
    case 1: rc = eventuali_stream_version(s, text, n, &out); break;
    case 2: rc = eventuali_save_snapshot(s, text, n / 2, a1, a2, 0, text + n / 2, n - n / 2); break;
    case 3: rc = eventuali_load_snapshot(s, text, n, a1, &snap); break;
    case 4: rc = eventuali_prune_snapshots(s, text, n, a1, &out); break;
    case 5: rc = eventuali_set_checkpoint(s, text, n, a1); break;
    case 6: rc = eventuali_get_checkpoint(s, text, n, &out, &found); break;
    case 7: rc = eventuali_truncate_stream(s, text, n, a1, &out); break;
    case 8: rc = eventuali_delete_stream(s, text, n, &out); break;
    case 9: rc = eventuali_wait_for(s, a1, a2 > 1000 || a2 < 0 ? (a2 < 0 ? a2 : 0) : a2, &out); break;
    default: {
        /* named memory stores: open two handles on the fuzzer's name, close both */
        eventuali_store *h1 = NULL, *h2 = NULL;
        rc = eventuali_open(EVENTUALI_SCHEME_MEMORY, text, n, 0, -1, NULL, 0, &h1);
        if (rc == 0 && eventuali_open(EVENTUALI_SCHEME_MEMORY, text, n, 0, -1, NULL, 0, &h2) != 0) abort();
        eventuali_close(h1);
        eventuali_store_free(h1);
        eventuali_store_free(h2);
        break;
    }
    }
    if (rc < 0 || rc > EVENTUALI_ERR_CONFIGURATION) abort();
    eventuali_chain_free(chain);
    eventuali_chain_problems_free(problems);
    eventuali_records_free(recs);
    eventuali_snapshot_free(snap);
    free(text);
    return 0;
}
