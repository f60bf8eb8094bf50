/*
 * podgen: the access, content and log phase handlers of podgen locations.
 */

#ifndef NGX_HTTP_PODGEN_PHASES_H
#define NGX_HTTP_PODGEN_PHASES_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_podgen_phases_init(ngx_conf_t *cf);
ngx_int_t ngx_http_podgen_content_handler(ngx_http_request_t *r);


#endif /* NGX_HTTP_PODGEN_PHASES_H */
