/*
 * podgen: the job runner — durable jobs (podcasts, async batches) of
 * several kinds.
 *
 * A job is a record (pg_job_t) in the store (ngx_http_podgen_job_store.h)
 * and, in Redis mode, in Redis (ngx_http_podgen_job_redis.h); its latest
 * version is also in L1 (ngx_http_podgen_job_record.h).  The runner keeps
 * the jobs of this worker, a queue of those waiting and those running
 * (podgen_jobs at once), writes the record after every change, and hands
 * the work to the job's kind: each kind registers a table of what it does
 * (run, cancel, ...), so that the runner knows no kind.
 */

#ifndef NGX_HTTP_PODGEN_JOB_H
#define NGX_HTTP_PODGEN_JOB_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "pg_job.h"


#define NGX_HTTP_PODGEN_JOB_RETRY    200      /* ms: the pool was full */


typedef struct {
    ngx_str_t      store;           /* podgen_store */
    ngx_uint_t     concurrency;     /* podgen_jobs: running per worker */
    ngx_uint_t     batch_max;       /* podgen_batch_max */
    ngx_uint_t     max_jobs;        /* podgen_max_jobs: unfinished jobs
                                       a worker (Redis mode: the fleet)
                                       holds before new ones are 429 */
    ngx_uint_t     used;            /* a podcasts or batch location */
} ngx_http_podgen_jobs_conf_t;


typedef struct ngx_http_podgen_job_s  ngx_http_podgen_job_t;

/* What a kind of job does; the runner calls it, never the other way. */
typedef struct {
    pg_job_kind_t   kind;

    /* starts the work (the record says running); ends with
     * ngx_http_podgen_job_complete() or ngx_http_podgen_job_fail() */
    void          (*run)(ngx_http_podgen_job_t *job);

    /* stops all in flight (the job is deleted or failed) */
    void          (*cancel)(ngx_http_podgen_job_t *job);

    /* the retry timer fired (the kind set it: the pool was full) */
    void          (*retry)(ngx_http_podgen_job_t *job);

    /* 1 while a task of the kind is on the pool (the job must stay) */
    ngx_uint_t    (*busy)(ngx_http_podgen_job_t *job);

    /* frees job->ctx */
    void          (*free)(ngx_http_podgen_job_t *job);
} ngx_http_podgen_job_kind_t;


/*
 * The record is written and the job is ours (rc NGX_OK), or not: rc is
 * NGX_HTTP_INSUFFICIENT_STORAGE when the store had no room for the record
 * (ENOSPC, EDQUOT), else NGX_ERROR.
 */
typedef void (*ngx_http_podgen_job_accepted_pt)(void *data, ngx_int_t rc,
    pg_job_t *rec);


struct ngx_http_podgen_job_s {
    ngx_queue_t                        queue;
    pg_job_t                           rec;
    ngx_log_t                         *log;
    const ngx_http_podgen_job_kind_t  *kind;
    void                              *ctx;         /* the kind's */
    ngx_event_t                        retry;       /* the kind's to set */

    /* the runner's own */
    int                                lock_fd;
    ngx_http_podgen_job_accepted_pt    accepted;
    void                              *data;
    char                               entry[48];   /* stream entry id */
    unsigned                           writing:1;
    unsigned                           dirty:1;
    unsigned                           claimed:1;   /* lock held */
    unsigned                           started:1;
    unsigned                           finished:1;  /* completed / failed */
    unsigned                           final:1;     /* last write done */
    unsigned                           deleted:1;
    unsigned                           unshared:1;  /* not in Redis yet */
};


/* A kind of job, at init_process, before the runner starts. */
void ngx_http_podgen_job_add_kind(const ngx_http_podgen_job_kind_t *kind);

char *ngx_http_podgen_jobs_init_conf(ngx_conf_t *cf,
    ngx_http_podgen_jobs_conf_t *jcf);
ngx_int_t ngx_http_podgen_jobs_init_process(ngx_cycle_t *cycle);
void ngx_http_podgen_jobs_exit_process(ngx_cycle_t *cycle);

/* This worker's configuration of jobs; NULL when no location uses them. */
ngx_http_podgen_jobs_conf_t *ngx_http_podgen_jobs_conf(void);

/*
 * Takes over *rec (a new queued record).  accepted() is called once the
 * record is stored, unless the submitter detaches first; the job runs
 * either way.  NGX_BUSY: the thread pool queue is full.
 */
ngx_int_t ngx_http_podgen_job_submit(pg_job_t *rec,
    ngx_http_podgen_job_accepted_pt accepted, void *data,
    ngx_http_podgen_job_t **jp);
void ngx_http_podgen_job_detach(ngx_http_podgen_job_t *job);
pg_job_t *ngx_http_podgen_job_record(ngx_http_podgen_job_t *job);

/* For the kinds: the record changed (progress); it is written. */
void ngx_http_podgen_job_write(ngx_http_podgen_job_t *job);

/* Progress of a running job. */
void ngx_http_podgen_job_progress(ngx_http_podgen_job_t *job,
    size_t done, size_t total);

/*
 * The job is done: completed (result: len bytes of results JSON, or
 * NULL), or failed with an error code and message.
 */
void ngx_http_podgen_job_complete(ngx_http_podgen_job_t *job,
    u_char *result, size_t len);
void ngx_http_podgen_job_fail(ngx_http_podgen_job_t *job, const char *code,
    const char *message);

/* For a kind whose task on the pool is over: the job may be freed now. */
void ngx_http_podgen_job_release(ngx_http_podgen_job_t *job);

/* Stops a job of this worker that was deleted. */
void ngx_http_podgen_job_forget(const char *id);

/* In Redis mode: the fleet shares the jobs. */
ngx_uint_t ngx_http_podgen_jobs_shared(void);

#endif /* NGX_HTTP_PODGEN_JOB_H */
