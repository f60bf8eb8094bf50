/*
 * podgen metrics: the shared-memory layout (private to ngx_podgen_metrics).
 */

#ifndef NGX_HTTP_PODGEN_METRICS_SHM_H
#define NGX_HTTP_PODGEN_METRICS_SHM_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_metrics.h"


#define PG_METRICS_MAGIC        0x70676d31      /* "pgm1" */
#define PG_METRICS_MAX_BUCKETS  24
#define PG_METRICS_CODES_N      20


typedef struct {
    /* per bucket, not cumulative; [nbuckets] is +Inf */
    ngx_atomic_t   count[PG_METRICS_MAX_BUCKETS + 1];
    ngx_atomic_t   sum_us;
} pg_metrics_hist_t;


/*
 * The gauges a process moves (requests in flight, tasks on the pool, jobs
 * queued and running): each worker adds to a slot of its own, the status
 * location sums the slots, and the slot of a process that is gone (a
 * worker that crashed runs no cleanup) is emptied, so gauges come back to
 * zero.  Slot 0 is for any process without a slot of its own.
 */

#define PG_METRICS_SLOTS        64
#define PG_METRICS_SLOT_BUSY    1               /* pid while being emptied */

typedef struct {
    ngx_atomic_t       pid;                     /* 0: free */
    ngx_atomic_t       inflight[PG_EP_N];
    ngx_atomic_t       thread_queue;
    ngx_atomic_t       jobs[PG_MJOB_RUNNING + 1];   /* queued, running */
} pg_metrics_slot_t;


typedef struct {
    ngx_uint_t         magic;
    time_t             start_time;
    ngx_uint_t         nbuckets;
    double             bounds[PG_METRICS_MAX_BUCKETS];

    ngx_atomic_t       requests[PG_EP_N][PG_METRICS_CODES_N];
    pg_metrics_hist_t  request_duration[PG_EP_N];
    pg_metrics_hist_t  first_audio[PG_FIRST_AUDIO_N];

    ngx_atomic_t       cache[PG_TIER_N][PG_KIND_N][2];  /* miss, hit */
    ngx_atomic_t       cache_bytes[PG_TIER_N];
    ngx_atomic_t       cache_entries[PG_TIER_N];
    ngx_atomic_t       cache_evictions;
    ngx_atomic_t       coalesced[PG_KIND_N];

    pg_metrics_hist_t  tts_synthesis;
    ngx_atomic_t       tts_audio_us;

    ngx_atomic_t       llm[PG_LLM_N];
    pg_metrics_hist_t  llm_duration;
    ngx_atomic_t       llm_tokens[2];                   /* prompt, completion */
    ngx_atomic_t       llm_retries;
    ngx_atomic_t       llm_fallbacks;

    ngx_atomic_t       errors[PG_ERR_N];
    ngx_atomic_t       jobs[PG_MJOB_N];         /* completed, failed */
    ngx_atomic_t       redis_up;
    ngx_atomic_t       redis_errors;

    pg_metrics_slot_t  slots[PG_METRICS_SLOTS];
} pg_metrics_shm_t;


typedef struct {
    ngx_flag_t         record;
    ngx_uint_t         nbuckets;
    double             buckets[PG_METRICS_MAX_BUCKETS];
    ngx_shm_zone_t    *shm_zone;
    pg_metrics_shm_t  *shm;
} ngx_http_podgen_metrics_main_conf_t;


/* status codes with their own series; the last slot is "other" */
static const ngx_uint_t  pg_metrics_codes[PG_METRICS_CODES_N] = {
    200, 202, 204, 206, 304, 400, 401, 404, 405, 408, 413, 415, 416, 429,
    499, 500, 502, 503, 504, 0
};


extern pg_metrics_shm_t  *ngx_http_podgen_metrics_shm;

ngx_int_t ngx_http_podgen_metrics_handler(ngx_http_request_t *r);

/* The gauges of all live processes, summed; slots of dead ones emptied. */
void ngx_http_podgen_metrics_gauges(pg_metrics_shm_t *m,
    pg_metrics_slot_t *sum);
const char *ngx_http_podgen_metrics_build_version(void);
const char *ngx_http_podgen_metrics_build_flite(void);

#endif /* NGX_HTTP_PODGEN_METRICS_SHM_H */
