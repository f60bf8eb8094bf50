/*
 * podgen: nginx HTTP module — shared types and helpers.
 */

#ifndef NGX_HTTP_PODGEN_MODULE_H
#define NGX_HTTP_PODGEN_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>

#include "pg_json.h"
#include "pg_tts.h"
#include "pg_script.h"
#include "pg_audio.h"
#include "pg_key.h"
#include "ngx_http_podgen_llm.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_jobs.h"

/* until jobs, podcasts and batch include what they call */
#include "ngx_http_podgen_offload.h"


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
    ngx_http_podgen_llm_conf_t  llm;
    ngx_flag_t            llm_enabled;
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
} ngx_http_podgen_main_conf_t;


typedef enum {
    NGX_HTTP_PODGEN_NONE = 0,
    NGX_HTTP_PODGEN_SPEECH,
    NGX_HTTP_PODGEN_VOICES,
    NGX_HTTP_PODGEN_SCRIPTS,
    NGX_HTTP_PODGEN_AUDIO,
    NGX_HTTP_PODGEN_PODCASTS,
    NGX_HTTP_PODGEN_BATCH
} ngx_http_podgen_endpoint_e;


typedef struct {
    ngx_uint_t            endpoint;         /* ngx_http_podgen_endpoint_e */
    ngx_str_t             api_key;          /* podgen_api_key; "" = off */
    char                  api_key_hash[65]; /* its SHA-256, hex */
} ngx_http_podgen_loc_conf_t;


/* Per-request context. */
typedef struct {
    ngx_str_t             request_id;
    ngx_msec_t            start;
    void                 *speech;           /* ngx_http_podgen_speech_t */
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


/* ngx_http_podgen_util.c */
ngx_http_podgen_ctx_t *ngx_http_podgen_get_ctx(ngx_http_request_t *r);
void ngx_http_podgen_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_podgen_memo_key(ngx_http_podgen_main_conf_t *pmcf,
    ngx_uint_t endpoint, u_char *body, size_t len, u_char *key);
ngx_int_t ngx_http_podgen_add_common_headers(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_add_header(ngx_http_request_t *r, char *key,
    ngx_str_t *value);
ngx_int_t ngx_http_podgen_error_json(ngx_pool_t *pool, pg_error_t *err,
    ngx_str_t *out);
ngx_int_t ngx_http_podgen_send_error(ngx_http_request_t *r,
    pg_error_t *err);
ngx_int_t ngx_http_podgen_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len);
ngx_int_t ngx_http_podgen_check_method(ngx_http_request_t *r,
    ngx_uint_t allowed, char *allow, pg_error_t *err);
ngx_int_t ngx_http_podgen_check_json_body(ngx_http_request_t *r,
    pg_error_t *err);
ngx_int_t ngx_http_podgen_body_bytes(ngx_http_request_t *r, u_char **body,
    size_t *len);
ngx_int_t ngx_http_podgen_set_etag(ngx_http_request_t *r, const char *hex);
ngx_int_t ngx_http_podgen_send_memory(ngx_http_request_t *r, u_char *data,
    size_t len);
ngx_int_t ngx_http_podgen_read_json_request(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt post_handler);
ngx_int_t ngx_http_podgen_begin(ngx_http_request_t *r);
ngx_uint_t ngx_http_podgen_metrics_endpoint(ngx_uint_t endpoint);

/* ngx_http_podgen_voices.c */
char *ngx_http_podgen_voice(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_podgen_voices_init_conf(ngx_conf_t *cf,
    ngx_http_podgen_main_conf_t *pmcf);
ngx_int_t ngx_http_podgen_voices_init_process(ngx_cycle_t *cycle,
    ngx_http_podgen_main_conf_t *pmcf);
ngx_http_podgen_voice_t *ngx_http_podgen_find_voice(
    ngx_http_podgen_main_conf_t *pmcf, const char *name);
int ngx_http_podgen_voice_exists(void *pmcf, const char *name);

/* ngx_http_podgen_directive.c */
char *ngx_http_podgen_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_podgen_api_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_podgen_phases.c */
ngx_int_t ngx_http_podgen_phases_init(ngx_conf_t *cf);
ngx_int_t ngx_http_podgen_content_handler(ngx_http_request_t *r);

/* ngx_http_podgen_error_filter.c */
ngx_int_t ngx_http_podgen_error_filter_init(ngx_conf_t *cf);

/* ngx_http_podgen_scripts.c: a script through the cache tiers */

typedef struct {
    char                 *key;          /* hex */
    const char           *engine;       /* "builtin" | "llm" */
    const char           *fallback;     /* why the LLM was not used, or NULL */
    u_char               *json;         /* the script object */
    size_t                len;
    ngx_uint_t            cached;       /* 0 made now, 1 L1, 2 L2 */
} ngx_http_podgen_script_t;

typedef struct ngx_http_podgen_script_make_s  ngx_http_podgen_script_make_t;

/* The script is valid during the call; rc NGX_ERROR: err says why. */
typedef void (*ngx_http_podgen_script_done_pt)(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err);

/*
 * Takes over *req.  NGX_OK: an L1 hit in *hit (memory from pool);
 * NGX_AGAIN: done() is called later, exactly once, unless canceled;
 * NGX_DECLINED: *err (400, 503); NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_script_make(ngx_http_podgen_main_conf_t *pmcf,
    pg_script_request_t *req, ngx_pool_t *pool,
    ngx_http_podgen_script_done_pt done, void *data, ngx_log_t *log,
    ngx_http_podgen_script_t *hit, ngx_http_podgen_script_make_t **mp,
    pg_error_t *err);
void ngx_http_podgen_script_cancel(ngx_http_podgen_script_make_t *m);
ngx_int_t ngx_http_podgen_script_hosts(ngx_http_podgen_main_conf_t *pmcf,
    pg_script_request_t *req, pg_error_t *err);
u_char *ngx_http_podgen_script_reply_json(ngx_pool_t *pool,
    ngx_http_podgen_script_t *script, size_t *len);

/* ngx_http_podgen_speech.c */
ngx_int_t ngx_http_podgen_speech_key(ngx_http_podgen_voice_t *voice,
    pg_format_t format, double speed, const char *text, size_t len,
    char *hex);

/* ngx_http_podgen_artifact.c: speech audio made whole */

typedef struct {
    char                  key[PG_KEY_LEN + 1];
    u_char               *audio;
    size_t                len;
    ngx_uint_t            cached;       /* 0 made now, 1 L1, 2 L2 */
} ngx_http_podgen_audio_t;

typedef struct ngx_http_podgen_audio_make_s  ngx_http_podgen_audio_make_t;

/* The audio is valid during the call; rc NGX_ERROR: err says why. */
typedef void (*ngx_http_podgen_audio_done_pt)(void *data, ngx_int_t rc,
    ngx_http_podgen_audio_t *audio, pg_error_t *err);

/*
 * text: normalized (pg_text_normalize).  NGX_OK: an L1 hit in *hit
 * (memory from pool); NGX_AGAIN: done() is called later, exactly once,
 * unless canceled (hit->key is set either way); NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_audio_make(ngx_http_podgen_main_conf_t *pmcf,
    ngx_http_podgen_voice_t *voice, pg_format_t format, double speed,
    const char *text, size_t len, ngx_pool_t *pool,
    ngx_http_podgen_audio_done_pt done, void *data, ngx_log_t *log,
    ngx_http_podgen_audio_t *hit, ngx_http_podgen_audio_make_t **mp);
void ngx_http_podgen_audio_cancel(ngx_http_podgen_audio_make_t *m);

/* ngx_http_podgen_podcasts.c */
ngx_int_t ngx_http_podgen_podcast_record(ngx_http_podgen_main_conf_t *pmcf,
    u_char *body, size_t len, ngx_uint_t salt, pg_job_t *rec,
    pg_error_t *err);

/* endpoint handlers */
ngx_int_t ngx_http_podgen_speech_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_voices_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_scripts_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_audio_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_podcasts_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_batch_handler(ngx_http_request_t *r);


#endif /* NGX_HTTP_PODGEN_MODULE_H */
