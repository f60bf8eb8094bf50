/*
 * podgen: nginx HTTP module — the types every file of the module shares:
 * the main and location configuration, the request context, the voices,
 * the endpoints.  The functions of each file are declared in its own
 * header.
 */

#ifndef NGX_HTTP_PODGEN_MODULE_H
#define NGX_HTTP_PODGEN_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>

#include "pg_tts.h"

/* the configurations that the main configuration embeds */
#include "ngx_http_podgen_llm.h"
#include "ngx_http_podgen_url.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_show.h"


#define NGX_HTTP_PODGEN_VERSION  "0.1.0"

#define ngx_http_podgen_isalnum(c)                                            \
    (((c) >= '0' && (c) <= '9') || (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z'))


typedef struct {
    pg_voice_t            voice;
    ngx_str_t             name;
    ngx_array_t          *aliases;          /* ngx_str_t */
} ngx_http_podgen_voice_t;


typedef struct {
    ngx_str_t             alias;
    ngx_str_t             target;
    ngx_http_podgen_voice_t  *voice;        /* resolved in init_process */
} ngx_http_podgen_alias_t;


typedef struct {
    ngx_array_t           voices;           /* ngx_http_podgen_voice_t */
    ngx_array_t           aliases;          /* ngx_http_podgen_alias_t */
    ngx_str_t             thread_pool_name;
    ngx_thread_pool_t    *thread_pool;
    ngx_uint_t            max_input;
    size_t                max_source;
    time_t                max_queue;        /* s of audio per worker */
    time_t                max_audio;        /* s of audio per request */
    ngx_http_podgen_llm_conf_t  llm;
    ngx_flag_t            llm_enabled;
    ngx_http_podgen_url_conf_t  fetch;      /* source URLs */
    ngx_http_podgen_cache_conf_t  cache;
    ngx_http_podgen_redis_conf_t  redis;
    ngx_http_podgen_jobs_conf_t   jobs;
    ngx_uint_t            parallelism;
    size_t                chunk_max;
    size_t                first_chunk_max;
    ngx_int_t             request_id_index;
    ngx_uint_t            used;             /* a location has an endpoint */
    ngx_uint_t            voices_loaded;    /* unsigned: set per worker */
    uint64_t              memo_seed;        /* new with each configuration */
    ngx_int_t             loudness;         /* podgen_loudness: 1 on */
    double                loudness_lufs;
    double                loudness_peak;
} ngx_http_podgen_main_conf_t;


typedef enum {
    NGX_HTTP_PODGEN_NONE = 0,
    NGX_HTTP_PODGEN_SPEECH,
    NGX_HTTP_PODGEN_VOICES,
    NGX_HTTP_PODGEN_SCRIPTS,
    NGX_HTTP_PODGEN_AUDIO,
    NGX_HTTP_PODGEN_PODCASTS,
    NGX_HTTP_PODGEN_BATCH,
    NGX_HTTP_PODGEN_SOURCES,
    NGX_HTTP_PODGEN_MODELS
} ngx_http_podgen_endpoint_e;


typedef struct {
    ngx_uint_t            endpoint;         /* ngx_http_podgen_endpoint_e */
    ngx_uint_t            server_endpoints; /* a server's own: it has
                                               podgen locations */
    ngx_str_t             api_key;          /* podgen_api_key; "" = off */
    char                  api_key_hash[65]; /* its SHA-256, hex */
    ngx_str_t             feed_token;       /* podgen_feed_token; "" = off;
                                               NUL-terminated */
    char                  feed_token_hash[65];
    ngx_array_t          *cors;             /* podgen_cors: ngx_str_t
                                               origins ("*"); NULL = off */
    ngx_http_podgen_show_t  *show;          /* podgen_show; never NULL
                                               once merged */
    ngx_array_t          *trust_forwarded;  /* podgen_trust_forwarded:
                                               ngx_cidr_t; NULL = none */
} ngx_http_podgen_loc_conf_t;


/* Per-request context. */
typedef struct {
    ngx_str_t             request_id;
    ngx_msec_t            start;
    uint64_t              start_us;         /* ngx_http_podgen_now_us() */
    void                 *speech;           /* ngx_http_podgen_speech_t */
    void                 *source;           /* a POST /v1/sources */
    ngx_str_t             replacement;      /* JSON for a core error page */
    ngx_msec_t            idle;             /* a long poll's waiting, not
                                               counted as latency */
    unsigned              error_sent:1;     /* our own JSON error */
    unsigned              counted:1;        /* in the inflight gauge */
    unsigned              replace_body:1;   /* core error -> JSON */
    unsigned              replaced:1;
    unsigned              in_handler:1;     /* inside the content handler */
} ngx_http_podgen_ctx_t;


extern ngx_module_t  ngx_http_podgen_module;


#endif /* NGX_HTTP_PODGEN_MODULE_H */
