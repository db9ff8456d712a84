/*
 * driver.c - a short workload over the whole of eventuali.h, for valgrind.
 *
 * Runs every call on memory://, a named memory store and a SQLite file
 * (argv[1], default /tmp/eventuali-driver.db), including the error paths
 * (bad input, concurrency, duplicates, deleted streams, use after close) and
 * a waiter thread woken by a writer.  Exits non-zero on any unexpected
 * result; valgrind's --error-exitcode catches memory errors and leaks.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventuali.h"

static int failures;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, __LINE__, \
                    #cond, eventuali_last_error_message());                                \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static uint64_t next_id = 1;

/* Append `n` records to one stream with `expected`; returns the status. */
static int append_n(eventuali_store *s, const char *stream, int64_t expected, int n, const char *tenant,
                    int64_t *positions) {
    uint8_t ids[16 * 64];
    int64_t id_lens[64], et_chars[64], sv[64], ts[64], meta_lens[64], pay_lens[64];
    char types[64], meta[64 * 2], pay[64 * 5];
    for (int i = 0; i < n; i++) {
        memset(ids + 16 * i, 0, 16);
        uint64_t id = next_id++;
        memcpy(ids + 16 * i, &id, 8);
        id_lens[i] = 16;
        types[i] = (char)('A' + i % 3);
        et_chars[i] = 1;
        sv[i] = 1;
        ts[i] = 1000 + i;
        memcpy(meta + 2 * i, "{}", 2);
        meta_lens[i] = 2;
        memcpy(pay + 5 * i, "hello", 5);
        pay_lens[i] = 5;
    }
    int64_t sid_chars = (int64_t)strlen(stream), st_chars = 5, tn_chars = (int64_t)strlen(tenant), cnt = n;
    eventuali_append_request q;
    memset(&q, 0, sizeof q);
    q.n_writes = 1;
    q.stream_ids = (eventuali_text_column){(const uint8_t *)stream, sid_chars, &sid_chars};
    q.stream_types = (eventuali_text_column){(const uint8_t *)"Order", 5, &st_chars};
    q.tenants = (eventuali_text_column){(const uint8_t *)tenant, tn_chars, &tn_chars};
    q.expected_versions = &expected;
    q.record_counts = &cnt;
    q.n_records = n;
    q.event_ids = (eventuali_bytes_column){ids, 16 * n, id_lens};
    q.event_types = (eventuali_text_column){(const uint8_t *)types, n, et_chars};
    q.schema_versions = sv;
    q.timestamps = ts;
    q.metadata = (eventuali_bytes_column){(const uint8_t *)meta, 2 * n, meta_lens};
    q.payloads = (eventuali_bytes_column){(const uint8_t *)pay, 5 * n, pay_lens};
    int64_t dummy[64];
    return eventuali_append(s, &q, positions ? positions : dummy);
}

static int64_t count_stream(eventuali_store *s, const char *stream) {
    eventuali_records *r = NULL;
    if (eventuali_read_stream(s, (const uint8_t *)stream, (int64_t)strlen(stream), 1, -1, -1, &r)) return -1;
    int64_t n = r->count;
    eventuali_records_free(r);
    return n;
}

typedef struct waiter_arg {
    eventuali_store *s;
    int64_t head;
    int status;
} waiter_arg;

static void *waiter(void *p) {
    waiter_arg *w = p;
    w->status = eventuali_wait_for(w->s, 0, 5 * 1000000, &w->head);
    return NULL;
}

static void workload(eventuali_store *s, eventuali_store *second_handle) {
    int64_t pos[64], v = -1, head = -1, removed = -1;
    uint32_t caps = 0;
    uint64_t first_id = next_id;
    CHECK(eventuali_capabilities(s, &caps) == EVENTUALI_OK && (caps & EVENTUALI_CAP_SNAPSHOTS));

    /* a waiter on another handle, woken by the first append */
    waiter_arg w = {second_handle ? second_handle : s, -1, -1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, waiter, &w) == 0);
    usleep(20000);

    CHECK(append_n(s, "order-1", EVENTUALI_NO_STREAM, 10, "acme", pos) == EVENTUALI_OK);
    CHECK(pos[0] == 1 && pos[9] == 10);
    pthread_join(t, NULL);
    CHECK(w.status == EVENTUALI_OK && w.head == 10);
    CHECK(append_n(s, "order-2", 0, 5, "", NULL) == EVENTUALI_OK);
    CHECK(append_n(s, "order-1", 3, 1, "", NULL) == EVENTUALI_ERR_CONCURRENCY);
    eventuali_error_detail d;
    CHECK(eventuali_last_error_detail(&d) == EVENTUALI_ERR_CONCURRENCY && d.expected == 3 && d.actual == 10);
    next_id = first_id; /* reuse a stored id */
    CHECK(append_n(s, "order-3", EVENTUALI_ANY, 1, "", NULL) == EVENTUALI_ERR_DUPLICATE_EVENT);
    next_id = first_id + 1000;
    CHECK(append_n(s, "", EVENTUALI_ANY, 1, "", NULL) == EVENTUALI_ERR_INVALID_INPUT);
    CHECK(eventuali_stream_version(s, (const uint8_t *)"order-1", 7, &v) == EVENTUALI_OK && v == 10);
    CHECK(count_stream(s, "order-1") == 10);

    /* read_all, with and without a filter */
    eventuali_records *r = NULL;
    CHECK(eventuali_read_all(s, 1, -1, NULL, &r) == EVENTUALI_OK && r->count == 15);
    eventuali_records_free(r);
    int64_t et_chars[2] = {1, 1};
    eventuali_filter f;
    memset(&f, 0, sizeof f);
    f.n_event_types = 2;
    f.event_types = (eventuali_text_column){(const uint8_t *)"AB", 2, et_chars};
    f.n_stream_types = -1;
    f.has_tenant = 1;
    f.tenant = (const uint8_t *)"acme";
    f.tenant_len = 4;
    f.has_stream_id_prefix = 1;
    f.stream_id_prefix = (const uint8_t *)"order-";
    f.stream_id_prefix_len = 6;
    r = NULL;
    CHECK(eventuali_read_all(s, 2, 100, &f, &r) == EVENTUALI_OK && r->count == 6);
    eventuali_records_free(r);

    /* snapshots and checkpoints */
    CHECK(eventuali_save_snapshot(s, (const uint8_t *)"order-1", 7, 5, 1, 9, (const uint8_t *)"state5", 6) == 0);
    CHECK(eventuali_save_snapshot(s, (const uint8_t *)"order-1", 7, 8, 1, 9, (const uint8_t *)"state8", 6) == 0);
    CHECK(eventuali_save_snapshot(s, (const uint8_t *)"order-1", 7, 8, 2, 9, (const uint8_t *)"again8", 6) == 0);
    eventuali_snapshot *snap = NULL;
    CHECK(eventuali_load_snapshot(s, (const uint8_t *)"order-1", 7, 7, &snap) == 0 && snap && snap->version == 5);
    eventuali_snapshot_free(snap);
    snap = NULL;
    CHECK(eventuali_load_snapshot(s, (const uint8_t *)"order-1", 7, -1, &snap) == 0 && snap &&
          snap->schema_version == 2 && memcmp(snap->payload, "again8", 6) == 0);
    eventuali_snapshot_free(snap);
    CHECK(eventuali_prune_snapshots(s, (const uint8_t *)"order-1", 7, 1, &removed) == 0 && removed == 1);
    CHECK(eventuali_set_checkpoint(s, (const uint8_t *)"proj", 4, 12) == 0);
    int32_t found = 0;
    CHECK(eventuali_get_checkpoint(s, (const uint8_t *)"proj", 4, &v, &found) == 0 && found && v == 12);

    /* retention */
    CHECK(eventuali_truncate_stream(s, (const uint8_t *)"order-1", 7, 4, &removed) == 0 && removed == 3);
    CHECK(count_stream(s, "order-1") == 7);
    CHECK(eventuali_delete_stream(s, (const uint8_t *)"order-2", 7, &removed) == 0 && removed == 5);
    CHECK(append_n(s, "order-2", EVENTUALI_ANY, 1, "", NULL) == EVENTUALI_ERR_STREAM_DELETED);
    CHECK(eventuali_head(s, &head) == 0 && head == 15);
    CHECK(eventuali_wait_for(s, 100, 1000, &head) == 0 && head == 15);

    /* many small appends, then many reads: exercises growth paths */
    for (int i = 0; i < 200; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "bulk-%d", i % 20);
        CHECK(append_n(s, sid, EVENTUALI_ANY, 1 + i % 7, i % 2 ? "acme" : "", NULL) == 0);
    }
    CHECK(count_stream(s, "bulk-3") > 0);
    CHECK(append_n(s, "big", EVENTUALI_NO_STREAM, 64, "", pos) == 0 && pos[63] == pos[0] + 63);
    CHECK(count_stream(s, "big") == 64);
    CHECK(eventuali_delete_stream(s, (const uint8_t *)"bulk-3", 6, &removed) == 0 && removed > 0);
    r = NULL;
    CHECK(eventuali_read_all(s, 1, -1, NULL, &r) == EVENTUALI_OK && r->count > 500);
    eventuali_records_free(r);
}

static void closed_handle_checks(eventuali_store *s) {
    int64_t head;
    CHECK(eventuali_close(s) == EVENTUALI_OK);
    CHECK(eventuali_close(s) == EVENTUALI_ERR_CLOSED);
    CHECK(eventuali_head(s, &head) == EVENTUALI_ERR_CLOSED);
    CHECK(append_n(s, "x", EVENTUALI_ANY, 1, "", NULL) == EVENTUALI_ERR_CLOSED);
    eventuali_store_free(s);
}

/* integrity=chain: entries for appends and retention, reads of the chain, an intact check */
static void chain_workload(eventuali_store *s) {
    int64_t removed;
    uint32_t caps = 0;
    eventuali_chain *c = NULL;
    eventuali_chain_problems *p = NULL;
    CHECK(eventuali_capabilities(s, &caps) == 0 && (caps & EVENTUALI_CAP_INTEGRITY));
    CHECK(eventuali_chain_head(s, &c) == 0 && c && c->count == 0);
    eventuali_chain_free(c);
    CHECK(append_n(s, "a", EVENTUALI_NO_STREAM, 3, "t", NULL) == 0);
    CHECK(append_n(s, "b", EVENTUALI_NO_STREAM, 2, "", NULL) == 0);
    CHECK(append_n(s, "a", 1, 1, "t", NULL) == EVENTUALI_ERR_CONCURRENCY); /* chains nothing */
    CHECK(eventuali_truncate_stream(s, (const uint8_t *)"a", 1, 3, &removed) == 0 && removed == 2);
    CHECK(eventuali_delete_stream(s, (const uint8_t *)"b", 1, &removed) == 0 && removed == 2);
    CHECK(eventuali_read_chain(s, 1, -1, &c) == 0 && c && c->count == 7);
    if (c && c->count == 7) {
        CHECK(c->kinds[5] == 3 && c->versions[5] == 3 && c->kinds[6] == 2);
        CHECK(c->string_offsets[7] - c->string_offsets[6] == 1 && c->strings[c->string_offsets[6]] == 'b');
    }
    eventuali_chain_free(c);
    CHECK(eventuali_read_chain(s, 6, 1, &c) == 0 && c && c->count == 1 && c->seqs[0] == 6);
    eventuali_chain_free(c);
    CHECK(eventuali_chain_head(s, &c) == 0 && c && c->count == 1 && c->seqs[0] == 7);
    eventuali_chain_free(c);
    CHECK(eventuali_read_chain(s, 0, -1, &c) == EVENTUALI_ERR_INVALID_INPUT && c == NULL);
    CHECK(eventuali_read_chain(s, 1, 0, &c) == EVENTUALI_ERR_INVALID_INPUT && c == NULL);
    CHECK(eventuali_read_chain(s, 1, -1, NULL) == EVENTUALI_ERR_INVALID_INPUT);
    CHECK(eventuali_verify_chain(s, &p) == 0 && p && p->count == 0);
    eventuali_chain_problems_free(p);
    eventuali_chain_free(NULL);
    eventuali_chain_problems_free(NULL);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/tmp/eventuali-driver.db";
    char wal[1024], shm[1024];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    unlink(path);
    unlink(wal);
    unlink(shm);
    int64_t head;
    CHECK(eventuali_abi_version() == EVENTUALI_ABI_VERSION);
    CHECK(eventuali_head(NULL, &head) == EVENTUALI_ERR_INVALID_INPUT);

    eventuali_store *mem = NULL;
    CHECK(eventuali_open(EVENTUALI_SCHEME_MEMORY, NULL, 0, 0, -1, NULL, 0, &mem) == 0);
    workload(mem, NULL);
    closed_handle_checks(mem);

    eventuali_store *named1 = NULL, *named2 = NULL;
    CHECK(eventuali_open(EVENTUALI_SCHEME_MEMORY, (const uint8_t *)"shared", 6, 0, -1, NULL, 0, &named1) == 0);
    CHECK(eventuali_open(EVENTUALI_SCHEME_MEMORY, (const uint8_t *)"shared", 6, 0, -1, NULL, 0, &named2) == 0);
    next_id = 5000;
    workload(named1, named2);
    CHECK(eventuali_head(named2, &head) == 0 && head > 15);
    closed_handle_checks(named1);
    eventuali_store_free(named2); /* closes it: the last handle frees the store */

    eventuali_store *file = NULL, *file2 = NULL;
    CHECK(eventuali_open(EVENTUALI_SCHEME_SQLITE, (const uint8_t *)path, (int64_t)strlen(path), 0, -1,
                         (const uint8_t *)"c driver", 8, &file) == 0);
    CHECK(eventuali_open(EVENTUALI_SCHEME_SQLITE, (const uint8_t *)path, (int64_t)strlen(path),
                         EVENTUALI_OPEN_SYNCHRONOUS_FULL, 1000, NULL, 0, &file2) == 0);
    next_id = 9000;
    workload(file, file2);
    closed_handle_checks(file);
    closed_handle_checks(file2);

    eventuali_store *chained = NULL, *plain = NULL;
    eventuali_chain_problems *problems = NULL;
    CHECK(eventuali_open(EVENTUALI_SCHEME_MEMORY, NULL, 0, EVENTUALI_OPEN_INTEGRITY_CHAIN, -1, NULL, 0,
                         &chained) == 0);
    next_id = 20000;
    chain_workload(chained);
    eventuali_store_free(chained);
    CHECK(eventuali_open(EVENTUALI_SCHEME_MEMORY, (const uint8_t *)"shared2", 7, 0, -1, NULL, 0, &plain) == 0);
    CHECK(append_n(plain, "x", EVENTUALI_NO_STREAM, 1, "", NULL) == 0);
    CHECK(eventuali_verify_chain(plain, &problems) == EVENTUALI_ERR_CONFIGURATION && problems == NULL);
    CHECK(eventuali_open(EVENTUALI_SCHEME_MEMORY, (const uint8_t *)"shared2", 7, EVENTUALI_OPEN_INTEGRITY_CHAIN,
                         -1, NULL, 0, &chained) == EVENTUALI_ERR_CONFIGURATION && chained == NULL);
    eventuali_store_free(plain);
    unlink(path);
    unlink(wal);
    unlink(shm);
    CHECK(eventuali_open(EVENTUALI_SCHEME_SQLITE, (const uint8_t *)path, (int64_t)strlen(path),
                         EVENTUALI_OPEN_INTEGRITY_CHAIN, -1, NULL, 0, &chained) == 0);
    next_id = 30000;
    chain_workload(chained);
    eventuali_store_free(chained);

    eventuali_store *bad = NULL;
    CHECK(eventuali_open(EVENTUALI_SCHEME_SQLITE, (const uint8_t *)"/nonexistent/dir/x.db", 21, 0, -1, NULL, 0,
                         &bad) == EVENTUALI_ERR_STORAGE && bad == NULL);
    unlink(path);
    unlink(wal);
    unlink(shm);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("driver: all checks passed\n");
    return failures ? 1 : 0;
}
