/*
 * podgen: one tiered fetch-or-make (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_podgen_fetch.h"
#include "ngx_http_podgen_metrics.h"


#define NGX_HTTP_PODGEN_FETCH_POLL_L1   20      /* ms: another request */
#define NGX_HTTP_PODGEN_FETCH_POLL_L2   50      /* ms: another node */
#define NGX_HTTP_PODGEN_FETCH_MARKER    300     /* s: an L1 marker's life */
#define NGX_HTTP_PODGEN_FETCH_LOCK      10000   /* ms: the L2 lock's life */
#define NGX_HTTP_PODGEN_FETCH_RELOCK    3000    /* ms: renewed this often */


const ngx_http_podgen_fetch_kind_t  ngx_http_podgen_fetch_audio = {
    PG_KIND_AUDIO, "audio", 1, NULL
};


static ngx_int_t ngx_http_podgen_fetch_l2(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_fetch_l2_done(void *data, ngx_int_t rc,
    u_char *value, size_t len);
static void ngx_http_podgen_fetch_locked(void *data, ngx_int_t rc,
    u_char *value, size_t len);
static void ngx_http_podgen_fetch_wait_handler(ngx_event_t *ev);


void
ngx_http_podgen_fetch_init(ngx_http_podgen_fetch_t *f,
    const ngx_http_podgen_fetch_kind_t *kind,
    const ngx_http_podgen_fetch_handlers_t *handlers,
    ngx_http_podgen_cache_conf_t *cache, const char *hex, ngx_uint_t tag,
    ngx_pool_t *pool, void *data, ngx_log_t *log)
{
    ngx_memzero(f, sizeof(ngx_http_podgen_fetch_t));

    f->kind = kind;
    f->handlers = handlers;
    f->cache = (cache && cache->shm_zone) ? cache : NULL;
    f->pool = pool;
    f->data = data;
    f->log = log;
    f->tag = tag;

    ngx_memcpy(f->hex, hex, PG_KEY_LEN);
    f->hex[PG_KEY_LEN] = '\0';

    if (f->cache) {
        ngx_http_podgen_cache_key(f->raw, f->hex);
    }

    f->wait.handler = ngx_http_podgen_fetch_wait_handler;
    f->wait.data = f;
    f->wait.log = log;
}


/* L1, and the marker: NGX_OK a hit, NGX_AGAIN wait, NGX_DECLINED make. */

static ngx_int_t
ngx_http_podgen_fetch_l1(ngx_http_podgen_fetch_t *f, ngx_pool_t *pool,
    u_char **value, size_t *len)
{
    ngx_int_t   rc;
    ngx_uint_t  tag;

    rc = ngx_http_podgen_cache_acquire(f->cache, f->raw, f->kind->kind, pool,
                                       value, len, &tag, &f->waiting,
                                       NGX_HTTP_PODGEN_FETCH_MARKER);

    if (rc == NGX_OK && f->kind->tag_byte && tag != f->tag) {
        /* the key names the tag: this cannot happen but by corruption */
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        f->owner = 1;
    }

    return rc;
}


ngx_int_t
ngx_http_podgen_fetch(ngx_http_podgen_fetch_t *f, ngx_pool_t *pool,
    u_char **value, size_t *len)
{
    ngx_int_t  rc;

    if (f->cache) {
        rc = ngx_http_podgen_fetch_l1(f, pool, value, len);

        if (rc == NGX_AGAIN) {
            /* another request of the node makes it: wait for it */
            ngx_add_timer(&f->wait, NGX_HTTP_PODGEN_FETCH_POLL_L1);
            return NGX_AGAIN;
        }

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_podgen_fetch_l2(f);
}


/* Another node may have made it: NGX_AGAIN asked, NGX_DECLINED make it. */

static ngx_int_t
ngx_http_podgen_fetch_l2(ngx_http_podgen_fetch_t *f)
{
    f->l2 = ngx_http_podgen_redis_get(f->kind->name, f->hex,
                                      ngx_http_podgen_fetch_l2_done, f);

    return f->l2 ? NGX_AGAIN : NGX_DECLINED;
}


static void
ngx_http_podgen_fetch_wait_handler(ngx_event_t *ev)
{
    ngx_http_podgen_fetch_t  *f = ev->data;

    u_char      *value;
    size_t       len;
    ngx_int_t    rc;
    ngx_pool_t  *pool, *own;

    if (f->remote_lock) {
        /* still making it: the fleet keeps waiting for this node */
        ngx_http_podgen_redis_relock(f->kind->name, f->hex,
                                     NGX_HTTP_PODGEN_FETCH_LOCK);
        ngx_add_timer(&f->wait, NGX_HTTP_PODGEN_FETCH_RELOCK);
        return;
    }

    if (f->remote_wait) {
        if (ngx_http_podgen_fetch_l2(f) == NGX_DECLINED) {
            /* Redis went away: make it here */
            f->handlers->make(f);
        }

        return;
    }

    own = NULL;
    pool = f->pool;

    if (pool == NULL) {
        own = ngx_create_pool(4096, f->log);
        if (own == NULL) {
            ngx_add_timer(&f->wait, NGX_HTTP_PODGEN_FETCH_POLL_L1);
            return;
        }

        pool = own;
    }

    rc = ngx_http_podgen_fetch_l1(f, pool, &value, &len);

    switch (rc) {

    case NGX_OK:
        f->handlers->found(f, NGX_HTTP_PODGEN_FROM_COALESCED, value, len);
        break;

    case NGX_AGAIN:
        ngx_add_timer(&f->wait, NGX_HTTP_PODGEN_FETCH_POLL_L1);
        break;

    case NGX_DECLINED:
        /* the maker gave up: this one makes it */
        if (ngx_http_podgen_fetch_l2(f) == NGX_DECLINED) {
            f->handlers->make(f);
        }

        break;

    default:
        f->handlers->error(f);
    }

    if (own) {
        /* f may be gone by now */
        ngx_destroy_pool(own);
    }
}


static void
ngx_http_podgen_fetch_l2_done(void *data, ngx_int_t rc, u_char *value,
    size_t len)
{
    ngx_http_podgen_fetch_t  *f = data;

    size_t                               skip;
    ngx_uint_t                           from;
    const ngx_http_podgen_fetch_kind_t  *kind;

    f->l2 = NULL;
    kind = f->kind;
    skip = kind->tag_byte ? 1 : 0;

    if (rc == NGX_OK
        && (len <= skip || (skip && value[0] != (u_char) f->tag)
            || (kind->check
                && kind->check(value + skip, len - skip) != NGX_OK)))
    {
        /* garbage, or another format: a miss, made anew */
        rc = NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        if (!f->remote_wait) {
            ngx_http_podgen_metrics_cache(PG_TIER_L2, kind->kind, 0);
        }

        if (rc == NGX_ERROR) {
            /* Redis failed: make it here */
            f->handlers->make(f);
            return;
        }

        /* is another node making it? */
        f->l2 = ngx_http_podgen_redis_lock(kind->name, f->hex,
                                           NGX_HTTP_PODGEN_FETCH_LOCK,
                                           ngx_http_podgen_fetch_locked, f);
        if (f->l2 == NULL) {
            f->handlers->make(f);
        }

        return;
    }

    /* a hit after waiting for another node is coalesced too */

    ngx_http_podgen_metrics_cache(PG_TIER_L2, kind->kind, 1);
    from = NGX_HTTP_PODGEN_FROM_L2;

    if (f->remote_wait) {
        ngx_http_podgen_metrics_coalesced(kind->kind);
        from = NGX_HTTP_PODGEN_FROM_COALESCED;
    }

    /* an L2 hit fills L1 (and frees the waiters of this node) */

    if (f->cache
        && ngx_http_podgen_cache_put(f->cache, f->raw, kind->kind,
                                     value + skip, len - skip, f->tag, f->log)
           != NGX_OK
        && f->owner)
    {
        /* not stored here: local waiters must not wait for nothing */
        ngx_http_podgen_cache_release(f->cache, f->raw);
    }

    f->owner = 0;

    /* (no lock is held here: it is taken after a miss) */
    ngx_http_podgen_fetch_abandon(f);

    f->in_l2 = 1;
    f->handlers->found(f, from, value + skip, len - skip);
}


u_char *
ngx_http_podgen_fetch_keep(ngx_http_podgen_fetch_t *f, ngx_pool_t *pool,
    u_char *value)
{
    u_char  *p;

    if (!f->in_l2) {
        /* an L1 value is in the fetch's pool already */
        return value;
    }

    p = ngx_http_podgen_redis_keep(pool);

    return p ? p + (f->kind->tag_byte ? 1 : 0) : NULL;
}


static void
ngx_http_podgen_fetch_locked(void *data, ngx_int_t rc, u_char *value,
    size_t len)
{
    ngx_http_podgen_fetch_t  *f = data;

    f->l2 = NULL;

    if (rc == NGX_OK) {
        f->remote_lock = 1;
        ngx_add_timer(&f->wait, NGX_HTTP_PODGEN_FETCH_RELOCK);
        f->handlers->make(f);
        return;
    }

    if (rc == NGX_ERROR) {
        f->handlers->make(f);
        return;
    }

    /* another node makes it: look for the result now and then (this
     * request keeps its node's marker, so local requests wait here) */

    f->remote_wait = 1;
    ngx_add_timer(&f->wait, NGX_HTTP_PODGEN_FETCH_POLL_L2);
}


void
ngx_http_podgen_fetch_store(ngx_http_podgen_fetch_t *f, u_char *value,
    size_t len)
{
    u_char                              *v;
    const ngx_http_podgen_fetch_kind_t  *kind;

    kind = f->kind;

    if (f->cache
        && ngx_http_podgen_cache_put(f->cache, f->raw, kind->kind, value, len,
                                     f->tag, f->log)
           != NGX_OK
        && f->owner)
    {
        /* too large or no room: the waiters make it themselves */
        ngx_http_podgen_cache_release(f->cache, f->raw);
    }

    f->owner = 0;

    if (ngx_http_podgen_redis_up()) {
        if (kind->tag_byte) {
            v = ngx_alloc(len + 1, f->log);
            if (v) {
                v[0] = (u_char) f->tag;
                ngx_memcpy(v + 1, value, len);
                ngx_http_podgen_redis_set(kind->name, f->hex, v, len + 1);
                ngx_free(v);
            }

        } else {
            ngx_http_podgen_redis_set(kind->name, f->hex, value, len);
        }
    }

    /* after the value: a node polling sees it before the lock goes */
    ngx_http_podgen_fetch_abandon(f);
}


void
ngx_http_podgen_fetch_abandon(ngx_http_podgen_fetch_t *f)
{
    if (f->owner) {
        ngx_http_podgen_cache_release(f->cache, f->raw);
        f->owner = 0;
    }

    if (f->remote_lock) {
        ngx_http_podgen_redis_unlock(f->kind->name, f->hex);
        f->remote_lock = 0;

        if (f->wait.timer_set) {
            ngx_del_timer(&f->wait);
        }
    }
}


void
ngx_http_podgen_fetch_cancel(ngx_http_podgen_fetch_t *f)
{
    if (f->wait.timer_set) {
        ngx_del_timer(&f->wait);
    }

    if (f->waiting) {
        ngx_http_podgen_cache_leave(f->cache, f->raw);
        f->waiting = 0;
    }

    if (f->l2) {
        ngx_http_podgen_redis_cancel(f->l2);
        f->l2 = NULL;
    }

    ngx_http_podgen_fetch_abandon(f);
}


ngx_uint_t
ngx_http_podgen_fetch_waiters(ngx_http_podgen_fetch_t *f)
{
    if (!f->owner) {
        return 0;
    }

    return ngx_http_podgen_cache_waiters(f->cache, f->raw);
}


void
ngx_http_podgen_fetch_move(ngx_http_podgen_fetch_t *dst,
    ngx_http_podgen_fetch_t *src, void *data)
{
    ngx_uint_t  renew;

    renew = src->wait.timer_set;

    if (renew) {
        /* the timer's node is in the tree: it moves with the fetch */
        ngx_del_timer(&src->wait);
    }

    *dst = *src;

    /* the source's log may go with its connection */
    dst->data = data;
    dst->pool = NULL;
    dst->log = ngx_cycle->log;
    dst->wait.data = dst;
    dst->wait.log = ngx_cycle->log;
    dst->wait.timer_set = 0;

    if (renew) {
        ngx_add_timer(&dst->wait, NGX_HTTP_PODGEN_FETCH_RELOCK);
    }

    /* the source keeps nothing to give up */
    src->waiting = 0;
    src->owner = 0;
    src->remote_lock = 0;
    src->l2 = NULL;
}
