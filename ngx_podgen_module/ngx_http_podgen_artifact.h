/*
 * podgen: the audio maker — speech audio made whole for podcasts and
 * batches, the same artifact POST /v1/audio/speech would make.
 */

#ifndef NGX_HTTP_PODGEN_ARTIFACT_H
#define NGX_HTTP_PODGEN_ARTIFACT_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_json.h"
#include "pg_audio.h"
#include "pg_key.h"
#include "ngx_http_podgen_module.h"


typedef struct {
    char                  key[PG_KEY_LEN + 1];
    u_char               *audio;
    size_t                len;
    ngx_uint_t            cached;       /* 0 made now, 1 L1, 2 L2 */
} ngx_http_podgen_audio_t;

typedef struct ngx_http_podgen_audio_make_s  ngx_http_podgen_audio_make_t;

/* The audio is valid during the call; rc NGX_ERROR: err says why. */
typedef void (*ngx_http_podgen_audio_done_pt)(void *data, ngx_int_t rc,
    ngx_http_podgen_audio_t *audio, pg_error_t *err);

/*
 * text: normalized (pg_text_normalize).  NGX_OK: an L1 hit in *hit
 * (memory from pool); NGX_AGAIN: done() is called later, exactly once,
 * unless canceled (hit->key is set either way); NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_audio_make(ngx_http_podgen_main_conf_t *pmcf,
    ngx_http_podgen_voice_t *voice, pg_format_t format, double speed,
    const char *text, size_t len, ngx_pool_t *pool,
    ngx_http_podgen_audio_done_pt done, void *data, ngx_log_t *log,
    ngx_http_podgen_audio_t *hit, ngx_http_podgen_audio_make_t **mp);
void ngx_http_podgen_audio_cancel(ngx_http_podgen_audio_make_t *m);


#endif /* NGX_HTTP_PODGEN_ARTIFACT_H */
