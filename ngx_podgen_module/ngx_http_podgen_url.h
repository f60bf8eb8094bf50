/*
 * podgen: fetching a source URL — libcurl multi on nginx events, on the
 * worker's multi that the LLM client uses too (ngx_http_podgen_curl.h:
 * sockets are nginx connections, curl's timeout an nginx timer, names
 * resolved by curl's threaded resolver, so the worker never blocks).
 *
 * http and https only, at most 5 redirects, a size cap (the decoded
 * bytes), a timeout, a browser-like User-Agent and Accept.  The SSRF guard
 * (pg_netguard.h) judges every address curl is about to connect to, on
 * every redirect: a refused one ends the fetch with 400 url_not_allowed.
 */

#ifndef NGX_HTTP_PODGEN_URL_H
#define NGX_HTTP_PODGEN_URL_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "pg_json.h"
#include "pg_netguard.h"


typedef struct {
    ngx_array_t   *allow;           /* pg_cidr_t: podgen_fetch_allow */
    ngx_msec_t     timeout;         /* podgen_fetch_timeout */
} ngx_http_podgen_url_conf_t;


typedef struct ngx_http_podgen_url_s  ngx_http_podgen_url_t;

/*
 * rc NGX_OK: body (len bytes, valid during the call) and the site's
 * Content-Type (NULL when it sent none); NGX_ERROR: err (400
 * url_not_allowed, 413 source_too_large, 502 source_fetch_failed).
 */
typedef void (*ngx_http_podgen_url_done_pt)(void *data, ngx_int_t rc,
    u_char *body, size_t len, const char *content_type, pg_error_t *err);

/* podgen_fetch_allow CIDR ... */
char *ngx_http_podgen_fetch_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Starts fetching url (NUL-terminated, http:// or https://), at most max
 * bytes.  NULL with *err when it cannot start.  done() is called later,
 * once, unless canceled first.
 */
ngx_http_podgen_url_t *ngx_http_podgen_url_fetch(
    ngx_http_podgen_url_conf_t *conf, const char *url, size_t max,
    ngx_http_podgen_url_done_pt done, void *data, ngx_log_t *log,
    pg_error_t *err);

void ngx_http_podgen_url_cancel(ngx_http_podgen_url_t *u);

void ngx_http_podgen_url_exit_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_PODGEN_URL_H */
