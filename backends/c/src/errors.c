/*
 * errors.c - the calling thread's last error: status, message and the
 * details an exception class needs (stream id, versions, event id).
 *
 * Thread-local, like errno: the shim reads it right after the failing call on
 * the same thread, so two threads never see each other's errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define EV_MSG_SIZE 1024

static _Thread_local char tl_message[EV_MSG_SIZE];
static _Thread_local eventuali_error_detail tl_detail;
static _Thread_local uint8_t tl_stream_id[4 * EV_MAX_NAME_CHARS + 4];

void ev_clear_error(void) {
    tl_message[0] = '\0';
    memset(&tl_detail, 0, sizeof tl_detail);
}

int ev_fail(int32_t status, const char *fmt, ...) {
    va_list ap;
    memset(&tl_detail, 0, sizeof tl_detail);
    tl_detail.status = status;
    va_start(ap, fmt);
    vsnprintf(tl_message, sizeof tl_message, fmt, ap);
    va_end(ap);
    return status;
}

int ev_oom(void) {
    return ev_fail(EVENTUALI_ERR_STORAGE, "out of memory in the native eventuali engine");
}

static void set_stream_id(ev_str s) {
    int64_t n = s.n;
    if (n > (int64_t)sizeof tl_stream_id) n = (int64_t)sizeof tl_stream_id;
    if (n > 0) memcpy(tl_stream_id, s.p, (size_t)n);
    tl_detail.stream_id = tl_stream_id;
    tl_detail.stream_id_len = n;
}

int ev_fail_concurrency(ev_str stream_id, int64_t expected, int64_t actual) {
    char q[96];
    /* The shim builds the standard OptimisticConcurrencyError message from the
     * details; this text is for C callers. */
    ev_fail(EVENTUALI_ERR_CONCURRENCY, "stream %s: expected version %lld, actual version %lld",
            ev_quote(stream_id, q, sizeof q), (long long)expected, (long long)actual);
    tl_detail.expected = expected;
    tl_detail.actual = actual;
    set_stream_id(stream_id);
    return EVENTUALI_ERR_CONCURRENCY;
}

int ev_fail_duplicate(const uint8_t *event_id) {
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", event_id[i]);
    ev_fail(EVENTUALI_ERR_DUPLICATE_EVENT,
            "event id %s is already stored; event ids must be unique", hex);
    memcpy(tl_detail.event_id, event_id, 16);
    return EVENTUALI_ERR_DUPLICATE_EVENT;
}

int ev_fail_deleted(ev_str stream_id) {
    char q[96];
    ev_fail(EVENTUALI_ERR_STREAM_DELETED,
            "stream %s was deleted; a deleted stream id cannot be reused",
            ev_quote(stream_id, q, sizeof q));
    set_stream_id(stream_id);
    return EVENTUALI_ERR_STREAM_DELETED;
}

const char *ev_quote(ev_str s, char *buf, size_t size) {
    /* 'text' with non-printable bytes escaped, cut with ... when too long */
    size_t o = 0;
    if (size < 8) {
        if (size) buf[0] = '\0';
        return buf;
    }
    buf[o++] = '\'';
    for (int64_t i = 0; i < s.n; i++) {
        uint8_t c = s.p[i];
        if (o + 6 >= size) {
            buf[o++] = '.';
            buf[o++] = '.';
            buf[o++] = '.';
            break;
        }
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o + 2 <= size) buf[o++] = '\'';
    buf[o < size ? o : size - 1] = '\0';
    return buf;
}

EVENTUALI_API const char *eventuali_last_error_message(void) { return tl_message; }

EVENTUALI_API int32_t eventuali_last_error_detail(eventuali_error_detail *out) {
    if (out) *out = tl_detail;
    return tl_detail.status;
}
