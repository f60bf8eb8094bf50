/*
 * podgen: podcast jobs — the kind of job that makes an episode.
 *
 * The script (as given, or written through the script maker), then every
 * segment's audio as wav through the audio maker (each segment an
 * artifact of its own, in L1 and L2), a few at a time, then the episode
 * rendered and written on the thread pool.  The runner writes the record
 * after every step: running, each segment done, completed or failed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "pg_text.h"
#include "pg_podcast.h"
#include "pg_episode.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_speech.h"
#include "ngx_http_podgen_scripts.h"
#include "ngx_http_podgen_artifact.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_job_store.h"
#include "ngx_http_podgen_job_redis.h"
#include "ngx_http_podgen_podcast_job.h"


#define NGX_HTTP_PODGEN_PODCAST_WINDOW  3       /* segments made at once */
#define NGX_HTTP_PODGEN_PODCAST_PAUSE   0.35    /* s between segments */


typedef struct ngx_http_podgen_podcast_job_s  ngx_http_podgen_podcast_job_t;

typedef struct {
    ngx_http_podgen_podcast_job_t  *pj;
    ngx_http_podgen_voice_t        *voice;
    char                           *text;        /* normalized */
    size_t                          len;
    u_char                         *wav;
    size_t                          wav_len;
    ngx_http_podgen_audio_make_t   *make;
    ngx_uint_t                      state;       /* 0 to do, 1 making,
                                                    2 done */
    char                            key[PG_KEY_LEN + 1];
} ngx_http_podgen_podcast_seg_t;


struct ngx_http_podgen_podcast_job_s {
    ngx_http_podgen_job_t          *job;
    pg_podcast_request_t            req;
    pg_script_t                     made;       /* a written script */
    pg_script_t                    *script;
    ngx_http_podgen_script_make_t  *make;
    ngx_http_podgen_podcast_seg_t  *segs;
    ngx_uint_t                      nsegs;
    ngx_uint_t                      active;
    unsigned                        rendering:1;
    unsigned                        render_again:1;
};


/* the episode, rendered and written on the pool */
typedef struct {
    ngx_http_podgen_podcast_job_t  *pj;
    pg_episode_part_t              *parts;
    pg_episode_span_t              *spans;
    size_t                          n;
    pg_format_t                     format;
    double                          duration;
    size_t                          bytes;
    int                             rc;
    pg_buf_t                        out;       /* kept for Redis */
    unsigned                        keep:1;
    char                            id[PG_JOB_ID_LEN + 1];
    char                            error[128];
} ngx_http_podgen_podcast_render_t;


static void ngx_http_podgen_podcast_job_run(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_podcast_job_cancel(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_podcast_job_retry(ngx_http_podgen_job_t *job);
static ngx_uint_t ngx_http_podgen_podcast_job_busy(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_podcast_job_free(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_podcast_script_done(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err);
static void ngx_http_podgen_podcast_segments(
    ngx_http_podgen_podcast_job_t *pj);
static void ngx_http_podgen_podcast_pump(ngx_http_podgen_podcast_job_t *pj);
static void ngx_http_podgen_podcast_seg_done(void *data, ngx_int_t rc,
    ngx_http_podgen_audio_t *audio, pg_error_t *err);
static ngx_int_t ngx_http_podgen_podcast_seg_words(
    ngx_http_podgen_podcast_seg_t *seg, ngx_http_podgen_audio_t *audio);
static void ngx_http_podgen_podcast_render(ngx_http_podgen_podcast_job_t *pj);


static const ngx_http_podgen_job_kind_t  ngx_http_podgen_podcast_job_kind = {
    PG_JOB_PODCAST,
    ngx_http_podgen_podcast_job_run,
    ngx_http_podgen_podcast_job_cancel,
    ngx_http_podgen_podcast_job_retry,
    ngx_http_podgen_podcast_job_busy,
    ngx_http_podgen_podcast_job_free
};


void
ngx_http_podgen_podcast_job_init(void)
{
    ngx_http_podgen_job_add_kind(&ngx_http_podgen_podcast_job_kind);
}


/* Stops everything in flight. */

static void
ngx_http_podgen_podcast_job_cancel(ngx_http_podgen_job_t *job)
{
    ngx_uint_t                      i;
    ngx_http_podgen_podcast_job_t  *pj = job->ctx;

    if (pj->make) {
        ngx_http_podgen_script_cancel(pj->make);
        pj->make = NULL;
    }

    for (i = 0; i < pj->nsegs; i++) {
        if (pj->segs[i].make) {
            ngx_http_podgen_audio_cancel(pj->segs[i].make);
            pj->segs[i].make = NULL;
        }
    }

    pj->active = 0;
}


static void
ngx_http_podgen_podcast_job_retry(ngx_http_podgen_job_t *job)
{
    ngx_http_podgen_podcast_job_t  *pj = job->ctx;

    if (pj->render_again) {
        pj->render_again = 0;
        ngx_http_podgen_podcast_render(pj);
        return;
    }

    ngx_http_podgen_podcast_pump(pj);
}


static ngx_uint_t
ngx_http_podgen_podcast_job_busy(ngx_http_podgen_job_t *job)
{
    ngx_http_podgen_podcast_job_t  *pj = job->ctx;

    return pj->rendering;
}


static void
ngx_http_podgen_podcast_job_free(ngx_http_podgen_job_t *job)
{
    ngx_uint_t                      i;
    ngx_http_podgen_podcast_job_t  *pj = job->ctx;

    for (i = 0; i < pj->nsegs; i++) {
        ngx_free(pj->segs[i].text);
        ngx_free(pj->segs[i].wav);
    }

    ngx_free(pj->segs);
    pg_script_free(&pj->made);
    pg_podcast_request_free(&pj->req);
    ngx_free(pj);

    job->ctx = NULL;
}


/* ---- the pipeline ------------------------------------------------------- */


static void
ngx_http_podgen_podcast_job_run(ngx_http_podgen_job_t *job)
{
    ngx_int_t                      rc;
    pg_error_t                     err;
    ngx_pool_t                    *pool;
    ngx_http_podgen_script_t       hit;
    ngx_http_podgen_podcast_job_t *pj;
    ngx_http_podgen_main_conf_t   *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_podgen_module);

    pj = ngx_calloc(sizeof(ngx_http_podgen_podcast_job_t), job->log);
    if (pj == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    pj->job = job;
    job->ctx = pj;

    /* the request was checked when it was accepted */

    if (pg_podcast_request_parse(job->rec.request,
                                 ngx_strlen(job->rec.request),
                                 pmcf->max_source, pmcf->max_input, &pj->req,
                                 &err)
        != 0)
    {
        ngx_http_podgen_job_fail(job, err.code ? err.code : "invalid_request",
                                 err.message);
        return;
    }

    if (pj->req.edited) {
        pj->script = &pj->req.script;
        ngx_http_podgen_podcast_segments(pj);
        return;
    }

    pool = ngx_create_pool(1024, job->log);
    if (pool == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    rc = ngx_http_podgen_script_make(pmcf, &pj->req.script_req, pool,
                                     ngx_http_podgen_podcast_script_done, pj,
                                     job->log, &hit, &pj->make, &err);

    switch (rc) {

    case NGX_OK:
        ngx_http_podgen_podcast_script_done(pj, NGX_OK, &hit, NULL);
        break;

    case NGX_AGAIN:
        break;

    case NGX_DECLINED:
        ngx_http_podgen_job_fail(job, err.code ? err.code : "script_error",
                                 err.message);
        break;

    default:
        ngx_http_podgen_job_fail(job, "server_error",
                                 "the script could not be started");
    }

    ngx_destroy_pool(pool);
}


static void
ngx_http_podgen_podcast_script_done(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err)
{
    ngx_http_podgen_podcast_job_t  *pj = data;

    ngx_http_podgen_job_t  *job;

    job = pj->job;
    pj->make = NULL;

    if (rc != NGX_OK) {
        ngx_http_podgen_job_fail(job, err->code ? err->code : "script_error",
                                 err->message);
        return;
    }

    if (pg_script_from_json((char *) script->json, script->len, &pj->made)
        != 0)
    {
        ngx_http_podgen_job_fail(job, "server_error",
                                 "the script could not be read");
        return;
    }

    if (pg_job_set_string(&job->rec.engine, script->engine) != 0) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    pj->script = &pj->made;
    ngx_http_podgen_podcast_segments(pj);
}


/* voices given to hosts that name none, in turn (as in scripts) */
static char  *ngx_http_podgen_podcast_voices[] = {
    "alloy", "echo", "fable", "nova", "onyx", "shimmer"
};


static void
ngx_http_podgen_podcast_segments(ngx_http_podgen_podcast_job_t *pj)
{
    char                           *voice_name, *t, msg[160];
    double                          audio;
    size_t                          i, n, len;
    pg_host_t                      *host;
    pg_script_t                    *script;
    pg_job_segment_t               *rs;
    ngx_http_podgen_job_t          *job;
    ngx_http_podgen_podcast_seg_t  *seg;
    ngx_http_podgen_main_conf_t    *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_podgen_module);
    job = pj->job;
    script = pj->script;
    n = script->nsegments;

    if (n == 0) {
        ngx_http_podgen_job_fail(job, "empty_script", "the script has no "
                                 "segments");
        return;
    }

    if (job->rec.title == NULL
        && pg_job_set_string(&job->rec.title,
                             pj->req.title ? pj->req.title
                             : (script->title ? script->title : "A podcast"))
           != 0)
    {
        goto nomem;
    }

    pj->segs = ngx_calloc(n * sizeof(ngx_http_podgen_podcast_seg_t),
                          job->log);
    if (pj->segs == NULL) {
        goto nomem;
    }

    pj->nsegs = n;

    /* the record's segments are made anew from the script: their texts
     * and hosts are the script's, their keys in the segments' memory */

    rs = ngx_calloc(n * sizeof(pg_job_segment_t), job->log);
    if (rs == NULL) {
        goto nomem;
    }

    for (i = 0; i < n; i++) {
        seg = &pj->segs[i];
        seg->pj = pj;

        host = &script->hosts[script->segments[i].speaker
                              < script->nhosts
                              ? script->segments[i].speaker : 0];

        voice_name = host->voice;

        if (voice_name == NULL) {
            voice_name = ngx_http_podgen_podcast_voices[
                             (host - script->hosts)
                             % (sizeof(ngx_http_podgen_podcast_voices)
                                / sizeof(char *))];
        }

        seg->voice = ngx_http_podgen_find_voice(pmcf, voice_name);
        if (seg->voice == NULL) {
            ngx_free(rs);
            ngx_http_podgen_job_fail(job, "invalid_value",
                                     "a host's voice is not known here");
            return;
        }

        t = script->segments[i].text;
        seg->text = pg_text_normalize(t, ngx_strlen(t), &len);

        if (seg->text == NULL) {
            ngx_free(rs);
            goto nomem;
        }

        if (len == 0) {
            ngx_free(rs);
            ngx_http_podgen_job_fail(job, "invalid_value",
                                     "a segment has nothing to say");
            return;
        }

        seg->len = len;

        if (ngx_http_podgen_speech_key(seg->voice, PG_FMT_WAV,
                                       job->rec.speed, seg->text, seg->len,
                                       seg->key)
            != NGX_OK)
        {
            ngx_free(rs);
            goto nomem;
        }

        rs[i].speaker = host->name;
        rs[i].voice = voice_name;
        rs[i].text = t;
        rs[i].audio_key = seg->key;
        rs[i].chapter = script->segments[i].chapter;
        rs[i].start = -1;
        rs[i].end = -1;
    }

    /* a cost bound before any synthesis: the episode's length */

    for (i = 0, audio = 0; i < n; i++) {
        audio += ngx_http_podgen_tts_estimate(pj->segs[i].text,
                                              pj->segs[i].len,
                                              job->rec.speed);
    }

    if (pmcf->max_audio && audio > (double) pmcf->max_audio) {
        ngx_free(rs);
        ngx_snprintf((u_char *) msg, sizeof(msg),
                     "the episode would last about %.0f minutes; the most "
                     "is %.0f (podgen_max_audio)%Z", audio / 60,
                     (double) pmcf->max_audio / 60);
        ngx_http_podgen_job_fail(job, "audio_too_long", msg);
        return;
    }

    if (pg_job_set_segments(&job->rec, rs, n) != 0) {
        ngx_free(rs);
        goto nomem;
    }

    ngx_free(rs);

    job->rec.done = 0;
    job->rec.total = n;

    ngx_http_podgen_job_write(job);
    ngx_http_podgen_podcast_pump(pj);

    return;

nomem:

    ngx_http_podgen_job_fail(job, "server_error", "out of memory");
}


static void
ngx_http_podgen_podcast_pump(ngx_http_podgen_podcast_job_t *pj)
{
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    ngx_pool_t                     *pool;
    ngx_http_podgen_job_t          *job;
    ngx_http_podgen_audio_t         hit;
    ngx_http_podgen_podcast_seg_t  *seg;
    ngx_http_podgen_main_conf_t    *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_podgen_module);
    job = pj->job;

    for (i = 0; i < pj->nsegs; i++) {

        if (job->finished || job->retry.timer_set
            || pj->active >= NGX_HTTP_PODGEN_PODCAST_WINDOW)
        {
            return;
        }

        seg = &pj->segs[i];

        if (seg->state != 0) {
            continue;
        }

        pool = ngx_create_pool(1024, job->log);
        if (pool == NULL) {
            ngx_http_podgen_job_fail(job, "server_error", "out of memory");
            return;
        }

        /* done() may be called before audio_make() returns */

        seg->state = 1;
        pj->active++;

        rc = ngx_http_podgen_audio_make(pmcf, seg->voice, PG_FMT_WAV,
                                        job->rec.speed, seg->text, seg->len,
                                        pool, ngx_http_podgen_podcast_seg_done,
                                        seg, job->log, &hit, &seg->make);

        if (rc == NGX_OK) {
            ngx_http_podgen_podcast_seg_done(seg, NGX_OK, &hit, NULL);

        } else if (rc == NGX_ERROR) {
            seg->state = 0;
            pj->active--;
            ngx_http_podgen_job_fail(job, "server_error",
                                     "a segment could not be started");
        }

        ngx_destroy_pool(pool);
    }
}


static void
ngx_http_podgen_podcast_seg_done(void *data, ngx_int_t rc,
    ngx_http_podgen_audio_t *audio, pg_error_t *err)
{
    ngx_http_podgen_podcast_seg_t  *seg = data;

    ngx_http_podgen_job_t          *job;
    ngx_http_podgen_podcast_job_t  *pj;

    pj = seg->pj;
    job = pj->job;
    seg->make = NULL;
    pj->active--;

    if (rc != NGX_OK) {
        seg->state = 0;

        if (err->status == 503) {
            /* the pool is full: this segment again, a little later */

            if (!job->retry.timer_set) {
                ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOB_RETRY);
            }

            return;
        }

        ngx_http_podgen_job_fail(job, err->code, err->message);
        return;
    }

    seg->state = 2;

    seg->wav = ngx_alloc(audio->len, job->log);
    if (seg->wav == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    ngx_memcpy(seg->wav, audio->audio, audio->len);
    seg->wav_len = audio->len;

    if (ngx_http_podgen_podcast_seg_words(seg, audio) != NGX_OK) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    job->rec.done++;

    if (job->rec.done == pj->nsegs) {
        ngx_http_podgen_podcast_render(pj);
        return;
    }

    ngx_http_podgen_job_write(job);
    ngx_http_podgen_podcast_pump(pj);
}


/*
 * The words' timings the segment's WAV artifact carries go to the record's
 * segment, in seconds from its start: the transcript places them in the
 * episode once it is rendered.  An artifact without them (made by an
 * older version) gives no words.
 */

static ngx_int_t
ngx_http_podgen_podcast_seg_words(ngx_http_podgen_podcast_seg_t *seg,
    ngx_http_podgen_audio_t *audio)
{
    int                     rate;
    size_t                  i, k;
    pg_words_t              ws;
    pg_word_t              *w;
    pg_job_word_t          *jw;
    ngx_http_podgen_job_t  *job;

    job = seg->pj->job;
    i = seg - seg->pj->segs;

    if (i >= job->rec.nsegments) {
        return NGX_OK;
    }

    ngx_memzero(&ws, sizeof(pg_words_t));
    rate = 0;

    if (pg_wav_words(audio->audio, audio->len, &ws, &rate) != 0
        || ws.n == 0 || rate <= 0)
    {
        if (ws.n) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "podgen: segment %uz: its word timings are "
                          "malformed", i);
        }

        pg_words_free(&ws);
        return NGX_OK;
    }

    jw = ngx_calloc(ws.n * sizeof(pg_job_word_t), job->log);
    if (jw == NULL) {
        pg_words_free(&ws);
        return NGX_ERROR;
    }

    for (k = 0; k < ws.n; k++) {
        w = &ws.words[k];

        /* NUL-terminated in place: the text is ours */
        jw[k].word = ngx_alloc(w->len + 1, job->log);
        if (jw[k].word == NULL) {
            break;
        }

        ngx_memcpy(jw[k].word, ws.text + w->off, w->len);
        jw[k].word[w->len] = '\0';
        jw[k].start = (double) w->start / rate;
        jw[k].end = (double) w->end / rate;
    }

    if (k == ws.n
        && pg_job_set_words(&job->rec.segments[i], jw, ws.n) != 0)
    {
        k = 0;
    }

    for (i = 0; i < ws.n && jw[i].word; i++) {
        ngx_free(jw[i].word);
    }

    ngx_free(jw);

    if (k != ws.n) {
        pg_words_free(&ws);
        return NGX_ERROR;
    }

    pg_words_free(&ws);

    return NGX_OK;
}


/* ---- the episode -------------------------------------------------------- */


static void
ngx_http_podgen_podcast_render_thread(void *data)
{
    ngx_http_podgen_podcast_render_t  *rd = data;

    pg_buf_t  out;
    char      ext[8];

    ngx_memzero(&out, sizeof(pg_buf_t));

    if (pg_episode_render(rd->parts, rd->n, 0, NGX_HTTP_PODGEN_PODCAST_PAUSE,
                          rd->format, &out, rd->spans, &rd->duration,
                          rd->error, sizeof(rd->error))
        != 0)
    {
        rd->rc = -1;
        pg_buf_free(&out);
        return;
    }

    ngx_sprintf((u_char *) ext, ".%s%Z", pg_format_name(rd->format));

    if (ngx_http_podgen_job_store_episode(rd->id, ext, out.data, out.len,
                                          rd->error, sizeof(rd->error))
        != NGX_OK)
    {
        rd->rc = -1;
        pg_buf_free(&out);
        return;
    }

    rd->bytes = out.len;
    rd->rc = 0;

    if (rd->keep) {
        rd->out = out;
        return;
    }

    pg_buf_free(&out);
}


static void
ngx_http_podgen_podcast_render_after(void *data)
{
    ngx_http_podgen_podcast_render_t  *rd = data;

    size_t                          i;
    ngx_http_podgen_job_t          *job;
    ngx_http_podgen_podcast_job_t  *pj;

    pj = rd->pj;
    job = pj->job;
    pj->rendering = 0;

    if (job->finished) {
        /* deleted meanwhile */
        ngx_http_podgen_job_release(job);
        return;
    }

    if (rd->rc != 0) {
        ngx_http_podgen_job_fail(job, "render_error", rd->error);
        return;
    }

    for (i = 0; i < rd->n && i < job->rec.nsegments; i++) {
        job->rec.segments[i].start = rd->spans[i].start;
        job->rec.segments[i].end = rd->spans[i].end;
    }

    job->rec.duration_s = rd->duration;
    job->rec.audio_bytes = rd->bytes;

    if (rd->keep && rd->out.len) {
        /* other nodes serve the episode from Redis */
        ngx_http_podgen_job_redis_episode(job->rec.id, rd->out.data,
                                          rd->out.len);
    }

    for (i = 0; i < pj->nsegs; i++) {
        ngx_free(pj->segs[i].wav);
        pj->segs[i].wav = NULL;
    }

    ngx_http_podgen_job_complete(job, NULL, 0);
}


static void
ngx_http_podgen_podcast_render_release(void *data)
{
    ngx_http_podgen_podcast_render_t  *rd = data;

    /* after() has run: the task is never detached */

    pg_buf_free(&rd->out);
    ngx_free(rd->parts);
    ngx_free(rd->spans);
    ngx_free(rd);
}


static void
ngx_http_podgen_podcast_render(ngx_http_podgen_podcast_job_t *pj)
{
    size_t                             i;
    pg_format_t                        format;
    ngx_http_podgen_job_t             *job;
    ngx_http_podgen_podcast_render_t  *rd;
    ngx_http_podgen_main_conf_t       *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_podgen_module);
    job = pj->job;

    format = pg_format_from_name(job->rec.format,
                                 job->rec.format
                                 ? ngx_strlen(job->rec.format) : 0);
    if (format == PG_FMT_UNKNOWN || format == PG_FMT_AAC) {
        ngx_http_podgen_job_fail(job, "invalid_value", "unknown format");
        return;
    }

    rd = ngx_calloc(sizeof(ngx_http_podgen_podcast_render_t), job->log);
    if (rd == NULL) {
        goto nomem;
    }

    rd->parts = ngx_calloc(pj->nsegs * sizeof(pg_episode_part_t), job->log);
    rd->spans = ngx_calloc(pj->nsegs * sizeof(pg_episode_span_t), job->log);

    if (rd->parts == NULL || rd->spans == NULL) {
        ngx_free(rd->parts);
        ngx_free(rd->spans);
        ngx_free(rd);
        goto nomem;
    }

    for (i = 0; i < pj->nsegs; i++) {
        rd->parts[i].wav = pj->segs[i].wav;
        rd->parts[i].len = pj->segs[i].wav_len;
    }

    rd->pj = pj;
    rd->n = pj->nsegs;
    rd->format = format;
    rd->keep = ngx_http_podgen_jobs_shared();
    ngx_memcpy(rd->id, job->rec.id, sizeof(rd->id));

    /* the progress record goes out while the episode is made */
    ngx_http_podgen_job_write(job);

    if (ngx_http_podgen_offload(pmcf->thread_pool,
                                ngx_http_podgen_podcast_render_thread,
                                ngx_http_podgen_podcast_render_after,
                                ngx_http_podgen_podcast_render_release, rd,
                                job->log)
        == NULL)
    {
        /* the pool is full: a little later */
        ngx_free(rd->parts);
        ngx_free(rd->spans);
        ngx_free(rd);

        pj->render_again = 1;

        if (!job->retry.timer_set) {
            ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOB_RETRY);
        }

        return;
    }

    pj->rendering = 1;
    return;

nomem:

    ngx_http_podgen_job_fail(job, "server_error", "out of memory");
}
