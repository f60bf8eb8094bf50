/*
 * podgen core: a growable byte buffer.
 */

#include <stdlib.h>
#include <string.h>

#include "pg_buf.h"


int
pg_buf_reserve(pg_buf_t *b, size_t extra)
{
    size_t          cap;
    unsigned char  *p;

    if (extra <= b->cap - b->len) {
        return 0;
    }

    if (extra > ((size_t) -1) / 2 - b->len) {
        return -1;
    }

    cap = b->cap ? b->cap : 256;

    while (cap - b->len < extra) {
        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->cap = cap;

    return 0;
}


int
pg_buf_append(pg_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }

    if (pg_buf_reserve(b, n) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, p, n);
    b->len += n;

    return 0;
}


int
pg_buf_append_str(pg_buf_t *b, const char *s)
{
    return pg_buf_append(b, s, strlen(s));
}


void
pg_buf_reset(pg_buf_t *b)
{
    b->len = 0;
}


void
pg_buf_free(pg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
