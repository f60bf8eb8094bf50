/*
 * podgen: nginx HTTP module — request context, JSON replies and errors,
 * request checks shared by the endpoints.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_gen.h>

#include "pg_json.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_metrics.h"


#define NGX_HTTP_PODGEN_REQUEST_ID_MAX  64


static ngx_int_t
ngx_http_podgen_request_id_valid(ngx_str_t *id)
{
    size_t  i;

    if (id->len == 0 || id->len > NGX_HTTP_PODGEN_REQUEST_ID_MAX) {
        return 0;
    }

    for (i = 0; i < id->len; i++) {
        if (!(ngx_http_podgen_isalnum(id->data[i]) || id->data[i] == '-'
              || id->data[i] == '_' || id->data[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_podgen_find_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_uint_t                    i;
    ngx_list_part_t              *part;
    ngx_table_elt_t              *h;
    ngx_http_variable_value_t    *vv;
    ngx_http_podgen_main_conf_t  *pmcf;

    /* a sane id from the client (or a proxy in front) is kept, so that
     * logs can be joined across hops */

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("X-Request-Id") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-Request-Id",
                               sizeof("X-Request-Id") - 1) == 0
            && ngx_http_podgen_request_id_valid(&h[i].value))
        {
            *id = h[i].value;
            return;
        }
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    vv = ngx_http_get_indexed_variable(r, pmcf->request_id_index);

    if (vv == NULL || vv->not_found) {
        ngx_str_set(id, "-");
        return;
    }

    id->data = vv->data;
    id->len = vv->len;
}


/*
 * Microseconds of a monotonic clock: the metrics' durations, finer than
 * nginx's cached milliseconds (a cache hit takes a fraction of one).
 */

uint64_t
ngx_http_podgen_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


ngx_http_podgen_ctx_t *
ngx_http_podgen_get_ctx(ngx_http_request_t *r)
{
    ngx_http_podgen_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->start = ngx_current_msec;
    ctx->start_us = ngx_http_podgen_now_us();
    ngx_http_podgen_find_request_id(r, &ctx->request_id);

    ngx_http_set_ctx(r, ctx, ngx_http_podgen_module);

    return ctx;
}


/* The metrics' name (PG_EP_*) of a location's endpoint. */

ngx_uint_t
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

    case NGX_HTTP_PODGEN_SOURCES:
        return PG_EP_SOURCES;

    case NGX_HTTP_PODGEN_MODELS:
        return PG_EP_MODELS;

    default:
        return PG_EP_N;
    }
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
 * Finalizes a request from one of our callbacks.  Called from an event, it
 * then runs the posted requests, where a terminated request is closed.
 * Called synchronously from the content handler (a body read at once, an
 * answer found at once) it must not: the request would be closed under the
 * handler, and nginx finalizes it again when the handler returns, which then
 * is a use after free.  nginx runs the posted requests itself after that.
 */

void
ngx_http_podgen_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_uint_t              in_handler;
    ngx_connection_t       *c;
    ngx_http_podgen_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);
    in_handler = (ctx && ctx->in_handler);

    ngx_http_finalize_request(r, rc);

    if (!in_handler) {
        ngx_http_run_posted_requests(c);
    }
}


/*
 * The L1 key of a memo (ngx_http_podgen_cache_memo_get()): a hash of the
 * request's first and last bytes, its length, the configuration and the
 * endpoint.  The memo compares the whole bytes itself, so the key only has
 * to spread (two requests alike at both ends share one memo slot, no more);
 * its first bytes lead, being the tree key.
 */

#define NGX_HTTP_PODGEN_MEMO_ENDS  256

ngx_int_t
ngx_http_podgen_memo_key(ngx_http_podgen_main_conf_t *pmcf,
    ngx_uint_t endpoint, u_char *body, size_t len, u_char *key)
{
    uint32_t  h[2];
    uint64_t  n;

    if (len <= 2 * NGX_HTTP_PODGEN_MEMO_ENDS) {
        h[0] = ngx_murmur_hash2(body, len);
        h[1] = 0;

    } else {
        h[0] = ngx_murmur_hash2(body, NGX_HTTP_PODGEN_MEMO_ENDS);
        h[1] = ngx_murmur_hash2(body + len - NGX_HTTP_PODGEN_MEMO_ENDS,
                                NGX_HTTP_PODGEN_MEMO_ENDS);
    }

    h[0] ^= (uint32_t) (pmcf->memo_seed ^ (pmcf->memo_seed >> 32)) ^ h[1];
    n = len;

    ngx_memzero(key, NGX_HTTP_PODGEN_CACHE_KEY_LEN);
    ngx_memcpy(key, h, sizeof(h));
    ngx_memcpy(key + 8, &n, sizeof(n));
    ngx_memcpy(key + 16, &pmcf->memo_seed, sizeof(pmcf->memo_seed));
    key[24] = (u_char) endpoint;

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_add_header(ngx_http_request_t *r, char *key, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value = *value;

    return NGX_OK;
}


/* a header already in the answer (one kept by a filter_finalize), or NULL */

ngx_table_elt_t *
ngx_http_podgen_header_out(ngx_http_request_t *r, char *key)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(key);
    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash != 0 && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) key, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_podgen_add_common_headers(ngx_http_request_t *r)
{
    ngx_http_podgen_ctx_t  *ctx;

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_podgen_add_header(r, "X-Request-Id", &ctx->request_id);
}


static void
ngx_http_podgen_gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *) s, ngx_strlen(s));
}


ngx_int_t
ngx_http_podgen_error_json(ngx_pool_t *pool, pg_error_t *err,
    ngx_str_t *out)
{
    size_t                len;
    yajl_gen              g;
    const unsigned char  *buf;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_podgen_gen_str(g, "error");
    yajl_gen_map_open(g);

    ngx_http_podgen_gen_str(g, "message");
    ngx_http_podgen_gen_str(g, err->message);
    ngx_http_podgen_gen_str(g, "type");
    ngx_http_podgen_gen_str(g, err->type ? err->type
                                         : "invalid_request_error");
    ngx_http_podgen_gen_str(g, "param");

    if (err->param) {
        ngx_http_podgen_gen_str(g, err->param);

    } else {
        yajl_gen_null(g);
    }

    ngx_http_podgen_gen_str(g, "code");
    ngx_http_podgen_gen_str(g, err->code ? err->code : "error");

    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        yajl_gen_free(g);
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        yajl_gen_free(g);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, buf, len);
    out->data[len] = '\n';
    out->len = len + 1;

    yajl_gen_free(g);

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len)
{
    r->headers_out.status = status;
    r->headers_out.content_type_len = sizeof("application/json") - 1;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_podgen_send_memory(r, json, len);
}


/*
 * Sends an OpenAI-style error; returns what the handler should return
 * (or pass to ngx_http_finalize_request()).
 */

ngx_int_t
ngx_http_podgen_send_error(ngx_http_request_t *r, pg_error_t *err)
{
    ngx_str_t               json;
    ngx_uint_t              level;
    ngx_http_podgen_ctx_t  *ctx;

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->error_sent = 1;

    if (ngx_http_podgen_error_json(r->pool, err, &json) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    level = (err->status >= 500) ? NGX_LOG_ERR : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0,
                  "podgen: %d %s (param %s): %s",
                  err->status, err->code, err->param ? err->param : "-",
                  err->message);

    /* an error ends the exchange; do not wait for the rest of a body */
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    return ngx_http_podgen_send_json(r, err->status, json.data, json.len);
}


/*
 * The checks return NGX_OK, or NGX_DECLINED with *err set for the handler
 * to send (NGX_ERROR when out of memory).
 */

ngx_int_t
ngx_http_podgen_check_method(ngx_http_request_t *r, ngx_uint_t allowed,
    char *allow, pg_error_t *err)
{
    ngx_str_t  value;

    if (r->method & allowed) {
        return NGX_OK;
    }

    value.data = (u_char *) allow;
    value.len = ngx_strlen(allow);

    if (ngx_http_podgen_add_header(r, "Allow", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    pg_error_set(err, NGX_HTTP_NOT_ALLOWED, NULL, "method_not_allowed",
                 "method %.*s is not allowed here; use %s",
                 (int) ngx_min(r->method_name.len, 16),
                 r->method_name.data, allow);

    return NGX_DECLINED;
}


/* "application/json", optionally with parameters; absent is accepted */

ngx_int_t
ngx_http_podgen_check_json_body(ngx_http_request_t *r, pg_error_t *err)
{
    u_char     *p, *last;
    ngx_str_t  *ct;

    if (r->headers_in.content_type == NULL) {
        return NGX_OK;
    }

    ct = &r->headers_in.content_type->value;
    p = ct->data;
    last = p + ct->len;

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    if ((size_t) (last - p) >= sizeof("application/json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/json",
                           sizeof("application/json") - 1) == 0)
    {
        p += sizeof("application/json") - 1;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == last || *p == ';') {
            return NGX_OK;
        }
    }

    pg_error_set(err, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                 "unsupported_media_type",
                 "Content-Type must be application/json");

    return NGX_DECLINED;
}


/* The whole request body as one piece of memory (from r->pool). */

ngx_int_t
ngx_http_podgen_body_bytes(ngx_http_request_t *r, u_char **body, size_t *len)
{
    off_t         size;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *body = NULL;
    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        size += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    if (size == 0) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        *body = cl->buf->pos;
        *len = size;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;
    *len = size;

    /* a body larger than client_body_buffer_size was spooled to a temp
     * file by nginx; it is in the page cache, read it back */

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;

        } else if (b->last > b->pos) {
            /* an empty buffer (end of a chunked body) may have no memory */
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


/* Sends a whole in-memory body with the headers already set. */

ngx_int_t
ngx_http_podgen_send_memory(ngx_http_request_t *r, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.content_length_n = len;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The preconditions of a POST (RFC 9110, 13.2.1): evaluated after the
 * request's own checks and before its body is read, against the target
 * resource.  nginx's not_modified filter would evaluate them on the
 * answer, after the work, against its ETag (which names what was made, the
 * audio at /v1/audio/{key}: another resource), and send a 304, which only
 * GET and HEAD may get: it is off for these requests.
 *
 * No target of a POST has a representation with an entity tag: the list
 * of /v1/podcasts is a current representation without one, the others
 * have none (GET is 405).  So If-Match is false (412), but "*" on
 * /v1/podcasts; If-None-Match is true (the POST is performed), but "*" on
 * /v1/podcasts.  If-Modified-Since is for GET and HEAD only (13.1.3), and
 * If-Unmodified-Since is ignored without a modification date (13.1.4).
 */

static ngx_int_t
ngx_http_podgen_check_preconditions(ngx_http_request_t *r, pg_error_t *err)
{
    ngx_uint_t                   current;
    ngx_table_elt_t             *h;
    ngx_http_podgen_loc_conf_t  *plcf;

    r->disable_not_modified = 1;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    current = (plcf->endpoint == NGX_HTTP_PODGEN_PODCASTS);

    h = r->headers_in.if_match;

    if (h && !(current && h->value.len == 1 && h->value.data[0] == '*')) {
        pg_error_set(err, NGX_HTTP_PRECONDITION_FAILED, NULL,
                     "precondition_failed",
                     "If-Match is false: %s has no representation with an "
                     "entity tag", current ? "this list" : "this endpoint");
        return NGX_DECLINED;
    }

    h = r->headers_in.if_none_match;

    if (h && current && h->value.len == 1 && h->value.data[0] == '*') {
        pg_error_set(err, NGX_HTTP_PRECONDITION_FAILED, NULL,
                     "precondition_failed",
                     "If-None-Match: * is false: the list exists");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The start of the POST endpoints: method, Content-Type, preconditions,
 * then the body is read and post_handler runs.
 */

ngx_int_t
ngx_http_podgen_read_json_request(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt post_handler)
{
    ngx_int_t   rc;
    pg_error_t  err;

    if (ngx_http_podgen_begin(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_podgen_check_method(r, NGX_HTTP_POST, "POST", &err);

    if (rc == NGX_OK) {
        rc = ngx_http_podgen_check_json_body(r, &err);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_podgen_check_preconditions(r, &err);
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_podgen_send_error(r, &err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, post_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        /* 413 and friends: the header filter makes them JSON */
        return rc;
    }

    return NGX_DONE;
}


/*
 * A strong ETag from an artifact's key (the key names the exact bytes);
 * nginx's not_modified filter then answers If-None-Match on a GET with 304.
 */

ngx_int_t
ngx_http_podgen_set_etag(ngx_http_request_t *r, const char *hex)
{
    ngx_table_elt_t  *etag;

    etag = ngx_list_push(&r->headers_out.headers);
    if (etag == NULL) {
        return NGX_ERROR;
    }

    etag->hash = 1;
    ngx_str_set(&etag->key, "ETag");
    etag->value.data = ngx_pnalloc(r->pool, 34);
    if (etag->value.data == NULL) {
        return NGX_ERROR;
    }

    etag->value.len = ngx_sprintf(etag->value.data, "\"%*s\"", (size_t) 32,
                                  hex)
                      - etag->value.data;
    r->headers_out.etag = etag;

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_too_many_jobs(ngx_http_request_t *r)
{
    pg_error_t  err;

    ngx_http_podgen_metrics_error(PG_ERR_BUSY);

    pg_error_set(&err, 429, NULL, "too_many_jobs",
                 "too many unfinished jobs (podgen_max_jobs); retry later");
    err.type = "rate_limit_error";

    (void) ngx_http_podgen_add_header(r, "Retry-After",
                                      &(ngx_str_t) ngx_string("5"));

    return ngx_http_podgen_send_error(r, &err);
}
