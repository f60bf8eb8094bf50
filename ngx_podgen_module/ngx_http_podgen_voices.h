/*
 * podgen: the voices — the podgen_voice directive, the voice table built
 * from it at configuration time and loaded by every worker, finding a
 * voice by name or alias, and GET /v1/voices.
 */

#ifndef NGX_HTTP_PODGEN_VOICES_H
#define NGX_HTTP_PODGEN_VOICES_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_module.h"


char *ngx_http_podgen_voice(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_podgen_voices_init_conf(ngx_conf_t *cf,
    ngx_http_podgen_main_conf_t *pmcf);
ngx_int_t ngx_http_podgen_voices_init_process(ngx_cycle_t *cycle,
    ngx_http_podgen_main_conf_t *pmcf);
ngx_http_podgen_voice_t *ngx_http_podgen_find_voice(
    ngx_http_podgen_main_conf_t *pmcf, const char *name);
int ngx_http_podgen_voice_exists(void *pmcf, const char *name);
ngx_int_t ngx_http_podgen_voices_handler(ngx_http_request_t *r);


#endif /* NGX_HTTP_PODGEN_VOICES_H */
