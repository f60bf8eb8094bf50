/*
 * podgen: the L1 cache — an LRU of artifacts (audio, scripts) in a
 * shared-memory slab zone, shared by all workers of a node.
 *
 * Layout as in nginx's limit_req and lua's shdict: an rbtree keyed by the
 * artifact's SHA-256 for lookups, a queue for LRU order, expiry checked on
 * read, and a forcible eviction loop when the slab is full.
 */

#ifndef NGX_HTTP_PODGEN_CACHE_H
#define NGX_HTTP_PODGEN_CACHE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_metrics.h"     /* the kinds: pg_metrics_kind_e */


#define NGX_HTTP_PODGEN_CACHE_KEY_LEN  32      /* raw SHA-256 */


typedef struct {
    ngx_shm_zone_t   *shm_zone;
    time_t            ttl;
    size_t            max_entry;
} ngx_http_podgen_cache_conf_t;


/* podgen_cache_zone name:size [ttl=] [max_entry=] */
char *ngx_http_podgen_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* The implicit zone when none is configured (64m, 1 h, 8m). */
ngx_int_t ngx_http_podgen_cache_default(ngx_conf_t *cf,
    ngx_http_podgen_cache_conf_t *cache);

/* In a worker's init_process: gives back the pins of dead processes. */
ngx_int_t ngx_http_podgen_cache_init_process(
    ngx_http_podgen_cache_conf_t *cache, ngx_log_t *log);

void ngx_http_podgen_cache_exit_process(ngx_http_podgen_cache_conf_t *cache);

/* hex: PG_KEY_LEN hex characters (pg_key.h) -> raw key */
void ngx_http_podgen_cache_key(u_char *raw, const char *hex);

/*
 * An entry for as long as pool lives: NGX_OK (*data, *len, *tag set), or
 * NGX_DECLINED (absent or expired).  kind: a PG_KIND_*.  Small
 * entries are copied into pool; large ones are pinned in shared memory
 * until pool is destroyed, so *data is read only.
 */
ngx_int_t ngx_http_podgen_cache_get(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, ngx_pool_t *pool, u_char **data,
    size_t *len, ngx_uint_t *tag);

ngx_int_t ngx_http_podgen_cache_get_hit(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, ngx_pool_t *pool, u_char **data,
    size_t *len, ngx_uint_t *tag);

ngx_int_t ngx_http_podgen_cache_get_tagged(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, ngx_uint_t want, ngx_pool_t *pool,
    u_char **data, size_t *len);

/*
 * Stores a copy; an existing entry of the key is replaced.  Entries over
 * max_entry are not stored (NGX_DECLINED).  tag: a small number kept with
 * the entry (the audio format).
 */
ngx_int_t ngx_http_podgen_cache_put(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, u_char *data, size_t len, ngx_uint_t tag,
    ngx_log_t *log);

/*
 * Memos: the exact bytes of a request -> the hex key of its artifact.
 * get: NGX_OK (akey: PG_KEY_LEN + 1 bytes) or NGX_DECLINED.
 */
ngx_int_t ngx_http_podgen_cache_memo_get(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, u_char *req, size_t len, char *akey);
void ngx_http_podgen_cache_memo_put(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, u_char *req, size_t len, const char *akey, ngx_log_t *log);

/*
 * Single flight across the workers of a node (see the .c file):
 * NGX_OK hit, NGX_AGAIN wait and retry, NGX_DECLINED make it.
 */
ngx_int_t ngx_http_podgen_cache_acquire(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, ngx_pool_t *pool, u_char **data,
    size_t *len, ngx_uint_t *tag, ngx_uint_t *waiting, time_t deadline);
void ngx_http_podgen_cache_release(ngx_http_podgen_cache_conf_t *cache,
    u_char *key);
void ngx_http_podgen_cache_leave(ngx_http_podgen_cache_conf_t *cache,
    u_char *key);
ngx_uint_t ngx_http_podgen_cache_waiters(ngx_http_podgen_cache_conf_t *cache,
    u_char *key);

#endif /* NGX_HTTP_PODGEN_CACHE_H */
