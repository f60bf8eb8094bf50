/*
 * podgen: one tiered fetch-or-make for every kind of artifact.
 *
 * L1 (this node's shared memory) is asked first, and its single-flight
 * marker decides which request of the node makes the artifact; the
 * others wait for it.  The maker asks L2 (Redis), then takes the fleet's
 * lock there (SET NX PX), so that one node makes it while the others look
 * for the result now and then.  What is made is stored in both tiers.
 * The same timeouts, the same metrics and the same give-up rules hold for
 * every kind; a kind only says how its values are read.
 */

#ifndef NGX_HTTP_PODGEN_FETCH_H
#define NGX_HTTP_PODGEN_FETCH_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "pg_key.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_redis.h"


/* where an artifact came from (X-Podgen-Cache, "cached" in replies) */
typedef enum {
    NGX_HTTP_PODGEN_FROM_MADE = 0,      /* made for this request */
    NGX_HTTP_PODGEN_FROM_L1,
    NGX_HTTP_PODGEN_FROM_L2,
    NGX_HTTP_PODGEN_FROM_COALESCED      /* made meanwhile for another one */
} ngx_http_podgen_from_e;


typedef struct ngx_http_podgen_fetch_s  ngx_http_podgen_fetch_t;

/* A kind of artifact: how its values are kept and read. */
typedef struct {
    ngx_uint_t     kind;        /* PG_KIND_AUDIO, PG_KIND_SCRIPT */
    const char    *name;        /* its L2 keys: {prefix}{name}:{hex} */

    /* an L2 value begins with the L1 tag byte (the audio format) */
    ngx_uint_t     tag_byte;

    /* a value read from L2 is good (NGX_OK), or a miss; may be NULL */
    ngx_int_t    (*check)(u_char *data, size_t len);
} ngx_http_podgen_fetch_kind_t;

/*
 * What the caller is told.  After ngx_http_podgen_fetch() said NGX_AGAIN,
 * exactly one of these is called, unless the fetch is canceled first;
 * each may free the fetch.  found(): the value, valid during the call
 * (_keep() makes it last); make(): nobody has it, the caller makes it and
 * then calls _store() or _abandon(); error(): the cache failed.
 */
typedef struct {
    void         (*found)(ngx_http_podgen_fetch_t *f, ngx_uint_t from,
                          u_char *data, size_t len);
    void         (*make)(ngx_http_podgen_fetch_t *f);
    void         (*error)(ngx_http_podgen_fetch_t *f);
} ngx_http_podgen_fetch_handlers_t;


/* speech audio: the format is the tag */
extern const ngx_http_podgen_fetch_kind_t  ngx_http_podgen_fetch_audio;


struct ngx_http_podgen_fetch_s {
    const ngx_http_podgen_fetch_kind_t  *kind;
    const ngx_http_podgen_fetch_handlers_t  *handlers;
    ngx_http_podgen_cache_conf_t        *cache;     /* NULL: no L1 */
    ngx_pool_t                          *pool;      /* L1 hits; NULL: own */
    void                                *data;      /* the caller's */
    ngx_log_t                           *log;
    ngx_uint_t                           tag;       /* the L1 tag wanted */
    ngx_event_t                          wait;
    ngx_http_podgen_redis_op_t          *l2;        /* in flight */
    ngx_uint_t                           waiting;   /* an L1 waiter */
    unsigned                             owner:1;       /* L1 marker */
    unsigned                             remote_lock:1; /* the L2 lock */
    unsigned                             remote_wait:1; /* another node */
    unsigned                             in_l2:1;   /* found() from L2 */
    u_char                               raw[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    char                                 hex[PG_KEY_LEN + 1];
};


/*
 * hex: the artifact's key.  pool: where L1 hits are put (large ones are
 * pinned there); NULL: a pool of the fetch's own per lookup, so found()'s
 * value is only valid during the call.
 */
void ngx_http_podgen_fetch_init(ngx_http_podgen_fetch_t *f,
    const ngx_http_podgen_fetch_kind_t *kind,
    const ngx_http_podgen_fetch_handlers_t *handlers,
    ngx_http_podgen_cache_conf_t *cache, const char *hex, ngx_uint_t tag,
    ngx_pool_t *pool, void *data, ngx_log_t *log);

/*
 * NGX_OK: an L1 hit in *value, *len (in pool, read only); NGX_DECLINED:
 * make it now (no tier has it, or none can be asked), then _store() or
 * _abandon(); NGX_AGAIN: a callback of the kind follows; NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_fetch(ngx_http_podgen_fetch_t *f, ngx_pool_t *pool,
    u_char **value, size_t *len);

/*
 * In found(): the value, valid as long as pool (the fetch's pool for an
 * L1 value, the Redis reply itself, without a copy, for an L2 one), or
 * NULL (no memory).
 */
u_char *ngx_http_podgen_fetch_keep(ngx_http_podgen_fetch_t *f,
    ngx_pool_t *pool, u_char *value);

/* Made: into both tiers, and the waiters of the node and fleet go on. */
void ngx_http_podgen_fetch_store(ngx_http_podgen_fetch_t *f, u_char *value,
    size_t len);

/* Not made (failed, too large): the waiters make it themselves. */
void ngx_http_podgen_fetch_abandon(ngx_http_podgen_fetch_t *f);

/* The caller goes away: no callback is called; the fetch is given up. */
void ngx_http_podgen_fetch_cancel(ngx_http_podgen_fetch_t *f);

/* Requests of the node waiting for what this fetch makes. */
ngx_uint_t ngx_http_podgen_fetch_waiters(ngx_http_podgen_fetch_t *f);

/* Another object takes the fetch over (while nothing is in flight). */
void ngx_http_podgen_fetch_move(ngx_http_podgen_fetch_t *dst,
    ngx_http_podgen_fetch_t *src, void *data);

#endif /* NGX_HTTP_PODGEN_FETCH_H */
