/*
 * podgen: /v1/podcasts, and the job record of a podcast request, which a
 * batch's podcast items make too.
 */

#ifndef NGX_HTTP_PODGEN_PODCASTS_H
#define NGX_HTTP_PODGEN_PODCASTS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_json.h"
#include "pg_job.h"
#include "ngx_http_podgen_module.h"


ngx_int_t ngx_http_podgen_podcasts_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_podcast_record(ngx_http_podgen_main_conf_t *pmcf,
    u_char *body, size_t len, ngx_uint_t salt, pg_job_t *rec,
    pg_error_t *err);


#endif /* NGX_HTTP_PODGEN_PODCASTS_H */
