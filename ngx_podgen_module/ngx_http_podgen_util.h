/*
 * podgen: what the endpoints share for requests and replies: the request
 * context, finalizing from a callback, counting a request in flight,
 * headers, JSON errors and replies, request checks, the body, ETags and
 * memo keys.
 */

#ifndef NGX_HTTP_PODGEN_UTIL_H
#define NGX_HTTP_PODGEN_UTIL_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_json.h"
#include "ngx_http_podgen_module.h"


uint64_t ngx_http_podgen_now_us(void);
ngx_http_podgen_ctx_t *ngx_http_podgen_get_ctx(ngx_http_request_t *r);
void ngx_http_podgen_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_podgen_memo_key(ngx_http_podgen_main_conf_t *pmcf,
    ngx_uint_t endpoint, u_char *body, size_t len, u_char *key);
ngx_int_t ngx_http_podgen_add_common_headers(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_podgen_header_out(ngx_http_request_t *r,
    char *key);
ngx_int_t ngx_http_podgen_add_header(ngx_http_request_t *r, char *key,
    ngx_str_t *value);
ngx_int_t ngx_http_podgen_error_json(ngx_pool_t *pool, pg_error_t *err,
    ngx_str_t *out);
ngx_int_t ngx_http_podgen_send_error(ngx_http_request_t *r,
    pg_error_t *err);

/* 429 too_many_jobs with Retry-After: podgen_max_jobs is reached. */
ngx_int_t ngx_http_podgen_too_many_jobs(ngx_http_request_t *r);
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


#endif /* NGX_HTTP_PODGEN_UTIL_H */
