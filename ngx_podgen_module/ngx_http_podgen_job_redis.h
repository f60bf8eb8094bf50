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
 *   {prefix}epoch           made by the first node that finds none: a
 *                           Redis that lost its data has another
 *
 * A record is written only by compare and set (its version), a deleted
 * job's record is a tombstone "-" for a week.
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


/* what a record write found (the replies of the write script) */
typedef enum {
    NGX_HTTP_PODGEN_JOB_PUT_EPOCH = -2,     /* Redis has another epoch (it
                                               restarted empty): not written */
    NGX_HTTP_PODGEN_JOB_PUT_GONE = -1,      /* the job was deleted */
    NGX_HTTP_PODGEN_JOB_PUT_WRITTEN = 0,
    NGX_HTTP_PODGEN_JOB_PUT_OLDER = 1,      /* ours is not newer than the
                                               fleet's: not written */
    NGX_HTTP_PODGEN_JOB_PUT_FINAL = 2,      /* the fleet's is final and
                                               ours not newer: not written */
    NGX_HTTP_PODGEN_JOB_PUT_FAILED = 3      /* Redis failed */
} ngx_http_podgen_job_put_e;

/*
 * A record write's answer: the id and version written, the result, and
 * for NGX_HTTP_PODGEN_JOB_PUT_FINAL the fleet's record (valid during the
 * call; else empty).
 */
typedef void (*ngx_http_podgen_job_put_pt)(void *data, const char *id,
    uint64_t version, ngx_int_t result, ngx_str_t *winner);

/*
 * The fleet's epoch is known (again): lost is 1 when it is not the one
 * known before (Redis lost what it held).
 */
typedef void (*ngx_http_podgen_job_redis_epoch_pt)(const char *epoch,
    ngx_uint_t lost);

/* rc NGX_OK / NGX_ERROR (Redis failed) */
typedef void (*ngx_http_podgen_job_redis_done_pt)(void *data, ngx_int_t rc);

/* A job to run from the stream: its entry id and its record. */
typedef void (*ngx_http_podgen_job_redis_take_pt)(const char *entry,
    pg_job_t *rec);

/*
 * rc NGX_OK: the record (rec) or the episode (audio, len), valid during
 * the call; NGX_DECLINED: none; NGX_DONE: a tombstone (deleted); NGX_BUSY:
 * Redis did not answer (there may be one); NGX_ERROR.
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

/*
 * The record as it is now, by compare and set (see the write script in
 * the .c): done() gets what it found (done may be NULL).  NGX_DECLINED:
 * Redis is not up (done() is not called).
 */
ngx_int_t ngx_http_podgen_job_redis_put(pg_job_t *rec, pg_buf_t *json,
    ngx_http_podgen_job_put_pt done, void *data);

/* A stream entry again for a job whose entry Redis lost. */
void ngx_http_podgen_job_redis_requeue(const char *id);

/*
 * The fleet's unfinished jobs (the stream's length): measured now and
 * again, counted up by the jobs this worker queues meanwhile.
 */
void ngx_http_podgen_job_redis_measure(void);
ngx_uint_t ngx_http_podgen_job_redis_length(void);

/* Asks Redis for the fleet's epoch (making it if there is none). */
void ngx_http_podgen_job_redis_epoch(void);

/* 1 once this worker knows the fleet's epoch. */
ngx_uint_t ngx_http_podgen_job_redis_epoch_known(void);

/* Who is told of the epoch, and the one known from before (or NULL). */
void ngx_http_podgen_job_redis_on_epoch(
    ngx_http_podgen_job_redis_epoch_pt handler, const char *known);

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
