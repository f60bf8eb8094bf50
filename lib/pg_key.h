/*
 * podgen core: content keys — SHA-256 (OpenSSL libcrypto) in hex; and
 * HMAC-SHA256 for the tokens derived from a secret.
 */

#ifndef PG_KEY_H
#define PG_KEY_H

#include <stddef.h>


#define PG_KEY_LEN      64      /* hex characters, without the NUL */
#define PG_KEY_RAW_LEN  32      /* the digest itself */

/* hex gets PG_KEY_LEN + 1 bytes; 0 or -1 */
int pg_key_sha256(const void *data, size_t len, char *hex);

/* md gets PG_KEY_RAW_LEN bytes; 0 or -1 */
int pg_key_sha256_raw(const void *data, size_t len, unsigned char *md);

/* HMAC-SHA256 of data under key; hex gets PG_KEY_LEN + 1 bytes; 0 or -1 */
int pg_key_hmac_sha256(const void *key, size_t key_len, const void *data,
    size_t len, char *hex);

#endif /* PG_KEY_H */
