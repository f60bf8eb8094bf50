/*
 * podgen: the LLM client — OpenAI-compatible chat completions over libcurl
 * multi, driven by nginx events and timers (one multi per worker).  No call
 * ever blocks the worker: sockets are nginx connections, curl's timeout is
 * an nginx timer, and name resolution is curl's threaded resolver.
 */

#ifndef NGX_HTTP_PODGEN_LLM_H
#define NGX_HTTP_PODGEN_LLM_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "pg_json.h"
#include "pg_script.h"


typedef struct {
    ngx_str_t      url;                 /* base: http://host:port/v1 */
    ngx_str_t      model;
    ngx_str_t      api_key_env;
    ngx_msec_t     timeout;             /* per attempt */
    ngx_uint_t     max_concurrency;     /* calls on the wire per worker */
    ngx_uint_t     max_queue;           /* calls waiting per worker */
    ngx_uint_t     retries;
    ngx_flag_t     fallback;            /* podgen_llm_fallback */
} ngx_http_podgen_llm_conf_t;


typedef struct ngx_http_podgen_llm_call_s  ngx_http_podgen_llm_call_t;

/*
 * rc NGX_OK: *script is filled (the callee owns it then: pg_script_free).
 * rc NGX_ERROR: every attempt failed; err says why (code llm_error,
 * llm_timeout or invalid_llm_reply; status 502 or 504).
 */
typedef void (*ngx_http_podgen_llm_done_pt)(void *data, ngx_int_t rc,
    pg_script_t *script, pg_error_t *err);


/*
 * podgen_llm URL [model=NAME] [api_key_env=VAR] [timeout=TIME]
 *     [max_concurrency=N] [max_queue=N] [retries=N]
 */
char *ngx_http_podgen_llm_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_podgen_llm_init_process(ngx_cycle_t *cycle,
    ngx_http_podgen_llm_conf_t *conf);
void ngx_http_podgen_llm_exit_process(ngx_cycle_t *cycle);

/*
 * Starts writing a script for *req (which must stay valid until done is
 * called or the call is canceled).  Returns the call, or NULL with *rc
 * NGX_BUSY (the queue is full) or NGX_ERROR.
 */
ngx_http_podgen_llm_call_t *ngx_http_podgen_llm_script(
    const pg_script_request_t *req, ngx_http_podgen_llm_done_pt done,
    void *data, ngx_log_t *log, ngx_int_t *rc);

/* The caller goes away: the transfer is stopped, nothing is called. */
void ngx_http_podgen_llm_cancel(ngx_http_podgen_llm_call_t *call);

#endif /* NGX_HTTP_PODGEN_LLM_H */
