/*
 * podgen: the error filter — nginx's own error pages in podgen locations
 * (and in servers with podgen locations, before a location is chosen) go
 * out as OpenAI-style JSON errors, with a type and code for each status.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_json.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_error_filter.h"
#include "ngx_http_podgen_util.h"


/* nginx has no name for it: it sends its own 494 as 400 */
#define NGX_HTTP_PODGEN_HEADER_TOO_LARGE  431


/* an answer of nginx's own, as an OpenAI-style error */
typedef struct {
    ngx_uint_t   status;
    char        *type;          /* NULL: invalid_request_error */
    char        *code;
    char        *message;
} ngx_http_podgen_core_error_t;


static void ngx_http_podgen_core_error(ngx_uint_t status, pg_error_t *err);
static ngx_uint_t ngx_http_podgen_error_is_ours(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_podgen_error_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_podgen_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_podgen_body_filter;

    return NGX_OK;
}


/*
 * What nginx itself may answer in a podgen location (or, in a server with
 * podgen locations, before it has chosen a location), as OpenAI-style
 * errors: 4xx are the client's (invalid_request_error) but for a rate
 * limit, whose type is "requests" as OpenAI's is for a limit on requests;
 * 5xx are server_error.  nginx sends its 494 (headers too large) as 400.
 */

static ngx_http_podgen_core_error_t  ngx_http_podgen_core_errors[] = {

    { NGX_HTTP_BAD_REQUEST, NULL, "invalid_request",
      "the request is malformed, or its headers are too large" },

    { NGX_HTTP_UNAUTHORIZED, NULL, "invalid_api_key",
      "incorrect or missing API key: send \"Authorization: Bearer <key>\"" },

    { NGX_HTTP_FORBIDDEN, NULL, "forbidden",
      "access to this resource is denied" },

    { NGX_HTTP_NOT_FOUND, NULL, "not_found",
      "no such resource" },

    { NGX_HTTP_NOT_ALLOWED, NULL, "method_not_allowed",
      "the method is not allowed here" },

    { NGX_HTTP_REQUEST_TIME_OUT, NULL, "request_timeout",
      "the request was not received in time" },

    { NGX_HTTP_LENGTH_REQUIRED, NULL, "length_required",
      "the request needs a Content-Length" },

    { NGX_HTTP_PRECONDITION_FAILED, NULL, "precondition_failed",
      "a precondition of the request (If-Match, If-Unmodified-Since) "
      "is false" },

    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, NULL, "request_too_large",
      "the request body is larger than the server accepts" },

    { NGX_HTTP_REQUEST_URI_TOO_LARGE, NULL, "uri_too_long",
      "the request URI is longer than the server accepts" },

    { NGX_HTTP_RANGE_NOT_SATISFIABLE, NULL, "range_not_satisfiable",
      "the requested range is not within the resource "
      "(see Content-Range for its size)" },

    { NGX_HTTP_TOO_MANY_REQUESTS, "requests", "rate_limit_exceeded",
      "too many requests: slow down and retry later" },

    { NGX_HTTP_PODGEN_HEADER_TOO_LARGE, NULL, "request_header_too_large",
      "the request headers are larger than the server accepts" },

    { NGX_HTTP_INTERNAL_SERVER_ERROR, "server_error", "server_error",
      "the server could not complete the request" },

    { NGX_HTTP_NOT_IMPLEMENTED, "server_error", "not_implemented",
      "the server does not support what the request asks for" },

    { NGX_HTTP_BAD_GATEWAY, "server_error", "bad_gateway",
      "an upstream server sent an invalid answer" },

    { NGX_HTTP_SERVICE_UNAVAILABLE, "server_error", "server_busy",
      "the server is busy: retry later" },

    { NGX_HTTP_GATEWAY_TIME_OUT, "server_error", "gateway_timeout",
      "an upstream server did not answer in time" },

    { NGX_HTTP_VERSION_NOT_SUPPORTED, "server_error",
      "http_version_not_supported",
      "the HTTP version of the request is not supported" },

    { NGX_HTTP_INSUFFICIENT_STORAGE, "server_error", "insufficient_storage",
      "the server has no room to store what the request makes" },

    { 0, NULL, NULL, NULL }
};


static void
ngx_http_podgen_core_error(ngx_uint_t status, pg_error_t *err)
{
    ngx_http_podgen_core_error_t  *e;

    for (e = ngx_http_podgen_core_errors; e->status; e++) {
        if (e->status == status) {
            pg_error_set(err, status, NULL, e->code, "%s", e->message);

            if (e->type) {
                err->type = e->type;
            }

            return;
        }
    }

    if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        pg_error_set(err, status, NULL, "server_error",
                     "the server could not complete the request");
        err->type = "server_error";
        return;
    }

    pg_error_set(err, status, NULL, "invalid_request",
                 "the server cannot answer this request");
}


/*
 * Whether an error page is ours to make JSON: in a podgen location; in a
 * server with podgen locations when nginx answered before choosing a
 * location (a request line or headers too long, a bad request line), as
 * the request still has the server's own configuration then; and in such
 * a server for nginx's own pages (r->err_status) of any path under /v1/,
 * whatever location it fell into (an unknown endpoint caught by
 * "location /" of the web UI, a "deny" in a location of its own): API
 * clients read JSON there, not nginx's page.  What a proxied server
 * answers there is its own and passes untouched.
 */

static ngx_uint_t
ngx_http_podgen_error_is_ours(ngx_http_request_t *r)
{
    ngx_http_core_srv_conf_t    *cscf;
    ngx_http_podgen_loc_conf_t  *plcf, *splcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf == NULL) {
        return 0;
    }

    if (plcf->endpoint != NGX_HTTP_PODGEN_NONE || plcf->server_endpoints) {
        return 1;
    }

    if (r->err_status == 0
        || r->uri.len < 3
        || ngx_strncmp(r->uri.data, "/v1", 3) != 0
        || (r->uri.len > 3 && r->uri.data[3] != '/'))
    {
        return 0;
    }

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    if (cscf == NULL || cscf->ctx == NULL) {
        return 0;
    }

    splcf = cscf->ctx->loc_conf[ngx_http_podgen_module.ctx_index];

    return splcf != NULL && splcf->server_endpoints;
}


/*
 * nginx answers some requests itself before or while our handler runs
 * (413 for a body over client_max_body_size, 408, 400 for a broken chunked
 * body, 416 from the range filter, 429 or 503 from limit_req, 500): those
 * become JSON errors too.  A filter that finalizes the request with its
 * status (the range filter) starts the answer again with the module
 * contexts cleared: the headers already set (X-Request-Id) are kept.
 */

static ngx_int_t
ngx_http_podgen_header_filter(ngx_http_request_t *r)
{
    ngx_str_t               json;
    pg_error_t              err;
    ngx_http_podgen_ctx_t  *ctx;

    if (r != r->main || r->headers_out.status < NGX_HTTP_BAD_REQUEST
        || !ngx_http_podgen_error_is_ours(r))
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->error_sent) {
        return ngx_http_next_header_filter(r);
    }

    ngx_http_podgen_core_error(r->headers_out.status, &err);

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

    if (ngx_http_podgen_header_out(r, "X-Request-Id") == NULL
        && ngx_http_podgen_add_common_headers(r) != NGX_OK)
    {
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
