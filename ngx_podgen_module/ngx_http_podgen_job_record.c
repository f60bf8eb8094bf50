/*
 * podgen: the latest record of a job, from wherever it is (see the
 * header).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "pg_key.h"
#include "pg_job.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_job_store.h"
#include "ngx_http_podgen_job_redis.h"
#include "ngx_http_podgen_job_record.h"


static ngx_http_podgen_cache_conf_t  *ngx_http_podgen_job_record_cache;
static ngx_uint_t                     ngx_http_podgen_job_record_shared;
static ngx_uint_t                     ngx_http_podgen_job_record_on;


void
ngx_http_podgen_job_record_init(ngx_http_podgen_cache_conf_t *cache,
    ngx_uint_t shared)
{
    ngx_http_podgen_job_record_cache = cache->shm_zone ? cache : NULL;
    ngx_http_podgen_job_record_shared = shared;
    ngx_http_podgen_job_record_on = 1;
}


void
ngx_http_podgen_job_record_exit(void)
{
    ngx_http_podgen_job_record_cache = NULL;
    ngx_http_podgen_job_record_on = 0;
}


/* ---- L1: the latest record of live jobs --------------------------------- */


static void
ngx_http_podgen_job_l1_key(const char *id, u_char *key)
{
    char  hex[PG_KEY_LEN + 1], name[sizeof("job:") + PG_JOB_ID_LEN];

    ngx_sprintf((u_char *) name, "job:%s%Z", id);
    (void) pg_key_sha256(name, ngx_strlen(name), hex);
    ngx_http_podgen_cache_key(key, hex);
}


void
ngx_http_podgen_job_l1_put(const char *id, u_char *data, size_t len)
{
    u_char                        key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    ngx_http_podgen_cache_conf_t  *cache;

    cache = ngx_http_podgen_job_record_cache;

    if (cache == NULL) {
        return;
    }

    ngx_http_podgen_job_l1_key(id, key);
    (void) ngx_http_podgen_cache_put(cache, key,
                                     PG_KIND_JOB, data, len, 0,
                                     ngx_cycle->log);
}


ngx_uint_t
ngx_http_podgen_job_l1_deleted(const char *id)
{
    u_char                        *data, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                         len;
    ngx_pool_t                    *pool;
    ngx_uint_t                     tag, deleted;
    ngx_http_podgen_cache_conf_t  *cache;

    cache = ngx_http_podgen_job_record_cache;

    if (cache == NULL) {
        return 0;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return 0;
    }

    ngx_http_podgen_job_l1_key(id, key);

    deleted = ngx_http_podgen_cache_get(cache, key,
                                        PG_KIND_JOB, pool, &data,
                                        &len, &tag)
              == NGX_OK
              && len == 1 && data[0] == '-';

    ngx_destroy_pool(pool);

    return deleted;
}


void
ngx_http_podgen_job_tombstone(const char *id)
{
    ngx_http_podgen_job_l1_put(id, (u_char *) "-", 1);
}


/* a lookup in Redis mode, with this node's copy if it has one */
typedef struct {
    ngx_http_podgen_job_found_pt   found;
    void                          *data;
    void                          *fetch;
    pg_job_t                       copy;
    unsigned                       have:1;      /* a copy */
    unsigned                       sure:1;      /* the copy is the truth
                                                   when Redis is away: a
                                                   live job's (L1) or a
                                                   final one */
    char                           id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_lookup_t;


static ngx_int_t
ngx_http_podgen_job_parse(const char *id, u_char *data, size_t len,
    pg_job_t *rec, ngx_log_t *log)
{
    pg_error_t  err;

    if (pg_job_from_json((char *) data, len, rec, &err) != 0
        || ngx_strcmp(rec->id, id) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "podgen: job \"%s\": corrupt record: %s", id,
                      err.message);
        pg_job_free(rec);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The record from L1 (*l1 = 1) or the store: NGX_OK, NGX_DECLINED (none),
 * NGX_DONE (a tombstone in L1: deleted), NGX_ERROR.
 */

static ngx_int_t
ngx_http_podgen_job_read(ngx_pool_t *pool, const char *id, pg_job_t *rec,
    ngx_uint_t *l1, ngx_log_t *log)
{
    u_char                        *data, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                         len;
    ngx_int_t                      rc;
    ngx_uint_t                     tag;
    ngx_http_podgen_cache_conf_t  *cache;
    char                           path[NGX_MAX_PATH];

    cache = ngx_http_podgen_job_record_cache;
    *l1 = 0;

    if (cache) {
        ngx_http_podgen_job_l1_key(id, key);
        rc = ngx_http_podgen_cache_get(cache, key, PG_KIND_JOB, pool, &data,
                                       &len, &tag);

        if (rc == NGX_OK) {
            if (len == 1 && data[0] == '-') {
                return NGX_DONE;
            }

            *l1 = 1;
            return ngx_http_podgen_job_parse(id, data, len, rec, log);
        }
    }

    ngx_http_podgen_job_path(path, "jobs", id, ".json");

    rc = ngx_http_podgen_job_read_file(pool, path, &data, &len, log);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_podgen_job_parse(id, data, len, rec, log);
}


ngx_int_t
ngx_http_podgen_job_load(ngx_pool_t *pool, const char *id, pg_job_t *rec,
    ngx_log_t *log)
{
    ngx_int_t   rc;
    ngx_uint_t  l1;

    if (!ngx_http_podgen_job_record_on) {
        return NGX_ERROR;
    }

    rc = ngx_http_podgen_job_read(pool, id, rec, &l1, log);

    return (rc == NGX_DONE) ? NGX_DECLINED : rc;
}


static void
ngx_http_podgen_job_lookup_free(void *data)
{
    ngx_http_podgen_job_lookup_t  *lk = data;

    pg_job_free(&lk->copy);
}


/*
 * Redis answered: the newer of its record and this node's copy (Redis's
 * on a tie); none there, our copy (the fleet lost it: it is shared again
 * meanwhile); a tombstone, none; Redis failed, our copy if it is sure.
 */

static void
ngx_http_podgen_job_looked_up(void *data, ngx_int_t rc, pg_job_t *rec,
    u_char *audio, size_t len)
{
    ngx_http_podgen_job_lookup_t  *lk = data;

    lk->fetch = NULL;

    switch (rc) {

    case NGX_OK:
        if (rec && lk->have && lk->copy.version > rec->version) {
            rec = &lk->copy;
        }

        break;

    case NGX_DONE:
        /* deleted in the fleet */
        ngx_http_podgen_job_tombstone(lk->id);
        rc = NGX_DECLINED;
        break;

    case NGX_DECLINED:
        if (lk->have) {
            rc = NGX_OK;
            rec = &lk->copy;
        }

        break;

    default:
        if (lk->have && lk->sure) {
            rc = NGX_OK;
            rec = &lk->copy;
        }
    }

    lk->found(lk->data, rc, rec, audio, len);
}


ngx_int_t
ngx_http_podgen_job_lookup(ngx_pool_t *pool, const char *id, pg_job_t *rec,
    ngx_log_t *log, ngx_uint_t episode, ngx_http_podgen_job_found_pt found,
    void *data, void **handle)
{
    u_char                        *json;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_uint_t                     l1;
    ngx_pool_cleanup_t            *cln;
    ngx_http_podgen_job_lookup_t  *lk;
    char                           path[NGX_MAX_PATH];

    *handle = NULL;

    if (!ngx_http_podgen_job_record_on) {
        return NGX_ERROR;
    }

    if (!ngx_http_podgen_job_record_shared) {
        if (episode) {
            return NGX_DECLINED;
        }

        rc = ngx_http_podgen_job_read(pool, id, rec, &l1, log);

        return (rc == NGX_DONE) ? NGX_DECLINED : rc;
    }

    /* Redis mode: the fleet's record is the truth, unless ours is newer */

    cln = ngx_pool_cleanup_add(pool, sizeof(ngx_http_podgen_job_lookup_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    lk = cln->data;
    ngx_memzero(lk, sizeof(ngx_http_podgen_job_lookup_t));
    cln->handler = ngx_http_podgen_job_lookup_free;

    lk->found = found;
    lk->data = data;
    ngx_memcpy(lk->id, id, PG_JOB_ID_LEN);

    if (!episode) {
        rc = ngx_http_podgen_job_read(pool, id, &lk->copy, &l1, log);

        if (rc == NGX_DONE) {
            return NGX_DECLINED;
        }

        if (rc == NGX_DECLINED) {
            /* a job this node accepted for the fleet */
            ngx_http_podgen_job_path(path, "accepted", id, ".json");

            if (ngx_http_podgen_job_read_file(pool, path, &json, &len, log)
                == NGX_OK)
            {
                rc = ngx_http_podgen_job_parse(id, json, len, &lk->copy, log);
            }
        }

        if (rc == NGX_OK) {
            lk->have = 1;
            lk->sure = l1 || lk->copy.status == PG_JOB_COMPLETED
                       || lk->copy.status == PG_JOB_FAILED;
        }
    }

    rc = ngx_http_podgen_job_redis_get(id, episode, 2000,
                                       ngx_http_podgen_job_looked_up, lk,
                                       &lk->fetch);
    if (rc == NGX_AGAIN) {
        *handle = lk;
        return NGX_AGAIN;
    }

    if (rc == NGX_DECLINED && lk->have && lk->sure) {
        /* Redis is not up: this node's job, or a finished one */
        *rec = lk->copy;
        ngx_memzero(&lk->copy, sizeof(pg_job_t));
        return NGX_OK;
    }

    /* Redis is away: nobody here can say whether there is one */

    return (rc == NGX_DECLINED) ? NGX_BUSY : rc;
}


void
ngx_http_podgen_job_lookup_cancel(void *handle)
{
    ngx_http_podgen_job_lookup_t  *lk = handle;

    if (lk->fetch) {
        ngx_http_podgen_job_redis_cancel(lk->fetch);
        lk->fetch = NULL;
    }
}
