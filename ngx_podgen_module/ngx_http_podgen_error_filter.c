/*
 * podgen: the error filter — nginx's own error pages in podgen locations
 * go out as OpenAI-style JSON errors.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_json.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_error_filter.h"
#include "ngx_http_podgen_util.h"


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
