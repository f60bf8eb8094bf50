/*
 * podgen: POST /v1/scripts — a podcast script from a topic or a text.
 *
 * The built-in engine runs on the thread pool (it reads up to megabytes of
 * source); the LLM engine goes through the curl-multi client, with the
 * built-in engine as fallback when the LLM fails (podgen_llm_fallback).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "pg_script.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_llm.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_cache.h"


#define NGX_HTTP_PODGEN_SCRIPT_VERSION  "builtin-1"


/*
 * Lives outside the request pool: the pool thread or the LLM call may
 * still hold it when the client goes away.
 */
typedef struct {
    ngx_http_request_t            *request;
    pg_script_request_t            req;
    pg_script_t                    script;
    ngx_http_podgen_llm_call_t    *call;
    ngx_http_podgen_offload_t     *offload;
    ngx_http_podgen_redis_op_t    *l2;
    ngx_msec_t                     start;
    const char                    *engine;
    const char                    *fallback;
    char                           key[PG_KEY_LEN + 1];
    int                            gen_rc;
    unsigned                       have_script:1;
} ngx_http_podgen_scripts_t;


static void ngx_http_podgen_scripts_body(ngx_http_request_t *r);
static void ngx_http_podgen_scripts_cleanup(void *data);
static void ngx_http_podgen_scripts_free(ngx_http_podgen_scripts_t *s);
static ngx_int_t ngx_http_podgen_scripts_builtin(ngx_http_podgen_scripts_t *s);
static ngx_int_t ngx_http_podgen_scripts_cached(ngx_http_request_t *r,
    ngx_http_podgen_scripts_t *s);
static void ngx_http_podgen_scripts_l2_done(void *data, ngx_int_t rc,
    u_char *value, size_t len);
static void ngx_http_podgen_scripts_write(ngx_http_podgen_scripts_t *s);
static void ngx_http_podgen_scripts_llm_done(void *data, ngx_int_t rc,
    pg_script_t *script, pg_error_t *err);
static void ngx_http_podgen_scripts_send(ngx_http_podgen_scripts_t *s);
static ngx_int_t ngx_http_podgen_scripts_reply(ngx_http_request_t *r,
    const char *key, const char *engine, const char *fallback,
    u_char *script, size_t len, ngx_uint_t cached, ngx_msec_t start);
static void ngx_http_podgen_scripts_fail(ngx_http_podgen_scripts_t *s,
    pg_error_t *err);


/* voices given to hosts that name none, in turn */
static char  *ngx_http_podgen_host_voices[] = {
    "alloy", "echo", "fable", "nova", "onyx", "shimmer"
};


ngx_int_t
ngx_http_podgen_scripts_handler(ngx_http_request_t *r)
{
    return ngx_http_podgen_read_json_request(r, ngx_http_podgen_scripts_body);
}


static ngx_int_t
ngx_http_podgen_scripts_hosts(ngx_http_podgen_main_conf_t *pmcf,
    pg_script_request_t *req, pg_error_t *err)
{
    size_t   i;
    char    *voice;
    static char  param[32];

    for (i = 0; i < req->nhosts; i++) {

        if (req->hosts[i].voice == NULL) {
            voice = strdup(ngx_http_podgen_host_voices[
                               i % (sizeof(ngx_http_podgen_host_voices)
                                    / sizeof(char *))]);
            if (voice == NULL) {
                return NGX_ERROR;
            }

            req->hosts[i].voice = voice;
            continue;
        }

        if (ngx_http_podgen_find_voice(pmcf, req->hosts[i].voice) == NULL) {
            ngx_sprintf((u_char *) param, "hosts[%uz].voice%Z", i);
            pg_error_set(err, 400, param, "invalid_value",
                         "unknown voice '%.64s'; GET /v1/voices lists them",
                         req->hosts[i].voice);
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static void
ngx_http_podgen_scripts_body(ngx_http_request_t *r)
{
    u_char                       *body;
    size_t                        len;
    yajl_val                      tree;
    ngx_int_t                     rc;
    pg_buf_t                      canon;
    pg_error_t                    err;
    ngx_pool_cleanup_t           *cln;
    ngx_http_podgen_scripts_t    *s;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (ngx_http_podgen_body_bytes(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    tree = pg_json_parse_object((char *) body, len, PG_JSON_MAX_DEPTH, &err);
    if (tree == NULL) {
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    s = ngx_calloc(sizeof(ngx_http_podgen_scripts_t), r->connection->log);
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (s == NULL || cln == NULL) {
        yajl_tree_free(tree);
        ngx_free(s);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = pg_script_request_from_json(tree, pmcf->max_source, &s->req, &err);
    yajl_tree_free(tree);

    if (rc != 0) {
        ngx_free(s);
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    s->request = r;
    s->start = ngx_current_msec;

    cln->handler = ngx_http_podgen_scripts_cleanup;
    cln->data = s;

    rc = ngx_http_podgen_scripts_hosts(pmcf, &s->req, &err);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (s->req.engine == PG_ENGINE_LLM && !pmcf->llm_enabled) {
        pg_error_set(&err, 400, "engine", "invalid_value",
                     "no LLM is configured on this server; use "
                     "\"engine\": \"builtin\"");
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    if (s->req.engine == PG_ENGINE_DEFAULT) {
        s->req.engine = pmcf->llm_enabled ? PG_ENGINE_LLM : PG_ENGINE_BUILTIN;
    }

    s->engine = (s->req.engine == PG_ENGINE_LLM) ? "llm" : "builtin";

    /* the key: the canonical request, the engine and its version */

    ngx_memzero(&canon, sizeof(pg_buf_t));

    if (pg_script_request_canonical(&s->req, &canon) != 0
        || pg_buf_append_str(&canon, "|engine=") != 0
        || pg_buf_append_str(&canon, s->req.engine == PG_ENGINE_LLM
                                     ? (char *) pmcf->llm.model.data
                                     : NGX_HTTP_PODGEN_SCRIPT_VERSION) != 0
        || pg_key_sha256(canon.data, canon.len, s->key) != 0)
    {
        pg_buf_free(&canon);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    pg_buf_free(&canon);

    if (ngx_http_podgen_scripts_cached(r, s) == NGX_OK) {
        return;
    }

    r->read_event_handler = ngx_http_test_reading;

    /* another node may have written it */

    s->l2 = ngx_http_podgen_redis_get("script", s->key,
                                      ngx_http_podgen_scripts_l2_done, s);
    if (s->l2) {
        return;
    }

    ngx_http_podgen_scripts_write(s);
}


static void
ngx_http_podgen_scripts_l2_done(void *data, ngx_int_t rc, u_char *value,
    size_t len)
{
    ngx_http_podgen_scripts_t  *s = data;

    u_char                       *copy, *nl, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_podgen_main_conf_t  *pmcf;

    s->l2 = NULL;
    r = s->request;
    c = r->connection;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    nl = (rc == NGX_OK) ? ngx_strlchr(value, value + len, '\n') : NULL;

    if (nl == NULL) {
        ngx_http_podgen_metrics_cache(1, PG_KIND_SCRIPT, 0);
        ngx_http_podgen_scripts_write(s);
        return;
    }

    ngx_http_podgen_metrics_cache(1, PG_KIND_SCRIPT, 1);

    if (pmcf->cache.shm_zone) {
        ngx_http_podgen_cache_key(key, s->key);
        (void) ngx_http_podgen_cache_put(&pmcf->cache, key, PG_KIND_SCRIPT,
                                         value, len, 0, c->log);
    }

    copy = ngx_pnalloc(r->pool, len + 1);
    if (copy == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_memcpy(copy, value, len);
    nl = copy + (nl - value);
    *nl = '\0';

    rc = ngx_http_podgen_scripts_reply(r, s->key, (char *) copy, NULL, nl + 1,
                                       copy + len - (nl + 1), 2, s->start);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* No cache has it: the engine writes it. */

static void
ngx_http_podgen_scripts_write(ngx_http_podgen_scripts_t *s)
{
    ngx_int_t                     rc;
    pg_error_t                    err;
    ngx_http_request_t           *r;
    ngx_http_podgen_main_conf_t  *pmcf;

    r = s->request;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (s->req.engine == PG_ENGINE_BUILTIN) {
        if (ngx_http_podgen_scripts_builtin(s) != NGX_OK) {
            goto busy;
        }

        return;
    }

    s->call = ngx_http_podgen_llm_script(&s->req,
                                         ngx_http_podgen_scripts_llm_done, s,
                                         r->connection->log, &rc);
    if (s->call) {
        return;
    }

    if (pmcf->llm.fallback) {
        s->fallback = (rc == NGX_BUSY) ? "llm_busy" : "llm_error";
        ngx_http_podgen_metrics_llm_fallback();

        if (ngx_http_podgen_scripts_builtin(s) == NGX_OK) {
            return;
        }
    }

busy:

    ngx_http_podgen_metrics_error(PG_ERR_BUSY);

    pg_error_set(&err, 503, NULL, "server_busy",
                 "too many scripts are being written; retry shortly");
    err.type = "server_error";

    ngx_http_podgen_scripts_fail(s, &err);
}


/*
 * An entry is "<engine>\n<script JSON>"; scripts written by the fallback
 * engine are not stored, so that the LLM is asked again next time.
 */

static ngx_int_t
ngx_http_podgen_scripts_cached(ngx_http_request_t *r,
    ngx_http_podgen_scripts_t *s)
{
    u_char                       *data, *nl, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                        len;
    ngx_int_t                     rc;
    ngx_uint_t                    tag;
    ngx_connection_t             *c;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (pmcf->cache.shm_zone == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_podgen_cache_key(key, s->key);

    if (ngx_http_podgen_cache_get(&pmcf->cache, key, PG_KIND_SCRIPT, r->pool,
                                  &data, &len, &tag)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    nl = ngx_strlchr(data, data + len, '\n');
    if (nl == NULL) {
        return NGX_DECLINED;
    }

    *nl = '\0';

    c = r->connection;

    rc = ngx_http_podgen_scripts_reply(r, s->key, (char *) data, NULL, nl + 1,
                                       data + len - (nl + 1), 1, s->start);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);

    return NGX_OK;
}


/* ---- the built-in engine on the pool ------------------------------------ */


static void
ngx_http_podgen_scripts_generate(void *data)
{
    ngx_http_podgen_scripts_t  *s = data;

    s->gen_rc = pg_script_generate(&s->req, &s->script);

    /* set here: release() frees the script even if nobody waits */
    s->have_script = (s->gen_rc == 0);
}


static void
ngx_http_podgen_scripts_generated(void *data)
{
    ngx_http_podgen_scripts_t  *s = data;

    pg_error_t  err;

    s->offload = NULL;

    if (s->gen_rc != 0) {
        pg_error_set(&err, 500, NULL, "server_error",
                     "the script could not be written");
        err.type = "server_error";
        ngx_http_podgen_scripts_fail(s, &err);
        return;
    }

    s->engine = "builtin";

    ngx_http_podgen_scripts_send(s);
}


static void
ngx_http_podgen_scripts_release(void *data)
{
    ngx_http_podgen_scripts_t  *s = data;

    s->offload = NULL;

    if (s->request == NULL) {
        ngx_http_podgen_scripts_free(s);
    }
}


static ngx_int_t
ngx_http_podgen_scripts_builtin(ngx_http_podgen_scripts_t *s)
{
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(s->request, ngx_http_podgen_module);

    s->offload = ngx_http_podgen_offload(pmcf->thread_pool,
                                         ngx_http_podgen_scripts_generate,
                                         ngx_http_podgen_scripts_generated,
                                         ngx_http_podgen_scripts_release,
                                         s, s->request->connection->log);

    return s->offload ? NGX_OK : NGX_ERROR;
}


/* ---- the LLM engine ----------------------------------------------------- */


static void
ngx_http_podgen_scripts_llm_done(void *data, ngx_int_t rc,
    pg_script_t *script, pg_error_t *err)
{
    ngx_http_podgen_scripts_t  *s = data;

    pg_error_t                    busy;
    ngx_http_podgen_main_conf_t  *pmcf;

    s->call = NULL;

    if (rc == NGX_OK) {
        s->script = *script;
        s->have_script = 1;
        ngx_http_podgen_scripts_send(s);
        return;
    }

    pmcf = ngx_http_get_module_main_conf(s->request, ngx_http_podgen_module);

    if (!pmcf->llm.fallback) {
        ngx_http_podgen_scripts_fail(s, err);
        return;
    }

    /* a malformed or missing LLM script never reaches the listener: the
     * built-in engine writes one from the same request */

    s->fallback = (err->status == 504) ? "llm_timeout" : "llm_error";
    s->req.engine = PG_ENGINE_BUILTIN;
    ngx_http_podgen_metrics_llm_fallback();

    if (ngx_http_podgen_scripts_builtin(s) != NGX_OK) {
        pg_error_set(&busy, 503, NULL, "server_busy",
                     "too many scripts are being written; retry shortly");
        busy.type = "server_error";
        ngx_http_podgen_scripts_fail(s, &busy);
    }
}


/* ---- replies ------------------------------------------------------------ */


static void
ngx_http_podgen_scripts_fail(ngx_http_podgen_scripts_t *s, pg_error_t *err)
{
    ngx_str_t            value;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = s->request;
    c = r->connection;

    if (err->status == 503) {
        ngx_str_set(&value, "1");
        (void) ngx_http_podgen_add_header(r, "Retry-After", &value);
    }

    ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, err));
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_podgen_scripts_send(ngx_http_podgen_scripts_t *s)
{
    u_char                        key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    pg_buf_t                      out, entry;
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_podgen_main_conf_t  *pmcf;

    r = s->request;
    c = r->connection;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    ngx_memzero(&out, sizeof(pg_buf_t));
    ngx_memzero(&entry, sizeof(pg_buf_t));

    if (pg_script_to_json(&s->script, &out) != 0 || out.len < 2
        || out.data[0] != '{')
    {
        pg_buf_free(&out);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (pmcf->cache.shm_zone && s->fallback == NULL
        && pg_buf_append_str(&entry, s->engine) == 0
        && pg_buf_append(&entry, "\n", 1) == 0
        && pg_buf_append(&entry, out.data, out.len) == 0)
    {
        ngx_http_podgen_cache_key(key, s->key);
        (void) ngx_http_podgen_cache_put(&pmcf->cache, key, PG_KIND_SCRIPT,
                                         entry.data, entry.len, 0, c->log);
        ngx_http_podgen_redis_set("script", s->key, entry.data, entry.len);
    }

    pg_buf_free(&entry);

    rc = ngx_http_podgen_scripts_reply(r, s->key, s->engine, s->fallback,
                                       out.data, out.len, 0, s->start);
    pg_buf_free(&out);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_podgen_scripts_reply(ngx_http_request_t *r, const char *key,
    const char *engine, const char *fallback, u_char *script, size_t len,
    ngx_uint_t cached, ngx_msec_t start)
{
    u_char     *p, *json;
    size_t      size;
    ngx_str_t   value;

    /* {"id":..,"key":..,"engine":..,"cached":..., + the script's fields */

    size = sizeof("{\"id\":\"scr_\",\"key\":\"\",\"engine\":\"\","
                  "\"cached\":false,") + 24 + PG_KEY_LEN + 16 + len;

    json = ngx_pnalloc(r->pool, size);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(json, "{\"id\":\"scr_%*s\",\"key\":\"%s\",\"engine\":"
                    "\"%s\",\"cached\":%s,", (size_t) 24, key, key, engine,
                    cached ? "true" : "false");
    p = ngx_cpymem(p, script + 1, len - 1);

    if (cached == 2) {
        ngx_str_set(&value, "HIT-L2");

    } else if (cached) {
        ngx_str_set(&value, "HIT-L1");

    } else {
        ngx_str_set(&value, "MISS");
    }

    (void) ngx_http_podgen_add_header(r, "X-Podgen-Cache", &value);

    value.data = (u_char *) engine;
    value.len = ngx_strlen(engine);
    (void) ngx_http_podgen_add_header(r, "X-Podgen-Engine", &value);

    if (fallback) {
        value.data = (u_char *) fallback;
        value.len = ngx_strlen(fallback);
        (void) ngx_http_podgen_add_header(r, "X-Podgen-Fallback", &value);
    }

    value.data = ngx_pnalloc(r->pool, sizeof("script;dur=") + NGX_INT_T_LEN);
    if (value.data) {
        value.len = ngx_sprintf(value.data, "script;dur=%M",
                                (ngx_msec_t) (ngx_current_msec - start))
                    - value.data;
        (void) ngx_http_podgen_add_header(r, "Server-Timing", &value);
    }

    return ngx_http_podgen_send_json(r, NGX_HTTP_OK, json, p - json);
}


/* ---- lifetime ----------------------------------------------------------- */


static void
ngx_http_podgen_scripts_cleanup(void *data)
{
    ngx_http_podgen_scripts_t  *s = data;

    s->request = NULL;

    if (s->l2 || s->call || s->offload) {
        /* the client went away before the script */
        ngx_http_podgen_metrics_error(PG_ERR_CLIENT_GONE);
    }

    if (s->l2) {
        ngx_http_podgen_redis_cancel(s->l2);
        s->l2 = NULL;
    }

    if (s->call) {
        ngx_http_podgen_llm_cancel(s->call);
        s->call = NULL;
    }

    if (s->offload) {
        /* the pool thread still has it: release() frees it */
        ngx_http_podgen_offload_detach(s->offload);
        return;
    }

    ngx_http_podgen_scripts_free(s);
}


static void
ngx_http_podgen_scripts_free(ngx_http_podgen_scripts_t *s)
{
    if (s->have_script) {
        pg_script_free(&s->script);
    }

    pg_script_request_free(&s->req);
    ngx_free(s);
}
