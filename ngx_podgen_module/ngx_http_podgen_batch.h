/*
 * podgen: POST /v1/batch — many scripts, speeches and podcasts in one
 * request; an async batch is a kind of job.
 */

#ifndef NGX_HTTP_PODGEN_BATCH_H
#define NGX_HTTP_PODGEN_BATCH_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_podgen_batch_handler(ngx_http_request_t *r);

/* Registers the async batch with the job runner (init_process). */
void ngx_http_podgen_batch_job_init(void);


#endif /* NGX_HTTP_PODGEN_BATCH_H */
