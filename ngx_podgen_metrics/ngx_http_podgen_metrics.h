/*
 * podgen metrics: the recording API.
 *
 * Counters, gauges and histograms live in one shared-memory zone shared by
 * all workers; every call is a few atomic adds, safe from any worker and
 * from any thread, and never calls back into its caller.  The status
 * location (podgen_metrics) renders them as Prometheus text or JSON.
 */

#ifndef NGX_HTTP_PODGEN_METRICS_H
#define NGX_HTTP_PODGEN_METRICS_H

#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    PG_EP_SPEECH = 0,
    PG_EP_SCRIPTS,
    PG_EP_PODCASTS,
    PG_EP_BATCH,
    PG_EP_AUDIO,
    PG_EP_VOICES,
    PG_EP_METRICS,
    PG_EP_SOURCES,
    PG_EP_MODELS,
    PG_EP_N
} pg_metrics_endpoint_e;

typedef enum {
    PG_TIER_L1 = 0,
    PG_TIER_L2,
    PG_TIER_N
} pg_metrics_tier_e;

/*
 * What an L1 entry holds: every kind podgen keeps in its caches, in one
 * place.  The artifacts (before PG_KIND_N) are counted in the cache
 * metrics; the others are bookkeeping kept in L1 only and not counted.
 */
typedef enum {
    PG_KIND_AUDIO = 0,          /* speech audio */
    PG_KIND_SCRIPT,             /* a script */
    PG_KIND_SOURCE,             /* an extracted source document */
    PG_KIND_N,

    PG_KIND_JOB = PG_KIND_N,    /* the latest record of a live job */
    PG_KIND_MEMO                /* request bytes -> its artifact's key */
} pg_metrics_kind_e;

typedef enum {
    PG_LLM_OK = 0,
    PG_LLM_ERROR,
    PG_LLM_TIMEOUT,
    PG_LLM_INVALID,
    PG_LLM_N
} pg_metrics_llm_result_e;

typedef enum {
    PG_ERR_CLIENT = 0,      /* 4xx answered */
    PG_ERR_SERVER,          /* 5xx answered */
    PG_ERR_TTS,             /* flite failed */
    PG_ERR_ENCODER,         /* an encoder failed */
    PG_ERR_BUSY,            /* queue full, 503 */
    PG_ERR_CLIENT_GONE,     /* client closed mid-response */
    PG_ERR_N
} pg_metrics_error_e;

typedef enum {
    PG_MJOB_QUEUED = 0,
    PG_MJOB_RUNNING,
    PG_MJOB_COMPLETED,
    PG_MJOB_FAILED,
    PG_MJOB_N
} pg_metrics_job_e;          /* the same order as pg_job_status_t */


void ngx_http_podgen_metrics_request(ngx_uint_t endpoint, ngx_uint_t status,
    double seconds);

typedef enum {
    PG_FIRST_AUDIO_MISS = 0,    /* a cold stream */
    PG_FIRST_AUDIO_HIT,         /* L1 or L2, served whole */
    PG_FIRST_AUDIO_COALESCED,   /* waited for the same audio in flight */
    PG_FIRST_AUDIO_N
} pg_metrics_first_audio_e;

/* Speech: from the request to its first audio byte handed to nginx. */
void ngx_http_podgen_metrics_first_audio(ngx_uint_t how, double seconds);
void ngx_http_podgen_metrics_inflight(ngx_uint_t endpoint, ngx_int_t delta);
void ngx_http_podgen_metrics_cache(ngx_uint_t tier, ngx_uint_t kind,
    ngx_uint_t hit);
void ngx_http_podgen_metrics_coalesced(ngx_uint_t kind);
void ngx_http_podgen_metrics_tts(double synthesis_seconds,
    double audio_seconds);
void ngx_http_podgen_metrics_llm(ngx_uint_t result, double seconds,
    ngx_uint_t prompt_tokens, ngx_uint_t completion_tokens);
void ngx_http_podgen_metrics_llm_retry(void);
void ngx_http_podgen_metrics_llm_fallback(void);
void ngx_http_podgen_metrics_error(ngx_uint_t type);
void ngx_http_podgen_metrics_thread_queue(ngx_int_t delta);
void ngx_http_podgen_metrics_job(ngx_uint_t status, ngx_int_t delta);
void ngx_http_podgen_metrics_redis_up(ngx_uint_t up);
void ngx_http_podgen_metrics_redis_error(void);
void ngx_http_podgen_metrics_cache_usage(ngx_uint_t tier, ngx_int_t bytes,
    ngx_int_t entries);
void ngx_http_podgen_metrics_cache_eviction(void);

/* Set once by the podgen module: what build_info reports. */
void ngx_http_podgen_metrics_set_build(const char *version,
    const char *flite);

extern ngx_module_t  ngx_http_podgen_metrics_module;

#endif /* NGX_HTTP_PODGEN_METRICS_H */
