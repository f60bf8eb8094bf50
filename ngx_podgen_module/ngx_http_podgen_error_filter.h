/*
 * podgen: the filter that sends nginx's own error pages in podgen
 * locations as JSON errors.
 */

#ifndef NGX_HTTP_PODGEN_ERROR_FILTER_H
#define NGX_HTTP_PODGEN_ERROR_FILTER_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_podgen_error_filter_init(ngx_conf_t *cf);


#endif /* NGX_HTTP_PODGEN_ERROR_FILTER_H */
