/*
 * podgen: GET /v1/audio/{key}.{ext} — content-addressed audio.
 */

#ifndef NGX_HTTP_PODGEN_AUDIO_H
#define NGX_HTTP_PODGEN_AUDIO_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_podgen_audio_handler(ngx_http_request_t *r);


#endif /* NGX_HTTP_PODGEN_AUDIO_H */
