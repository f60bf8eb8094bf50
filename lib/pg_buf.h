/*
 * podgen core: a growable byte buffer (plain C, no nginx).
 */

#ifndef PG_BUF_H
#define PG_BUF_H

#include <stddef.h>


typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
} pg_buf_t;


/* All return 0 on success, -1 when out of memory (the buffer is unchanged). */
int pg_buf_reserve(pg_buf_t *b, size_t extra);
int pg_buf_append(pg_buf_t *b, const void *p, size_t n);
int pg_buf_append_str(pg_buf_t *b, const char *s);
void pg_buf_reset(pg_buf_t *b);
void pg_buf_free(pg_buf_t *b);

#endif /* PG_BUF_H */
