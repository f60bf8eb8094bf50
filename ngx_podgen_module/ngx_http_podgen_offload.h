/*
 * podgen: work other than speech on the thread pool that synthesis uses
 * (the built-in script generator, the job store's files, an episode's
 * rendering), so that it never blocks the event loop.
 *
 * work(data) runs on a pool thread, then after(data) in the event loop,
 * then release(data).  After detach, after() is not called, release() is.
 * The caller must not detach once after() has run.  The offload is
 * malloc'd: it outlives a request that goes away while its work is on the
 * pool, and is freed after release().
 */

#ifndef NGX_HTTP_PODGEN_OFFLOAD_H
#define NGX_HTTP_PODGEN_OFFLOAD_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_thread_pool.h>


typedef struct ngx_http_podgen_offload_s  ngx_http_podgen_offload_t;
typedef void (*ngx_http_podgen_work_pt)(void *data);

/* NULL: the queue is full or out of memory. */
ngx_http_podgen_offload_t *ngx_http_podgen_offload(ngx_thread_pool_t *tp,
    ngx_http_podgen_work_pt work, ngx_http_podgen_work_pt after,
    ngx_http_podgen_work_pt release, void *data, ngx_log_t *log);
void ngx_http_podgen_offload_detach(ngx_http_podgen_offload_t *o);


#endif /* NGX_HTTP_PODGEN_OFFLOAD_H */
