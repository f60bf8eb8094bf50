/*
 * podgen: the L1 shared-memory cache (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_module.h"      /* the tag of the L1 zones */
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_metrics.h"
#include "pg_key.h"


typedef struct {
    u_char                color;
    u_char                kind;
    u_char                tag;
    u_char                pending;          /* a marker: work in flight */
    u_char                unlinked;         /* out of the index, pinned */
    u_char                key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    ngx_queue_t           queue;
    int64_t               expires;          /* ms; pending: the deadline */
    ngx_uint_t            waiters;
    ngx_uint_t            pins;             /* requests sending its data */
    ngx_pid_t             owner;            /* a marker: who makes it */
    size_t                len;
    u_char                data[1];
} ngx_http_podgen_cache_node_t;


/*
 * The pins a process holds, so that those of a process that died (a
 * crashed worker runs no pool cleanup) can be given back: each worker
 * takes a free holder when it starts, and first empties the holders of
 * processes that are gone.
 */

#define NGX_HTTP_PODGEN_CACHE_HOLDERS  64

typedef struct {
    ngx_pid_t             pid;              /* 0: free */
    ngx_queue_t           pins;
} ngx_http_podgen_cache_holder_t;


typedef struct {
    ngx_rbtree_t          rbtree;
    ngx_rbtree_node_t     sentinel;
    ngx_queue_t           queue;            /* most recent first */
    ngx_http_podgen_cache_holder_t  holders[NGX_HTTP_PODGEN_CACHE_HOLDERS];
} ngx_http_podgen_cache_sh_t;


typedef struct {
    ngx_http_podgen_cache_sh_t  *sh;
    ngx_slab_pool_t             *shpool;
    ngx_http_podgen_cache_holder_t  *holder;    /* this process's, or NULL */
} ngx_http_podgen_cache_ctx_t;


/*
 * A hit this large is not copied: its pool pins the entry and sends the
 * bytes from shared memory (an entry is never changed, only replaced).  A
 * pinned entry that is evicted, expires or is replaced leaves the index at
 * once and its memory goes with the last pin.
 */

#define NGX_HTTP_PODGEN_CACHE_PIN_MIN  16384

/* a pin in shared memory, on its holder's list */
typedef struct {
    ngx_queue_t                    queue;
    ngx_http_podgen_cache_node_t  *cn;
} ngx_http_podgen_cache_shpin_t;


typedef struct {
    ngx_http_podgen_cache_ctx_t    *ctx;
    ngx_http_podgen_cache_node_t   *cn;
    ngx_http_podgen_cache_shpin_t  *shpin;    /* NULL: not on a list */
} ngx_http_podgen_cache_pin_t;



/* wall-clock ms: expiry is compared by every worker of the node */

static ngx_inline int64_t
ngx_http_podgen_cache_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}

static ngx_int_t ngx_http_podgen_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* A process of this node that is gone (a worker that crashed or left). */

static ngx_inline ngx_uint_t
ngx_http_podgen_cache_gone(ngx_pid_t pid)
{
    return pid != 0 && pid != ngx_pid && kill(pid, 0) == -1
           && ngx_errno == NGX_ESRCH;
}


static ngx_rbtree_key_t
ngx_http_podgen_cache_hash(u_char *key)
{
    ngx_rbtree_key_t  h;

    /* a SHA-256 is uniform: its first bytes are a fine tree key */
    ngx_memcpy(&h, key, sizeof(ngx_rbtree_key_t));

    return h;
}


static void
ngx_http_podgen_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_podgen_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_http_podgen_cache_node_t *) &node->color;
            cnt = (ngx_http_podgen_cache_node_t *) &temp->color;

            p = (ngx_memcmp(cn->key, cnt->key, NGX_HTTP_PODGEN_CACHE_KEY_LEN)
                 < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static char *
ngx_http_podgen_cache_add_zone(ngx_conf_t *cf,
    ngx_http_podgen_cache_conf_t *cache, ngx_str_t *name, ssize_t size)
{
    ngx_http_podgen_cache_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_podgen_cache_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    cache->shm_zone = ngx_shared_memory_add(cf, name, size,
                                            &ngx_http_podgen_module);
    if (cache->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cache->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", name);
        return NGX_CONF_ERROR;
    }

    cache->shm_zone->init = ngx_http_podgen_cache_init_zone;
    cache->shm_zone->data = ctx;

    return NGX_CONF_OK;
}


char *
ngx_http_podgen_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_cache_conf_t  *cache;

    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, name, s;
    ngx_int_t   n;
    ngx_uint_t  i;

    cache = (ngx_http_podgen_cache_conf_t *) ((char *) conf + cmd->offset);

    if (cache->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "podgen_cache_zone \"%V\": use name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (name.len == 0 || size == NGX_ERROR
        || size < (ssize_t) (8 * ngx_pagesize))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "podgen_cache_zone \"%V\": invalid name or size "
                           "(at least %uz bytes)", &value[1],
                           8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    cache->ttl = 3600;
    cache->max_entry = 8 * 1024 * 1024;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            n = ngx_parse_time(&s, 1);
            if (n == NGX_ERROR || n <= 0) {
                goto invalid;
            }

            cache->ttl = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_entry=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            n = ngx_parse_size(&s);
            if (n == NGX_ERROR || n <= 0) {
                goto invalid;
            }

            cache->max_entry = n;
            continue;
        }

        goto invalid;
    }

    return ngx_http_podgen_cache_add_zone(cf, cache, &name, size);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "podgen_cache_zone: invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_podgen_cache_default(ngx_conf_t *cf,
    ngx_http_podgen_cache_conf_t *cache)
{
    ngx_str_t  name = ngx_string("podgen_cache");

    if (cache->shm_zone) {
        return NGX_OK;
    }

    cache->ttl = 3600;
    cache->max_entry = 8 * 1024 * 1024;

    if (ngx_http_podgen_cache_add_zone(cf, cache, &name, 64 * 1024 * 1024)
        != NGX_CONF_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_podgen_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_podgen_cache_ctx_t  *octx = data;

    size_t                        len;
    ngx_uint_t                    i;
    ngx_http_podgen_cache_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: keep what is cached */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_http_podgen_cache_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_podgen_cache_rbtree_insert);
    ngx_queue_init(&ctx->sh->queue);

    for (i = 0; i < NGX_HTTP_PODGEN_CACHE_HOLDERS; i++) {
        ctx->sh->holders[i].pid = 0;
        ngx_queue_init(&ctx->sh->holders[i].pins);
    }

    len = sizeof(" in podgen cache zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in podgen cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is normal for a cache: eviction handles it */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


void
ngx_http_podgen_cache_key(u_char *raw, const char *hex)
{
    ngx_uint_t  i;
    ngx_int_t   hi, lo;

    for (i = 0; i < NGX_HTTP_PODGEN_CACHE_KEY_LEN; i++) {
        hi = ngx_hextoi((u_char *) hex + 2 * i, 1);
        lo = ngx_hextoi((u_char *) hex + 2 * i + 1, 1);
        raw[i] = (u_char) ((hi << 4) | lo);
    }
}


static ngx_http_podgen_cache_node_t *
ngx_http_podgen_cache_find(ngx_http_podgen_cache_ctx_t *ctx, u_char *key)
{
    ngx_int_t                      rc;
    ngx_rbtree_key_t               hash;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_podgen_cache_node_t  *cn;

    hash = ngx_http_podgen_cache_hash(key);
    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_http_podgen_cache_node_t *) &node->color;

        rc = ngx_memcmp(key, cn->key, NGX_HTTP_PODGEN_CACHE_KEY_LEN);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_podgen_cache_delete(ngx_http_podgen_cache_ctx_t *ctx,
    ngx_http_podgen_cache_node_t *cn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, node);

    if (!cn->pending) {
        ngx_http_podgen_metrics_cache_usage(0, -(ngx_int_t) cn->len, -1);
    }

    if (cn->pins) {
        cn->unlinked = 1;
        return;
    }

    ngx_slab_free_locked(ctx->shpool, node);
}


/* Under the lock: one pin less; an unlinked entry goes with its last. */

static void
ngx_http_podgen_cache_unpin_locked(ngx_http_podgen_cache_ctx_t *ctx,
    ngx_http_podgen_cache_node_t *cn)
{
    ngx_rbtree_node_t  *node;

    if (--cn->pins == 0 && cn->unlinked) {
        node = (ngx_rbtree_node_t *)
                   ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));
        ngx_slab_free_locked(ctx->shpool, node);
    }
}


static void
ngx_http_podgen_cache_unpin(void *data)
{
    ngx_http_podgen_cache_pin_t  *pin = data;

    ngx_shmtx_lock(&pin->ctx->shpool->mutex);

    if (pin->shpin) {
        ngx_queue_remove(&pin->shpin->queue);
        ngx_slab_free_locked(pin->ctx->shpool, pin->shpin);
    }

    ngx_http_podgen_cache_unpin_locked(pin->ctx, pin->cn);

    ngx_shmtx_unlock(&pin->ctx->shpool->mutex);
}


/*
 * A worker starts: the pins of processes that are gone are given back (a
 * worker that crashed kept its pins: an evicted entry it was sending would
 * hold its memory forever), then it takes a free holder.  A holder whose
 * process still answers kill(0) (or is not ours to signal) is left alone.
 */

ngx_int_t
ngx_http_podgen_cache_init_process(ngx_http_podgen_cache_conf_t *cache,
    ngx_log_t *log)
{
    ngx_uint_t                       i, n;
    ngx_queue_t                     *q, *next;
    ngx_http_podgen_cache_ctx_t     *ctx;
    ngx_http_podgen_cache_node_t    *cn;
    ngx_http_podgen_cache_shpin_t   *sp;
    ngx_http_podgen_cache_holder_t  *h;

    if (cache->shm_zone == NULL) {
        return NGX_OK;
    }

    ctx = cache->shm_zone->data;
    ctx->holder = NULL;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (i = 0; i < NGX_HTTP_PODGEN_CACHE_HOLDERS; i++) {
        h = &ctx->sh->holders[i];

        if (!ngx_http_podgen_cache_gone(h->pid)) {
            continue;
        }

        n = 0;

        while (!ngx_queue_empty(&h->pins)) {
            q = ngx_queue_head(&h->pins);
            sp = ngx_queue_data(q, ngx_http_podgen_cache_shpin_t, queue);
            ngx_queue_remove(q);
            ngx_http_podgen_cache_unpin_locked(ctx, sp->cn);
            ngx_slab_free_locked(ctx->shpool, sp);
            n++;
        }

        if (n) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "podgen: %ui cache pins of process %P, which is "
                          "gone, given back", n, h->pid);
        }

        h->pid = 0;
    }

    /*
     * Markers of makers that are gone: their work will never be stored,
     * so the requests waiting for it (and the next ones) make it anew.
     */

    n = 0;

    for (q = ngx_queue_head(&ctx->sh->queue);
         q != ngx_queue_sentinel(&ctx->sh->queue);
         q = next)
    {
        next = ngx_queue_next(q);
        cn = ngx_queue_data(q, ngx_http_podgen_cache_node_t, queue);

        if (cn->pending && ngx_http_podgen_cache_gone(cn->owner)) {
            ngx_http_podgen_cache_delete(ctx, cn);
            n++;
        }
    }

    if (n) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "podgen: %ui cache markers of processes that are "
                      "gone removed", n);
    }

    for (i = 0; i < NGX_HTTP_PODGEN_CACHE_HOLDERS; i++) {
        h = &ctx->sh->holders[i];

        if (h->pid == 0 || h->pid == ngx_pid) {
            h->pid = ngx_pid;
            ngx_queue_init(&h->pins);
            ctx->holder = h;
            break;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/* A worker leaves: its holder is free again (it has no pins left). */

void
ngx_http_podgen_cache_exit_process(ngx_http_podgen_cache_conf_t *cache)
{
    ngx_http_podgen_cache_ctx_t  *ctx;

    if (cache->shm_zone == NULL) {
        return;
    }

    ctx = cache->shm_zone->data;

    if (ctx->holder == NULL) {
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ctx->holder->pid == ngx_pid && ngx_queue_empty(&ctx->holder->pins)) {
        ctx->holder->pid = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ctx->holder = NULL;
}


/* A lookup under the lock that drops an expired entry on the way. */

static ngx_http_podgen_cache_node_t *
ngx_http_podgen_cache_find_live(ngx_http_podgen_cache_ctx_t *ctx, u_char *key)
{
    ngx_http_podgen_cache_node_t  *cn;

    cn = ngx_http_podgen_cache_find(ctx, key);

    if (cn && cn->expires <= ngx_http_podgen_cache_now()) {
        ngx_http_podgen_cache_delete(ctx, cn);
        return NULL;
    }

    return cn;
}


/*
 * Gives an entry out, under the lock (an eviction may unlink the node right
 * after), and makes it the most recently used: a small one is copied into
 * the pool, a large one is pinned until the pool goes (read only).
 */

static ngx_int_t
ngx_http_podgen_cache_copy(ngx_http_podgen_cache_ctx_t *ctx,
    ngx_http_podgen_cache_node_t *cn, ngx_pool_t *pool, u_char **data,
    size_t *len, ngx_uint_t *tag)
{
    u_char                       *p;
    ngx_pool_cleanup_t           *cln;
    ngx_http_podgen_cache_pin_t  *pin;

    if (cn->len >= NGX_HTTP_PODGEN_CACHE_PIN_MIN) {
        cln = ngx_pool_cleanup_add(pool, sizeof(ngx_http_podgen_cache_pin_t));
        if (cln == NULL) {
            return NGX_ERROR;
        }

        pin = cln->data;
        pin->ctx = ctx;
        pin->cn = cn;
        pin->shpin = NULL;

        if (ctx->holder) {
            pin->shpin = ngx_slab_alloc_locked(ctx->shpool,
                                         sizeof(ngx_http_podgen_cache_shpin_t));
            if (pin->shpin) {
                pin->shpin->cn = cn;
                ngx_queue_insert_tail(&ctx->holder->pins,
                                      &pin->shpin->queue);
            }
        }

        cln->handler = ngx_http_podgen_cache_unpin;

        cn->pins++;
        p = cn->data;

    } else {
        p = ngx_pnalloc(pool, cn->len ? cn->len : 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, cn->data, cn->len);
    }

    *data = p;
    *len = cn->len;
    *tag = cn->tag;

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&ctx->sh->queue, &cn->queue);

    return NGX_OK;
}


static ngx_int_t
ngx_http_podgen_cache_lookup(ngx_http_podgen_cache_conf_t *cache, u_char *key,
    ngx_uint_t kind, ngx_uint_t want, ngx_pool_t *pool, u_char **data,
    size_t *len, ngx_uint_t *tag, ngx_uint_t count_miss)
{
    ngx_http_podgen_cache_ctx_t   *ctx;
    ngx_http_podgen_cache_node_t  *cn;

    ctx = cache->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_podgen_cache_find_live(ctx, key);

    if (cn == NULL || cn->kind != kind || cn->pending
        || (want != NGX_CONF_UNSET_UINT && cn->tag != want))
    {
        ngx_shmtx_unlock(&ctx->shpool->mutex);

        if (count_miss) {
            ngx_http_podgen_metrics_cache(0, kind, 0);
        }

        return NGX_DECLINED;
    }

    if (ngx_http_podgen_cache_copy(ctx, cn, pool, data, len, tag) != NGX_OK) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_http_podgen_metrics_cache(0, kind, 1);

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_cache_get(ngx_http_podgen_cache_conf_t *cache, u_char *key,
    ngx_uint_t kind, ngx_pool_t *pool, u_char **data, size_t *len,
    ngx_uint_t *tag)
{
    return ngx_http_podgen_cache_lookup(cache, key, kind, NGX_CONF_UNSET_UINT,
                                        pool, data, len, tag, 1);
}


/* As ..._get(), but a miss is not counted: the caller goes on looking. */

ngx_int_t
ngx_http_podgen_cache_get_hit(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, ngx_pool_t *pool, u_char **data,
    size_t *len, ngx_uint_t *tag)
{
    return ngx_http_podgen_cache_lookup(cache, key, kind, NGX_CONF_UNSET_UINT,
                                        pool, data, len, tag, 0);
}


/* Only an entry with this tag (an artifact in this format) is a hit. */

ngx_int_t
ngx_http_podgen_cache_get_tagged(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, ngx_uint_t want, ngx_pool_t *pool,
    u_char **data, size_t *len)
{
    ngx_uint_t  tag;

    return ngx_http_podgen_cache_lookup(cache, key, kind, want, pool, data,
                                        len, &tag, 1);
}


ngx_int_t
ngx_http_podgen_cache_put(ngx_http_podgen_cache_conf_t *cache, u_char *key,
    ngx_uint_t kind, u_char *data, size_t len, ngx_uint_t tag, ngx_log_t *log)
{
    size_t                         size;
    ngx_uint_t                     i;
    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node;
    ngx_http_podgen_cache_ctx_t   *ctx;
    ngx_http_podgen_cache_node_t  *cn;

    if (len > cache->max_entry) {
        return NGX_DECLINED;
    }

    ctx = cache->shm_zone->data;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_podgen_cache_node_t, data) + len;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_podgen_cache_find(ctx, key);
    if (cn) {
        ngx_http_podgen_cache_delete(ctx, cn);
    }

    /* no room: evict from the LRU end, a bounded number of times */

    for (i = 0; /* void */; i++) {

        node = ngx_slab_alloc_locked(ctx->shpool, size);
        if (node) {
            break;
        }

        if (i == 64 || ngx_queue_empty(&ctx->sh->queue)) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "podgen: %uz bytes do not fit in the cache", len);
            return NGX_DECLINED;
        }

        q = ngx_queue_last(&ctx->sh->queue);
        ngx_http_podgen_cache_delete(ctx,
                   ngx_queue_data(q, ngx_http_podgen_cache_node_t, queue));
        ngx_http_podgen_metrics_cache_eviction();
    }

    cn = (ngx_http_podgen_cache_node_t *) &node->color;

    node->key = ngx_http_podgen_cache_hash(key);
    ngx_memcpy(cn->key, key, NGX_HTTP_PODGEN_CACHE_KEY_LEN);
    cn->kind = (u_char) kind;
    cn->tag = (u_char) tag;
    cn->pending = 0;
    cn->unlinked = 0;
    cn->waiters = 0;
    cn->pins = 0;
    cn->len = len;
    cn->expires = ngx_http_podgen_cache_now() + (int64_t) cache->ttl * 1000;
    ngx_memcpy(cn->data, data, len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_http_podgen_metrics_cache_usage(0, (ngx_int_t) len, 1);

    return NGX_OK;
}


/* ---- memos -------------------------------------------------------------- */


/*
 * A memo maps the exact bytes of a request to the key of the artifact that
 * answers it, so that a repeated request skips parsing and canonicalizing.
 * Entry: the artifact key (PG_KEY_LEN hex), then the request bytes, which
 * are compared in place: the memo key only has to spread, not to prove.
 */

ngx_int_t
ngx_http_podgen_cache_memo_get(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, u_char *req, size_t len, char *akey)
{
    ngx_int_t                      rc;
    ngx_http_podgen_cache_ctx_t   *ctx;
    ngx_http_podgen_cache_node_t  *cn;

    ctx = cache->shm_zone->data;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_podgen_cache_find_live(ctx, key);

    if (cn
        && cn->kind == PG_KIND_MEMO
        && !cn->pending
        && cn->len == PG_KEY_LEN + len
        && ngx_memcmp(cn->data + PG_KEY_LEN, req, len) == 0)
    {
        ngx_memcpy(akey, cn->data, PG_KEY_LEN);
        akey[PG_KEY_LEN] = '\0';

        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &cn->queue);

        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


void
ngx_http_podgen_cache_memo_put(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, u_char *req, size_t len, const char *akey, ngx_log_t *log)
{
    u_char  *v;

    if (PG_KEY_LEN + len > cache->max_entry) {
        return;
    }

    v = ngx_alloc(PG_KEY_LEN + len, log);
    if (v == NULL) {
        return;
    }

    ngx_memcpy(v, akey, PG_KEY_LEN);
    ngx_memcpy(v + PG_KEY_LEN, req, len);

    (void) ngx_http_podgen_cache_put(cache, key, PG_KIND_MEMO, v,
                                     PG_KEY_LEN + len, 0, log);
    ngx_free(v);
}


/* ---- single flight ------------------------------------------------------ */


/*
 * One lookup that also decides who does the work:
 *   NGX_OK        a hit, copied as by ..._get();
 *   NGX_AGAIN     another request (any worker) is making it: wait and call
 *                 again (the first time, the caller is counted as a waiter);
 *   NGX_DECLINED  nothing there: a marker now says the caller makes it, and
 *                 ..._put() or ..._release() must follow.
 * A marker names its maker's pid: a marker whose maker is gone (a worker
 * that crashed runs no cleanup) is taken over by the next caller that
 * looks, so waiters notice within one poll; one older than `deadline`
 * seconds is taken over too.
 */

ngx_int_t
ngx_http_podgen_cache_acquire(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, ngx_uint_t kind, ngx_pool_t *pool, u_char **data,
    size_t *len, ngx_uint_t *tag, ngx_uint_t *waiting, time_t deadline)
{
    ngx_pid_t                      taken;
    ngx_uint_t                     waiters;
    ngx_rbtree_node_t             *node;
    ngx_http_podgen_cache_ctx_t   *ctx;
    ngx_http_podgen_cache_node_t  *cn;

    ctx = cache->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_podgen_cache_find_live(ctx, key);

    if (cn && cn->kind == kind && !cn->pending) {
        if (ngx_http_podgen_cache_copy(ctx, cn, pool, data, len, tag)
            != NGX_OK)
        {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);

        if (*waiting) {
            *waiting = 0;
            ngx_http_podgen_metrics_coalesced(kind);

        } else {
            ngx_http_podgen_metrics_cache(0, kind, 1);
        }

        return NGX_OK;
    }

    waiters = 0;
    taken = 0;

    if (cn && cn->pending) {
        if (!ngx_http_podgen_cache_gone(cn->owner)) {
            if (!*waiting) {
                cn->waiters++;
                *waiting = 1;
            }

            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_AGAIN;
        }

        /* its maker died (a crashed worker runs no cleanup): this caller
         * takes the work over, and the others wait for it instead */

        waiters = cn->waiters - ((*waiting && cn->waiters) ? 1 : 0);
        taken = cn->owner;
    }

    if (cn) {
        ngx_http_podgen_cache_delete(ctx, cn);
    }

    /* the caller makes it; a marker tells the others */

    node = ngx_slab_alloc_locked(ctx->shpool,
                                 offsetof(ngx_rbtree_node_t, color)
                                 + sizeof(ngx_http_podgen_cache_node_t));
    if (node) {
        cn = (ngx_http_podgen_cache_node_t *) &node->color;

        node->key = ngx_http_podgen_cache_hash(key);
        ngx_memcpy(cn->key, key, NGX_HTTP_PODGEN_CACHE_KEY_LEN);
        cn->kind = (u_char) kind;
        cn->tag = 0;
        cn->pending = 1;
        cn->unlinked = 0;
        cn->waiters = waiters;
        cn->pins = 0;
        cn->owner = ngx_pid;
        cn->len = 0;
        cn->expires = ngx_http_podgen_cache_now() + (int64_t) deadline * 1000;

        ngx_rbtree_insert(&ctx->sh->rbtree, node);
        ngx_queue_insert_head(&ctx->sh->queue, &cn->queue);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (taken) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "podgen: the maker of a cache entry (process %P) is "
                      "gone, made here", taken);
    }

    *waiting = 0;
    ngx_http_podgen_metrics_cache(0, kind, 0);

    return NGX_DECLINED;
}


/* The owner gives up: waiters will see no marker and make it themselves. */

void
ngx_http_podgen_cache_release(ngx_http_podgen_cache_conf_t *cache,
    u_char *key)
{
    ngx_http_podgen_cache_ctx_t   *ctx;
    ngx_http_podgen_cache_node_t  *cn;

    ctx = cache->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_podgen_cache_find(ctx, key);
    if (cn && cn->pending) {
        ngx_http_podgen_cache_delete(ctx, cn);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* A waiter gives up. */

void
ngx_http_podgen_cache_leave(ngx_http_podgen_cache_conf_t *cache, u_char *key)
{
    ngx_http_podgen_cache_ctx_t   *ctx;
    ngx_http_podgen_cache_node_t  *cn;

    ctx = cache->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_podgen_cache_find(ctx, key);
    if (cn && cn->pending && cn->waiters) {
        cn->waiters--;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_uint_t
ngx_http_podgen_cache_waiters(ngx_http_podgen_cache_conf_t *cache,
    u_char *key)
{
    ngx_uint_t                     n;
    ngx_http_podgen_cache_ctx_t   *ctx;
    ngx_http_podgen_cache_node_t  *cn;

    ctx = cache->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_podgen_cache_find(ctx, key);
    n = (cn && cn->pending) ? cn->waiters : 0;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return n;
}
