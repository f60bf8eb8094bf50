/*
 * podgen: POST /v1/scripts, and the script maker that podcasts and
 * batches use too: a script through the cache tiers.
 */

#ifndef NGX_HTTP_PODGEN_SCRIPTS_H
#define NGX_HTTP_PODGEN_SCRIPTS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_json.h"
#include "pg_script.h"
#include "ngx_http_podgen_module.h"


ngx_int_t ngx_http_podgen_scripts_handler(ngx_http_request_t *r);


/* the script maker */

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


#endif /* NGX_HTTP_PODGEN_SCRIPTS_H */
