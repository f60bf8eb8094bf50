/*
 * podgen: speech audio made whole, for podcasts and batches — the same
 * artifact POST /v1/audio/speech would make (same key, same cache tiers),
 * without a client to stream it to: L1, then L2, then synthesis on the
 * thread pool; the result goes to both tiers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_metrics.h"


struct ngx_http_podgen_audio_make_s {
    ngx_http_podgen_main_conf_t    *pmcf;
    ngx_http_podgen_audio_done_pt   done;
    void                           *data;
    ngx_log_t                      *log;
    ngx_http_podgen_voice_t        *voice;
    pg_format_t                     format;
    double                          speed;
    char                           *text;
    size_t                          text_len;
    ngx_http_podgen_tts_job_t      *job;
    ngx_http_podgen_redis_op_t     *l2;
    pg_buf_t                        full;
    char                            key[PG_KEY_LEN + 1];
};


static void ngx_http_podgen_audio_l2_done(void *data, ngx_int_t rc,
    u_char *value, size_t len);
static void ngx_http_podgen_audio_synthesize(ngx_http_podgen_audio_make_t *m);
static void ngx_http_podgen_audio_output(void *data, u_char *audio,
    size_t len, ngx_uint_t last, ngx_int_t rc);
static void ngx_http_podgen_audio_fail(ngx_http_podgen_audio_make_t *m,
    ngx_uint_t status, const char *code, const char *message);
static void ngx_http_podgen_audio_free(ngx_http_podgen_audio_make_t *m);


ngx_int_t
ngx_http_podgen_audio_make(ngx_http_podgen_main_conf_t *pmcf,
    ngx_http_podgen_voice_t *voice, pg_format_t format, double speed,
    const char *text, size_t len, ngx_pool_t *pool,
    ngx_http_podgen_audio_done_pt done, void *data, ngx_log_t *log,
    ngx_http_podgen_audio_t *hit, ngx_http_podgen_audio_make_t **mp)
{
    u_char                        *audio, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                         alen;
    ngx_uint_t                     tag;
    ngx_http_podgen_audio_make_t  *m;

    *mp = NULL;

    if (ngx_http_podgen_speech_key(voice, format, speed, text, len, hit->key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (pmcf->cache.shm_zone) {
        ngx_http_podgen_cache_key(key, hit->key);

        if (ngx_http_podgen_cache_get(&pmcf->cache, key, PG_KIND_AUDIO, pool,
                                      &audio, &alen, &tag)
            == NGX_OK
            && tag == (ngx_uint_t) format)
        {
            hit->audio = audio;
            hit->len = alen;
            hit->cached = 1;
            return NGX_OK;
        }
    }

    m = ngx_calloc(sizeof(ngx_http_podgen_audio_make_t), log);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->text = ngx_alloc(len + 1, log);
    if (m->text == NULL) {
        ngx_free(m);
        return NGX_ERROR;
    }

    ngx_memcpy(m->text, text, len);
    m->text[len] = '\0';
    m->text_len = len;

    m->pmcf = pmcf;
    m->done = done;
    m->data = data;
    m->log = log;
    m->voice = voice;
    m->format = format;
    m->speed = speed;
    ngx_memcpy(m->key, hit->key, PG_KEY_LEN + 1);

    *mp = m;

    m->l2 = ngx_http_podgen_redis_get("audio", m->key,
                                      ngx_http_podgen_audio_l2_done, m);
    if (m->l2 == NULL) {
        ngx_http_podgen_audio_synthesize(m);
    }

    return NGX_AGAIN;
}


void
ngx_http_podgen_audio_cancel(ngx_http_podgen_audio_make_t *m)
{
    if (m->l2) {
        ngx_http_podgen_redis_cancel(m->l2);
        m->l2 = NULL;
    }

    if (m->job) {
        ngx_http_podgen_tts_detach(m->job);
        m->job = NULL;
    }

    ngx_http_podgen_audio_free(m);
}


static void
ngx_http_podgen_audio_l2_done(void *data, ngx_int_t rc, u_char *value,
    size_t len)
{
    ngx_http_podgen_audio_make_t  *m = data;

    u_char                   key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    ngx_http_podgen_audio_t  res;

    m->l2 = NULL;

    /* an entry is the format byte, then the audio */

    if (rc != NGX_OK || len < 2 || value[0] != (u_char) m->format) {
        ngx_http_podgen_metrics_cache(1, PG_KIND_AUDIO, 0);
        ngx_http_podgen_audio_synthesize(m);
        return;
    }

    ngx_http_podgen_metrics_cache(1, PG_KIND_AUDIO, 1);

    if (m->pmcf->cache.shm_zone) {
        ngx_http_podgen_cache_key(key, m->key);
        (void) ngx_http_podgen_cache_put(&m->pmcf->cache, key, PG_KIND_AUDIO,
                                         value + 1, len - 1, m->format,
                                         m->log);
    }

    ngx_memcpy(res.key, m->key, PG_KEY_LEN + 1);
    res.audio = value + 1;
    res.len = len - 1;
    res.cached = 2;

    m->done(m->data, NGX_OK, &res, NULL);
    ngx_http_podgen_audio_free(m);
}


static void
ngx_http_podgen_audio_synthesize(ngx_http_podgen_audio_make_t *m)
{
    ngx_int_t                     rc;
    ngx_http_podgen_tts_conf_t    conf;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = m->pmcf;

    conf.thread_pool = pmcf->thread_pool;
    conf.voice = &m->voice->voice;
    conf.format = m->format;
    conf.speed = m->speed;
    conf.parallelism = pmcf->parallelism;
    conf.chunk_max = pmcf->chunk_max;
    conf.first_chunk_max = pmcf->chunk_max;
    conf.output = ngx_http_podgen_audio_output;
    conf.data = m;
    conf.log = m->log;

    m->job = ngx_http_podgen_tts_start(&conf, m->text, m->text_len, &rc);

    if (m->job) {
        return;
    }

    if (rc == NGX_BUSY) {
        ngx_http_podgen_metrics_error(PG_ERR_BUSY);
        ngx_http_podgen_audio_fail(m, 503, "server_busy",
                                   "the speech queue is full; retry shortly");
        return;
    }

    ngx_http_podgen_audio_fail(m, 500, "server_error",
                               "could not start synthesis");
}


static void
ngx_http_podgen_audio_output(void *data, u_char *audio, size_t len,
    ngx_uint_t last, ngx_int_t rc)
{
    ngx_http_podgen_audio_make_t  *m = data;

    u_char                        *v, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    ngx_http_podgen_audio_t        res;
    ngx_http_podgen_main_conf_t   *pmcf;

    if (rc != NGX_OK) {
        m->job = NULL;
        ngx_http_podgen_audio_fail(m, 500, "server_error",
                                   "speech synthesis failed");
        return;
    }

    if (len && pg_buf_append(&m->full, audio, len) != 0) {
        ngx_http_podgen_tts_detach(m->job);
        m->job = NULL;
        ngx_http_podgen_audio_fail(m, 500, "server_error", "out of memory");
        return;
    }

    if (!last) {
        return;
    }

    /* the job calls nobody after its last output */
    m->job = NULL;

    pmcf = m->pmcf;

    if (m->format == PG_FMT_WAV) {
        (void) pg_wav_fix_sizes(m->full.data, m->full.len);
    }

    if (pmcf->cache.shm_zone) {
        ngx_http_podgen_cache_key(key, m->key);
        (void) ngx_http_podgen_cache_put(&pmcf->cache, key, PG_KIND_AUDIO,
                                         m->full.data, m->full.len,
                                         m->format, m->log);
    }

    if (ngx_http_podgen_redis_up()) {
        v = ngx_alloc(m->full.len + 1, m->log);
        if (v) {
            v[0] = (u_char) m->format;
            ngx_memcpy(v + 1, m->full.data, m->full.len);
            ngx_http_podgen_redis_set("audio", m->key, v, m->full.len + 1);
            ngx_free(v);
        }
    }

    ngx_memcpy(res.key, m->key, PG_KEY_LEN + 1);
    res.audio = m->full.data;
    res.len = m->full.len;
    res.cached = 0;

    m->done(m->data, NGX_OK, &res, NULL);
    ngx_http_podgen_audio_free(m);
}


static void
ngx_http_podgen_audio_fail(ngx_http_podgen_audio_make_t *m,
    ngx_uint_t status, const char *code, const char *message)
{
    pg_error_t  err;

    pg_error_set(&err, (int) status, NULL, code, "%s", message);
    err.type = "server_error";

    m->done(m->data, NGX_ERROR, NULL, &err);
    ngx_http_podgen_audio_free(m);
}


static void
ngx_http_podgen_audio_free(ngx_http_podgen_audio_make_t *m)
{
    pg_buf_free(&m->full);
    ngx_free(m->text);
    ngx_free(m);
}
