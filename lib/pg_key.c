/*
 * podgen core: content keys.
 */

#include <limits.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pg_key.h"


/*
 * OpenSSL 3 looks the algorithm up again on every EVP_sha256() or SHA256()
 * call (under a lock), which costs more than hashing a short request: the
 * implementation is fetched once per process instead.
 */

static EVP_MD          *pg_key_md;
static pthread_once_t   pg_key_md_once = PTHREAD_ONCE_INIT;


static void
pg_key_fetch(void)
{
    pg_key_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}


int
pg_key_sha256_raw(const void *data, size_t len, unsigned char *md)
{
    int            rc;
    unsigned int   n;
    EVP_MD_CTX    *ctx;

    (void) pthread_once(&pg_key_md_once, pg_key_fetch);

    if (pg_key_md == NULL) {
        return -1;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = EVP_DigestInit_ex2(ctx, pg_key_md, NULL) == 1
         && EVP_DigestUpdate(ctx, data, len) == 1
         && EVP_DigestFinal_ex(ctx, md, &n) == 1
         && n == PG_KEY_RAW_LEN;

    EVP_MD_CTX_free(ctx);

    return rc ? 0 : -1;
}


static void
pg_key_hex(const unsigned char *md, char *hex)
{
    unsigned int          i;
    static const char     digits[] = "0123456789abcdef";

    for (i = 0; i < PG_KEY_RAW_LEN; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }

    hex[2 * PG_KEY_RAW_LEN] = '\0';
}


int
pg_key_sha256(const void *data, size_t len, char *hex)
{
    unsigned char  md[PG_KEY_RAW_LEN];

    if (pg_key_sha256_raw(data, len, md) != 0) {
        return -1;
    }

    pg_key_hex(md, hex);

    return 0;
}


int
pg_key_hmac_sha256(const void *key, size_t key_len, const void *data,
    size_t len, char *hex)
{
    unsigned int   n;
    unsigned char  md[PG_KEY_RAW_LEN];

    (void) pthread_once(&pg_key_md_once, pg_key_fetch);

    if (pg_key_md == NULL || key_len > (size_t) INT_MAX
        || HMAC(pg_key_md, key, (int) key_len, data, len, md, &n) == NULL
        || n != PG_KEY_RAW_LEN)
    {
        return -1;
    }

    pg_key_hex(md, hex);

    return 0;
}
