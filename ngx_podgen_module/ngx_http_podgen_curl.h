/*
 * podgen: libcurl multi on nginx events, one multi per worker, shared by
 * the LLM client (ngx_http_podgen_llm.c) and the source URL fetcher
 * (ngx_http_podgen_url.c).  No transfer ever blocks the worker: curl's
 * sockets are nginx connections, curl's timeout is an nginx timer, and
 * name resolution is curl's threaded resolver.
 *
 * Each easy handle carries its owner (CURLOPT_PRIVATE): when its transfer
 * ends, the owner's done() is called with curl's result; done() removes
 * the handle (ngx_http_podgen_curl_remove) before it returns.
 */

#ifndef NGX_HTTP_PODGEN_CURL_H
#define NGX_HTTP_PODGEN_CURL_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <curl/curl.h>


typedef void (*ngx_http_podgen_curl_done_pt)(void *data, CURLcode code);

typedef struct {
    ngx_http_podgen_curl_done_pt   done;
    void                          *data;
} ngx_http_podgen_curl_owner_t;


/* The worker's multi, made on first use; NULL when it cannot be made. */
CURLM *ngx_http_podgen_curl_multi(ngx_log_t *log);

/*
 * Sets the handle's private pointer and close-socket callback (easies set
 * no CURLOPT_PRIVATE nor CURLOPT_CLOSESOCKET* of their own) and adds it to
 * the multi.  owner must live until done() or remove.
 */
ngx_int_t ngx_http_podgen_curl_add(CURL *easy,
    ngx_http_podgen_curl_owner_t *owner, ngx_log_t *log);

/* Takes the handle out of the multi (it is not cleaned up). */
void ngx_http_podgen_curl_remove(CURL *easy);

void ngx_http_podgen_curl_exit_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_PODGEN_CURL_H */
