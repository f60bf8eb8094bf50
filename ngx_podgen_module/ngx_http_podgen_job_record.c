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


ngx_int_t
ngx_http_podgen_job_load(ngx_pool_t *pool, const char *id, pg_job_t *rec,
    ngx_log_t *log)
{
    u_char                        *data, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                         len;
    ngx_int_t                      rc;
    ngx_uint_t                     tag;
    pg_error_t                     err;
    ngx_http_podgen_cache_conf_t  *cache;
    char                           path[NGX_MAX_PATH];

    if (!ngx_http_podgen_job_record_on) {
        return NGX_ERROR;
    }

    cache = ngx_http_podgen_job_record_cache;
    rc = NGX_DECLINED;

    if (cache) {
        ngx_http_podgen_job_l1_key(id, key);
        rc = ngx_http_podgen_cache_get(cache, key,
                                       PG_KIND_JOB, pool, &data,
                                       &len, &tag);

        if (rc == NGX_OK && len == 1 && data[0] == '-') {
            return NGX_DECLINED;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_podgen_job_path(path, "jobs", id, ".json");

        rc = ngx_http_podgen_job_read_file(pool, path, &data, &len, log);
        if (rc != NGX_OK) {
            return rc;
        }
    }

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


ngx_int_t
ngx_http_podgen_job_lookup(ngx_pool_t *pool, const char *id, pg_job_t *rec,
    ngx_log_t *log, ngx_uint_t episode, ngx_http_podgen_job_found_pt found,
    void *data, void **handle)
{
    ngx_int_t  rc;

    *handle = NULL;

    if (!episode) {
        rc = ngx_http_podgen_job_load(pool, id, rec, log);

        if (rc != NGX_DECLINED || !ngx_http_podgen_job_record_shared) {
            return rc;
        }

    } else if (!ngx_http_podgen_job_record_shared) {
        return NGX_DECLINED;
    }

    /* another node's job: Redis has it, or Redis is away and nobody
     * here can say whether there is one (NGX_BUSY) */

    rc = ngx_http_podgen_job_redis_get(id, episode, 2000, found, data,
                                       handle);

    return (rc == NGX_DECLINED) ? NGX_BUSY : rc;
}


void
ngx_http_podgen_job_lookup_cancel(void *handle)
{
    ngx_http_podgen_job_redis_cancel(handle);
}
