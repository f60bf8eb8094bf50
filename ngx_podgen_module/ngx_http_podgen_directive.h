/*
 * podgen: the location directives (see ngx_http_podgen_directive.c).
 */

#ifndef NGX_HTTP_PODGEN_DIRECTIVE_H
#define NGX_HTTP_PODGEN_DIRECTIVE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


char *ngx_http_podgen_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_podgen_api_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_podgen_feed_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* NGX_HTTP_PODGEN_DIRECTIVE_H */
