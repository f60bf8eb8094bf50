/*
 * podgen: the jobs and the library of the fleet in Redis — every key,
 * script and stream command of the job model, behind named functions.
 *
 *   {prefix}job:{id}        a job's record (JSON, the same as on disk)
 *   {prefix}episode:{id}    a completed podcast's episode
 *   {prefix}podcasts        sorted set: the id of every podcast record
 *   {prefix}episodes        sorted set: the ids of completed ones
 *   {prefix}jobq            stream of jobs to run, read by the consumer
 *                           group "podgen" (a consumer per worker)
 *
 * Scores are 0: ids sort by time, so a page of the library is a reverse
 * lexicographic range below a cursor.
 */

#ifndef NGX_HTTP_PODGEN_JOB_REDIS_H
#define NGX_HTTP_PODGEN_JOB_REDIS_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "pg_buf.h"
#include "pg_job.h"
#include "ngx_http_podgen_redis.h"


/* how a record is written */
typedef enum {
    NGX_HTTP_PODGEN_JOB_PUT_XX = 0,     /* over a record that is there */
    NGX_HTTP_PODGEN_JOB_PUT_SHARE       /* one accepted while Redis was
                                           down: if none is there, with
                                           its place in the library */
} ngx_http_podgen_job_put_e;


/* rc NGX_OK / NGX_ERROR (Redis failed) */
typedef void (*ngx_http_podgen_job_redis_done_pt)(void *data, ngx_int_t rc);

/* A job to run from the stream: its entry id and its record. */
typedef void (*ngx_http_podgen_job_redis_take_pt)(const char *entry,
    pg_job_t *rec);

/*
 * rc NGX_OK: the record (rec) or the episode (audio, len), valid during
 * the call; NGX_DECLINED: none; NGX_BUSY: Redis did not answer (there may
 * be one); NGX_ERROR.
 */
typedef void (*ngx_http_podgen_job_redis_found_pt)(void *data, ngx_int_t rc,
    pg_job_t *rec, u_char *audio, size_t len);


/* In a worker's init_process, in Redis mode: its consumer name. */
void ngx_http_podgen_job_redis_init(ngx_cycle_t *cycle);

/*
 * A new job for the fleet: the record, its place in the library (a
 * podcast), then its stream entry; done() once both are there (NGX_OK)
 * or not.  NGX_DECLINED: Redis is not up (done() is not called).
 */
ngx_int_t ngx_http_podgen_job_redis_queue(pg_job_t *rec, pg_buf_t *json,
    ngx_http_podgen_job_redis_done_pt done, void *data);

/* The record as it is now (fire and forget); a completed podcast also
 * enters the library's episodes. */
void ngx_http_podgen_job_redis_put(pg_job_t *rec, pg_buf_t *json,
    ngx_http_podgen_job_put_e how);

/* A completed podcast's episode, for the other nodes. */
void ngx_http_podgen_job_redis_episode(const char *id, u_char *audio,
    size_t len);

/* A finished job's stream entry is acknowledged and deleted. */
void ngx_http_podgen_job_redis_ack(const char *entry);

/*
 * One turn of the stream consumer: the group is made if need be, the
 * library indexed (worker 0, a page a turn), and up to room new entries
 * read (with reclaim, also those of consumers that stopped beating);
 * take() gets each job that is to run, done() the delay to the next turn
 * (ms).  NGX_DECLINED: Redis is not up.
 */
ngx_int_t ngx_http_podgen_job_redis_turn(ngx_uint_t room, ngx_uint_t reclaim,
    ngx_http_podgen_job_redis_take_pt take,
    void (*done)(ngx_msec_t next));

/* "Still working on them": entries (at most 10) claimed again. */
void ngx_http_podgen_job_redis_beat(char **entries, ngx_uint_t n);

/*
 * The record (episode 0) or the episode (1) of a job from Redis: NGX_AGAIN
 * found() is called later unless *handle is canceled; NGX_DECLINED Redis
 * is not up; NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_job_redis_get(const char *id, ngx_uint_t episode,
    ngx_msec_t timeout, ngx_http_podgen_job_redis_found_pt found, void *data,
    void **handle);

/* Deletes the record and episode and the library's entries: found() as
 * above, rc NGX_OK when there was a record.  Cancel as a get. */
ngx_int_t ngx_http_podgen_job_redis_delete(const char *id,
    ngx_http_podgen_job_redis_found_pt found, void *data, void **handle);

/* found() is not called then. */
void ngx_http_podgen_job_redis_cancel(void *handle);

/*
 * The records (the reply: an array of JSON strings) of the newest n
 * podcasts of the fleet with ids below cursor ("": the newest); feed: the
 * completed ones only.  NULL: Redis is not up.
 */
ngx_http_podgen_redis_op_t *ngx_http_podgen_job_redis_list(
    const char *cursor, ngx_uint_t n, ngx_uint_t feed,
    ngx_http_podgen_redis_reply_pt handler, void *data);

#endif /* NGX_HTTP_PODGEN_JOB_REDIS_H */
