/*
 * podgen: POST /v1/audio/speech, and the key of a speech artifact.
 */

#ifndef NGX_HTTP_PODGEN_SPEECH_H
#define NGX_HTTP_PODGEN_SPEECH_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_audio.h"
#include "ngx_http_podgen_module.h"


ngx_int_t ngx_http_podgen_speech_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_speech_key(ngx_http_podgen_voice_t *voice,
    pg_format_t format, double speed, const char *text, size_t len,
    char *hex);


#endif /* NGX_HTTP_PODGEN_SPEECH_H */
