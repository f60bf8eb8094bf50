/*
 * podgen: POST /v1/batch — many scripts, speeches and podcasts at once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_jobs.h"


ngx_int_t
ngx_http_podgen_batch_handler(ngx_http_request_t *r)
{
    return NGX_HTTP_NOT_IMPLEMENTED;
}


ngx_int_t
ngx_http_podgen_batch_job_run(ngx_http_podgen_job_t *job, const char *body,
    size_t len, void **handle)
{
    return NGX_ERROR;
}


void
ngx_http_podgen_batch_job_cancel(void *handle)
{
}
