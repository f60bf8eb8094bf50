/*
 * podgen: durable jobs (podcasts, async batches) in embedded mode.
 *
 * A job is a JSON record in {store}/jobs/{id}.json, replaced by rename on
 * every change, and, while it is unfinished, a lock file {store}/locks/{id}
 * held with flock() by the worker that runs it.  A worker that dies
 * releases its locks with it; every worker looks for unlocked unfinished
 * jobs at start and every few seconds and finishes them, so an accepted
 * job is never lost across restarts, reloads and crashes.  All file work
 * runs on the thread pool.  The latest record of a live job is also kept
 * in L1, where any worker of the node reads it.
 */

#ifndef NGX_HTTP_PODGEN_JOBS_H
#define NGX_HTTP_PODGEN_JOBS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_job.h"
#include "ngx_http_podgen_redis.h"


#define NGX_HTTP_PODGEN_JOB_PAUSE    0.35     /* seconds between segments */


typedef struct {
    ngx_str_t      store;           /* podgen_store */
    ngx_uint_t     concurrency;     /* podgen_jobs: running per worker */
    ngx_uint_t     batch_max;       /* podgen_batch_max */
    ngx_uint_t     used;            /* a podcasts or batch location */
} ngx_http_podgen_jobs_conf_t;


typedef struct ngx_http_podgen_job_s  ngx_http_podgen_job_t;

/* The record is written and the job is ours (rc NGX_OK), or not. */
typedef void (*ngx_http_podgen_job_accepted_pt)(void *data, ngx_int_t rc,
    pg_job_t *rec);

/*
 * A batch job runs in ngx_http_podgen_batch.c: it starts with
 * batch_job_run() and ends with job_batch_done() and its results JSON.
 */
ngx_int_t ngx_http_podgen_batch_job_run(ngx_http_podgen_job_t *job,
    const char *body, size_t len, void **handle);
void ngx_http_podgen_batch_job_cancel(void *handle);
void ngx_http_podgen_job_batch_done(ngx_http_podgen_job_t *job, ngx_int_t rc,
    u_char *result, size_t len, pg_error_t *err);


char *ngx_http_podgen_jobs_init_conf(ngx_conf_t *cf,
    ngx_http_podgen_jobs_conf_t *jcf);
ngx_int_t ngx_http_podgen_jobs_init_process(ngx_cycle_t *cycle);
void ngx_http_podgen_jobs_exit_process(ngx_cycle_t *cycle);

/*
 * Takes over *rec (a new queued record).  accepted() is called once the
 * record is on disk, unless the submitter detaches first; the job runs
 * either way.  NGX_BUSY: the thread pool queue is full.
 */
ngx_int_t ngx_http_podgen_job_submit(pg_job_t *rec,
    ngx_http_podgen_job_accepted_pt accepted, void *data,
    ngx_http_podgen_job_t **jp);
void ngx_http_podgen_job_detach(ngx_http_podgen_job_t *job);

/* Progress of a running batch job. */
void ngx_http_podgen_job_progress(ngx_http_podgen_job_t *job,
    size_t done, size_t total);
pg_job_t *ngx_http_podgen_job_record(ngx_http_podgen_job_t *job);

/*
 * The latest record: from L1, else from the store.  NGX_OK (*rec to
 * free with pg_job_free), NGX_DECLINED (no such job), NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_job_load(ngx_pool_t *pool, const char *id,
    pg_job_t *rec, ngx_log_t *log);

/*
 * As job_load, and in Redis mode from Redis when this node has no copy:
 * NGX_OK (*rec filled now), NGX_DECLINED, NGX_ERROR, or NGX_AGAIN:
 * found() is called later with the record (valid during the call; rec
 * NULL unless rc is NGX_OK) unless *handle is canceled first.  episode: the
 * episode's audio (audio, len) from Redis instead of the record.
 */
typedef void (*ngx_http_podgen_job_found_pt)(void *data, ngx_int_t rc,
    pg_job_t *rec, u_char *audio, size_t len);

ngx_int_t ngx_http_podgen_job_lookup(ngx_pool_t *pool, const char *id,
    pg_job_t *rec, ngx_log_t *log, ngx_uint_t episode,
    ngx_http_podgen_job_found_pt found, void *data, void **handle);
void ngx_http_podgen_job_lookup_cancel(void *handle);

/*
 * Redis mode: the records (an array of JSON strings) of the newest n
 * podcasts of the fleet with ids below cursor ("": the newest); feed: the
 * completed ones.  NULL: not in Redis mode or Redis is not up.
 */
ngx_http_podgen_redis_op_t *ngx_http_podgen_jobs_redis_list(
    const char *cursor, ngx_uint_t n, ngx_uint_t feed,
    ngx_http_podgen_redis_reply_pt handler, void *data);

/* Redis mode: deletes the record and episode there (found() as above). */
ngx_int_t ngx_http_podgen_job_redis_delete(const char *id,
    ngx_http_podgen_job_found_pt found, void *data, void **handle);

/* Stops a job of this worker that was deleted. */
void ngx_http_podgen_job_forget(const char *id);

/* Paths in the store; buf has NGX_MAX_PATH bytes. */
void ngx_http_podgen_job_path(char *buf, const char *dir, const char *id,
    const char *ext);

/* Marks a deleted job in L1 so that no worker serves it any more. */
void ngx_http_podgen_job_tombstone(const char *id);

ngx_http_podgen_jobs_conf_t *ngx_http_podgen_jobs_conf(void);

#endif /* NGX_HTTP_PODGEN_JOBS_H */
