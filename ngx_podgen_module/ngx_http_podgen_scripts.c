/*
 * podgen: scripts — POST /v1/scripts, and the script maker that podcasts
 * and batches use too.
 *
 * The maker looks in L1, then L2, then writes the script: the built-in
 * engine runs on the thread pool (it reads up to megabytes of source); the
 * LLM engine goes through the curl-multi client, with the built-in engine
 * as fallback when the LLM fails (podgen_llm_fallback).  Finished scripts
 * go to both cache tiers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "pg_script.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_scripts.h"
#include "ngx_http_podgen_sources.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_llm.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_fetch.h"
#include "ngx_http_podgen_offload.h"


#define NGX_HTTP_PODGEN_SCRIPT_VERSION  "builtin-1"


/*
 * Lives outside any request pool: the pool thread or the LLM call may
 * still hold it when its caller goes away.
 */
struct ngx_http_podgen_script_make_s {
    ngx_http_podgen_main_conf_t   *pmcf;
    ngx_http_podgen_script_done_pt done;
    void                          *data;    /* NULL: canceled */
    ngx_log_t                     *log;
    pg_script_request_t            req;
    pg_script_t                    script;
    ngx_http_podgen_llm_call_t    *call;
    ngx_http_podgen_offload_t     *offload;
    ngx_http_podgen_fetch_t        fetch;
    const char                    *engine;
    const char                    *fallback;
    char                           key[PG_KEY_LEN + 1];
    pg_error_t                     err;     /* a failure inside make() */
    int                            gen_rc;
    unsigned                       have_script:1;
    unsigned                       in_make:1;
    unsigned                       in_pool:1;   /* release() still due */
    unsigned                       ended:1;
    unsigned                       failed:1;
};


/* POST /v1/scripts */
typedef struct {
    ngx_http_request_t              *request;
    ngx_http_podgen_script_make_t   *make;
    ngx_msec_t                       start;
    u_char                          *body;      /* for the memo */
    size_t                           body_len;
    u_char                           memo[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
} ngx_http_podgen_scripts_t;


static void ngx_http_podgen_scripts_body(ngx_http_request_t *r);
static void ngx_http_podgen_scripts_done(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err);
static void ngx_http_podgen_scripts_cleanup(void *data);
static ngx_int_t ngx_http_podgen_script_entry(u_char *data, size_t len,
    ngx_http_podgen_script_t *script);
static ngx_int_t ngx_http_podgen_scripts_memo(ngx_http_request_t *r,
    ngx_http_podgen_main_conf_t *pmcf, u_char *mkey, u_char *body,
    size_t len);
static void ngx_http_podgen_scripts_remember(ngx_http_request_t *r,
    ngx_http_podgen_scripts_t *s, ngx_http_podgen_script_t *script);
static ngx_int_t ngx_http_podgen_scripts_reply(ngx_http_request_t *r,
    ngx_http_podgen_script_t *script, ngx_msec_t start);
static ngx_int_t ngx_http_podgen_scripts_fail(ngx_http_request_t *r,
    pg_error_t *err);

static void ngx_http_podgen_script_free(ngx_http_podgen_script_make_t *m);
static void ngx_http_podgen_script_end(ngx_http_podgen_script_make_t *m);
static ngx_int_t ngx_http_podgen_script_builtin(
    ngx_http_podgen_script_make_t *m);
static ngx_int_t ngx_http_podgen_script_check(u_char *data, size_t len);
static void ngx_http_podgen_script_found(ngx_http_podgen_fetch_t *f,
    ngx_uint_t from, u_char *data, size_t len);
static void ngx_http_podgen_script_cache_error(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_script_write(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_script_llm_done(void *data, ngx_int_t rc,
    pg_script_t *script, pg_error_t *err);
static void ngx_http_podgen_script_finish(ngx_http_podgen_script_make_t *m);
static void ngx_http_podgen_script_fail(ngx_http_podgen_script_make_t *m,
    pg_error_t *err);
static void ngx_http_podgen_script_busy(pg_error_t *err);


/* a script entry: "<engine>\n<script JSON>" */
static const ngx_http_podgen_fetch_kind_t  ngx_http_podgen_fetch_script = {
    PG_KIND_SCRIPT, "script", 0, ngx_http_podgen_script_check
};

static const ngx_http_podgen_fetch_handlers_t
    ngx_http_podgen_script_handlers = {
    ngx_http_podgen_script_found,
    ngx_http_podgen_script_write,
    ngx_http_podgen_script_cache_error
};


/* voices given to hosts that name none, in turn */
static char  *ngx_http_podgen_host_voices[] = {
    "alloy", "echo", "fable", "nova", "onyx", "shimmer"
};


ngx_int_t
ngx_http_podgen_scripts_handler(ngx_http_request_t *r)
{
    return ngx_http_podgen_read_json_request(r, ngx_http_podgen_scripts_body);
}


ngx_int_t
ngx_http_podgen_script_hosts(ngx_http_podgen_main_conf_t *pmcf,
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


/* ---- POST /v1/scripts --------------------------------------------------- */


static void
ngx_http_podgen_scripts_body(ngx_http_request_t *r)
{
    u_char                       *body;
    size_t                        len;
    yajl_val                      tree;
    ngx_int_t                     rc;
    pg_error_t                    err;
    ngx_connection_t             *c;
    pg_script_request_t           req;
    ngx_pool_cleanup_t           *cln;
    ngx_uint_t                    memo;
    ngx_http_podgen_script_t      hit;
    ngx_http_podgen_scripts_t    *s;
    ngx_http_podgen_main_conf_t  *pmcf;
    u_char                        mkey[NGX_HTTP_PODGEN_CACHE_KEY_LEN];

    c = r->connection;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (ngx_http_podgen_body_bytes(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* these very bytes answered before: no parsing */

    memo = pmcf->cache.shm_zone != NULL
           && ngx_http_podgen_memo_key(pmcf, NGX_HTTP_PODGEN_SCRIPTS, body,
                                       len, mkey)
              == NGX_OK;

    if (memo && ngx_http_podgen_scripts_memo(r, pmcf, mkey, body, len)
                == NGX_OK)
    {
        return;
    }

    /* "source_ids": looked for in the tiers, then they become the
     * source_text */

    rc = ngx_http_podgen_sources_prefetch(r, body, len,
                                          ngx_http_podgen_scripts_body);
    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_podgen_sources_expand(pmcf, r->pool, &body, &len, &err);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc == NGX_DECLINED
                                     ? ngx_http_podgen_send_error(r, &err)
                                     : NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    tree = pg_json_parse_object((char *) body, len, PG_JSON_MAX_DEPTH, &err);
    if (tree == NULL) {
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    rc = pg_script_request_from_json(tree, pmcf->max_source, &req, &err);
    yajl_tree_free(tree);

    if (rc != 0) {
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    s = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_scripts_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (s == NULL || cln == NULL) {
        pg_script_request_free(&req);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    s->request = r;
    s->start = ngx_current_msec;

    if (memo) {
        s->body = body;
        s->body_len = len;
        ngx_memcpy(s->memo, mkey, NGX_HTTP_PODGEN_CACHE_KEY_LEN);
    }

    cln->handler = ngx_http_podgen_scripts_cleanup;
    cln->data = s;

    rc = ngx_http_podgen_script_make(pmcf, &req, r->pool,
                                     ngx_http_podgen_scripts_done, s, c->log,
                                     &hit, &s->make, &err);

    switch (rc) {

    case NGX_OK:
        ngx_http_podgen_scripts_remember(r, s, &hit);
        rc = ngx_http_podgen_scripts_reply(r, &hit, s->start);
        break;

    case NGX_AGAIN:
        r->read_event_handler = ngx_http_test_reading;
        return;

    case NGX_DECLINED:
        rc = ngx_http_podgen_scripts_fail(r, &err);
        break;

    default:
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_podgen_scripts_done(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err)
{
    ngx_http_podgen_scripts_t  *s = data;

    ngx_http_request_t  *r;

    s->make = NULL;
    r = s->request;

    if (rc == NGX_OK) {
        ngx_http_podgen_scripts_remember(r, s, script);
        rc = ngx_http_podgen_scripts_reply(r, script, s->start);

    } else {
        rc = ngx_http_podgen_scripts_fail(r, err);
    }

    ngx_http_podgen_finalize(r, rc);
}


/*
 * A repeated request: its bytes name the key of a script still in L1.  Any
 * miss on the way falls back to the whole path (NGX_DECLINED).
 */

static ngx_int_t
ngx_http_podgen_scripts_memo(ngx_http_request_t *r,
    ngx_http_podgen_main_conf_t *pmcf, u_char *mkey, u_char *body,
    size_t len)
{
    char                      akey[PG_KEY_LEN + 1];
    u_char                   *entry;
    size_t                    elen;
    ngx_uint_t                tag;
    ngx_http_podgen_script_t  hit;
    u_char                    raw[NGX_HTTP_PODGEN_CACHE_KEY_LEN];

    if (ngx_http_podgen_cache_memo_get(&pmcf->cache, mkey, body, len, akey)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_http_podgen_cache_key(raw, akey);

    if (ngx_http_podgen_cache_get_hit(&pmcf->cache, raw, PG_KIND_SCRIPT,
                                      r->pool, &entry, &elen, &tag)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_memzero(&hit, sizeof(ngx_http_podgen_script_t));

    if (ngx_http_podgen_script_entry(entry, elen, &hit) != NGX_OK) {
        return NGX_DECLINED;
    }

    hit.key = ngx_pnalloc(r->pool, PG_KEY_LEN + 1);
    if (hit.key == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(hit.key, akey, PG_KEY_LEN + 1);
    hit.cached = NGX_HTTP_PODGEN_FROM_L1;

    ngx_http_finalize_request(r, ngx_http_podgen_scripts_reply(r, &hit,
                                                      ngx_current_msec));
    return NGX_OK;
}


/* A script that is in the cache now: remember which bytes asked for it. */

static void
ngx_http_podgen_scripts_remember(ngx_http_request_t *r,
    ngx_http_podgen_scripts_t *s, ngx_http_podgen_script_t *script)
{
    ngx_http_podgen_main_conf_t  *pmcf;

    if (s->body == NULL || script->fallback || script->key == NULL) {
        return;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    ngx_http_podgen_cache_memo_put(&pmcf->cache, s->memo, s->body,
                                   s->body_len, script->key,
                                   r->connection->log);
}


static void
ngx_http_podgen_scripts_cleanup(void *data)
{
    ngx_http_podgen_scripts_t  *s = data;

    if (s->make) {
        /* the client went away before the script */
        ngx_http_podgen_metrics_error(PG_ERR_CLIENT_GONE);
        ngx_http_podgen_script_cancel(s->make);
        s->make = NULL;
    }
}


static ngx_int_t
ngx_http_podgen_scripts_fail(ngx_http_request_t *r, pg_error_t *err)
{
    ngx_str_t  value;

    if (err->status == 503) {
        ngx_str_set(&value, "1");
        (void) ngx_http_podgen_add_header(r, "Retry-After", &value);
    }

    return ngx_http_podgen_send_error(r, err);
}


/* {"id":..,"key":..,"engine":..,"cached":..., + the script's fields} */

u_char *
ngx_http_podgen_script_reply_json(ngx_pool_t *pool,
    ngx_http_podgen_script_t *script, size_t *len)
{
    u_char  *p, *json;
    size_t   size;

    size = sizeof("{\"id\":\"scr_\",\"key\":\"\",\"engine\":\"\","
                  "\"cached\":false,") + 24 + PG_KEY_LEN + 16 + script->len;

    json = ngx_pnalloc(pool, size);
    if (json == NULL) {
        return NULL;
    }

    p = ngx_sprintf(json, "{\"id\":\"scr_%*s\",\"key\":\"%s\",\"engine\":"
                    "\"%s\",\"cached\":%s,", (size_t) 24, script->key,
                    script->key, script->engine,
                    script->cached ? "true" : "false");
    p = ngx_cpymem(p, script->json + 1, script->len - 1);

    *len = p - json;

    return json;
}


static ngx_int_t
ngx_http_podgen_scripts_reply(ngx_http_request_t *r,
    ngx_http_podgen_script_t *script, ngx_msec_t start)
{
    u_char     *json;
    size_t      len;
    ngx_str_t   value;

    json = ngx_http_podgen_script_reply_json(r->pool, script, &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (script->cached == 3) {
        ngx_str_set(&value, "COALESCED");

    } else if (script->cached == 2) {
        ngx_str_set(&value, "HIT-L2");

    } else if (script->cached) {
        ngx_str_set(&value, "HIT-L1");

    } else {
        ngx_str_set(&value, "MISS");
    }

    (void) ngx_http_podgen_add_header(r, "X-Podgen-Cache", &value);

    value.data = (u_char *) script->engine;
    value.len = ngx_strlen(script->engine);
    (void) ngx_http_podgen_add_header(r, "X-Podgen-Engine", &value);

    if (script->fallback) {
        value.data = (u_char *) script->fallback;
        value.len = ngx_strlen(script->fallback);
        (void) ngx_http_podgen_add_header(r, "X-Podgen-Fallback", &value);
    }

    /* pg_script_to_json() writes it so, and only at the top level */

    if (ngx_strnstr(script->json, "\"source_exhausted\":true", script->len)
        != NULL)
    {
        ngx_str_set(&value, "true");
        (void) ngx_http_podgen_add_header(r, "X-Podgen-Source-Exhausted",
                                          &value);
    }

    value.data = ngx_pnalloc(r->pool, sizeof("script;dur=") + NGX_INT_T_LEN);
    if (value.data) {
        value.len = ngx_sprintf(value.data, "script;dur=%M",
                                (ngx_msec_t) (ngx_current_msec - start))
                    - value.data;
        (void) ngx_http_podgen_add_header(r, "Server-Timing", &value);
    }

    return ngx_http_podgen_send_json(r, NGX_HTTP_OK, json, len);
}


/* ---- the maker ---------------------------------------------------------- */


/*
 * An entry is "<engine>\n<script JSON>"; scripts written by the fallback
 * engine are not stored, so that the LLM is asked again next time.  The
 * entry is read only (a large one is the cache's own memory).
 */

static ngx_int_t
ngx_http_podgen_script_entry(u_char *data, size_t len,
    ngx_http_podgen_script_t *script)
{
    u_char  *nl;

    nl = ngx_strlchr(data, data + len, '\n');
    if (nl == NULL || nl + 2 > data + len || nl[1] != '{') {
        return NGX_DECLINED;
    }

    if (nl - data == 3 && ngx_strncmp(data, "llm", 3) == 0) {
        script->engine = "llm";

    } else if (nl - data == 7 && ngx_strncmp(data, "builtin", 7) == 0) {
        script->engine = "builtin";

    } else {
        return NGX_DECLINED;
    }

    script->json = nl + 1;
    script->len = data + len - (nl + 1);

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_script_make(ngx_http_podgen_main_conf_t *pmcf,
    pg_script_request_t *req, ngx_pool_t *pool,
    ngx_http_podgen_script_done_pt done, void *data, ngx_log_t *log,
    ngx_http_podgen_script_t *hit, ngx_http_podgen_script_make_t **mp,
    pg_error_t *err)
{
    u_char                         *entry;
    size_t                          len;
    ngx_int_t                       rc;
    pg_buf_t                        canon;
    ngx_http_podgen_script_make_t  *m;

    *mp = NULL;

    m = ngx_calloc(sizeof(ngx_http_podgen_script_make_t), log);
    if (m == NULL) {
        pg_script_request_free(req);
        return NGX_ERROR;
    }

    /* the maker owns the request from here on */

    m->req = *req;
    ngx_memzero(req, sizeof(pg_script_request_t));

    m->pmcf = pmcf;
    m->done = done;
    m->data = data;
    m->log = log;

    rc = ngx_http_podgen_script_hosts(pmcf, &m->req, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    if (m->req.engine == PG_ENGINE_LLM && !pmcf->llm_enabled) {
        pg_error_set(err, 400, "engine", "invalid_value",
                     "no LLM is configured on this server; use "
                     "\"engine\": \"builtin\"");
        rc = NGX_DECLINED;
        goto failed;
    }

    if (m->req.engine == PG_ENGINE_DEFAULT) {
        m->req.engine = pmcf->llm_enabled ? PG_ENGINE_LLM : PG_ENGINE_BUILTIN;
    }

    m->engine = (m->req.engine == PG_ENGINE_LLM) ? "llm" : "builtin";

    /* the key: the canonical request, the engine and its version */

    ngx_memzero(&canon, sizeof(pg_buf_t));

    if (pg_script_request_canonical(&m->req, &canon) != 0
        || pg_buf_append_str(&canon, "|engine=") != 0
        || pg_buf_append_str(&canon, m->req.engine == PG_ENGINE_LLM
                                     ? (char *) pmcf->llm.model.data
                                     : NGX_HTTP_PODGEN_SCRIPT_VERSION) != 0
        || pg_key_sha256(canon.data, canon.len, m->key) != 0)
    {
        pg_buf_free(&canon);
        rc = NGX_ERROR;
        goto failed;
    }

    pg_buf_free(&canon);

    /* single flight: one request of the node (and one node of the
     * fleet) writes a script, the identical ones wait for it */

    ngx_http_podgen_fetch_init(&m->fetch, &ngx_http_podgen_fetch_script,
                               &ngx_http_podgen_script_handlers, &pmcf->cache,
                               m->key, 0, NULL, m, log);

    rc = ngx_http_podgen_fetch(&m->fetch, pool, &entry, &len);

    switch (rc) {

    case NGX_OK:
        if (ngx_http_podgen_script_entry(entry, len, hit) != NGX_OK) {
            rc = NGX_ERROR;
            goto failed;
        }

        hit->key = ngx_pnalloc(pool, PG_KEY_LEN + 1);
        if (hit->key == NULL) {
            rc = NGX_ERROR;
            goto failed;
        }

        ngx_memcpy(hit->key, m->key, PG_KEY_LEN + 1);
        hit->fallback = NULL;
        hit->cached = NGX_HTTP_PODGEN_FROM_L1;

        ngx_http_podgen_script_free(m);
        return NGX_OK;

    case NGX_AGAIN:
        *mp = m;
        return NGX_AGAIN;

    case NGX_DECLINED:
        break;

    default:
        goto failed;
    }

    m->in_make = 1;
    ngx_http_podgen_script_write(&m->fetch);
    m->in_make = 0;

    if (m->failed) {
        /* failed at once: done() was not called */
        *err = m->err;
        rc = NGX_DECLINED;
        goto failed;
    }

    *mp = m;
    return NGX_AGAIN;

failed:

    ngx_http_podgen_script_free(m);
    return rc;
}


void
ngx_http_podgen_script_cancel(ngx_http_podgen_script_make_t *m)
{
    m->data = NULL;
    m->done = NULL;

    if (m->call) {
        ngx_http_podgen_llm_cancel(m->call);
        m->call = NULL;
    }

    if (m->in_pool) {
        /* the pool thread still has it: release() frees it */
        if (m->offload) {
            ngx_http_podgen_offload_detach(m->offload);
        }

        return;
    }

    ngx_http_podgen_script_free(m);
}


static ngx_int_t
ngx_http_podgen_script_check(u_char *data, size_t len)
{
    ngx_http_podgen_script_t  script;

    return ngx_http_podgen_script_entry(data, len, &script);
}


static void
ngx_http_podgen_script_found(ngx_http_podgen_fetch_t *f, ngx_uint_t from,
    u_char *data, size_t len)
{
    ngx_http_podgen_script_make_t  *m = f->data;

    pg_error_t                 err;
    ngx_http_podgen_script_t   script;

    if (ngx_http_podgen_script_entry(data, len, &script) != NGX_OK) {
        pg_error_set(&err, 500, NULL, "server_error",
                     "a cached script is unreadable");
        err.type = "server_error";
        ngx_http_podgen_script_fail(m, &err);
        return;
    }

    script.key = m->key;
    script.fallback = NULL;
    script.cached = from;

    m->done(m->data, NGX_OK, &script, NULL);
    ngx_http_podgen_script_end(m);
}


static void
ngx_http_podgen_script_cache_error(ngx_http_podgen_fetch_t *f)
{
    pg_error_t  err;

    pg_error_set(&err, 500, NULL, "server_error", "the cache failed");
    err.type = "server_error";
    ngx_http_podgen_script_fail(f->data, &err);
}


/*
 * No cache has it: the engine writes it.  A failure to start ends the
 * maker: done() is called unless the maker is still in make(), which
 * then returns NGX_DECLINED itself.
 */

static void
ngx_http_podgen_script_write(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_script_make_t  *m = f->data;

    ngx_int_t   rc;
    pg_error_t  err;

    if (m->req.engine == PG_ENGINE_BUILTIN) {
        if (ngx_http_podgen_script_builtin(m) != NGX_OK) {
            goto busy;
        }

        return;
    }

    m->call = ngx_http_podgen_llm_script(&m->req,
                                         ngx_http_podgen_script_llm_done, m,
                                         m->log, &rc);
    if (m->call) {
        return;
    }

    if (m->pmcf->llm.fallback) {
        m->fallback = (rc == NGX_BUSY) ? "llm_busy" : "llm_error";
        ngx_http_podgen_metrics_llm_fallback();

        if (ngx_http_podgen_script_builtin(m) == NGX_OK) {
            return;
        }
    }

busy:

    ngx_http_podgen_script_busy(&err);
    ngx_http_podgen_script_fail(m, &err);
}


static void
ngx_http_podgen_script_busy(pg_error_t *err)
{
    ngx_http_podgen_metrics_error(PG_ERR_BUSY);

    pg_error_set(err, 503, NULL, "server_busy",
                 "too many scripts are being written; retry shortly");
    err->type = "server_error";
}


/* ---- the built-in engine on the pool ------------------------------------ */


static void
ngx_http_podgen_script_generate(void *data)
{
    ngx_http_podgen_script_make_t  *m = data;

    m->gen_rc = pg_script_generate(&m->req, &m->script);

    /* set here: release() frees the script even if nobody waits */
    m->have_script = (m->gen_rc == 0);
}


static void
ngx_http_podgen_script_generated(void *data)
{
    ngx_http_podgen_script_make_t  *m = data;

    pg_error_t  err;

    m->offload = NULL;

    if (m->gen_rc != 0) {
        pg_error_set(&err, 500, NULL, "server_error",
                     "the script could not be written");
        err.type = "server_error";
        ngx_http_podgen_script_fail(m, &err);
        return;
    }

    m->engine = "builtin";

    ngx_http_podgen_script_finish(m);
}


static void
ngx_http_podgen_script_release(void *data)
{
    ngx_http_podgen_script_make_t  *m = data;

    m->offload = NULL;
    m->in_pool = 0;

    if (m->ended || m->done == NULL) {
        ngx_http_podgen_script_free(m);
    }
}


static ngx_int_t
ngx_http_podgen_script_builtin(ngx_http_podgen_script_make_t *m)
{
    m->offload = ngx_http_podgen_offload(m->pmcf->thread_pool,
                                         ngx_http_podgen_script_generate,
                                         ngx_http_podgen_script_generated,
                                         ngx_http_podgen_script_release,
                                         m, m->log);
    if (m->offload == NULL) {
        return NGX_ERROR;
    }

    m->in_pool = 1;

    return NGX_OK;
}


/* ---- the LLM engine ----------------------------------------------------- */


static void
ngx_http_podgen_script_llm_done(void *data, ngx_int_t rc,
    pg_script_t *script, pg_error_t *err)
{
    ngx_http_podgen_script_make_t  *m = data;

    pg_error_t  busy;

    m->call = NULL;

    if (rc == NGX_OK) {
        m->script = *script;
        m->have_script = 1;
        ngx_http_podgen_script_finish(m);
        return;
    }

    if (!m->pmcf->llm.fallback) {
        ngx_http_podgen_script_fail(m, err);
        return;
    }

    /* a malformed or missing LLM script never reaches the listener: the
     * built-in engine writes one from the same request */

    m->fallback = (err->status == 504) ? "llm_timeout" : "llm_error";
    m->req.engine = PG_ENGINE_BUILTIN;
    ngx_http_podgen_metrics_llm_fallback();

    if (ngx_http_podgen_script_builtin(m) != NGX_OK) {
        ngx_http_podgen_script_busy(&busy);
        ngx_http_podgen_script_fail(m, &busy);
    }
}


/* ---- results ------------------------------------------------------------ */


static void
ngx_http_podgen_script_fail(ngx_http_podgen_script_make_t *m, pg_error_t *err)
{
    if (m->in_make) {
        /* make() reports the error itself */
        m->err = *err;
        m->failed = 1;
        return;
    }

    m->done(m->data, NGX_ERROR, NULL, err);
    ngx_http_podgen_script_end(m);
}


static void
ngx_http_podgen_script_finish(ngx_http_podgen_script_make_t *m)
{
    pg_buf_t                  out, entry;
    pg_error_t                err;
    ngx_http_podgen_script_t  script;

    ngx_memzero(&out, sizeof(pg_buf_t));
    ngx_memzero(&entry, sizeof(pg_buf_t));

    if (pg_script_to_json(&m->script, &out) != 0 || out.len < 2
        || out.data[0] != '{')
    {
        pg_buf_free(&out);
        pg_error_set(&err, 500, NULL, "server_error",
                     "the script could not be written");
        err.type = "server_error";
        ngx_http_podgen_script_fail(m, &err);
        return;
    }

    /* a fallback's script is not kept: the LLM is asked again next time */

    if (m->fallback == NULL
        && pg_buf_append_str(&entry, m->engine) == 0
        && pg_buf_append(&entry, "\n", 1) == 0
        && pg_buf_append(&entry, out.data, out.len) == 0)
    {
        ngx_http_podgen_fetch_store(&m->fetch, entry.data, entry.len);
    }

    pg_buf_free(&entry);

    script.key = m->key;
    script.engine = m->engine;
    script.fallback = m->fallback;
    script.json = out.data;
    script.len = out.len;
    script.cached = NGX_HTTP_PODGEN_FROM_MADE;

    m->done(m->data, NGX_OK, &script, NULL);

    pg_buf_free(&out);
    ngx_http_podgen_script_end(m);
}


/* The caller has its result; after() of the pool task may still be on
 * the stack, so release() frees the maker then. */

static void
ngx_http_podgen_script_end(ngx_http_podgen_script_make_t *m)
{
    if (m->in_pool) {
        m->ended = 1;
        return;
    }

    ngx_http_podgen_script_free(m);
}


static void
ngx_http_podgen_script_free(ngx_http_podgen_script_make_t *m)
{
    /* not written (failed, canceled, a fallback): waiters make it */
    ngx_http_podgen_fetch_cancel(&m->fetch);

    if (m->have_script) {
        pg_script_free(&m->script);
    }

    pg_script_request_free(&m->req);
    ngx_free(m);
}
