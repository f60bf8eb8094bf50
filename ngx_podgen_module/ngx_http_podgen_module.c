/*
 * podgen: nginx HTTP module — the module itself: its directives, its
 * configuration, and what every worker does when it starts and exits.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "pg_tts.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_directive.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_phases.h"
#include "ngx_http_podgen_error_filter.h"
#include "ngx_http_podgen_llm.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_podcast_job.h"
#include "ngx_http_podgen_batch.h"
#include "ngx_http_podgen_cors.h"
#include "ngx_http_podgen_curl.h"


static void *ngx_http_podgen_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_podgen_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_podgen_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_podgen_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_podgen_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_podgen_init_process(ngx_cycle_t *cycle);
static void ngx_http_podgen_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_podgen_max_input_bounds = {
    ngx_conf_check_num_bounds, 1, 1048576
};

static ngx_conf_num_bounds_t  ngx_http_podgen_parallelism_bounds = {
    ngx_conf_check_num_bounds, 1, 256
};


static ngx_conf_num_bounds_t  ngx_http_podgen_jobs_bounds = {
    ngx_conf_check_num_bounds, 1, 64
};

static ngx_conf_num_bounds_t  ngx_http_podgen_batch_bounds = {
    ngx_conf_check_num_bounds, 1, 10000
};


static ngx_command_t  ngx_http_podgen_commands[] = {

    { ngx_string("podgen_speech"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_SPEECH },

    { ngx_string("podgen_voices"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_VOICES },

    { ngx_string("podgen_scripts"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_SCRIPTS },

    { ngx_string("podgen_audio"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_AUDIO },

    { ngx_string("podgen_podcasts"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_PODCASTS },

    { ngx_string("podgen_batch"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_BATCH },

    { ngx_string("podgen_sources"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_SOURCES },

    { ngx_string("podgen_models"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_HTTP_PODGEN_MODELS },

    { ngx_string("podgen_api_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_podgen_api_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_feed_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_podgen_feed_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_show"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_show,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_trust_forwarded"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_trust_forwarded,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_cors"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_cors,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, jobs.store),
      NULL },

    { ngx_string("podgen_jobs"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, jobs.concurrency),
      &ngx_http_podgen_jobs_bounds },

    { ngx_string("podgen_max_jobs"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, jobs.max_jobs),
      NULL },

    { ngx_string("podgen_batch_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, jobs.batch_max),
      &ngx_http_podgen_batch_bounds },

    { ngx_string("podgen_llm"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_llm_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, llm),
      NULL },

    { ngx_string("podgen_llm_fallback"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, llm.fallback),
      NULL },

    { ngx_string("podgen_fetch_allow"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_fetch_allow,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, fetch),
      NULL },

    { ngx_string("podgen_fetch_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, fetch.timeout),
      NULL },

    { ngx_string("podgen_max_source"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, max_source),
      NULL },

    { ngx_string("podgen_voice"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_podgen_voice,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_http_podgen_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, cache),
      NULL },

    { ngx_string("podgen_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, redis),
      NULL },

    { ngx_string("podgen_max_input"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, max_input),
      &ngx_http_podgen_max_input_bounds },

    { ngx_string("podgen_max_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, max_queue),
      NULL },

    { ngx_string("podgen_max_audio"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, max_audio),
      NULL },

    { ngx_string("podgen_loudness"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_podgen_podcast_loudness,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("podgen_tts_parallelism"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, parallelism),
      &ngx_http_podgen_parallelism_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_podgen_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_podgen_postconfiguration,     /* postconfiguration */

    ngx_http_podgen_create_main_conf,      /* create main configuration */
    ngx_http_podgen_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_podgen_create_loc_conf,       /* create location configuration */
    ngx_http_podgen_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_podgen_module = {
    NGX_MODULE_V1,
    &ngx_http_podgen_module_ctx,           /* module context */
    ngx_http_podgen_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_podgen_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_podgen_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_podgen_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_podgen_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&pmcf->voices, cf->pool, 8,
                       sizeof(ngx_http_podgen_voice_t))
        != NGX_OK
        || ngx_array_init(&pmcf->aliases, cf->pool, 16,
                          sizeof(ngx_http_podgen_alias_t))
           != NGX_OK)
    {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pmcf->thread_pool_name = { 0, NULL };
     *     pmcf->thread_pool = NULL;
     *     pmcf->used = 0;
     *     pmcf->jobs.used = 0;
     */

    pmcf->max_input = NGX_CONF_UNSET_UINT;
    pmcf->max_source = NGX_CONF_UNSET_SIZE;
    pmcf->max_queue = NGX_CONF_UNSET;
    pmcf->max_audio = NGX_CONF_UNSET;
    pmcf->loudness = NGX_CONF_UNSET;
    pmcf->loudness_lufs = -16;
    pmcf->loudness_peak = -1;
    pmcf->llm.fallback = NGX_CONF_UNSET;
    pmcf->fetch.timeout = NGX_CONF_UNSET_MSEC;
    pmcf->parallelism = NGX_CONF_UNSET_UINT;
    pmcf->chunk_max = NGX_CONF_UNSET_SIZE;
    pmcf->first_chunk_max = NGX_CONF_UNSET_SIZE;
    pmcf->jobs.concurrency = NGX_CONF_UNSET_UINT;
    pmcf->jobs.batch_max = NGX_CONF_UNSET_UINT;
    pmcf->jobs.max_jobs = NGX_CONF_UNSET_UINT;

    return pmcf;
}


static char *
ngx_http_podgen_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_podgen_main_conf_t *pmcf = conf;

    ngx_conf_init_uint_value(pmcf->max_input, 4096);
    ngx_conf_init_size_value(pmcf->max_source, 1024 * 1024);

    /* admission: the audio a worker has yet to make, and one request's */
    ngx_conf_init_value(pmcf->max_queue, 3600);
    ngx_conf_init_value(pmcf->max_audio, 1800);

    /* episodes at -16 LUFS, -1 dBTP (Apple Podcasts' numbers) */
    ngx_conf_init_value(pmcf->loudness, 1);
    ngx_conf_init_value(pmcf->llm.fallback, 1);
    ngx_conf_init_msec_value(pmcf->fetch.timeout, 15000);

    /* the LLM client is on when podgen_llm gave it a URL */
    pmcf->llm_enabled = (pmcf->llm.url.data != NULL);

    ngx_conf_init_uint_value(pmcf->parallelism,
                             ngx_ncpu > 0 ? (ngx_uint_t) ngx_ncpu : 2);
    ngx_conf_init_size_value(pmcf->chunk_max, 300);
    ngx_conf_init_size_value(pmcf->first_chunk_max, 80);

    /* memos of request bytes hold for this configuration only: a reload
     * may change what the same bytes ask for (the default engine, say) */
    pmcf->memo_seed = ((uint64_t) ngx_random() << 32)
                      ^ (uint64_t) ngx_random() ^ (uint64_t) ngx_time();

    if (pmcf->thread_pool_name.data == NULL) {
        ngx_str_set(&pmcf->thread_pool_name, "default");
    }

    /* unknown names fail later in ngx_thread_pool's init_conf, as for
     * "aio threads=NAME" */

    pmcf->thread_pool = ngx_thread_pool_add(cf, &pmcf->thread_pool_name);
    if (pmcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    /* with podgen in use and no podgen_cache_zone, an implicit zone */

    if (pmcf->used
        && ngx_http_podgen_cache_default(cf, &pmcf->cache) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_podgen_jobs_init_conf(cf, &pmcf->jobs) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_podgen_voices_init_conf(cf, pmcf);
}


static void *
ngx_http_podgen_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_podgen_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_podgen_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     plcf->endpoint = NGX_HTTP_PODGEN_NONE;
     *     plcf->server_endpoints = 0;
     */

    plcf->api_key.len = NGX_CONF_UNSET_SIZE;
    plcf->feed_token.len = NGX_CONF_UNSET_SIZE;
    plcf->cors = NGX_CONF_UNSET_PTR;
    plcf->show = NGX_CONF_UNSET_PTR;
    plcf->trust_forwarded = NGX_CONF_UNSET_PTR;

    return plcf;
}


static char *
ngx_http_podgen_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_podgen_loc_conf_t *prev = parent;
    ngx_http_podgen_loc_conf_t *conf = child;

    /* endpoints are not inherited: a nested location is its own thing;
     * the API key and the feed token are */

    if (conf->api_key.len == NGX_CONF_UNSET_SIZE) {
        if (prev->api_key.len == NGX_CONF_UNSET_SIZE) {
            ngx_str_set(&conf->api_key, "");

        } else {
            conf->api_key = prev->api_key;
        }
    }

    if (conf->api_key.len
        && pg_key_sha256(conf->api_key.data, conf->api_key.len,
                         conf->api_key_hash)
           != 0)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->feed_token.len == NGX_CONF_UNSET_SIZE) {
        if (prev->feed_token.len == NGX_CONF_UNSET_SIZE) {
            ngx_str_set(&conf->feed_token, "");

        } else {
            conf->feed_token = prev->feed_token;
        }
    }

    if (conf->feed_token.len
        && pg_key_sha256(conf->feed_token.data, conf->feed_token.len,
                         conf->feed_token_hash)
           != 0)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_ptr_value(conf->cors, prev->cors, NULL);

    /* a level's podgen_show replaces the outer one whole */

    if (conf->show == NGX_CONF_UNSET_PTR) {
        if (prev->show == NGX_CONF_UNSET_PTR) {
            prev->show = ngx_http_podgen_show_default(cf);
            if (prev->show == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        conf->show = prev->show;
    }

    ngx_conf_merge_ptr_value(conf->trust_forwarded, prev->trust_forwarded,
                             NULL);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_podgen_postconfiguration(ngx_conf_t *cf)
{
    ngx_str_t                     name = ngx_string("request_id");
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_podgen_module);

    if (ngx_http_podgen_phases_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_podgen_metrics_set_build(NGX_HTTP_PODGEN_VERSION,
                                      pg_tts_version());

    pmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (pmcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    pmcf->voices_loaded = pmcf->used;

    if (ngx_http_podgen_cors_filter_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_podgen_error_filter_init(cf);
}


/*
 * A worker starts: the voices, L1, the LLM client, Redis and the jobs.
 * Only when some location uses podgen.
 */

static ngx_int_t
ngx_http_podgen_init_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_main_conf_t  *pmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_podgen_module);
    if (pmcf == NULL || !pmcf->voices_loaded) {
        return NGX_OK;
    }

    if (ngx_http_podgen_voices_init_process(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_podgen_cache_init_process(&pmcf->cache, cycle->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (pmcf->llm_enabled
        && ngx_http_podgen_llm_init_process(cycle, &pmcf->llm) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (pmcf->redis.addr_text.len
        && ngx_http_podgen_redis_init_process(cycle, &pmcf->redis) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the kinds of job, then the runner */

    ngx_http_podgen_podcast_job_init();
    ngx_http_podgen_batch_job_init();

    return ngx_http_podgen_jobs_init_process(cycle);
}


static void
ngx_http_podgen_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_main_conf_t  *pmcf;

    ngx_http_podgen_jobs_exit_process(cycle);
    ngx_http_podgen_tts_exit(cycle);
    ngx_http_podgen_llm_exit_process(cycle);
    ngx_http_podgen_url_exit_process(cycle);
    ngx_http_podgen_curl_exit_process(cycle);
    ngx_http_podgen_redis_exit_process(cycle);

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_podgen_module);
    if (pmcf) {
        ngx_http_podgen_cache_exit_process(&pmcf->cache);
    }
}
