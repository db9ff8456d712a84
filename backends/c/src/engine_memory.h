/*
 * engine_memory.h - the memory engine's data structures, shared by
 * engine_memory.c (the Backend contract) and engine_memory_chain.c (its hash
 * chain).  Private to the memory engine.
 */
#ifndef EVENTUALI_ENGINE_MEMORY_H
#define EVENTUALI_ENGINE_MEMORY_H

#include "internal.h"

typedef struct sentry {
    uint64_t h;
    uint8_t *key; /* owned, NUL-terminated copy; NULL = empty slot */
    int64_t len;
    void *ptr;
    int64_t num;
} sentry;

typedef struct smap {
    sentry *slots;
    size_t cap, count;
} smap;

typedef struct mstream mstream;

typedef struct mrec {
    int64_t position, version, schema_version, timestamp;
    uint8_t id[16];
    mstream *stream;
    const ev_str *stream_type, *event_type, *tenant; /* interned: owned by the names map */
    int64_t meta_len, payload_len;
    uint8_t data[]; /* metadata then payload */
} mrec;

typedef struct msnap {
    int64_t version, schema_version, timestamp, len;
    uint8_t *payload;
} msnap;

struct mstream {
    ev_str id; /* points to the streams map's key copy: stable for the store's life */
    int64_t version;
    int deleted;
    mrec **recs;
    int64_t nrecs, caprecs;
    msnap *snaps;
    int64_t nsnaps, capsnaps;
    uint64_t epoch;   /* append that last planned this stream */
    int64_t planned;  /* its version after the writes planned so far in that append */
};

typedef struct mchain { /* one hash chain entry; seq = index + 1 */
    int64_t kind, position, version;
    mstream *stream; /* streams live as long as the store: a stable stream id */
    uint8_t digest[EV_HASH_LEN], hash[EV_HASH_LEN];
} mchain;

typedef struct mem {
    mchain *chain; /* integrity=chain; NULL hasher = no chain */
    int64_t nchain, capchain;
    ev_hasher *hasher;
    mrec **log;
    int64_t nlog, caplog;
    smap streams, names, checkpoints;
    mrec **ids; /* open-addressing set of stored records by event id */
    size_t idcap, idcount;
    int64_t last_position;
    uint64_t epoch;
} mem;

/* grow *arrp (elements of `elem` bytes) to hold `need`; -1 on out of memory */
int ev_grow_ptrs(void *arrp, int64_t *cap, int64_t need, size_t elem);

/* engine_memory_chain.c */
int ev_mem_chain_append(mem *m, const ev_append *a, mstream **streams);
int ev_mem_chain_retention(mem *m, int64_t kind, mstream *s, int64_t version);
int ev_mem_chained(void *impl);
int ev_mem_start_chain(void *impl);
int ev_mem_read_chain(void *impl, int64_t from_seq, int64_t limit, int newest_only, ev_cb *cb);
int ev_mem_verify_chain(void *impl, eventuali_chain_problems **out);

#endif
