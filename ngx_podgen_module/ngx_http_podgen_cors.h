/*
 * podgen: CORS — podgen_cors, the preflight OPTIONS of a podgen location
 * and the Access-Control-* headers of every answer where it is on.
 */

#ifndef NGX_HTTP_PODGEN_CORS_H
#define NGX_HTTP_PODGEN_CORS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_module.h"


char *ngx_http_podgen_cors(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_podgen_cors_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_podgen_cors_preflight(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf);


#endif /* NGX_HTTP_PODGEN_CORS_H */
