/*
 * podgen: nginx HTTP module — directives, configuration, voices, and the
 * filter that turns nginx's own error pages in podgen locations into
 * OpenAI-style JSON errors.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_podcast_job.h"
#include "ngx_http_podgen_batch.h"


static void *ngx_http_podgen_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_podgen_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_podgen_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_podgen_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_podgen_content_handler(ngx_http_request_t *r);
static char *ngx_http_podgen_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_podgen_voice(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_podgen_llm(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_podgen_api_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_podgen_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_podgen_init_process(ngx_cycle_t *cycle);
static void ngx_http_podgen_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_podgen_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


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

    { ngx_string("podgen_api_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_podgen_api_key,
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

    { ngx_string("podgen_batch_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, jobs.batch_max),
      &ngx_http_podgen_batch_bounds },

    { ngx_string("podgen_llm"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_podgen_llm,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("podgen_llm_fallback"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_podgen_main_conf_t, llm.fallback),
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


/*
 * OpenAI voice names and the flite voice each speaks with by default;
 * "podgen_voice NAME SOURCE alias=..." overrides any of them.
 */
static struct {
    char  *alias;
    char  *voice;
} ngx_http_podgen_default_aliases[] = {
    { "alloy",   "slt" },
    { "ash",     "rms" },
    { "ballad",  "awb" },
    { "coral",   "slt" },
    { "echo",    "rms" },
    { "fable",   "awb" },
    { "onyx",    "rms" },
    { "nova",    "slt" },
    { "sage",    "kal16" },
    { "shimmer", "slt" },
    { "verse",   "kal16" },
    { NULL, NULL }
};


static ngx_uint_t  ngx_http_podgen_used;
static ngx_uint_t  ngx_http_podgen_jobs_used;

static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


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
     */

    pmcf->max_input = NGX_CONF_UNSET_UINT;
    pmcf->max_source = NGX_CONF_UNSET_SIZE;
    pmcf->llm.fallback = NGX_CONF_UNSET;
    pmcf->parallelism = NGX_CONF_UNSET_UINT;
    pmcf->chunk_max = NGX_CONF_UNSET_SIZE;
    pmcf->first_chunk_max = NGX_CONF_UNSET_SIZE;
    pmcf->jobs.concurrency = NGX_CONF_UNSET_UINT;
    pmcf->jobs.batch_max = NGX_CONF_UNSET_UINT;

    ngx_http_podgen_used = 0;
    ngx_http_podgen_jobs_used = 0;

    return pmcf;
}


static ngx_http_podgen_voice_t *
ngx_http_podgen_conf_voice(ngx_http_podgen_main_conf_t *pmcf, ngx_str_t *name)
{
    ngx_uint_t                i;
    ngx_http_podgen_voice_t  *v;

    v = pmcf->voices.elts;

    for (i = 0; i < pmcf->voices.nelts; i++) {
        if (v[i].name.len == name->len
            && ngx_strncmp(v[i].name.data, name->data, name->len) == 0)
        {
            return &v[i];
        }
    }

    return NULL;
}


static ngx_http_podgen_alias_t *
ngx_http_podgen_conf_alias(ngx_http_podgen_main_conf_t *pmcf, ngx_str_t *name)
{
    ngx_uint_t                i;
    ngx_http_podgen_alias_t  *a;

    a = pmcf->aliases.elts;

    for (i = 0; i < pmcf->aliases.nelts; i++) {
        if (a[i].alias.len == name->len
            && ngx_strncmp(a[i].alias.data, name->data, name->len) == 0)
        {
            return &a[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_podgen_voice_name_valid(ngx_str_t *name)
{
    size_t  i;

    if (name->len == 0 || name->len >= PG_VOICE_NAME_LEN) {
        return 0;
    }

    for (i = 0; i < name->len; i++) {
        if (!(ngx_http_podgen_isalnum(name->data[i]) || name->data[i] == '_'
              || name->data[i] == '-' || name->data[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_http_podgen_voice_t *
ngx_http_podgen_add_voice(ngx_conf_t *cf, ngx_http_podgen_main_conf_t *pmcf,
    ngx_str_t *name, ngx_str_t *source)
{
    ngx_http_podgen_voice_t  *v;

    v = ngx_array_push(&pmcf->voices);
    if (v == NULL) {
        return NULL;
    }

    ngx_memzero(v, sizeof(ngx_http_podgen_voice_t));

    v->name = *name;
    ngx_memcpy(v->voice.name, name->data, name->len);
    v->voice.name[name->len] = '\0';

    /* NUL-terminated, for flite */
    v->voice.source = (char *) ngx_pnalloc(cf->pool, source->len + 1);
    if (v->voice.source == NULL) {
        return NULL;
    }

    ngx_cpystrn((u_char *) v->voice.source, source->data, source->len + 1);

    return v;
}


static ngx_int_t
ngx_http_podgen_add_alias(ngx_conf_t *cf, ngx_http_podgen_main_conf_t *pmcf,
    ngx_str_t *alias, ngx_str_t *target)
{
    ngx_http_podgen_alias_t  *a;

    a = ngx_http_podgen_conf_alias(pmcf, alias);

    if (a == NULL) {
        a = ngx_array_push(&pmcf->aliases);
        if (a == NULL) {
            return NGX_ERROR;
        }

        a->alias = *alias;
    }

    a->target = *target;
    a->voice = NULL;

    return NGX_OK;
}


/* podgen_voice NAME builtin:slt|/path/voice.flitevox [alias=a,b,...] */

static char *
ngx_http_podgen_voice(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_main_conf_t *pmcf = conf;

    char                      err[256];
    u_char                   *p, *last, *comma;
    ngx_str_t                *value, name, source, alias;
    ngx_uint_t                i;
    ngx_http_podgen_voice_t  *v;

    value = cf->args->elts;
    name = value[1];
    source = value[2];

    if (!ngx_http_podgen_voice_name_valid(&name)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid podgen_voice name \"%V\": use up to %d "
                           "letters, digits, \"_\", \"-\" or \".\"",
                           &name, PG_VOICE_NAME_LEN - 1);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_podgen_conf_voice(pmcf, &name)) {
        return "is duplicate";
    }

    if (source.len > 8 && ngx_strncmp(source.data, "builtin:", 8) == 0) {
        for (i = 0; pg_tts_builtin_names[i]; i++) {
            if (ngx_strlen(pg_tts_builtin_names[i]) == source.len - 8
                && ngx_strncmp(pg_tts_builtin_names[i], source.data + 8,
                               source.len - 8) == 0)
            {
                break;
            }
        }

        if (pg_tts_builtin_names[i] == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen_voice \"%V\": unknown built-in voice "
                               "\"%V\" (built in: slt, rms, awb, kal, kal16)",
                               &name, &source);
            return NGX_CONF_ERROR;
        }

    } else {
        if (ngx_conf_full_name(cf->cycle, &source, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* the voice itself is loaded by every worker; check the file now
         * so that "nginx -t" catches a wrong path */

        if (pg_tts_voice_file_check((char *) source.data, err, sizeof(err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "podgen_voice \"%V\": %s",
                               &name, err);
            return NGX_CONF_ERROR;
        }
    }

    v = ngx_http_podgen_add_voice(cf, pmcf, &name, &source);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 4) {
        if (ngx_strncmp(value[3].data, "alias=", 6) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[3]);
            return NGX_CONF_ERROR;
        }

        p = value[3].data + 6;
        last = value[3].data + value[3].len;

        while (p < last) {
            comma = ngx_strlchr(p, last, ',');
            if (comma == NULL) {
                comma = last;
            }

            alias.data = p;
            alias.len = comma - p;

            if (!ngx_http_podgen_voice_name_valid(&alias)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid alias \"%V\" in \"%V\"",
                                   &alias, &value[3]);
                return NGX_CONF_ERROR;
            }

            if (ngx_http_podgen_add_alias(cf, pmcf, &alias, &name)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            p = comma + 1;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_podgen_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_podgen_main_conf_t *pmcf = conf;

    ngx_str_t                 name, source, alias, target;
    ngx_uint_t                i;
    ngx_http_podgen_alias_t  *a;
    ngx_http_podgen_voice_t  *v;

    ngx_conf_init_uint_value(pmcf->max_input, 4096);
    ngx_conf_init_size_value(pmcf->max_source, 1024 * 1024);
    ngx_conf_init_value(pmcf->llm.fallback, 1);
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

    if (ngx_http_podgen_used
        && ngx_http_podgen_cache_default(cf, &pmcf->cache) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    pmcf->jobs.used = ngx_http_podgen_jobs_used;

    if (ngx_http_podgen_jobs_init_conf(cf, &pmcf->jobs) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* the built-in voices are always there under their own names */

    for (i = 0; pg_tts_builtin_names[i]; i++) {
        name.data = (u_char *) pg_tts_builtin_names[i];
        name.len = ngx_strlen(name.data);

        if (ngx_http_podgen_conf_voice(pmcf, &name)) {
            continue;
        }

        source.len = sizeof("builtin:") - 1 + name.len;
        source.data = ngx_pnalloc(cf->pool, source.len);
        if (source.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(source.data, "builtin:%V", &name);

        if (ngx_http_podgen_add_voice(cf, pmcf, &name, &source) == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 0; ngx_http_podgen_default_aliases[i].alias; i++) {
        alias.data = (u_char *) ngx_http_podgen_default_aliases[i].alias;
        alias.len = ngx_strlen(alias.data);
        target.data = (u_char *) ngx_http_podgen_default_aliases[i].voice;
        target.len = ngx_strlen(target.data);

        if (ngx_http_podgen_conf_alias(pmcf, &alias) == NULL
            && ngx_http_podgen_conf_voice(pmcf, &alias) == NULL
            && ngx_http_podgen_add_alias(cf, pmcf, &alias, &target) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    /* a voice's own name wins over an alias of the same name */

    a = pmcf->aliases.elts;

    for (i = 0; i < pmcf->aliases.nelts; i++) {
        v = ngx_http_podgen_conf_voice(pmcf, &a[i].target);
        if (v == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen voice alias \"%V\" names no voice "
                               "\"%V\"", &a[i].alias, &a[i].target);
            return NGX_CONF_ERROR;
        }

        a[i].voice = v;

        if (v->aliases == NULL) {
            v->aliases = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
            if (v->aliases == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        if (ngx_http_podgen_conf_voice(pmcf, &a[i].alias) == NULL) {
            target.data = ngx_array_push(v->aliases);
            if (target.data == NULL) {
                return NGX_CONF_ERROR;
            }

            *(ngx_str_t *) target.data = a[i].alias;
        }
    }

    return NGX_CONF_OK;
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
     */

    plcf->api_key.len = NGX_CONF_UNSET_SIZE;

    return plcf;
}


static char *
ngx_http_podgen_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_podgen_loc_conf_t *prev = parent;
    ngx_http_podgen_loc_conf_t *conf = child;

    /* endpoints are not inherited: a nested location is its own thing;
     * the API key is */

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

    return NGX_CONF_OK;
}


/*
 * podgen_api_key KEY | env:NAME | off: clients must send
 * "Authorization: Bearer KEY", as to OpenAI.
 */

static char *
ngx_http_podgen_api_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_loc_conf_t *plcf = conf;

    char       *env;
    ngx_str_t  *value;

    if (plcf->api_key.len != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&plcf->api_key, "");
        return NGX_CONF_OK;
    }

    if (value[1].len > 4 && ngx_strncmp(value[1].data, "env:", 4) == 0) {
        env = getenv((char *) value[1].data + 4);

        if (env == NULL || *env == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen_api_key: the environment variable "
                               "\"%s\" is not set", value[1].data + 4);
            return NGX_CONF_ERROR;
        }

        plcf->api_key.len = ngx_strlen(env);
        plcf->api_key.data = ngx_pstrdup(cf->pool,
                                         &(ngx_str_t) { plcf->api_key.len,
                                                        (u_char *) env });
        return plcf->api_key.data ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    if (value[1].len < 8) {
        return "is too short: use a key of at least 8 characters";
    }

    plcf->api_key = value[1];

    return NGX_CONF_OK;
}


/*
 * The access phase of podgen locations with a key: a missing or wrong
 * bearer token gets 401 (as JSON, from the header filter).  The token is
 * compared by its SHA-256, in constant time.
 */

static ngx_int_t
ngx_http_podgen_access_handler(ngx_http_request_t *r)
{
    u_char                      *p, *last;
    ngx_table_elt_t             *h;
    ngx_http_podgen_loc_conf_t  *plcf;
    char                         hash[65];

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf->endpoint == NGX_HTTP_PODGEN_NONE || plcf->api_key.len == 0) {
        return NGX_DECLINED;
    }

    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        p = h->value.data + 7;
        last = h->value.data + h->value.len;

        while (p < last && *p == ' ') {
            p++;
        }

        while (last > p && last[-1] == ' ') {
            last--;
        }

        if (pg_key_sha256(p, last - p, hash) == 0
            && CRYPTO_memcmp(hash, plcf->api_key_hash, 64) == 0)
        {
            return NGX_OK;
        }
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Bearer");

    (void) ngx_http_podgen_begin(r);

    return NGX_HTTP_UNAUTHORIZED;
}


/*
 * Every podgen location's content handler.  While the endpoint's handler
 * runs, the request is marked: callbacks it reaches synchronously leave the
 * posted requests to nginx (see ngx_http_podgen_finalize()).
 */

static ngx_int_t
ngx_http_podgen_content_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_podgen_ctx_t       *ctx;
    ngx_http_podgen_loc_conf_t  *plcf;

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    ctx->in_handler = 1;

    switch (plcf->endpoint) {

    case NGX_HTTP_PODGEN_SPEECH:
        rc = ngx_http_podgen_speech_handler(r);
        break;

    case NGX_HTTP_PODGEN_SCRIPTS:
        rc = ngx_http_podgen_scripts_handler(r);
        break;

    case NGX_HTTP_PODGEN_AUDIO:
        rc = ngx_http_podgen_audio_handler(r);
        break;

    case NGX_HTTP_PODGEN_PODCASTS:
        rc = ngx_http_podgen_podcasts_handler(r);
        break;

    case NGX_HTTP_PODGEN_BATCH:
        rc = ngx_http_podgen_batch_handler(r);
        break;

    default: /* NGX_HTTP_PODGEN_VOICES */
        rc = ngx_http_podgen_voices_handler(r);
        break;
    }

    /* the request is still there: nothing above closed it */
    ctx->in_handler = 0;

    return rc;
}


static char *
ngx_http_podgen_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_loc_conf_t *plcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->endpoint != NGX_HTTP_PODGEN_NONE) {
        return "is duplicate: one podgen endpoint per location";
    }

    plcf->endpoint = (ngx_uint_t) cmd->post;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_podgen_content_handler;

    if (plcf->endpoint == NGX_HTTP_PODGEN_PODCASTS
        || plcf->endpoint == NGX_HTTP_PODGEN_BATCH)
    {
        ngx_http_podgen_jobs_used = 1;
    }

    ngx_http_podgen_used = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_podgen_postconfiguration(ngx_conf_t *cf)
{
    ngx_str_t                     name = ngx_string("request_id");
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_podgen_module);

    /* every answer of a podgen location is counted, nginx's own too */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_podgen_log_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_podgen_access_handler;

    ngx_http_podgen_metrics_set_build(NGX_HTTP_PODGEN_VERSION,
                                      pg_tts_version());

    pmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (pmcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    pmcf->voices_loaded = ngx_http_podgen_used;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_podgen_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_podgen_body_filter;

    return NGX_OK;
}


/*
 * Voices are loaded once per worker, here, and shared read-only by the
 * synthesis threads.  Only when some location uses podgen.
 */

static ngx_int_t
ngx_http_podgen_init_process(ngx_cycle_t *cycle)
{
    char                          err[256];
    ngx_uint_t                    i;
    ngx_http_podgen_voice_t      *v;
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

    if (pg_tts_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "podgen: flite initialization failed");
        return NGX_ERROR;
    }

    v = pmcf->voices.elts;

    for (i = 0; i < pmcf->voices.nelts; i++) {
        if (pg_tts_voice_load(&v[i].voice, v[i].voice.source, err,
                              sizeof(err))
            != 0)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "podgen: voice \"%V\": %s", &v[i].name, err);
            return NGX_ERROR;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                       "podgen: voice \"%V\" loaded, %d Hz, from %s",
                       &v[i].name, v[i].voice.rate, v[i].voice.source);
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
    ngx_http_podgen_redis_exit_process(cycle);

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_podgen_module);
    if (pmcf) {
        ngx_http_podgen_cache_exit_process(&pmcf->cache);
    }
}


/*
 * podgen_llm URL [model=NAME] [api_key_env=VAR] [timeout=TIME]
 *     [max_concurrency=N] [max_queue=N] [retries=N]
 */

static char *
ngx_http_podgen_llm(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_main_conf_t *pmcf = conf;

    ngx_int_t                    n;
    ngx_str_t                   *value, s;
    ngx_uint_t                   i;
    ngx_http_podgen_llm_conf_t  *llm;

    if (pmcf->llm_enabled) {
        return "is duplicate";
    }

    value = cf->args->elts;
    llm = &pmcf->llm;

    if (!(value[1].len > 7
          && (ngx_strncmp(value[1].data, "http://", 7) == 0
              || ngx_strncmp(value[1].data, "https://", 8) == 0)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "podgen_llm: \"%V\" is not an http:// or "
                           "https:// URL", &value[1]);
        return NGX_CONF_ERROR;
    }

    llm->url = value[1];

    while (llm->url.len && llm->url.data[llm->url.len - 1] == '/') {
        llm->url.len--;
    }

    ngx_str_set(&llm->model, "gpt-4o-mini");
    llm->timeout = 60000;
    llm->max_concurrency = 64;
    llm->max_queue = 4096;
    llm->retries = 2;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "model=", 6) == 0) {
            llm->model.data = value[i].data + 6;
            llm->model.len = value[i].len - 6;

            if (llm->model.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key_env=", 12) == 0) {
            llm->api_key_env.data = value[i].data + 12;
            llm->api_key_env.len = value[i].len - 12;

            if (llm->api_key_env.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            llm->timeout = ngx_parse_time(&s, 0);
            if (llm->timeout == (ngx_msec_t) NGX_ERROR || llm->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_concurrency=", 16) == 0) {
            n = ngx_atoi(value[i].data + 16, value[i].len - 16);
            if (n <= 0) {
                goto invalid;
            }

            llm->max_concurrency = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_queue=", 10) == 0) {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);
            if (n < 0) {
                goto invalid;
            }

            llm->max_queue = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "retries=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n < 0 || n > 10) {
                goto invalid;
            }

            llm->retries = n;
            continue;
        }

        goto invalid;
    }

    /* NUL-terminated copies for curl and getenv() */

    s.data = ngx_pnalloc(cf->pool, llm->url.len + 1);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(s.data, llm->url.data, llm->url.len + 1);
    llm->url.data = s.data;

    s.data = ngx_pnalloc(cf->pool, llm->model.len + 1);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(s.data, llm->model.data, llm->model.len + 1);
    llm->model.data = s.data;

    if (llm->api_key_env.len) {
        s.data = ngx_pnalloc(cf->pool, llm->api_key_env.len + 1);
        if (s.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(s.data, llm->api_key_env.data, llm->api_key_env.len + 1);
        llm->api_key_env.data = s.data;
    }

    pmcf->llm_enabled = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "podgen_llm: invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


ngx_http_podgen_voice_t *
ngx_http_podgen_find_voice(ngx_http_podgen_main_conf_t *pmcf,
    const char *name)
{
    ngx_str_t                 s;
    ngx_http_podgen_alias_t  *a;
    ngx_http_podgen_voice_t  *v;

    s.data = (u_char *) name;
    s.len = ngx_strlen(name);

    v = ngx_http_podgen_conf_voice(pmcf, &s);
    if (v) {
        return v;
    }

    a = ngx_http_podgen_conf_alias(pmcf, &s);

    return a ? a->voice : NULL;
}


static ngx_uint_t
ngx_http_podgen_metrics_endpoint(ngx_uint_t endpoint)
{
    switch (endpoint) {

    case NGX_HTTP_PODGEN_SPEECH:
        return PG_EP_SPEECH;

    case NGX_HTTP_PODGEN_VOICES:
        return PG_EP_VOICES;

    case NGX_HTTP_PODGEN_SCRIPTS:
        return PG_EP_SCRIPTS;

    case NGX_HTTP_PODGEN_AUDIO:
        return PG_EP_AUDIO;

    case NGX_HTTP_PODGEN_PODCASTS:
        return PG_EP_PODCASTS;

    case NGX_HTTP_PODGEN_BATCH:
        return PG_EP_BATCH;

    default:
        return PG_EP_N;
    }
}


static ngx_int_t
ngx_http_podgen_log_handler(ngx_http_request_t *r)
{
    ngx_time_t                  *tp;
    ngx_msec_int_t               ms;
    ngx_uint_t                   status;
    ngx_http_podgen_ctx_t       *ctx;
    ngx_http_podgen_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf->endpoint == NGX_HTTP_PODGEN_NONE) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);

    if (ctx) {
        /* how long a client chose to wait is not the server's latency */
        ms -= (ngx_msec_int_t) ctx->idle;
    }

    ngx_http_podgen_metrics_request(
                               ngx_http_podgen_metrics_endpoint(plcf->endpoint),
                               status, (ngx_msec_t) ngx_max(ms, 0));

    return NGX_OK;
}


static void
ngx_http_podgen_inflight_done(void *data)
{
    ngx_http_podgen_metrics_inflight((ngx_uint_t) (uintptr_t) data, -1);
}


/* Counts a request as in flight until its pool goes away. */

ngx_int_t
ngx_http_podgen_begin(ngx_http_request_t *r)
{
    ngx_uint_t                   ep;
    ngx_pool_cleanup_t          *cln;
    ngx_http_podgen_ctx_t       *ctx;
    ngx_http_podgen_loc_conf_t  *plcf;

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->counted) {
        return NGX_OK;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);
    ep = ngx_http_podgen_metrics_endpoint(plcf->endpoint);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_podgen_inflight_done;
    cln->data = (void *) (uintptr_t) ep;

    ngx_http_podgen_metrics_inflight(ep, 1);
    ctx->counted = 1;

    return NGX_OK;
}


/*
 * nginx answers some requests itself before or while our handler runs
 * (413 for a body over client_max_body_size, 408, 400 for a broken chunked
 * body, 500): in podgen locations those become JSON errors too.
 */

static ngx_int_t
ngx_http_podgen_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                    json;
    pg_error_t                   err;
    ngx_http_podgen_ctx_t       *ctx;
    ngx_http_podgen_loc_conf_t  *plcf;

    if (r != r->main || r->headers_out.status < NGX_HTTP_BAD_REQUEST) {
        return ngx_http_next_header_filter(r);
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);
    if (plcf == NULL || plcf->endpoint == NGX_HTTP_PODGEN_NONE) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->error_sent) {
        return ngx_http_next_header_filter(r);
    }

    switch (r->headers_out.status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        pg_error_set(&err, 413, NULL, "request_too_large",
                     "the request body is larger than the server accepts");
        break;

    case NGX_HTTP_REQUEST_TIME_OUT:
        pg_error_set(&err, 408, NULL, "request_timeout",
                     "the request body was not received in time");
        break;

    case NGX_HTTP_BAD_REQUEST:
        pg_error_set(&err, 400, NULL, "invalid_request",
                     "the request is malformed");
        break;

    case NGX_HTTP_UNAUTHORIZED:
        pg_error_set(&err, 401, NULL, "invalid_api_key",
                     "incorrect or missing API key: send "
                     "\"Authorization: Bearer <key>\"");
        break;

    case NGX_HTTP_FORBIDDEN:
        pg_error_set(&err, 403, NULL, "forbidden",
                     "access to this resource is denied");
        break;

    default:
        pg_error_set(&err, r->headers_out.status, NULL, "server_error",
                     "the server could not complete the request");
        err.type = r->headers_out.status >= 500 ? "server_error"
                                                 : "invalid_request_error";
        break;
    }

    if (ngx_http_podgen_error_json(r->pool, &err, &json) != NGX_OK) {
        return ngx_http_next_header_filter(r);
    }

    ctx->replace_body = 1;
    ctx->error_sent = 1;

    r->headers_out.content_type_len = sizeof("application/json") - 1;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    r->headers_out.content_length_n = json.len;
    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_http_clear_etag(r);
    ngx_http_clear_last_modified(r);

    /* the JSON goes out instead of nginx's HTML page */
    ctx->replacement = json;

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_podgen_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t              *b;
    ngx_chain_t            *cl, out;
    ngx_http_podgen_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);

    if (ctx == NULL || !ctx->replace_body) {
        return ngx_http_next_body_filter(r, in);
    }

    /* swallow nginx's page, send our JSON once */

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->replaced) {
        return NGX_OK;
    }

    ctx->replaced = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->replacement.data;
    b->last = b->pos + ctx->replacement.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}
