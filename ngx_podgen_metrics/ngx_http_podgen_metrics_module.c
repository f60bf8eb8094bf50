/*
 * podgen metrics: counters, gauges and histograms in one shared-memory
 * zone, updated lock-free (atomics) by every worker, and the status
 * location that renders them (ngx_http_podgen_metrics_render.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_metrics_shm.h"


static void *ngx_http_podgen_metrics_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_podgen_metrics_init_main_conf(ngx_conf_t *cf,
    void *conf);
static char *ngx_http_podgen_metrics_location(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_podgen_metrics_buckets(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_podgen_metrics_init_process(ngx_cycle_t *cycle);
static void ngx_http_podgen_metrics_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_podgen_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_command_t  ngx_http_podgen_metrics_commands[] = {

    { ngx_string("podgen_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_podgen_metrics_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_metrics_record"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_metrics_main_conf_t, record),
      NULL },

    { ngx_string("podgen_metrics_buckets"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_metrics_buckets,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_podgen_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_podgen_metrics_create_main_conf, /* create main configuration */
    ngx_http_podgen_metrics_init_main_conf,   /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_podgen_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_podgen_metrics_module_ctx,   /* module context */
    ngx_http_podgen_metrics_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_podgen_metrics_init_process,  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_podgen_metrics_exit_process,  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* seconds */
static double  ngx_http_podgen_metrics_default_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};


/*
 * The zone of the current cycle.  Set in the master before workers fork;
 * a worker of an old cycle keeps the zone it was born with.
 */
pg_metrics_shm_t  *ngx_http_podgen_metrics_shm;

/* this process's gauges; NULL: slot 0 */
static pg_metrics_slot_t  *ngx_http_podgen_metrics_slot;

static char  ngx_http_podgen_build_version[32] = "unknown";
static char  ngx_http_podgen_build_flite[32] = "unknown";


static void *
ngx_http_podgen_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_podgen_metrics_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_podgen_metrics_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->nbuckets = 0;
     */

    mmcf->record = NGX_CONF_UNSET;

    return mmcf;
}


static char *
ngx_http_podgen_metrics_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_podgen_metrics_main_conf_t *mmcf = conf;

    size_t       size;
    ngx_uint_t   i;
    ngx_str_t    name = ngx_string("podgen_metrics");

    ngx_conf_init_value(mmcf->record, 1);

    /* "podgen_metrics_record off": no zone, every recording call is a
     * test of one pointer (to measure what metrics cost) */

    if (!mmcf->record) {
        ngx_http_podgen_metrics_shm = NULL;
        return NGX_CONF_OK;
    }

    if (mmcf->nbuckets == 0) {
        mmcf->nbuckets = sizeof(ngx_http_podgen_metrics_default_buckets)
                         / sizeof(double);

        for (i = 0; i < mmcf->nbuckets; i++) {
            mmcf->buckets[i] = ngx_http_podgen_metrics_default_buckets[i];
        }
    }

    /* the layout depends on nothing configurable, so a reload reuses the
     * zone and counters survive it, as Prometheus expects */

    size = ngx_align(sizeof(pg_metrics_shm_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    mmcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_podgen_metrics_module);
    if (mmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mmcf->shm_zone->init = ngx_http_podgen_metrics_init_zone;
    mmcf->shm_zone->data = mmcf;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_podgen_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_podgen_metrics_main_conf_t *mmcf = shm_zone->data;

    ngx_uint_t         i;
    ngx_slab_pool_t   *shpool;
    pg_metrics_shm_t  *m;

    if (data) {
        /* a reload: the old zone, with its counters */
        m = ((ngx_http_podgen_metrics_main_conf_t *) data)->shm;

    } else {
        shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

        m = ngx_slab_calloc(shpool, sizeof(pg_metrics_shm_t));
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->magic = PG_METRICS_MAGIC;
        m->start_time = ngx_time();
    }

    /* the buckets of this configuration; histograms are reset if they
     * changed, since old counts would be filed under wrong bounds */

    if (m->nbuckets != mmcf->nbuckets
        || ngx_memcmp(m->bounds, mmcf->buckets,
                      mmcf->nbuckets * sizeof(double)) != 0)
    {
        ngx_memzero(m->request_duration, sizeof(m->request_duration));
        ngx_memzero(m->first_audio, sizeof(m->first_audio));
        ngx_memzero(&m->tts_synthesis, sizeof(m->tts_synthesis));
        ngx_memzero(&m->llm_duration, sizeof(m->llm_duration));

        for (i = 0; i < mmcf->nbuckets; i++) {
            m->bounds[i] = mmcf->buckets[i];
        }

        m->nbuckets = mmcf->nbuckets;
    }

    mmcf->shm = m;
    ngx_http_podgen_metrics_shm = m;

    return NGX_OK;
}


static char *
ngx_http_podgen_metrics_buckets(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_podgen_metrics_main_conf_t *mmcf = conf;

    double      v;
    ngx_int_t   ms;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (mmcf->nbuckets) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts - 1 > PG_METRICS_MAX_BUCKETS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many buckets, at most %d",
                           PG_METRICS_MAX_BUCKETS);
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        /* seconds with up to 3 decimals: "0.005", "2.5", "60" */

        ms = ngx_atofp(value[i].data, value[i].len, 3);
        if (ms <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid bucket \"%V\": seconds > 0 with at "
                               "most 3 decimals", &value[i]);
            return NGX_CONF_ERROR;
        }

        v = (double) ms / 1000;

        if (i > 1 && v <= mmcf->buckets[i - 2]) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "buckets must increase: \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        mmcf->buckets[i - 1] = v;
    }

    mmcf->nbuckets = cf->args->nelts - 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_podgen_metrics_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_podgen_metrics_handler;

    return NGX_CONF_OK;
}


/* ---- recording ---------------------------------------------------------- */


#define pg_add(a, n)  (void) ngx_atomic_fetch_add(&(a), (ngx_atomic_int_t) (n))


static ngx_uint_t
ngx_http_podgen_metrics_code_index(ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; i < PG_METRICS_CODES_N - 1; i++) {
        if (pg_metrics_codes[i] == status) {
            return i;
        }
    }

    return PG_METRICS_CODES_N - 1;          /* "other" */
}


static void
ngx_http_podgen_metrics_observe(pg_metrics_hist_t *h, double seconds)
{
    ngx_uint_t         i;
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    for (i = 0; i < m->nbuckets; i++) {
        if (seconds <= m->bounds[i]) {
            break;
        }
    }

    /* stored per bucket, not cumulated: one add per observation */

    pg_add(h->count[i], 1);
    pg_add(h->sum_us, (ngx_atomic_uint_t) (seconds * 1e6 + 0.5));
}


void
ngx_http_podgen_metrics_request(ngx_uint_t endpoint, ngx_uint_t status,
    double seconds)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m == NULL || endpoint >= PG_EP_N) {
        return;
    }

    pg_add(m->requests[endpoint][ngx_http_podgen_metrics_code_index(status)],
           1);
    ngx_http_podgen_metrics_observe(&m->request_duration[endpoint],
                                    seconds);

    /* 499 (client gone) is counted where it is noticed, with the cases
     * where the status was already sent */

    if (status == 499) {
        return;
    }

    if (status >= 500) {
        pg_add(m->errors[PG_ERR_SERVER], 1);

    } else if (status >= 400) {
        pg_add(m->errors[PG_ERR_CLIENT], 1);
    }
}


void
ngx_http_podgen_metrics_first_audio(ngx_uint_t how, double seconds)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m && how < PG_FIRST_AUDIO_N) {
        ngx_http_podgen_metrics_observe(&m->first_audio[how], seconds);
    }
}


/* ---- the gauges' slots -------------------------------------------------- */


static ngx_inline pg_metrics_slot_t *
ngx_http_podgen_metrics_my_slot(pg_metrics_shm_t *m)
{
    return ngx_http_podgen_metrics_slot ? ngx_http_podgen_metrics_slot
                                        : &m->slots[0];
}


/* 1: pid is a process that is gone. */

static ngx_uint_t
ngx_http_podgen_metrics_gone(ngx_atomic_uint_t pid)
{
    return pid > PG_METRICS_SLOT_BUSY && (ngx_pid_t) pid != ngx_pid
           && kill((ngx_pid_t) pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}


/* Empties the slot of a process that is gone; one caller wins. */

static void
ngx_http_podgen_metrics_empty(pg_metrics_slot_t *s, ngx_atomic_uint_t pid)
{
    ngx_uint_t  i;

    if (!ngx_atomic_cmp_set(&s->pid, pid, PG_METRICS_SLOT_BUSY)) {
        return;
    }

    for (i = 0; i < PG_EP_N; i++) {
        s->inflight[i] = 0;
    }

    s->thread_queue = 0;
    s->jobs[PG_MJOB_QUEUED] = 0;
    s->jobs[PG_MJOB_RUNNING] = 0;

    ngx_memory_barrier();
    s->pid = 0;
}


void
ngx_http_podgen_metrics_gauges(pg_metrics_shm_t *m, pg_metrics_slot_t *sum)
{
    ngx_uint_t          i, k;
    ngx_atomic_uint_t   pid;
    pg_metrics_slot_t  *s;

    ngx_memzero(sum, sizeof(pg_metrics_slot_t));

    for (i = 0; i < PG_METRICS_SLOTS; i++) {
        s = &m->slots[i];
        pid = s->pid;

        if (i > 0 && (pid == 0 || pid == PG_METRICS_SLOT_BUSY)) {
            continue;
        }

        if (i > 0 && ngx_http_podgen_metrics_gone(pid)) {
            ngx_http_podgen_metrics_empty(s, pid);
            continue;
        }

        for (k = 0; k < PG_EP_N; k++) {
            sum->inflight[k] += s->inflight[k];
        }

        sum->thread_queue += s->thread_queue;
        sum->jobs[PG_MJOB_QUEUED] += s->jobs[PG_MJOB_QUEUED];
        sum->jobs[PG_MJOB_RUNNING] += s->jobs[PG_MJOB_RUNNING];
    }
}


/*
 * A worker starts: the slots of processes that are gone are emptied, then
 * it takes a free one.
 */

static ngx_int_t
ngx_http_podgen_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t          i;
    pg_metrics_shm_t   *m = ngx_http_podgen_metrics_shm;
    pg_metrics_slot_t  *s;

    ngx_http_podgen_metrics_slot = NULL;

    if (m == NULL || (ngx_process != NGX_PROCESS_WORKER
                      && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    for (i = 1; i < PG_METRICS_SLOTS; i++) {
        s = &m->slots[i];

        if (ngx_http_podgen_metrics_gone(s->pid)) {
            ngx_http_podgen_metrics_empty(s, s->pid);
        }
    }

    for (i = 1; i < PG_METRICS_SLOTS; i++) {
        s = &m->slots[i];

        if (ngx_atomic_cmp_set(&s->pid, 0, (ngx_atomic_uint_t) ngx_pid)) {
            ngx_http_podgen_metrics_slot = s;
            break;
        }
    }

    return NGX_OK;
}


static void
ngx_http_podgen_metrics_exit_process(ngx_cycle_t *cycle)
{
    pg_metrics_slot_t  *s = ngx_http_podgen_metrics_slot;

    if (s == NULL) {
        return;
    }

    /* what is still counted here is not in flight any more */
    ngx_http_podgen_metrics_slot = NULL;
    ngx_http_podgen_metrics_empty(s, (ngx_atomic_uint_t) ngx_pid);
}


void
ngx_http_podgen_metrics_inflight(ngx_uint_t endpoint, ngx_int_t delta)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m && endpoint < PG_EP_N) {
        pg_add(ngx_http_podgen_metrics_my_slot(m)->inflight[endpoint], delta);
    }
}


void
ngx_http_podgen_metrics_cache(ngx_uint_t tier, ngx_uint_t kind,
    ngx_uint_t hit)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m && tier < PG_TIER_N && kind < PG_KIND_N) {
        pg_add(m->cache[tier][kind][hit ? 1 : 0], 1);
    }
}


void
ngx_http_podgen_metrics_coalesced(ngx_uint_t kind)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m && kind < PG_KIND_N) {
        pg_add(m->coalesced[kind], 1);
    }
}


void
ngx_http_podgen_metrics_tts(double synthesis_seconds, double audio_seconds)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m) {
        ngx_http_podgen_metrics_observe(&m->tts_synthesis, synthesis_seconds);
        pg_add(m->tts_audio_us, (ngx_atomic_uint_t) (audio_seconds * 1e6));
    }
}


void
ngx_http_podgen_metrics_llm(ngx_uint_t result, double seconds,
    ngx_uint_t prompt_tokens, ngx_uint_t completion_tokens)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m && result < PG_LLM_N) {
        pg_add(m->llm[result], 1);
        ngx_http_podgen_metrics_observe(&m->llm_duration, seconds);
        pg_add(m->llm_tokens[0], prompt_tokens);
        pg_add(m->llm_tokens[1], completion_tokens);
    }
}


void
ngx_http_podgen_metrics_llm_retry(void)
{
    if (ngx_http_podgen_metrics_shm) {
        pg_add(ngx_http_podgen_metrics_shm->llm_retries, 1);
    }
}


void
ngx_http_podgen_metrics_llm_fallback(void)
{
    if (ngx_http_podgen_metrics_shm) {
        pg_add(ngx_http_podgen_metrics_shm->llm_fallbacks, 1);
    }
}


void
ngx_http_podgen_metrics_error(ngx_uint_t type)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m && type < PG_ERR_N) {
        pg_add(m->errors[type], 1);
    }
}


void
ngx_http_podgen_metrics_thread_queue(ngx_int_t delta)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m) {
        pg_add(ngx_http_podgen_metrics_my_slot(m)->thread_queue, delta);
    }
}


void
ngx_http_podgen_metrics_job(ngx_uint_t status, ngx_int_t delta)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m == NULL || status >= PG_MJOB_N) {
        return;
    }

    if (status <= PG_MJOB_RUNNING) {
        /* a gauge of this process */
        pg_add(ngx_http_podgen_metrics_my_slot(m)->jobs[status], delta);
        return;
    }

    pg_add(m->jobs[status], delta);
}


void
ngx_http_podgen_metrics_redis_up(ngx_uint_t up)
{
    if (ngx_http_podgen_metrics_shm) {
        ngx_http_podgen_metrics_shm->redis_up = up ? 1 : 0;
    }
}


void
ngx_http_podgen_metrics_redis_error(void)
{
    if (ngx_http_podgen_metrics_shm) {
        pg_add(ngx_http_podgen_metrics_shm->redis_errors, 1);
    }
}


void
ngx_http_podgen_metrics_cache_usage(ngx_uint_t tier, ngx_int_t bytes,
    ngx_int_t entries)
{
    pg_metrics_shm_t  *m = ngx_http_podgen_metrics_shm;

    if (m && tier < PG_TIER_N) {
        pg_add(m->cache_bytes[tier], bytes);
        pg_add(m->cache_entries[tier], entries);
    }
}


void
ngx_http_podgen_metrics_cache_eviction(void)
{
    if (ngx_http_podgen_metrics_shm) {
        pg_add(ngx_http_podgen_metrics_shm->cache_evictions, 1);
    }
}


void
ngx_http_podgen_metrics_set_build(const char *version, const char *flite)
{
    ngx_cpystrn((u_char *) ngx_http_podgen_build_version,
                (u_char *) version, sizeof(ngx_http_podgen_build_version));
    ngx_cpystrn((u_char *) ngx_http_podgen_build_flite,
                (u_char *) flite, sizeof(ngx_http_podgen_build_flite));
}


const char *
ngx_http_podgen_metrics_build_version(void)
{
    return ngx_http_podgen_build_version;
}


const char *
ngx_http_podgen_metrics_build_flite(void)
{
    return ngx_http_podgen_build_flite;
}
