/*
 * eventuali.h - the one ABI of a native eventuali storage engine.
 *
 * Any shared library that implements these functions can serve eventuali:
 * the Python shim (backends/c/eventuali_c) loads it with CFFI in ABI mode and
 * feeds THIS file to ffi.cdef() after stripping the preprocessor lines and
 * the EVENTUALI_API export marker (it reads EVENTUALI_ABI_VERSION from the
 * text), so the declarations below must stay plain C that CFFI's parser
 * accepts: no other macros inside declarations, nothing that needs an
 * #include to parse, fixed-width integer types only.
 *
 * Conventions
 *   - Every function that can fail returns an int32_t status: EVENTUALI_OK (0)
 *     or one of the EVENTUALI_ERR_* codes, each of which the shim maps to
 *     exactly one class of eventuali/errors.py.  On failure, the calling
 *     thread's last error (eventuali_last_error_message / _detail) says why;
 *     it stays valid until the thread's next call into the library.
 *   - Handles are opaque pointers.  A NULL handle is an error status
 *     (EVENTUALI_ERR_INVALID_INPUT), never a crash.
 *   - Text is UTF-8 given as pointer + length (no NUL terminator needed);
 *     invalid UTF-8, and the NUL character, are EVENTUALI_ERR_INVALID_INPUT.  Character limits
 *     (255 for ids and names) count code points, as Python's len() does.
 *   - Batches cross the boundary in one call: an append of N records over any
 *     number of streams is one eventuali_append(); a read of N records is one
 *     eventuali_read_*() that returns columns (arrays), not one object per
 *     record.  The contents of every input buffer are untrusted: counts and
 *     lengths that do not add up are an error status.  The pointers
 *     themselves must point to as many bytes/elements as the lengths say.
 *   - Everything the library allocates for the caller is released by the
 *     matching *_free() function; freeing NULL is a no-op.
 *   - Thread safety: a store handle may be used by several threads at once
 *     (one mutex per store); two stores never share a lock, so calls on two
 *     stores run in parallel.  eventuali_store_free() must be the last call
 *     on a handle: it waits for threads blocked in eventuali_wait_for() on it,
 *     which eventuali_close() wakes up.
 */
#ifndef EVENTUALI_H
#define EVENTUALI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EVENTUALI_API __declspec(dllexport)
#elif defined(__GNUC__)
#define EVENTUALI_API __attribute__((visibility("default")))
#else
#define EVENTUALI_API
#endif

/* Version of this ABI.  Bump it on ANY change to a declaration below; the
 * shim refuses a library whose eventuali_abi_version() differs from the
 * EVENTUALI_ABI_VERSION of the header it was built with. */
/* 2: the hash chain (integrity=chain). */
#define EVENTUALI_ABI_VERSION 2

/* ---- status codes: one per class of eventuali/errors.py ---------------- */
enum {
    EVENTUALI_OK = 0,
    EVENTUALI_ERR_INVALID_INPUT = 1,   /* InvalidInputError */
    EVENTUALI_ERR_CONCURRENCY = 2,     /* OptimisticConcurrencyError (detail: stream_id, expected, actual) */
    EVENTUALI_ERR_DUPLICATE_EVENT = 3, /* DuplicateEventError (detail: event_id) */
    EVENTUALI_ERR_STREAM_DELETED = 4,  /* StreamDeletedError (detail: stream_id) */
    EVENTUALI_ERR_STORAGE = 5,         /* StorageError (I/O, corrupt file, out of memory) */
    EVENTUALI_ERR_NOT_A_STORE = 6,     /* NotAnEventualiStoreError */
    EVENTUALI_ERR_SCHEMA_VERSION = 7,  /* SchemaVersionError */
    EVENTUALI_ERR_TRANSIENT = 8,       /* TransientStorageError (lock timeout; safe to retry) */
    EVENTUALI_ERR_CLOSED = 9,          /* StoreClosedError */
    EVENTUALI_ERR_CONFIGURATION = 10   /* ConfigurationError */
};

/* ---- schemes, open flags, capabilities ---------------------------------- */
enum {
    EVENTUALI_SCHEME_MEMORY = 1, /* path "" = private store; a name = one store shared by every open
                                  * in the process, for the life of the process */
    EVENTUALI_SCHEME_SQLITE = 2  /* path = file name, or ":memory:" */
};
enum {
    EVENTUALI_OPEN_SYNCHRONOUS_FULL = 1, /* SQLite: PRAGMA synchronous=FULL instead of NORMAL */
    EVENTUALI_OPEN_SYNCHRONOUS_OFF = 2,  /* SQLite: PRAGMA synchronous=OFF */
    EVENTUALI_OPEN_READ_ONLY = 4,        /* SQLite: an existing store, for reading only; writes
                                          * give EVENTUALI_ERR_STORAGE and write nothing */
    EVENTUALI_OPEN_INTEGRITY_CHAIN = 8   /* start a hash chain (a store that holds no event yet;
                                          * CONFIGURATION otherwise).  A SQLite file that keeps one
                                          * keeps it whatever the flags. */
};
/* Bits of eventuali_capabilities(), in the order of eventuali.protocol.CAPABILITIES names. */
enum {
    EVENTUALI_CAP_PERSISTENT = 1,
    EVENTUALI_CAP_MULTI_PROCESS = 2,
    EVENTUALI_CAP_SNAPSHOTS = 4,
    EVENTUALI_CAP_CHECKPOINTS = 8,
    EVENTUALI_CAP_DELETE = 16,
    EVENTUALI_CAP_TRUNCATE = 32,
    EVENTUALI_CAP_WAIT_FOR = 64,
    EVENTUALI_CAP_INTEGRITY = 128 /* the store keeps a hash chain */
};
/* Expected-version sentinels (eventuali.records); exact versions are >= 0. */
enum {
    EVENTUALI_ANY = -1,
    EVENTUALI_NO_STREAM = -2,
    EVENTUALI_STREAM_EXISTS = -3
};

typedef struct eventuali_store eventuali_store;

/* ---- input columns ----------------------------------------------------- */

/* `count` UTF-8 strings concatenated in `data`; string i has chars[i] code
 * points (not bytes).  The library splits `data` by walking the UTF-8, which
 * also validates it; the code points must use up exactly data_len bytes.
 * chars may be NULL: then the strings are separated by one NUL byte each
 * (count - 1 separators; text never contains NUL), which spares the caller
 * a length per string. */
typedef struct eventuali_text_column {
    const uint8_t *data;
    int64_t data_len;
    const int64_t *chars;
} eventuali_text_column;

/* `count` byte strings concatenated in `data`; string i is lens[i] bytes;
 * the lengths must add up to exactly data_len. */
typedef struct eventuali_bytes_column {
    const uint8_t *data;
    int64_t data_len;
    const int64_t *lens;
} eventuali_bytes_column;

/* One append: n_writes stream writes holding n_records records in order
 * (write i owns the next record_counts[i] records).  Atomic: all or nothing. */
typedef struct eventuali_append_request {
    int64_t n_writes;
    eventuali_text_column stream_ids;   /* n_writes */
    eventuali_text_column stream_types; /* n_writes */
    eventuali_text_column tenants;      /* n_writes */
    const int64_t *expected_versions;   /* n_writes: >= 0 or a sentinel */
    const int64_t *record_counts;       /* n_writes, each >= 0, summing to n_records */
    int64_t n_records;
    eventuali_bytes_column event_ids;   /* n_records, each exactly 16 bytes */
    eventuali_text_column event_types;  /* n_records, each 1..255 chars */
    const int64_t *schema_versions;     /* n_records, each >= 0 */
    const int64_t *timestamps;          /* n_records, microseconds since the epoch */
    eventuali_bytes_column metadata;    /* n_records */
    eventuali_bytes_column payloads;    /* n_records */
    int32_t has_checkpoint;             /* 1: also set a checkpoint in the same transaction */
    const uint8_t *checkpoint_name;
    int64_t checkpoint_name_len;
    int64_t checkpoint_position;
} eventuali_append_request;

/* read_all filter; a NULL field (or has_* = 0) means "no restriction". */
typedef struct eventuali_filter {
    int64_t n_event_types;              /* -1: no restriction; 0: matches nothing */
    eventuali_text_column event_types;
    int64_t n_stream_types;             /* -1: no restriction; 0: matches nothing */
    eventuali_text_column stream_types;
    int32_t has_stream_id_prefix;
    const uint8_t *stream_id_prefix;
    int64_t stream_id_prefix_len;
    int32_t has_tenant;
    const uint8_t *tenant;
    int64_t tenant_len;
} eventuali_filter;

/* ---- output: records as columns ---------------------------------------- */

/* A read result.  Integer columns are `count` int64 each.  Text fields are
 * indexes into one table of distinct strings (UTF-8, string k is
 * strings[string_offsets[k] .. string_offsets[k+1]) ), so a stream id that
 * repeats costs one decoded string.  The bytes fields of record i lie back to
 * back in `blob` from blob_offsets[i]: the 16-byte event id, then
 * metadata_lens[i] bytes of metadata, then the payload (up to
 * blob_offsets[i+1]).  struct_format describes the same blob for Python's
 * struct module ("=16s<m>s<p>s" per record), so a reader can split it into
 * bytes objects in one C-level call.  The four int64 columns are consecutive
 * in memory (positions, versions, schema_versions, timestamps: one array of
 * 4 * count), and so are the four int32 index columns (stream_ids,
 * stream_types, event_types, tenants), so each group converts in one call. */
typedef struct eventuali_records {
    int64_t count;
    const int64_t *positions;
    const int64_t *versions;
    const int64_t *schema_versions;
    const int64_t *timestamps;
    const int32_t *stream_ids;
    const int32_t *stream_types;
    const int32_t *event_types;
    const int32_t *tenants;
    int64_t n_strings;
    const uint8_t *strings;
    const int64_t *string_offsets; /* n_strings + 1 */
    const uint8_t *blob;
    const int64_t *blob_offsets;   /* count + 1 */
    const int64_t *metadata_lens;  /* count */
    const char *struct_format;     /* NUL-terminated */
} eventuali_records;

typedef struct eventuali_snapshot {
    int64_t version;
    int64_t schema_version;
    int64_t timestamp;
    const uint8_t *payload;
    int64_t payload_len;
} eventuali_snapshot;

/* Details of the calling thread's last error (fields not relevant to the
 * status are 0 / empty). */
typedef struct eventuali_error_detail {
    int32_t status;
    int64_t expected;           /* CONCURRENCY */
    int64_t actual;             /* CONCURRENCY */
    const uint8_t *stream_id;   /* CONCURRENCY, STREAM_DELETED (UTF-8) */
    int64_t stream_id_len;
    uint8_t event_id[16];       /* DUPLICATE_EVENT */
} eventuali_error_detail;

/* Hash chain entries (eventuali.protocol.ChainedBackend states the bytes
 * hashed).  Stream id i is strings[string_offsets[i] .. string_offsets[i+1]);
 * digests and hashes are 32 bytes per entry, back to back. */
typedef struct eventuali_chain {
    int64_t count;
    const int64_t *seqs;
    const int64_t *kinds; /* 1 event, 2 delete_stream, 3 truncate_stream */
    const int64_t *positions;
    const int64_t *versions;
    const uint8_t *strings;
    const int64_t *string_offsets; /* count + 1 */
    const uint8_t *digests;
    const uint8_t *hashes;
} eventuali_chain;

/* Problem codes of eventuali_verify_chain (eventuali.integrity.chain.CHECKS). */
enum {
    EVENTUALI_CHAIN_BROKEN_LINK = 1,     /* the entry does not follow its predecessor's hash */
    EVENTUALI_CHAIN_MISSING_ENTRIES = 2, /* entries other..seq-1 are gone */
    EVENTUALI_CHAIN_ALTERED = 3,         /* the record differs from the entry */
    EVENTUALI_CHAIN_MISSING = 4,         /* the record is gone and no later retention entry removed it */
    EVENTUALI_CHAIN_UNCHAINED = 5,       /* a record without an entry (seq 0) */
    EVENTUALI_CHAIN_OUT_OF_ORDER = 6,    /* an event entry at or below position `other` */
    EVENTUALI_CHAIN_UNKNOWN_KIND = 7
};

/* Problems found by eventuali_verify_chain, ordered by (position, seq, check). */
typedef struct eventuali_chain_problems {
    int64_t count;
    const int32_t *checks;
    const int64_t *seqs;
    const int64_t *kinds;
    const int64_t *positions;
    const int64_t *versions;
    const int64_t *others;
    const uint8_t *strings;        /* stream ids, as in eventuali_chain */
    const int64_t *string_offsets; /* count + 1 */
} eventuali_chain_problems;

/* ---- library ------------------------------------------------------------ */

/* The EVENTUALI_ABI_VERSION this library was built with. */
EVENTUALI_API int32_t eventuali_abi_version(void);
/* Library name and version, e.g. "eventuali-c 0.1.0" (static string). */
EVENTUALI_API const char *eventuali_library_version(void);
/* Version of the SQLite the library runs on (static string). */
EVENTUALI_API const char *eventuali_sqlite_version(void);
/* The calling thread's last error message (UTF-8, NUL-terminated; "" if none). */
EVENTUALI_API const char *eventuali_last_error_message(void);
/* Copy the calling thread's last error details into *out; returns its status. */
EVENTUALI_API int32_t eventuali_last_error_detail(eventuali_error_detail *out);

/* ---- store lifecycle ---------------------------------------------------- */

/* Open (creating if needed) a store.  scheme: EVENTUALI_SCHEME_*; flags:
 * EVENTUALI_OPEN_*; busy_timeout_ms: how long a SQLite writer waits for
 * another process's lock (-1: the default, 5000); created_by goes into a new
 * SQLite file's eventuali_meta. */
EVENTUALI_API int32_t eventuali_open(int32_t scheme, const uint8_t *path, int64_t path_len,
                                     int32_t flags, int32_t busy_timeout_ms, const uint8_t *created_by,
                                     int64_t created_by_len, eventuali_store **out);
/* EVENTUALI_CAP_* bits of an open store. */
EVENTUALI_API int32_t eventuali_capabilities(eventuali_store *store, uint32_t *out);
/* Release the store's resources and wake its waiters.  The handle stays valid
 * (every later call gives EVENTUALI_ERR_CLOSED, a second close too) until
 * eventuali_store_free(). */
EVENTUALI_API int32_t eventuali_close(eventuali_store *store);
/* Close if needed and release the handle itself. */
EVENTUALI_API void eventuali_store_free(eventuali_store *store);

/* ---- events ------------------------------------------------------------- */

/* Append atomically; on success positions_out[0..n_records) holds the global
 * positions of the records in request order.  Checks, in this order, before
 * writing anything: the request itself (INVALID_INPUT; an event id given
 * twice in the request is DUPLICATE_EVENT), then per write in order: deleted
 * stream (STREAM_DELETED), expected version (CONCURRENCY; a stream written
 * twice in one request sees its own earlier write), then event ids already
 * stored (DUPLICATE_EVENT). */
EVENTUALI_API int32_t eventuali_append(eventuali_store *store, const eventuali_append_request *request,
                                       int64_t *positions_out);
/* Records of one stream with from_version <= version <= to_version (-1: no
 * upper bound), at most `limit` (-1: no limit), oldest first. */
EVENTUALI_API int32_t eventuali_read_stream(eventuali_store *store, const uint8_t *stream_id,
                                            int64_t stream_id_len, int64_t from_version,
                                            int64_t to_version, int64_t limit,
                                            eventuali_records **out);
/* Records with position >= from_position matching `filter` (NULL: all), at
 * most `limit` (-1: no limit), in position order. */
EVENTUALI_API int32_t eventuali_read_all(eventuali_store *store, int64_t from_position, int64_t limit,
                                         const eventuali_filter *filter, eventuali_records **out);
EVENTUALI_API void eventuali_records_free(eventuali_records *records);

EVENTUALI_API int32_t eventuali_stream_version(eventuali_store *store, const uint8_t *stream_id,
                                               int64_t stream_id_len, int64_t *out);
/* The highest position ever assigned (it does not go down when the newest
 * events are deleted); 0 for an empty store. */
EVENTUALI_API int32_t eventuali_head(eventuali_store *store, int64_t *out);

/* ---- snapshots ---------------------------------------------------------- */

/* Saving a snapshot of a deleted stream is STREAM_DELETED; one with the same
 * (stream_id, version) is replaced. */
EVENTUALI_API int32_t eventuali_save_snapshot(eventuali_store *store, const uint8_t *stream_id,
                                              int64_t stream_id_len, int64_t version,
                                              int64_t schema_version, int64_t timestamp,
                                              const uint8_t *payload, int64_t payload_len);
/* *out = NULL when there is no snapshot with version <= max_version (-1: any). */
EVENTUALI_API int32_t eventuali_load_snapshot(eventuali_store *store, const uint8_t *stream_id,
                                              int64_t stream_id_len, int64_t max_version,
                                              eventuali_snapshot **out);
EVENTUALI_API void eventuali_snapshot_free(eventuali_snapshot *snapshot);
EVENTUALI_API int32_t eventuali_prune_snapshots(eventuali_store *store, const uint8_t *stream_id,
                                                int64_t stream_id_len, int64_t keep,
                                                int64_t *removed);

/* ---- checkpoints -------------------------------------------------------- */

/* *found = 0 when no checkpoint has that name. */
EVENTUALI_API int32_t eventuali_get_checkpoint(eventuali_store *store, const uint8_t *name,
                                               int64_t name_len, int64_t *position, int32_t *found);
EVENTUALI_API int32_t eventuali_set_checkpoint(eventuali_store *store, const uint8_t *name,
                                               int64_t name_len, int64_t position);

/* ---- live --------------------------------------------------------------- */

/* Block until head > after_position or timeout_us microseconds pass; *head
 * is the head then.  Woken at once by commits through this process; commits
 * by other processes are seen within a few milliseconds. */
EVENTUALI_API int32_t eventuali_wait_for(eventuali_store *store, int64_t after_position,
                                         int64_t timeout_us, int64_t *head);

/* ---- retention ---------------------------------------------------------- */

EVENTUALI_API int32_t eventuali_delete_stream(eventuali_store *store, const uint8_t *stream_id,
                                              int64_t stream_id_len, int64_t *removed);
EVENTUALI_API int32_t eventuali_truncate_stream(eventuali_store *store, const uint8_t *stream_id,
                                                int64_t stream_id_len, int64_t before_version,
                                                int64_t *removed);

/* ---- hash chain (stores with EVENTUALI_CAP_INTEGRITY; CONFIGURATION otherwise) ---- */

/* Entries with seq >= from_seq (>= 1), at most `limit` (-1: no limit), in seq order. */
EVENTUALI_API int32_t eventuali_read_chain(eventuali_store *store, int64_t from_seq, int64_t limit,
                                           eventuali_chain **out);
/* The newest entry (count 0 for an empty chain). */
EVENTUALI_API int32_t eventuali_chain_head(eventuali_store *store, eventuali_chain **out);
EVENTUALI_API void eventuali_chain_free(eventuali_chain *chain);
/* Check every entry against its predecessor and the stored records, on one
 * consistent read; count 0 = intact. */
EVENTUALI_API int32_t eventuali_verify_chain(eventuali_store *store, eventuali_chain_problems **out);
EVENTUALI_API void eventuali_chain_problems_free(eventuali_chain_problems *problems);

/* ---- AES-256-GCM batch (payload encryption) ------------------------------ */

/* Seal count payloads with one 32-byte key in eventuali.security's format 1:
 * out[i] = header | nonce | ciphertext | tag, back to back in out (out_len =
 * plain_len + count * (header_len + 28)); header is header1 where bound[i]
 * (the version is bound) else header0.  AAD: aad_prefix | header | event id
 * (16 bytes from event_ids) | be32 stream length | stream | be64 version if
 * bound.  streams/plain are joined, *_ends their cumulative end offsets;
 * nonces are 12 bytes each, drawn by the caller.  Needs no store. */
EVENTUALI_API int32_t eventuali_aead_seal_many(
    const uint8_t *key, int64_t key_len, const uint8_t *aad_prefix, int64_t aad_prefix_len,
    const uint8_t *header0, const uint8_t *header1, int64_t header_len, int64_t count,
    const uint8_t *nonces, const uint8_t *event_ids, const uint8_t *streams,
    const int64_t *stream_ends, int64_t streams_len, const int64_t *versions, const uint8_t *bound,
    const uint8_t *plain, const int64_t *plain_ends, int64_t plain_len, uint8_t *out,
    int64_t out_len);

#ifdef __cplusplus
}
#endif

#endif /* EVENTUALI_H */
