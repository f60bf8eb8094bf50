/*
 * podgen: the latest record of a job, from wherever it is — L1 (the
 * latest version of a live job, for every worker of the node), this
 * node's store, and in Redis mode the fleet's copy in Redis.
 */

#ifndef NGX_HTTP_PODGEN_JOB_RECORD_H
#define NGX_HTTP_PODGEN_JOB_RECORD_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "pg_job.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_job_redis.h"


/* rc NGX_OK: the record or the episode, valid during the call */
typedef ngx_http_podgen_job_redis_found_pt  ngx_http_podgen_job_found_pt;


/* In a worker's init_process; shared: Redis mode. */
void ngx_http_podgen_job_record_init(ngx_http_podgen_cache_conf_t *cache,
    ngx_uint_t shared);

void ngx_http_podgen_job_record_exit(void);

/* The latest record of a live job, in L1 (a copy). */
void ngx_http_podgen_job_l1_put(const char *id, u_char *data, size_t len);

/* 1 when L1 says the job was deleted. */
ngx_uint_t ngx_http_podgen_job_l1_deleted(const char *id);

/* Marks a deleted job in L1 so that no worker serves it any more. */
void ngx_http_podgen_job_tombstone(const char *id);

/*
 * The latest record: from L1, else from the store.  NGX_OK (*rec to
 * free with pg_job_free), NGX_DECLINED (no such job), NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_job_load(ngx_pool_t *pool, const char *id,
    pg_job_t *rec, ngx_log_t *log);

/*
 * The latest record: standalone, as job_load.  In Redis mode the fleet's
 * record, or this node's copy (L1, the store, an accepted copy) when it
 * is newer or the fleet has none; with Redis away, this node's copy when
 * it is the truth (a live job's, or a final one), else NGX_BUSY (there
 * may be one).  NGX_OK (*rec filled now), NGX_DECLINED (none, or
 * deleted), NGX_BUSY, NGX_ERROR, or NGX_AGAIN: found() is called later
 * with the record (valid during the call; rec NULL unless rc is NGX_OK)
 * unless *handle is canceled first.  episode: the episode's audio (audio,
 * len) from Redis instead of the record.
 */
ngx_int_t ngx_http_podgen_job_lookup(ngx_pool_t *pool, const char *id,
    pg_job_t *rec, ngx_log_t *log, ngx_uint_t episode,
    ngx_http_podgen_job_found_pt found, void *data, void **handle);
void ngx_http_podgen_job_lookup_cancel(void *handle);

#endif /* NGX_HTTP_PODGEN_JOB_RECORD_H */
