/*
 * fuzz_common.h - turn libFuzzer bytes into the buffers a caller of
 * eventuali.h passes in.  Every pointer is valid for the length the request
 * claims (that is the caller's side of the contract); everything else -
 * counts, per-item lengths, code-point counts, UTF-8, versions - comes from
 * the fuzzer and is what the library must survive with an error status.
 */
#ifndef EVENTUALI_FUZZ_COMMON_H
#define EVENTUALI_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eventuali.h"

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static inline uint8_t rd_u8(reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

/* small ints, mostly plausible, sometimes negative or huge */
static inline int64_t rd_small(reader *r) {
    uint8_t b = rd_u8(r);
    switch (b >> 6) {
    case 0: return b & 0x1f;
    case 1: return -(int64_t)(b & 0x07);
    case 2: return (int64_t)(b & 0x3f) * 7;
    default: return (b & 1) ? INT64_MAX - (b & 0x0f) : INT64_MIN + (b & 0x0f);
    }
}

/* A freshly allocated buffer of exactly `len` bytes, filled from the input
 * (zeros once it runs out); when `ascii`, bytes are mapped to letters so
 * that code-point counts equal byte counts. */
static inline uint8_t *rd_bytes(reader *r, size_t len, int ascii) {
    uint8_t *b = malloc(len ? len : 1);
    if (!b) abort();
    for (size_t i = 0; i < len; i++) {
        uint8_t c = rd_u8(r);
        b[i] = ascii ? (uint8_t)('a' + c % 26) : c;
    }
    return b;
}

/* Arena of allocations freed together after each input. */
typedef struct arena {
    void *ptrs[256];
    int n;
} arena;

static inline void *keep(arena *a, void *p) {
    if (a->n < 256) a->ptrs[a->n++] = p;
    return p;
}

static inline void arena_free(arena *a) {
    for (int i = 0; i < a->n; i++) free(a->ptrs[i]);
    a->n = 0;
}

static inline int64_t *int_array(arena *a, reader *r, int64_t n, int consistent, int64_t value) {
    int64_t *x = keep(a, calloc((size_t)(n > 0 ? n : 1), sizeof *x));
    for (int64_t i = 0; i < n; i++) x[i] = consistent ? value : rd_small(r);
    return x;
}

/* A text column of n strings: consistent (valid ASCII, counts right) or raw. */
static inline void text_column(arena *a, reader *r, eventuali_text_column *col, int64_t n, int consistent) {
    int64_t *chars = keep(a, calloc((size_t)(n > 0 ? n : 1), sizeof *chars));
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        chars[i] = consistent ? 1 + rd_u8(r) % 8 : rd_small(r);
        if (consistent) total += (size_t)chars[i];
    }
    if (!consistent) total = rd_u8(r) % 48;
    col->data = keep(a, rd_bytes(r, total, consistent));
    col->data_len = (int64_t)total;
    col->chars = chars;
    if (!consistent && (rd_u8(r) & 1)) col->chars = NULL; /* NUL-separated form */
}

static inline void bytes_column(arena *a, reader *r, eventuali_bytes_column *col, int64_t n, int consistent,
                         int64_t fixed) {
    int64_t *lens = keep(a, calloc((size_t)(n > 0 ? n : 1), sizeof *lens));
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        lens[i] = consistent ? (fixed ? fixed : rd_u8(r) % 24) : rd_small(r);
        if (consistent) total += (size_t)lens[i];
    }
    if (!consistent) total = rd_u8(r) % 96;
    col->data = keep(a, rd_bytes(r, total, 0));
    col->data_len = (int64_t)total;
    col->lens = lens;
}

#endif
