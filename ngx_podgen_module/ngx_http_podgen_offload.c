/*
 * podgen: CPU work other than speech on the nginx thread pool (see header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_thread_pool.h>

#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_metrics.h"


struct ngx_http_podgen_offload_s {
    ngx_thread_task_t         task;
    ngx_http_podgen_work_pt   work;
    ngx_http_podgen_work_pt   after;
    ngx_http_podgen_work_pt   release;
    void                     *data;
    unsigned                  attached:1;
};


static void
ngx_http_podgen_offload_thread(void *data, ngx_log_t *log)
{
    ngx_http_podgen_offload_t  *o = data;

    o->work(o->data);
}


static void
ngx_http_podgen_offload_done(ngx_event_t *ev)
{
    ngx_http_podgen_offload_t  *o = ev->data;

    ngx_http_podgen_metrics_thread_queue(-1);

    if (o->attached) {
        o->after(o->data);
    }

    o->release(o->data);
    ngx_free(o);
}


ngx_http_podgen_offload_t *
ngx_http_podgen_offload(ngx_thread_pool_t *tp, ngx_http_podgen_work_pt work,
    ngx_http_podgen_work_pt after, ngx_http_podgen_work_pt release,
    void *data, ngx_log_t *log)
{
    ngx_http_podgen_offload_t  *o;

    o = ngx_calloc(sizeof(ngx_http_podgen_offload_t), log);
    if (o == NULL) {
        return NULL;
    }

    o->work = work;
    o->after = after;
    o->release = release;
    o->data = data;
    o->attached = 1;

    o->task.ctx = o;
    o->task.handler = ngx_http_podgen_offload_thread;
    o->task.event.handler = ngx_http_podgen_offload_done;
    o->task.event.data = o;
    o->task.event.log = log;

    if (ngx_thread_task_post(tp, &o->task) != NGX_OK) {
        ngx_free(o);
        return NULL;
    }

    ngx_http_podgen_metrics_thread_queue(1);

    return o;
}


void
ngx_http_podgen_offload_detach(ngx_http_podgen_offload_t *o)
{
    o->attached = 0;
    o->task.event.log = ngx_cycle->log;
}
