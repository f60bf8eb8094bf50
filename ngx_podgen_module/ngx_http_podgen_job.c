/*
 * podgen: the job runner (see the header) — lifetime, queues, record
 * writes and the takers of unfinished jobs (the store's scan, or the
 * fleet's stream in Redis mode).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_job.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_job_store.h"
#include "ngx_http_podgen_job_record.h"
#include "ngx_http_podgen_job_redis.h"
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_metrics.h"


#define NGX_HTTP_PODGEN_JOBS_SCAN      5000     /* ms between store scans */
#define NGX_HTTP_PODGEN_JOBS_BEAT      3000     /* ms: "still working on it" */
#define NGX_HTTP_PODGEN_JOB_KINDS      2
#define NGX_HTTP_PODGEN_JOBS_SYNC      2000     /* ms between passes over the
                                                   marked records */
#define NGX_HTTP_PODGEN_JOBS_EPOCH     5000     /* ms: "which epoch now?" */
#define NGX_HTTP_PODGEN_JOBS_SYNC_N    64       /* records a pass */

/* how a record is written to the store */
#define NGX_HTTP_PODGEN_JOB_WRITE      0
#define NGX_HTTP_PODGEN_JOB_CLAIM      1        /* a job to run here */
#define NGX_HTTP_PODGEN_JOB_ACCEPT     2        /* a new job for the fleet */


/* a record write on the pool */
typedef struct {
    ngx_http_podgen_job_t              *job;
    ngx_http_podgen_job_store_write_t   store;
} ngx_http_podgen_job_write_t;


/* what is done to the store's copy after the fleet answered */
typedef enum {
    NGX_HTTP_PODGEN_JOB_FIX_UNMARK = 0,     /* the fleet has it */
    NGX_HTTP_PODGEN_JOB_FIX_REMOVE,         /* deleted in the fleet */
    NGX_HTTP_PODGEN_JOB_FIX_ADOPT,          /* the fleet's final record
                                               replaces ours */
    NGX_HTTP_PODGEN_JOB_FIX_EPOCH           /* the fleet's epoch, kept */
} ngx_http_podgen_job_fix_e;

typedef struct {
    ngx_http_podgen_job_fix_e     what;
    pg_buf_t                      json;
    char                          id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_fix_t;

/* a record shared again by the sync pass */
typedef struct {
    unsigned                      orphan:1;
    unsigned                      final:1;
} ngx_http_podgen_job_resync_t;


/* the runner's state in this worker */
typedef struct {
    ngx_http_podgen_main_conf_t  *pmcf;     /* NULL: no jobs here */
    ngx_queue_t                   waiting;
    ngx_queue_t                   running;
    ngx_uint_t                    nrunning;
    ngx_uint_t                    n;        /* all */
    ngx_uint_t                    scanning;
    ngx_uint_t                    shared;   /* Redis mode */
    ngx_uint_t                    syncing;
    ngx_uint_t                    sync_all; /* Redis lost its data: every
                                               record of the store again */
    char                          sync_at[PG_JOB_ID_LEN + 1];
    char                          epoch[32];    /* as the store keeps it */
    ngx_msec_t                    last_beat;
    ngx_msec_t                    last_epoch;
    ngx_event_t                   sync_ev;
    ngx_event_t                   scan_ev;
    ngx_event_t                   keep_ev;
    ngx_event_t                   stream_ev;
    ngx_connection_t              dummy;
} ngx_http_podgen_jobs_t;


static ngx_int_t ngx_http_podgen_job_post_write(ngx_http_podgen_job_t *job,
    ngx_uint_t how);
static void ngx_http_podgen_job_queued(void *data, ngx_int_t rc);
static void ngx_http_podgen_job_start_next(void);
static void ngx_http_podgen_job_run(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_stop(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_maybe_free(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_let_go(ngx_http_podgen_job_t *job,
    ngx_int_t rc);
static void ngx_http_podgen_job_scan_handler(ngx_event_t *ev);
static void ngx_http_podgen_job_keep_handler(ngx_event_t *ev);
static void ngx_http_podgen_job_retry_handler(ngx_event_t *ev);
static void ngx_http_podgen_jobs_stream_handler(ngx_event_t *ev);
static void ngx_http_podgen_jobs_sync_handler(ngx_event_t *ev);
static void ngx_http_podgen_jobs_epoch(const char *epoch, ngx_uint_t lost);
static ngx_http_podgen_job_t *ngx_http_podgen_job_find(const char *id);


static ngx_http_podgen_jobs_t  ngx_http_podgen_jobs;

static const ngx_http_podgen_job_kind_t
    *ngx_http_podgen_jobs_kinds[NGX_HTTP_PODGEN_JOB_KINDS];


/* ---- configuration ------------------------------------------------------ */


char *
ngx_http_podgen_jobs_init_conf(ngx_conf_t *cf,
    ngx_http_podgen_jobs_conf_t *jcf)
{
    ngx_conf_init_uint_value(jcf->concurrency, 2);
    ngx_conf_init_uint_value(jcf->batch_max, 100);
    ngx_conf_init_uint_value(jcf->max_jobs, 1000);

    if (jcf->store.data == NULL) {
        ngx_str_set(&jcf->store, "podgen_store");
    }

    if (ngx_conf_full_name(cf->cycle, &jcf->store, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (jcf->store.len > 1 && jcf->store.data[jcf->store.len - 1] == '/') {
        jcf->store.len--;
    }

    if (jcf->store.len + sizeof("/audio/") + PG_JOB_ID_LEN + 16
        > NGX_MAX_PATH)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "podgen_store \"%V\" is too long", &jcf->store);
        return NGX_CONF_ERROR;
    }

    if (!jcf->used) {
        return NGX_CONF_OK;
    }

    if (ngx_http_podgen_job_store_paths(cf, &jcf->store) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_http_podgen_jobs_conf_t *
ngx_http_podgen_jobs_conf(void)
{
    return ngx_http_podgen_jobs.pmcf ? &ngx_http_podgen_jobs.pmcf->jobs
                                     : NULL;
}


ngx_uint_t
ngx_http_podgen_jobs_shared(void)
{
    return ngx_http_podgen_jobs.shared;
}


void
ngx_http_podgen_job_add_kind(const ngx_http_podgen_job_kind_t *kind)
{
    if (kind->kind < NGX_HTTP_PODGEN_JOB_KINDS) {
        ngx_http_podgen_jobs_kinds[kind->kind] = kind;
    }
}


ngx_int_t
ngx_http_podgen_jobs_init_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_podgen_module);

    if (!pmcf->jobs.used) {
        return NGX_OK;
    }

    ngx_http_podgen_jobs.pmcf = pmcf;

    ngx_queue_init(&ngx_http_podgen_jobs.waiting);
    ngx_queue_init(&ngx_http_podgen_jobs.running);

    ngx_http_podgen_job_store_init(&pmcf->jobs.store);
    ngx_http_podgen_job_record_init(&pmcf->cache,
                                    pmcf->redis.addr_text.len != 0);

    ngx_http_podgen_jobs.dummy.fd = (ngx_socket_t) -1;

    ngx_http_podgen_jobs.scan_ev.handler = ngx_http_podgen_job_scan_handler;
    ngx_http_podgen_jobs.scan_ev.data = &ngx_http_podgen_jobs.dummy;
    ngx_http_podgen_jobs.scan_ev.log = cycle->log;
    ngx_http_podgen_jobs.scan_ev.cancelable = 1;

    /* while jobs run, a timer that is not cancelable keeps an exiting
     * worker (reload, upgrade) alive until they are finished */

    ngx_http_podgen_jobs.keep_ev.handler = ngx_http_podgen_job_keep_handler;
    ngx_http_podgen_jobs.keep_ev.data = &ngx_http_podgen_jobs.dummy;
    ngx_http_podgen_jobs.keep_ev.log = cycle->log;

    if (pmcf->redis.addr_text.len) {
        /* jobs are shared by the nodes through a stream in Redis; the
         * local store is this node's copy */

        ngx_http_podgen_jobs.shared = 1;
        ngx_http_podgen_job_redis_init(cycle);

        ngx_http_podgen_jobs.stream_ev.handler =
                                          ngx_http_podgen_jobs_stream_handler;
        ngx_http_podgen_jobs.stream_ev.data = &ngx_http_podgen_jobs.dummy;
        ngx_http_podgen_jobs.stream_ev.log = cycle->log;
        ngx_http_podgen_jobs.stream_ev.cancelable = 1;

        ngx_add_timer(&ngx_http_podgen_jobs.stream_ev, 50 + ngx_worker * 50);

        /* worker 0 shares the store's copies the fleet may not have, all
         * of them when Redis lost its data (its epoch is not the one the
         * store knows) */

        ngx_http_podgen_jobs.syncing = 0;
        ngx_http_podgen_jobs.sync_all = 0;
        ngx_http_podgen_jobs.sync_at[0] = '\0';
        ngx_http_podgen_jobs.epoch[0] = '\0';

        if (ngx_worker == 0) {
            ngx_http_podgen_job_store_epoch(ngx_http_podgen_jobs.epoch,
                                            sizeof(ngx_http_podgen_jobs.epoch));

            ngx_http_podgen_jobs.sync_ev.handler =
                                            ngx_http_podgen_jobs_sync_handler;
            ngx_http_podgen_jobs.sync_ev.data = &ngx_http_podgen_jobs.dummy;
            ngx_http_podgen_jobs.sync_ev.log = cycle->log;
            ngx_http_podgen_jobs.sync_ev.cancelable = 1;

            ngx_add_timer(&ngx_http_podgen_jobs.sync_ev, 500);
        }

        ngx_http_podgen_job_redis_on_epoch(ngx_http_podgen_jobs_epoch,
                                           ngx_http_podgen_jobs.epoch[0]
                                           ? ngx_http_podgen_jobs.epoch
                                           : NULL);

        return NGX_OK;
    }

    /* unfinished jobs of a previous run: soon, and then now and again */

    ngx_add_timer(&ngx_http_podgen_jobs.scan_ev, 10 + ngx_worker * 100);

    return NGX_OK;
}


void
ngx_http_podgen_jobs_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t            *q;
    ngx_http_podgen_job_t  *job;

    if (ngx_http_podgen_jobs.pmcf == NULL) {
        return;
    }

    /* jobs still here (a fast shutdown) are left to the next worker:
     * their locks go with this process */

    while (!ngx_queue_empty(&ngx_http_podgen_jobs.waiting)) {
        q = ngx_queue_head(&ngx_http_podgen_jobs.waiting);
        ngx_queue_remove(q);
        job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

        if (job->lock_fd != -1) {
            (void) close(job->lock_fd);
            job->lock_fd = -1;
        }
    }

    ngx_http_podgen_jobs.pmcf = NULL;
    ngx_http_podgen_job_record_exit();
}


/* ---- record writes ------------------------------------------------------ */


/*
 * The record as written goes to Redis too, by compare and set: what the
 * fleet answers may be that the job was deleted, or finished by another
 * worker (after a split, a double take): the fleet's record wins then.
 */

static void
ngx_http_podgen_job_fix(const char *id, ngx_http_podgen_job_fix_e what,
    ngx_str_t *json);


static void
ngx_http_podgen_job_shared(void *data, const char *id, uint64_t version,
    ngx_int_t result, ngx_str_t *winner)
{
    ngx_uint_t              final;
    pg_error_t              err;
    ngx_http_podgen_job_t  *job;

    final = (data != NULL);
    job = ngx_http_podgen_jobs.pmcf ? ngx_http_podgen_job_find(id) : NULL;

    switch (result) {

    case NGX_HTTP_PODGEN_JOB_PUT_WRITTEN:
        if (final) {
            ngx_http_podgen_job_fix(id, NGX_HTTP_PODGEN_JOB_FIX_UNMARK, NULL);
        }

        break;

    case NGX_HTTP_PODGEN_JOB_PUT_GONE:
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "podgen: job \"%s\" was deleted in the fleet", id);

        ngx_http_podgen_job_tombstone(id);
        ngx_http_podgen_job_fix(id, NGX_HTTP_PODGEN_JOB_FIX_REMOVE, NULL);

        if (job && !job->finished) {
            job->deleted = 1;
            ngx_http_podgen_job_stop(job);
            job->final = 1;
            ngx_http_podgen_job_maybe_free(job);
        }

        break;

    case NGX_HTTP_PODGEN_JOB_PUT_FINAL:
        if (job == NULL || job->finished) {
            if (!final) {
                ngx_http_podgen_job_fix(id, NGX_HTTP_PODGEN_JOB_FIX_ADOPT,
                                        winner);
            }

            break;
        }

        /* another worker finished it: its record is the job's, here too
         * (written over ours with the next version) */

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "podgen: job \"%s\" was finished elsewhere", id);

        ngx_http_podgen_job_stop(job);
        pg_job_free(&job->rec);

        if (pg_job_from_json((char *) winner->data, winner->len, &job->rec,
                             &err)
            != 0
            || ngx_strcmp(job->rec.id, id) != 0)
        {
            pg_job_free(&job->rec);
            (void) ngx_cpystrn((u_char *) job->rec.id, (u_char *) id,
                               sizeof(job->rec.id));
            (void) pg_job_set_failed(&job->rec, "server_error",
                                     "the record could not be read");
        }

        job->rec.version = ngx_max(job->rec.version, version);
        ngx_http_podgen_job_write(job);
        break;

    default:
        /* older (the fleet has a newer one: ours may follow it), epoch
         * (the whole store is shared again), failed: the mark stays */
        break;
    }
}


static void
ngx_http_podgen_job_share(ngx_http_podgen_job_t *job, pg_buf_t *json)
{
    if (!ngx_http_podgen_jobs.shared) {
        return;
    }

    /* Redis not up: the store's copy is marked, and shared later */

    (void) ngx_http_podgen_job_redis_put(&job->rec, json,
                                         ngx_http_podgen_job_shared,
                                         (job->rec.status == PG_JOB_COMPLETED
                                          || job->rec.status
                                             == PG_JOB_FAILED)
                                         ? (void *) 1 : NULL);
}


static void
ngx_http_podgen_job_write_thread(void *data)
{
    ngx_http_podgen_job_write_t  *w = data;

    ngx_http_podgen_job_store_write(&w->store);
}


static void
ngx_http_podgen_job_write_after(void *data)
{
    ngx_http_podgen_job_write_t  *d = data;

    ngx_http_podgen_job_t              *job;
    ngx_http_podgen_job_store_write_t  *w;

    job = d->job;
    w = &d->store;
    job->writing = 0;

    if (w->accept && !w->err) {
        /* the node's copy is there: now the fleet's */

        if (ngx_http_podgen_job_redis_queue(&job->rec, &w->json,
                                            ngx_http_podgen_job_queued, job)
            != NGX_OK)
        {
            ngx_http_podgen_job_queued(job, NGX_ERROR);
        }

        return;
    }

    if (w->claim || w->accept) {
        if (w->err) {
            ngx_log_error(NGX_LOG_ERR, job->log, w->err,
                          "podgen: job \"%s\" could not be stored",
                          job->rec.id);

            /* no room in the store: the client is told so (507) */

            ngx_http_podgen_job_let_go(job,
                                       (w->err == NGX_ENOSPC
                                        || w->err == EDQUOT)
                                       ? NGX_HTTP_INSUFFICIENT_STORAGE
                                       : NGX_ERROR);
            return;
        }

        job->lock_fd = w->lock_fd;
        job->claimed = 1;

        ngx_http_podgen_job_l1_put(job->rec.id, w->json.data, w->json.len);
        ngx_http_podgen_job_share(job, &w->json);

        if (job->accepted) {
            job->accepted(job->data, NGX_OK, &job->rec);
            job->accepted = NULL;
        }

        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, 1);
        ngx_queue_insert_tail(&ngx_http_podgen_jobs.waiting, &job->queue);
        ngx_http_podgen_job_start_next();
        return;
    }

    if (w->deleted) {
        job->deleted = 1;
        ngx_http_podgen_job_stop(job);
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
        return;
    }

    if (w->err) {
        ngx_log_error(NGX_LOG_ERR, job->log, w->err,
                      "podgen: job \"%s\": the record could not be written",
                      job->rec.id);

    } else if (ngx_http_podgen_job_l1_deleted(job->rec.id)) {
        /* another worker of the node deleted it meanwhile */
        job->deleted = 1;
        ngx_http_podgen_job_stop(job);
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
        return;

    } else {
        ngx_http_podgen_job_l1_put(job->rec.id, w->json.data, w->json.len);
        ngx_http_podgen_job_share(job, &w->json);
    }

    if (job->dirty || (job->finished && !w->final)) {
        job->dirty = 0;
        ngx_http_podgen_job_write(job);
        return;
    }

    if (w->final) {
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
    }
}


static void
ngx_http_podgen_job_write_release(void *data)
{
    ngx_http_podgen_job_write_t  *w = data;

    pg_buf_free(&w->store.json);
    ngx_free(w);
}


static ngx_int_t
ngx_http_podgen_job_post_write(ngx_http_podgen_job_t *job, ngx_uint_t how)
{
    ngx_http_podgen_job_write_t  *w;

    w = ngx_calloc(sizeof(ngx_http_podgen_job_write_t), job->log);
    if (w == NULL) {
        return NGX_ERROR;
    }

    job->rec.version++;
    job->rec.updated_ms = (int64_t) ngx_time() * 1000
                          + (int64_t) ngx_timeofday()->msec;

    if (pg_job_to_json(&job->rec, &w->store.json) != 0) {
        ngx_free(w);
        return NGX_ERROR;
    }

    w->job = job;
    w->store.lock_fd = -1;
    w->store.claim = (how == NGX_HTTP_PODGEN_JOB_CLAIM);
    w->store.accept = (how == NGX_HTTP_PODGEN_JOB_ACCEPT);
    w->store.mark = ngx_http_podgen_jobs.shared;
    w->store.final = job->finished;
    ngx_memcpy(w->store.id, job->rec.id, sizeof(w->store.id));

    if (ngx_http_podgen_offload(ngx_http_podgen_jobs.pmcf->thread_pool,
                                ngx_http_podgen_job_write_thread,
                                ngx_http_podgen_job_write_after,
                                ngx_http_podgen_job_write_release, w,
                                job->log)
        == NULL)
    {
        pg_buf_free(&w->store.json);
        ngx_free(w);
        return NGX_BUSY;
    }

    job->writing = 1;

    return NGX_OK;
}


void
ngx_http_podgen_job_write(ngx_http_podgen_job_t *job)
{
    if (job->writing) {
        job->dirty = 1;
        return;
    }

    if (ngx_http_podgen_job_post_write(job, NGX_HTTP_PODGEN_JOB_WRITE)
        != NGX_OK)
    {
        /* the pool is full: write a little later */
        job->dirty = 1;

        if (!job->retry.timer_set) {
            ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOB_RETRY);
        }
    }
}


/* ---- lifetime ----------------------------------------------------------- */


static ngx_http_podgen_job_t *
ngx_http_podgen_job_new(pg_job_t *rec)
{
    ngx_http_podgen_job_t  *job;

    job = ngx_calloc(sizeof(ngx_http_podgen_job_t), ngx_cycle->log);
    if (job == NULL) {
        return NULL;
    }

    job->rec = *rec;
    ngx_memzero(rec, sizeof(pg_job_t));

    job->kind = (job->rec.kind < NGX_HTTP_PODGEN_JOB_KINDS)
                ? ngx_http_podgen_jobs_kinds[job->rec.kind] : NULL;

    job->lock_fd = -1;
    job->log = ngx_cycle->log;

    job->retry.handler = ngx_http_podgen_job_retry_handler;
    job->retry.data = job;
    job->retry.log = ngx_cycle->log;

    ngx_http_podgen_jobs.n++;

    if (!ngx_http_podgen_jobs.keep_ev.timer_set) {
        ngx_add_timer(&ngx_http_podgen_jobs.keep_ev, 1000);
    }

    return job;
}


/* Redis answered a new job: in the fleet's stream, or run here. */

static void
ngx_http_podgen_job_queued(void *data, ngx_int_t rc)
{
    ngx_http_podgen_job_t  *job = data;

    if (rc == NGX_OK) {
        /* a worker of some node takes it from the stream */

        ngx_http_podgen_job_let_go(job, NGX_OK);
        return;
    }

    /* Redis failed: this node runs it from its own store */

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "podgen: job \"%s\" could not be queued in redis, "
                  "run here", job->rec.id);

    if (ngx_http_podgen_job_post_write(job, NGX_HTTP_PODGEN_JOB_CLAIM)
        != NGX_OK)
    {
        ngx_http_podgen_job_let_go(job, NGX_ERROR);
    }
}


ngx_int_t
ngx_http_podgen_job_submit(pg_job_t *rec,
    ngx_http_podgen_job_accepted_pt accepted, void *data,
    ngx_http_podgen_job_t **jp)
{
    ngx_int_t               rc;
    ngx_uint_t              have;
    ngx_http_podgen_job_t  *job;

    /* unfinished jobs: this worker's, in Redis mode the fleet's stream */

    have = ngx_http_podgen_jobs.n;

    if (ngx_http_podgen_jobs.shared) {
        have = ngx_max(have, ngx_http_podgen_job_redis_length());
    }

    if (have >= ngx_http_podgen_jobs.pmcf->jobs.max_jobs) {
        return NGX_DECLINED;
    }

    job = ngx_http_podgen_job_new(rec);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->accepted = accepted;
    job->data = data;

    /*
     * Redis mode: the node's copy (marked: the fleet may not have it),
     * then the fleet's record and stream entry; 202 once all are there.
     * Redis down: the node runs it, and shares it once Redis is back.
     */

    rc = ngx_http_podgen_job_post_write(job,
                                        (ngx_http_podgen_jobs.shared
                                         && ngx_http_podgen_redis_up())
                                        ? NGX_HTTP_PODGEN_JOB_ACCEPT
                                        : NGX_HTTP_PODGEN_JOB_CLAIM);

    if (rc != NGX_OK) {
        *rec = job->rec;
        ngx_memzero(&job->rec, sizeof(pg_job_t));
        job->final = 1;
        job->finished = 1;
        ngx_http_podgen_job_maybe_free(job);
        return rc;
    }

    *jp = job;

    return NGX_OK;
}


void
ngx_http_podgen_job_detach(ngx_http_podgen_job_t *job)
{
    job->accepted = NULL;
    job->data = NULL;
}


pg_job_t *
ngx_http_podgen_job_record(ngx_http_podgen_job_t *job)
{
    return &job->rec;
}


static void
ngx_http_podgen_job_start_next(void)
{
    ngx_queue_t            *q;
    ngx_http_podgen_job_t  *job;

    while (ngx_http_podgen_jobs.nrunning
           < ngx_http_podgen_jobs.pmcf->jobs.concurrency
           && !ngx_queue_empty(&ngx_http_podgen_jobs.waiting))
    {
        q = ngx_queue_head(&ngx_http_podgen_jobs.waiting);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&ngx_http_podgen_jobs.running, q);

        job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);
        job->started = 1;
        ngx_http_podgen_jobs.nrunning++;

        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, -1);
        ngx_http_podgen_metrics_job(PG_MJOB_RUNNING, 1);

        ngx_http_podgen_job_run(job);
    }
}


/* Stops everything in flight; the job is then finished. */

static void
ngx_http_podgen_job_stop(ngx_http_podgen_job_t *job)
{
    if (job->ctx) {
        job->kind->cancel(job);
    }

    job->finished = 1;
}


static void
ngx_http_podgen_job_maybe_free(ngx_http_podgen_job_t *job)
{
    if (job->writing || !job->final
        || (job->ctx && job->kind->busy(job)))
    {
        return;
    }

    if (job->retry.timer_set) {
        ngx_del_timer(&job->retry);
    }

    if (job->started) {
        ngx_queue_remove(&job->queue);
        ngx_http_podgen_jobs.nrunning--;
        ngx_http_podgen_metrics_job(PG_MJOB_RUNNING, -1);

        if (!job->deleted) {
            ngx_http_podgen_metrics_job(job->rec.status == PG_JOB_COMPLETED
                                        ? PG_MJOB_COMPLETED : PG_MJOB_FAILED,
                                        1);
        }

    } else if (job->claimed) {
        /* deleted while it waited */
        ngx_queue_remove(&job->queue);
        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, -1);
    }

    if (job->lock_fd != -1) {
        (void) close(job->lock_fd);
    }

    if ((job->started || job->deleted) && job->entry[0]) {
        /* done with it in the fleet's stream */
        ngx_http_podgen_job_redis_ack(job->entry);
        job->entry[0] = '\0';
    }

    if (job->ctx) {
        job->kind->free(job);
    }

    pg_job_free(&job->rec);
    ngx_free(job);

    ngx_http_podgen_jobs.n--;

    if (ngx_http_podgen_jobs.pmcf) {
        ngx_http_podgen_job_start_next();
    }
}


/* Not this worker's job (any more): the submitter is told, it goes. */

static void
ngx_http_podgen_job_let_go(ngx_http_podgen_job_t *job, ngx_int_t rc)
{
    if (job->accepted) {
        job->accepted(job->data, rc, &job->rec);
        job->accepted = NULL;
    }

    job->finished = 1;
    job->final = 1;
    ngx_http_podgen_job_maybe_free(job);
}


void
ngx_http_podgen_job_release(ngx_http_podgen_job_t *job)
{
    ngx_http_podgen_job_maybe_free(job);
}


static void
ngx_http_podgen_job_retry_handler(ngx_event_t *ev)
{
    ngx_http_podgen_job_t  *job = ev->data;

    if (job->dirty && !job->writing) {
        job->dirty = 0;
        ngx_http_podgen_job_write(job);
    }

    if (job->finished || job->ctx == NULL) {
        return;
    }

    job->kind->retry(job);
}


static void
ngx_http_podgen_job_keep_handler(ngx_event_t *ev)
{
    if (ngx_http_podgen_jobs.n) {
        ngx_add_timer(ev, 1000);
    }
}


void
ngx_http_podgen_job_forget(const char *id)
{
    ngx_queue_t            *q, *next;
    ngx_queue_t            *queues[2];
    ngx_uint_t              i;
    ngx_http_podgen_job_t  *job;

    if (ngx_http_podgen_jobs.pmcf == NULL) {
        return;
    }

    queues[0] = &ngx_http_podgen_jobs.waiting;
    queues[1] = &ngx_http_podgen_jobs.running;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = next)
        {
            next = ngx_queue_next(q);
            job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

            if (ngx_strcmp(job->rec.id, id) != 0 || job->finished) {
                continue;
            }

            job->deleted = 1;
            ngx_http_podgen_job_stop(job);
            job->final = 1;
            ngx_http_podgen_job_maybe_free(job);
            return;
        }
    }
}


/* ---- running ----------------------------------------------------------- */


static void
ngx_http_podgen_job_run(ngx_http_podgen_job_t *job)
{
    job->rec.status = PG_JOB_RUNNING;
    ngx_http_podgen_job_write(job);

    if (job->rec.request == NULL) {
        ngx_http_podgen_job_fail(job, "corrupt_record", "the job has no "
                                 "request");
        return;
    }

    if (job->kind == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "no such kind of job "
                                 "here");
        return;
    }

    job->kind->run(job);
}


void
ngx_http_podgen_job_fail(ngx_http_podgen_job_t *job, const char *code,
    const char *message)
{
    if (job->finished) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, job->log, 0, "podgen: job \"%s\" failed: %s",
                  job->rec.id, message);

    ngx_http_podgen_job_stop(job);

    if (pg_job_set_failed(&job->rec, code, message) != 0) {
        /* no memory for the words: failed all the same */
        job->rec.status = PG_JOB_FAILED;
    }

    ngx_http_podgen_job_write(job);
}


void
ngx_http_podgen_job_complete(ngx_http_podgen_job_t *job, u_char *result,
    size_t len)
{
    if (result && pg_job_set_result(&job->rec, (char *) result, len) != 0) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    job->rec.status = PG_JOB_COMPLETED;
    job->finished = 1;
    ngx_http_podgen_job_write(job);
}




void
ngx_http_podgen_job_progress(ngx_http_podgen_job_t *job, size_t done,
    size_t total)
{
    job->rec.done = done;
    job->rec.total = total;
    ngx_http_podgen_job_write(job);
}


/* ---- unfinished jobs in the store --------------------------------------- */


static void
ngx_http_podgen_job_scan_thread(void *data)
{
    ngx_http_podgen_job_store_scan(data);
}


static void
ngx_http_podgen_job_scan_after(void *data)
{
    ngx_http_podgen_job_scan_t  *sc = data;

    ngx_uint_t              i;
    ngx_http_podgen_job_t  *job;

    for (i = 0; i < sc->n; i++) {

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "podgen: job \"%s\" resumed", sc->recs[i].id);

        job = ngx_http_podgen_job_new(&sc->recs[i]);
        if (job == NULL) {
            pg_job_free(&sc->recs[i]);
            (void) close(sc->fds[i]);
            continue;
        }

        job->lock_fd = sc->fds[i];
        job->claimed = 1;

        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, 1);
        ngx_queue_insert_tail(&ngx_http_podgen_jobs.waiting, &job->queue);
    }

    sc->n = 0;

    ngx_http_podgen_job_start_next();
}


static void
ngx_http_podgen_job_scan_release(void *data)
{
    ngx_http_podgen_job_scan_t  *sc = data;

    ngx_uint_t  i;

    /* not taken over (the worker exits): let them go */

    for (i = 0; i < sc->n; i++) {
        pg_job_free(&sc->recs[i]);
        (void) close(sc->fds[i]);
    }

    ngx_free(sc->recs);
    ngx_free(sc->fds);
    ngx_free(sc);

    ngx_http_podgen_jobs.scanning = 0;

    if (ngx_http_podgen_jobs.pmcf && !ngx_exiting && !ngx_quit
        && !ngx_terminate)
    {
        ngx_add_timer(&ngx_http_podgen_jobs.scan_ev,
                      NGX_HTTP_PODGEN_JOBS_SCAN);
    }
}


static void
ngx_http_podgen_job_scan_handler(ngx_event_t *ev)
{
    ngx_uint_t                   room, have;
    ngx_http_podgen_job_scan_t  *sc;

    if (ngx_exiting || ngx_http_podgen_jobs.scanning) {
        return;
    }

    /* take what this worker can start soon; others take the rest */

    have = ngx_http_podgen_jobs.n;
    room = 2 * ngx_http_podgen_jobs.pmcf->jobs.concurrency;

    if (have >= room) {
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SCAN);
        return;
    }

    room -= have;

    sc = ngx_calloc(sizeof(ngx_http_podgen_job_scan_t), ev->log);
    if (sc == NULL) {
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SCAN);
        return;
    }

    sc->room = room;
    sc->recs = ngx_calloc(room * sizeof(pg_job_t), ev->log);
    sc->fds = ngx_calloc(room * sizeof(int), ev->log);

    if (sc->recs == NULL || sc->fds == NULL
        || ngx_http_podgen_offload(ngx_http_podgen_jobs.pmcf->thread_pool,
                                   ngx_http_podgen_job_scan_thread,
                                   ngx_http_podgen_job_scan_after,
                                   ngx_http_podgen_job_scan_release, sc,
                                   ev->log)
           == NULL)
    {
        ngx_free(sc->recs);
        ngx_free(sc->fds);
        ngx_free(sc);
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SCAN);
        return;
    }

    ngx_http_podgen_jobs.scanning = 1;
}


/* ---- Redis mode: the fleet's stream ------------------------------------ */


static ngx_http_podgen_job_t *
ngx_http_podgen_job_find(const char *id)
{
    ngx_queue_t            *q;
    ngx_queue_t            *queues[2];
    ngx_uint_t              i;
    ngx_http_podgen_job_t  *job;

    queues[0] = &ngx_http_podgen_jobs.waiting;
    queues[1] = &ngx_http_podgen_jobs.running;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = ngx_queue_next(q))
        {
            job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

            if (ngx_strcmp(job->rec.id, id) == 0) {
                return job;
            }
        }
    }

    return NULL;
}


/*
 * A job of the fleet's stream that is to run: here, unless it already
 * runs here.
 */

static void
ngx_http_podgen_job_take(const char *entry, pg_job_t *rec)
{
    ngx_http_podgen_job_t  *job;

    if (ngx_http_podgen_jobs.pmcf == NULL
        || ngx_http_podgen_job_find(rec->id))
    {
        pg_job_free(rec);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "podgen: job \"%s\" taken from the stream (%s)", rec->id,
                  entry);

    job = ngx_http_podgen_job_new(rec);
    if (job == NULL) {
        pg_job_free(rec);
        return;
    }

    (void) ngx_cpystrn((u_char *) job->entry, (u_char *) entry,
                       sizeof(job->entry));

    /* this node's copy, then it runs here */

    if (ngx_http_podgen_job_post_write(job, NGX_HTTP_PODGEN_JOB_CLAIM)
        != NGX_OK)
    {
        job->entry[0] = '\0';
        job->finished = 1;
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
    }
}


static void
ngx_http_podgen_jobs_turned(ngx_msec_t next)
{
    if (ngx_http_podgen_jobs.pmcf && !ngx_exiting
        && !ngx_http_podgen_jobs.stream_ev.timer_set)
    {
        ngx_add_timer(&ngx_http_podgen_jobs.stream_ev, next);
    }
}


/* "Still working on them": the entries of the jobs of this worker. */

static void
ngx_http_podgen_jobs_beat(void)
{
    char                   *entries[10];
    ngx_queue_t            *q;
    ngx_queue_t            *queues[2];
    ngx_uint_t              i, n;
    ngx_http_podgen_job_t  *job;

    queues[0] = &ngx_http_podgen_jobs.waiting;
    queues[1] = &ngx_http_podgen_jobs.running;
    n = 0;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]) && n < 10;
             q = ngx_queue_next(q))
        {
            job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

            if (job->entry[0]) {
                entries[n++] = job->entry;
            }
        }
    }

    ngx_http_podgen_job_redis_beat(entries, n);
}


static void
ngx_http_podgen_jobs_stream_handler(ngx_event_t *ev)
{
    ngx_uint_t  room, beat;

    if (ngx_exiting || ngx_http_podgen_jobs.pmcf == NULL) {
        return;
    }

    if (!ngx_http_podgen_redis_up()) {
        /* the jobs here go on; new ones wait for Redis */
        ngx_add_timer(ev, 1000);
        return;
    }

    ngx_http_podgen_job_redis_measure();

    if (!ngx_http_podgen_job_redis_epoch_known()
        || (ngx_msec_int_t) (ngx_current_msec
                             - ngx_http_podgen_jobs.last_epoch)
           >= NGX_HTTP_PODGEN_JOBS_EPOCH)
    {
        /* a Redis that restarted empty is noticed even when idle */
        ngx_http_podgen_jobs.last_epoch = ngx_current_msec;
        ngx_http_podgen_job_redis_epoch();
    }

    beat = (ngx_msec_int_t) (ngx_current_msec - ngx_http_podgen_jobs.last_beat)
           >= NGX_HTTP_PODGEN_JOBS_BEAT;

    if (beat) {
        ngx_http_podgen_jobs.last_beat = ngx_current_msec;
        ngx_http_podgen_jobs_beat();
    }

    room = 2 * ngx_http_podgen_jobs.pmcf->jobs.concurrency;
    room = (ngx_http_podgen_jobs.n >= room) ? 0
                                            : room - ngx_http_podgen_jobs.n;

    if (ngx_http_podgen_job_redis_turn(room, beat, ngx_http_podgen_job_take,
                                       ngx_http_podgen_jobs_turned)
        != NGX_OK)
    {
        ngx_add_timer(ev, 1000);
    }
}


/* ---- Redis mode: the store's copies the fleet may not have ------------- */


static void
ngx_http_podgen_job_fix_thread(void *data)
{
    ngx_http_podgen_job_fix_t  *fx = data;

    char  path[NGX_MAX_PATH];

    switch (fx->what) {

    case NGX_HTTP_PODGEN_JOB_FIX_UNMARK:
        ngx_http_podgen_job_store_unmark(fx->id);
        break;

    case NGX_HTTP_PODGEN_JOB_FIX_REMOVE:
        ngx_http_podgen_job_store_remove(fx->id);
        break;

    case NGX_HTTP_PODGEN_JOB_FIX_ADOPT:
        /* the fleet's final record, in place of an older one of a job
         * that ran here */
        ngx_http_podgen_job_path(path, "jobs", fx->id, ".json");

        if (access(path, F_OK) == -1
            || ngx_http_podgen_job_write_file(path, fx->json.data,
                                              fx->json.len)
               == NGX_OK)
        {
            ngx_http_podgen_job_path(path, "locks", fx->id, "");
            (void) unlink(path);
            ngx_http_podgen_job_store_unmark(fx->id);
        }

        break;

    case NGX_HTTP_PODGEN_JOB_FIX_EPOCH:
        ngx_http_podgen_job_store_set_epoch((char *) fx->json.data);
        break;
    }
}


static void
ngx_http_podgen_job_fix_after(void *data)
{
}


static void
ngx_http_podgen_job_fix_release(void *data)
{
    ngx_http_podgen_job_fix_t  *fx = data;

    pg_buf_free(&fx->json);
    ngx_free(fx);
}


static void
ngx_http_podgen_job_fix(const char *id, ngx_http_podgen_job_fix_e what,
    ngx_str_t *json)
{
    ngx_http_podgen_job_fix_t  *fx;

    if (ngx_http_podgen_jobs.pmcf == NULL) {
        return;
    }

    fx = ngx_calloc(sizeof(ngx_http_podgen_job_fix_t), ngx_cycle->log);
    if (fx == NULL) {
        return;
    }

    fx->what = what;
    (void) ngx_cpystrn((u_char *) fx->id, (u_char *) id, sizeof(fx->id));

    if (json
        && (json->len == 0
            || pg_buf_append(&fx->json, json->data, json->len) != 0
            || pg_buf_append(&fx->json, (u_char *) "", 1) != 0))
    {
        /* nothing to write (or no memory): the mark stays, and the next
         * pass comes back to it */
        ngx_http_podgen_job_fix_release(fx);
        return;
    }

    if (json) {
        fx->json.len--;
    }

    if (ngx_http_podgen_offload(ngx_http_podgen_jobs.pmcf->thread_pool,
                                ngx_http_podgen_job_fix_thread,
                                ngx_http_podgen_job_fix_after,
                                ngx_http_podgen_job_fix_release, fx,
                                ngx_cycle->log)
        == NULL)
    {
        /* a full pool: the mark stays, the next pass comes back to it */
        ngx_http_podgen_job_fix_release(fx);
    }
}


/* The fleet's epoch; lost: Redis lost what it held. */

static void
ngx_http_podgen_jobs_epoch(const char *epoch, ngx_uint_t lost)
{
    ngx_str_t  e;

    if (ngx_worker != 0 || ngx_http_podgen_jobs.pmcf == NULL) {
        return;
    }

    if (lost) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "podgen: redis lost its data (epoch \"%s\" is new): "
                      "the records of this node are shared again", epoch);

        ngx_http_podgen_jobs.sync_all = 1;
        ngx_http_podgen_jobs.sync_at[0] = '\0';
    }

    if (ngx_strcmp(ngx_http_podgen_jobs.epoch, epoch) != 0) {
        (void) ngx_cpystrn((u_char *) ngx_http_podgen_jobs.epoch,
                           (u_char *) epoch,
                           sizeof(ngx_http_podgen_jobs.epoch));

        e.data = (u_char *) epoch;
        e.len = ngx_strlen(epoch);
        ngx_http_podgen_job_fix("", NGX_HTTP_PODGEN_JOB_FIX_EPOCH, &e);
    }
}


/*
 * The fleet answered for a record of the store: a final one it holds is
 * unmarked; an unfinished one nobody runs (Redis lost its stream entry,
 * or the job's accepting worker died) is queued again when the fleet took
 * our copy; a deleted one goes; a final one of the fleet replaces ours.
 */

static void
ngx_http_podgen_jobs_resynced(void *data, const char *id, uint64_t version,
    ngx_int_t result, ngx_str_t *winner)
{
    ngx_http_podgen_job_resync_t  *rs = data;

    switch (result) {

    case NGX_HTTP_PODGEN_JOB_PUT_WRITTEN:
        if (rs->final) {
            ngx_http_podgen_job_fix(id, NGX_HTTP_PODGEN_JOB_FIX_UNMARK, NULL);

        } else if (rs->orphan) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "podgen: job \"%s\" queued again", id);
            ngx_http_podgen_job_redis_requeue(id);
        }

        break;

    case NGX_HTTP_PODGEN_JOB_PUT_FINAL:
        ngx_http_podgen_job_fix(id, rs->final ? NGX_HTTP_PODGEN_JOB_FIX_UNMARK
                                              : NGX_HTTP_PODGEN_JOB_FIX_ADOPT,
                                winner);
        break;

    case NGX_HTTP_PODGEN_JOB_PUT_GONE:
        ngx_http_podgen_job_tombstone(id);
        ngx_http_podgen_job_fix(id, NGX_HTTP_PODGEN_JOB_FIX_REMOVE, NULL);
        break;

    default:
        break;
    }

    ngx_free(rs);
}


static void
ngx_http_podgen_jobs_sync_thread(void *data)
{
    ngx_http_podgen_job_store_unsynced(data);
}


static void
ngx_http_podgen_jobs_sync_after(void *data)
{
    ngx_http_podgen_job_sync_t  *sc = data;

    ngx_uint_t                        i;
    ngx_http_podgen_job_resync_t     *rs;
    ngx_http_podgen_job_sync_item_t  *it;

    for (i = 0; i < sc->n; i++) {
        it = &sc->items[i];

        if (ngx_http_podgen_job_find(it->rec.id)) {
            /* runs in this worker: its own writes share it */
            continue;
        }

        rs = ngx_calloc(sizeof(ngx_http_podgen_job_resync_t), ngx_cycle->log);
        if (rs == NULL) {
            break;
        }

        rs->orphan = it->orphan;
        rs->final = (it->rec.status == PG_JOB_COMPLETED
                     || it->rec.status == PG_JOB_FAILED);

        if (ngx_http_podgen_job_redis_put(&it->rec, &it->json,
                                          ngx_http_podgen_jobs_resynced, rs)
            != NGX_OK)
        {
            ngx_free(rs);
            break;
        }
    }

    if (i < sc->n) {
        /* Redis went away: this pass again */
        return;
    }

    ngx_memcpy(ngx_http_podgen_jobs.sync_at, sc->cursor, sizeof(sc->cursor));

    if (sc->end) {
        ngx_http_podgen_jobs.sync_at[0] = '\0';

        if (sc->all) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "podgen: the records of this node are shared "
                          "again");
            ngx_http_podgen_jobs.sync_all = 0;
        }
    }
}


static void
ngx_http_podgen_jobs_sync_release(void *data)
{
    ngx_http_podgen_job_sync_t  *sc = data;

    ngx_uint_t  i;

    for (i = 0; i < sc->n; i++) {
        pg_job_free(&sc->items[i].rec);
        pg_buf_free(&sc->items[i].json);
    }

    ngx_free(sc->items);
    ngx_free(sc);

    ngx_http_podgen_jobs.syncing = 0;

    if (ngx_http_podgen_jobs.pmcf && !ngx_exiting && !ngx_quit
        && !ngx_terminate)
    {
        /* every record again: a pass soon after the other */
        ngx_add_timer(&ngx_http_podgen_jobs.sync_ev,
                      ngx_http_podgen_jobs.sync_all
                      ? 100 : NGX_HTTP_PODGEN_JOBS_SYNC);
    }
}


static void
ngx_http_podgen_jobs_sync_handler(ngx_event_t *ev)
{
    ngx_http_podgen_job_sync_t  *sc;

    if (ngx_exiting || ngx_http_podgen_jobs.syncing) {
        return;
    }

    if (!ngx_http_podgen_redis_up()
        || !ngx_http_podgen_job_redis_epoch_known())
    {
        ngx_add_timer(ev, 1000);
        return;
    }

    sc = ngx_calloc(sizeof(ngx_http_podgen_job_sync_t), ev->log);
    if (sc == NULL) {
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SYNC);
        return;
    }

    sc->all = ngx_http_podgen_jobs.sync_all;
    sc->room = NGX_HTTP_PODGEN_JOBS_SYNC_N;
    ngx_memcpy(sc->cursor, ngx_http_podgen_jobs.sync_at, sizeof(sc->cursor));

    sc->items = ngx_calloc(sc->room * sizeof(ngx_http_podgen_job_sync_item_t),
                           ev->log);

    if (sc->items == NULL
        || ngx_http_podgen_offload(ngx_http_podgen_jobs.pmcf->thread_pool,
                                   ngx_http_podgen_jobs_sync_thread,
                                   ngx_http_podgen_jobs_sync_after,
                                   ngx_http_podgen_jobs_sync_release, sc,
                                   ev->log)
           == NULL)
    {
        ngx_free(sc->items);
        ngx_free(sc);
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SYNC);
        return;
    }

    ngx_http_podgen_jobs.syncing = 1;
}
