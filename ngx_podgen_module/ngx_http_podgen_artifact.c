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
    ngx_event_t                     wait;       /* single flight: poll */
    ngx_uint_t                      waiting;    /* counted as a waiter */
    unsigned                        owner:1;    /* holds the L1 marker */
    unsigned                        stored:1;
    u_char                          raw[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
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
static void ngx_http_podgen_audio_wait_handler(ngx_event_t *ev);


static ngx_http_podgen_audio_make_t *
ngx_http_podgen_audio_new(ngx_http_podgen_main_conf_t *pmcf,
    ngx_http_podgen_voice_t *voice, pg_format_t format, double speed,
    const char *text, size_t len, ngx_http_podgen_audio_done_pt done,
    void *data, ngx_log_t *log, char *key)
{
    ngx_http_podgen_audio_make_t  *m;

    m = ngx_calloc(sizeof(ngx_http_podgen_audio_make_t), log);
    if (m == NULL) {
        return NULL;
    }

    m->text = ngx_alloc(len + 1, log);
    if (m->text == NULL) {
        ngx_free(m);
        return NULL;
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
    ngx_memcpy(m->key, key, PG_KEY_LEN + 1);

    m->wait.handler = ngx_http_podgen_audio_wait_handler;
    m->wait.data = m;
    m->wait.log = log;

    return m;
}


/*
 * One lookup in L1 that also decides who makes the audio (the same
 * marker as POST /v1/audio/speech uses): NGX_OK a hit, NGX_AGAIN wait,
 * NGX_DECLINED make it.
 */

static ngx_int_t
ngx_http_podgen_audio_acquire(ngx_http_podgen_main_conf_t *pmcf, u_char *raw,
    ngx_uint_t format, ngx_pool_t *pool, u_char **audio, size_t *len,
    ngx_uint_t *waiting)
{
    ngx_int_t   rc;
    ngx_uint_t  tag;

    rc = ngx_http_podgen_cache_acquire(&pmcf->cache, raw, PG_KIND_AUDIO, pool,
                                       audio, len, &tag, waiting, 300);

    if (rc == NGX_OK && tag != format) {
        /* the key names the format: this cannot happen but by corruption */
        return NGX_ERROR;
    }

    return rc;
}


ngx_int_t
ngx_http_podgen_audio_make(ngx_http_podgen_main_conf_t *pmcf,
    ngx_http_podgen_voice_t *voice, pg_format_t format, double speed,
    const char *text, size_t len, ngx_pool_t *pool,
    ngx_http_podgen_audio_done_pt done, void *data, ngx_log_t *log,
    ngx_http_podgen_audio_t *hit, ngx_http_podgen_audio_make_t **mp)
{
    u_char                        *audio, raw[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                         alen;
    ngx_int_t                      rc;
    ngx_uint_t                     waiting;
    ngx_http_podgen_audio_make_t  *m;

    *mp = NULL;
    waiting = 0;

    if (ngx_http_podgen_speech_key(voice, format, speed, text, len, hit->key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;

    if (pmcf->cache.shm_zone) {
        ngx_http_podgen_cache_key(raw, hit->key);

        rc = ngx_http_podgen_audio_acquire(pmcf, raw, format, pool, &audio,
                                           &alen, &waiting);
        if (rc == NGX_OK) {
            hit->audio = audio;
            hit->len = alen;
            hit->cached = 1;
            return NGX_OK;
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    m = ngx_http_podgen_audio_new(pmcf, voice, format, speed, text, len, done,
                                  data, log, hit->key);
    if (m == NULL) {
        if (rc == NGX_DECLINED && pmcf->cache.shm_zone) {
            ngx_http_podgen_cache_release(&pmcf->cache, raw);

        } else if (waiting) {
            ngx_http_podgen_cache_leave(&pmcf->cache, raw);
        }

        return NGX_ERROR;
    }

    ngx_memcpy(m->raw, raw, sizeof(raw));
    m->waiting = waiting;
    m->owner = (rc == NGX_DECLINED && pmcf->cache.shm_zone);

    *mp = m;

    if (rc == NGX_AGAIN) {
        /* another request of the node makes it: wait for it */
        ngx_add_timer(&m->wait, 20);
        return NGX_AGAIN;
    }

    m->l2 = ngx_http_podgen_redis_get("audio", m->key,
                                      ngx_http_podgen_audio_l2_done, m);
    if (m->l2 == NULL) {
        ngx_http_podgen_audio_synthesize(m);
    }

    return NGX_AGAIN;
}


static void
ngx_http_podgen_audio_wait_handler(ngx_event_t *ev)
{
    ngx_http_podgen_audio_make_t  *m = ev->data;

    u_char                   *audio;
    size_t                    len;
    ngx_int_t                 rc;
    ngx_pool_t               *pool;
    ngx_http_podgen_audio_t   res;

    pool = ngx_create_pool(4096, m->log);
    if (pool == NULL) {
        ngx_add_timer(&m->wait, 20);
        return;
    }

    rc = ngx_http_podgen_audio_acquire(m->pmcf, m->raw, m->format, pool,
                                       &audio, &len, &m->waiting);
    switch (rc) {

    case NGX_OK:
        ngx_http_podgen_metrics_coalesced(PG_KIND_AUDIO);

        ngx_memcpy(res.key, m->key, PG_KEY_LEN + 1);
        res.audio = audio;
        res.len = len;
        res.cached = 3;

        m->done(m->data, NGX_OK, &res, NULL);
        ngx_http_podgen_audio_free(m);
        break;

    case NGX_AGAIN:
        ngx_add_timer(&m->wait, 20);
        break;

    case NGX_DECLINED:
        /* the maker gave up: this one makes it */
        m->owner = 1;

        m->l2 = ngx_http_podgen_redis_get("audio", m->key,
                                          ngx_http_podgen_audio_l2_done, m);
        if (m->l2 == NULL) {
            ngx_http_podgen_audio_synthesize(m);
        }

        break;

    default:
        ngx_http_podgen_audio_fail(m, 500, "server_error",
                                   "the cache failed");
    }

    ngx_destroy_pool(pool);
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

    ngx_http_podgen_audio_t  res;

    m->l2 = NULL;

    /* an entry is the format byte, then the audio */

    if (rc != NGX_OK || len < 2 || value[0] != (u_char) m->format) {
        ngx_http_podgen_metrics_cache(1, PG_KIND_AUDIO, 0);
        ngx_http_podgen_audio_synthesize(m);
        return;
    }

    ngx_http_podgen_metrics_cache(1, PG_KIND_AUDIO, 1);

    if (m->pmcf->cache.shm_zone
        && ngx_http_podgen_cache_put(&m->pmcf->cache, m->raw, PG_KIND_AUDIO,
                                     value + 1, len - 1, m->format, m->log)
           == NGX_OK)
    {
        m->stored = 1;
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

    u_char                        *v;
    ngx_http_podgen_audio_t        res;
    ngx_http_podgen_main_conf_t   *pmcf;

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

    /* the last output: detached, the job frees itself once its task
     * is done (it holds a reference through this call) */
    ngx_http_podgen_tts_detach(m->job);
    m->job = NULL;

    pmcf = m->pmcf;

    if (m->format == PG_FMT_WAV) {
        (void) pg_wav_fix_sizes(m->full.data, m->full.len);
    }

    if (pmcf->cache.shm_zone
        && ngx_http_podgen_cache_put(&pmcf->cache, m->raw, PG_KIND_AUDIO,
                                     m->full.data, m->full.len, m->format,
                                     m->log)
           == NGX_OK)
    {
        m->stored = 1;
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
    if (m->wait.timer_set) {
        ngx_del_timer(&m->wait);
    }

    if (m->waiting) {
        ngx_http_podgen_cache_leave(&m->pmcf->cache, m->raw);
    }

    if (m->owner && !m->stored) {
        /* not made (failed, canceled, too big): the waiters make it */
        ngx_http_podgen_cache_release(&m->pmcf->cache, m->raw);
    }

    pg_buf_free(&m->full);
    ngx_free(m->text);
    ngx_free(m);
}
