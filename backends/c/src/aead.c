/* AES-256-GCM over a batch of event payloads through OpenSSL's libcrypto.
 *
 * Produces exactly the bytes of eventuali.security.encryption (format 1), so
 * the Python path and this one read each other (golden vectors in
 * eventuali/testing/vectors/aead_v1.json).  One cipher context and one key
 * schedule serve the whole batch; the caller draws the nonces (os.urandom),
 * so no state here can ever repeat one.
 *
 * Per item i, with ends[] giving cumulative end offsets into the joined inputs:
 *   AAD = aad_prefix | header | event_id(16) | be32(len stream) | stream | [be64(version)]
 *   out = header | nonce(12) | ciphertext | tag(16)
 * where header = bound[i] ? header1 : header0 and the version is bound when bound[i].
 */
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "eventuali.h"
#include "internal.h"

#define NONCE 12
#define TAG 16
/* prefix + header (<= 255) + event id + length + stream id (<= 255 chars of UTF-8) + version */
#define AAD_MAX 2048

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

static int valid_ends(const int64_t *ends, int64_t count, int64_t total) {
    int64_t prev = 0;
    for (int64_t i = 0; i < count; i++) {
        if (ends[i] < prev || ends[i] > total) return 0;
        prev = ends[i];
    }
    return 1;
}

EVENTUALI_API int32_t eventuali_aead_seal_many(
    const uint8_t *key, int64_t key_len, const uint8_t *aad_prefix, int64_t aad_prefix_len,
    const uint8_t *header0, const uint8_t *header1, int64_t header_len, int64_t count,
    const uint8_t *nonces, const uint8_t *event_ids, const uint8_t *streams,
    const int64_t *stream_ends, int64_t streams_len, const int64_t *versions, const uint8_t *bound,
    const uint8_t *plain, const int64_t *plain_ends, int64_t plain_len, uint8_t *out,
    int64_t out_len) {
    if (!key || key_len != 32)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "AES-256-GCM needs a 32-byte key, got %lld bytes",
                       (long long)key_len);
    if (count < 0 || aad_prefix_len < 0 || aad_prefix_len > 64 || header_len < 0 || header_len > 255 ||
        streams_len < 0 || plain_len < 0 || out_len < 0)
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "negative or oversized length in a seal batch");
    if (count == 0) return EVENTUALI_OK;
    if (!aad_prefix || !header0 || !header1 || !nonces || !event_ids || !stream_ends || !versions ||
        !bound || !plain_ends || !out || (streams_len && !streams) || (plain_len && !plain))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "NULL buffer in a seal batch");
    if (!valid_ends(stream_ends, count, streams_len) || !valid_ends(plain_ends, count, plain_len))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "seal batch offsets are not ascending within their buffer");
    /* every output is header + nonce + len + tag, back to back */
    if (out_len != plain_len + count * (header_len + NONCE + TAG))
        return ev_fail(EVENTUALI_ERR_INVALID_INPUT, "seal batch output buffer has %lld bytes, %lld needed",
                       (long long)out_len, (long long)(plain_len + count * (header_len + NONCE + TAG)));

    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return ev_fail(EVENTUALI_ERR_STORAGE, "out of memory (cipher context)");
    int32_t status = EVENTUALI_OK;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
        status = ev_fail(EVENTUALI_ERR_STORAGE, "OpenSSL refused the AES-256-GCM key");
        goto done;
    }
    int64_t s0 = 0, p0 = 0;
    uint8_t *o = out;
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *header = bound[i] ? header1 : header0;
        int64_t slen = stream_ends[i] - s0, plen = plain_ends[i] - p0;
        /* the whole AAD in one buffer: one update instead of six */
        uint8_t aad[AAD_MAX];
        int64_t alen = aad_prefix_len + header_len + 16 + 4 + slen + (bound[i] ? 8 : 0);
        int outl = 0;
        if (slen > INT32_MAX || plen > INT32_MAX || alen > AAD_MAX) {
            status = ev_fail(EVENTUALI_ERR_INVALID_INPUT,
                             "item %lld of a seal batch is too long (stream id or payload)", (long long)i);
            goto done;
        }
        memcpy(o, header, (size_t)header_len);
        memcpy(o + header_len, nonces + i * NONCE, NONCE);
        uint8_t *a = aad;
        memcpy(a, aad_prefix, (size_t)aad_prefix_len); a += aad_prefix_len;
        memcpy(a, header, (size_t)header_len); a += header_len;
        memcpy(a, event_ids + i * 16, 16); a += 16;
        be32(a, (uint32_t)slen); a += 4;
        if (slen) { memcpy(a, streams + s0, (size_t)slen); a += slen; }
        if (bound[i]) be64(a, (uint64_t)versions[i]);
        if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonces + i * NONCE) != 1 ||
            EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)alen) != 1) {
            status = ev_fail(EVENTUALI_ERR_STORAGE, "AES-256-GCM failed on item %lld", (long long)i);
            goto done;
        }
        uint8_t *ct = o + header_len + NONCE;
        int fin = 0;
        if ((plen && EVP_EncryptUpdate(ctx, ct, &outl, plain + p0, (int)plen) != 1) ||
            EVP_EncryptFinal_ex(ctx, ct + (plen ? outl : 0), &fin) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, ct + plen) != 1) {
            status = ev_fail(EVENTUALI_ERR_STORAGE, "AES-256-GCM failed on item %lld", (long long)i);
            goto done;
        }
        o += header_len + NONCE + plen + TAG;
        s0 = stream_ends[i];
        p0 = plain_ends[i];
    }
done:
    EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
    return status;
}
