/*
 * podgen core: content keys.
 */

#include <openssl/evp.h>

#include "pg_key.h"


int
pg_key_sha256(const void *data, size_t len, char *hex)
{
    unsigned int          n, i;
    unsigned char         md[EVP_MAX_MD_SIZE];
    static const char     digits[] = "0123456789abcdef";

    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }

    hex[2 * n] = '\0';

    return 0;
}
