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
#include "ngx_http_podgen_artifact.h"
#include "ngx_http_podgen_speech.h"
#include "ngx_http_podgen_fetch.h"
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
    pg_buf_t                        full;
    ngx_http_podgen_fetch_t         fetch;
};


static void ngx_http_podgen_audio_found(ngx_http_podgen_fetch_t *f,
    ngx_uint_t from, u_char *audio, size_t len);
static void ngx_http_podgen_audio_synthesize(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_audio_cache_error(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_audio_output(void *data, u_char *audio,
    size_t len, ngx_uint_t last, ngx_int_t rc);
static void ngx_http_podgen_audio_fail(ngx_http_podgen_audio_make_t *m,
    ngx_uint_t status, const char *code, const char *message);
static void ngx_http_podgen_audio_free(ngx_http_podgen_audio_make_t *m);


static const ngx_http_podgen_fetch_handlers_t  ngx_http_podgen_audio_handlers = {
    ngx_http_podgen_audio_found,
    ngx_http_podgen_audio_synthesize,
    ngx_http_podgen_audio_cache_error
};


ngx_int_t
ngx_http_podgen_audio_make(ngx_http_podgen_main_conf_t *pmcf,
    ngx_http_podgen_voice_t *voice, pg_format_t format, double speed,
    const char *text, size_t len, ngx_pool_t *pool,
    ngx_http_podgen_audio_done_pt done, void *data, ngx_log_t *log,
    ngx_http_podgen_audio_t *hit, ngx_http_podgen_audio_make_t **mp)
{
    u_char                        *audio;
    size_t                         alen;
    ngx_int_t                      rc;
    ngx_http_podgen_audio_make_t  *m;

    *mp = NULL;

    if (ngx_http_podgen_speech_key(voice, format, speed, text, len, hit->key)
        != NGX_OK)
    {
        return NGX_ERROR;
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

    ngx_http_podgen_fetch_init(&m->fetch, &ngx_http_podgen_fetch_audio,
                               &ngx_http_podgen_audio_handlers, &pmcf->cache,
                               hit->key, format, NULL, m, log);

    rc = ngx_http_podgen_fetch(&m->fetch, pool, &audio, &alen);

    switch (rc) {

    case NGX_OK:
        hit->audio = audio;
        hit->len = alen;
        hit->cached = NGX_HTTP_PODGEN_FROM_L1;
        ngx_http_podgen_audio_free(m);
        return NGX_OK;

    case NGX_AGAIN:
        *mp = m;
        return NGX_AGAIN;

    case NGX_DECLINED:
        *mp = m;
        ngx_http_podgen_audio_synthesize(&m->fetch);
        return NGX_AGAIN;

    default:
        ngx_http_podgen_audio_free(m);
        return NGX_ERROR;
    }
}


void
ngx_http_podgen_audio_cancel(ngx_http_podgen_audio_make_t *m)
{
    if (m->job) {
        ngx_http_podgen_tts_detach(m->job);
        m->job = NULL;
    }

    ngx_http_podgen_audio_free(m);
}


static void
ngx_http_podgen_audio_found(ngx_http_podgen_fetch_t *f, ngx_uint_t from,
    u_char *audio, size_t len)
{
    ngx_http_podgen_audio_make_t  *m = f->data;

    ngx_http_podgen_audio_t  res;

    ngx_memcpy(res.key, f->hex, PG_KEY_LEN + 1);
    res.audio = audio;
    res.len = len;
    res.cached = from;

    m->done(m->data, NGX_OK, &res, NULL);
    ngx_http_podgen_audio_free(m);
}


static void
ngx_http_podgen_audio_cache_error(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_audio_fail(f->data, 500, "server_error",
                               "the cache failed");
}


static void
ngx_http_podgen_audio_synthesize(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_audio_make_t  *m = f->data;

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
    conf.max_queue = pmcf->max_queue;
    conf.output = ngx_http_podgen_audio_output;
    conf.data = m;
    conf.log = m->log;
    conf.words = (m->format == PG_FMT_WAV);

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

    ngx_http_podgen_audio_t  res;

    if (rc != NGX_OK) {
        /* the job is done with us; detached, it frees itself */
        ngx_http_podgen_tts_detach(m->job);
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

    /*
     * The same whole file a speech request stores for the key (FLAC
     * STREAMINFO totals, the mp3 Info frame, WAV sizes); a WAV artifact
     * carries its words' timings (a "pgwt" chunk).
     */

    if (ngx_http_podgen_tts_finalize(m->job, m->full.data, m->full.len)
        != NGX_OK
        || (m->format == PG_FMT_WAV
            && pg_wav_words_add(&m->full, ngx_http_podgen_tts_words(m->job))
               != 0))
    {
        ngx_http_podgen_tts_detach(m->job);
        m->job = NULL;
        ngx_http_podgen_audio_fail(m, 500, "server_error",
                                   "the audio could not be made whole");
        return;
    }

    /* the last output: detached, the job frees itself once its task
     * is done (it holds a reference through this call) */
    ngx_http_podgen_tts_detach(m->job);
    m->job = NULL;

    ngx_http_podgen_fetch_store(&m->fetch, m->full.data, m->full.len);

    ngx_memcpy(res.key, m->fetch.hex, PG_KEY_LEN + 1);
    res.audio = m->full.data;
    res.len = m->full.len;
    res.cached = NGX_HTTP_PODGEN_FROM_MADE;

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
    /* not made (failed, canceled): the waiters make it */
    ngx_http_podgen_fetch_cancel(&m->fetch);

    pg_buf_free(&m->full);
    ngx_free(m->text);
    ngx_free(m);
}
