/*
 * podgen: podcast jobs — the kind of job that makes an episode.
 *
 * The script (as given, or written through the script maker), then every
 * segment's audio as wav through the audio maker (each segment an
 * artifact of its own, in L1 and L2), a few at a time, each written to
 * {store}/parts on the thread pool as it comes (the job keeps none of
 * them), then the episode rendered on the pool from those files, one at a
 * time, into a temporary file renamed into place when whole; in Redis
 * mode that file goes to Redis in 1 MB pieces before the job completes.
 * The runner writes the record after every step: running, each segment
 * done, completed or failed.
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
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_podcast_job.h"


#define NGX_HTTP_PODGEN_PODCAST_WINDOW  3       /* segments made at once */
#define NGX_HTTP_PODGEN_PODCAST_PAUSE   0.35    /* s between segments */
#define NGX_HTTP_PODGEN_PODCAST_PIECE   (1024 * 1024)   /* to Redis */
#define NGX_HTTP_PODGEN_VOICE_LUFS      -20.0   /* each voice's level */


typedef struct ngx_http_podgen_podcast_job_s  ngx_http_podgen_podcast_job_t;

typedef struct {
    ngx_http_podgen_podcast_job_t  *pj;
    ngx_http_podgen_voice_t        *voice;
    char                           *text;        /* normalized */
    size_t                          len;
    u_char                         *wav;         /* to be written */
    size_t                          wav_len;
    ngx_http_podgen_audio_make_t   *make;
    ngx_uint_t                      state;       /* 0 to do, 1 making,
                                                    2 done (in parts/),
                                                    3 writing, 4 to write */
    ngx_uint_t                      index;
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
    ngx_uint_t                      writing;     /* segments on the pool */
    ngx_http_podgen_redis_op_t     *op;          /* the episode to Redis */
    void                           *rd;          /* the render on the pool */
    unsigned                        rendering:1;
    unsigned                        render_again:1;
    unsigned                        uploading:1;
};


/* a segment's audio to parts/ on the pool */
typedef struct {
    ngx_http_podgen_podcast_seg_t  *seg;
    ngx_int_t                       rc;
    char                            id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_podcast_save_t;


/* the episode, rendered and written on the pool */
typedef struct {
    ngx_http_podgen_podcast_job_t  *pj;
    pg_episode_span_t              *spans;
    double                         *gains;
    size_t                          n;
    pg_format_t                     format;
    pg_episode_opts_t               opts;
    pg_episode_loudness_t           loud;
    double                          duration;
    uint64_t                        bytes;
    int                             rc;
    int                             fd;
    int                             canceled;  /* set by the event loop */
    char                            id[PG_JOB_ID_LEN + 1];
    char                            error[128];
} ngx_http_podgen_podcast_render_t;


/* the episode to Redis: a piece read on the pool, then APPENDed */
typedef struct {
    ngx_http_podgen_podcast_job_t  *pj;
    off_t                           off;
    off_t                           size;
    u_char                         *piece;
    ssize_t                         len;
    char                            path[NGX_MAX_PATH];
    char                            key[sizeof("%Pepisode:.tmp")
                                        + PG_JOB_ID_LEN];
} ngx_http_podgen_podcast_upload_t;


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
static void ngx_http_podgen_podcast_save(ngx_http_podgen_podcast_seg_t *seg);
static void ngx_http_podgen_podcast_render(ngx_http_podgen_podcast_job_t *pj);
static void ngx_http_podgen_podcast_upload(ngx_http_podgen_podcast_job_t *pj);
static void ngx_http_podgen_podcast_upload_next(
    ngx_http_podgen_podcast_upload_t *up);
static void ngx_http_podgen_podcast_upload_end(
    ngx_http_podgen_podcast_upload_t *up, ngx_uint_t ok);
static double ngx_http_podgen_podcast_voice_gain(
    ngx_http_podgen_voice_t *voice);


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

    /* a render stops at its next part or piece, an upload at its next
     * step (job->finished) */

    if (pj->rd) {
        __atomic_store_n(
            &((ngx_http_podgen_podcast_render_t *) pj->rd)->canceled, 1,
            __ATOMIC_RELAXED);
    }
}


static void
ngx_http_podgen_podcast_job_retry(ngx_http_podgen_job_t *job)
{
    ngx_uint_t                      i;
    ngx_http_podgen_podcast_job_t  *pj = job->ctx;

    for (i = 0; i < pj->nsegs; i++) {
        if (pj->segs[i].state == 4) {
            ngx_http_podgen_podcast_save(&pj->segs[i]);

            if (job->retry.timer_set) {
                return;
            }
        }
    }

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

    return pj->rendering || pj->writing || pj->uploading;
}


static void
ngx_http_podgen_podcast_parts_thread(void *data)
{
    char  *id = data;

    ngx_http_podgen_job_store_remove_parts(id, 0);
}


static void
ngx_http_podgen_podcast_parts_after(void *data)
{
    /* nobody waits for it */
}


static void
ngx_http_podgen_podcast_parts_release(void *data)
{
    ngx_free(data);
}


static void
ngx_http_podgen_podcast_job_free(ngx_http_podgen_job_t *job)
{
    char                           *id;
    ngx_uint_t                      i, saved;
    ngx_http_podgen_podcast_job_t  *pj = job->ctx;
    ngx_http_podgen_main_conf_t    *pmcf;

    /* segments a failed or deleted job left in parts/ (or the scan will) */

    for (i = 0, saved = 0; i < pj->nsegs; i++) {
        saved |= (pj->segs[i].state == 2);
    }

    if (saved && job->rec.status != PG_JOB_COMPLETED) {
        pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_podgen_module);
        id = ngx_alloc(PG_JOB_ID_LEN + 1, job->log);

        if (id) {
            ngx_memcpy(id, job->rec.id, PG_JOB_ID_LEN + 1);

            if (ngx_http_podgen_offload(pmcf->thread_pool,
                                        ngx_http_podgen_podcast_parts_thread,
                                        ngx_http_podgen_podcast_parts_after,
                                        ngx_http_podgen_podcast_parts_release,
                                        id, job->log)
                == NULL)
            {
                ngx_free(id);
            }
        }
    }

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
        seg->index = i;

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


static ngx_uint_t
ngx_http_podgen_podcast_unsaved(ngx_http_podgen_podcast_job_t *pj)
{
    ngx_uint_t  i, n;

    for (i = 0, n = 0; i < pj->nsegs; i++) {
        n += (pj->segs[i].state == 4);
    }

    return n;
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

        /*
         * Segments being made and segments on their way to parts/ (cached
         * ones come at once) are bounded together: the job holds at most
         * the window's audio.
         */

        if (job->finished || job->retry.timer_set
            || pj->active + pj->writing + ngx_http_podgen_podcast_unsaved(pj)
               >= NGX_HTTP_PODGEN_PODCAST_WINDOW)
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

    seg->wav = ngx_alloc(audio->len, job->log);
    if (seg->wav == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    ngx_memcpy(seg->wav, audio->audio, audio->len);
    seg->wav_len = audio->len;
    seg->state = 4;

    if (ngx_http_podgen_podcast_seg_words(seg, audio) != NGX_OK) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    ngx_http_podgen_podcast_save(seg);
    ngx_http_podgen_podcast_pump(pj);
}


/* ---- a segment to parts/ ------------------------------------------------ */


static void
ngx_http_podgen_podcast_save_thread(void *data)
{
    ngx_http_podgen_podcast_save_t  *sv = data;

    sv->rc = ngx_http_podgen_job_store_part(sv->id, sv->seg->index,
                                            sv->seg->wav, sv->seg->wav_len);
    if (sv->rc != NGX_OK) {
        sv->rc = errno ? errno : EIO;
    }
}


static void
ngx_http_podgen_podcast_save_after(void *data)
{
    ngx_http_podgen_podcast_save_t  *sv = data;

    u_char                          msg[160];
    ngx_http_podgen_job_t          *job;
    ngx_http_podgen_podcast_seg_t  *seg;
    ngx_http_podgen_podcast_job_t  *pj;

    seg = sv->seg;
    pj = seg->pj;
    job = pj->job;

    pj->writing--;
    ngx_free(seg->wav);
    seg->wav = NULL;

    if (job->finished) {
        seg->state = 0;
        ngx_http_podgen_job_release(job);
        return;
    }

    if (sv->rc != NGX_OK) {
        seg->state = 0;
        ngx_snprintf(msg, sizeof(msg), "a segment could not be stored: "
                     "%s%Z", strerror(sv->rc));
        ngx_http_podgen_job_fail(job, "server_error", (char *) msg);
        return;
    }

    seg->state = 2;
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


static void
ngx_http_podgen_podcast_save_release(void *data)
{
    ngx_free(data);
}


static void
ngx_http_podgen_podcast_save(ngx_http_podgen_podcast_seg_t *seg)
{
    ngx_http_podgen_job_t           *job;
    ngx_http_podgen_podcast_save_t  *sv;
    ngx_http_podgen_main_conf_t     *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_podgen_module);
    job = seg->pj->job;

    sv = ngx_calloc(sizeof(ngx_http_podgen_podcast_save_t), job->log);
    if (sv == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    sv->seg = seg;
    ngx_memcpy(sv->id, job->rec.id, sizeof(sv->id));

    if (ngx_http_podgen_offload(pmcf->thread_pool,
                                ngx_http_podgen_podcast_save_thread,
                                ngx_http_podgen_podcast_save_after,
                                ngx_http_podgen_podcast_save_release, sv,
                                job->log)
        == NULL)
    {
        /* the pool is full: the audio waits (one segment), a little */
        ngx_free(sv);

        if (!job->retry.timer_set) {
            ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOB_RETRY);
        }

        return;
    }

    seg->state = 3;
    seg->pj->writing++;
}


/* ---- the episode -------------------------------------------------------- */


typedef struct {
    ngx_http_podgen_podcast_render_t  *rd;
    u_char                            *wav;
} ngx_http_podgen_podcast_io_t;


static int
ngx_http_podgen_podcast_get_part(void *data, size_t i,
    pg_episode_part_t *part, char *errbuf, size_t errlen)
{
    ngx_http_podgen_podcast_io_t  *io = data;

    size_t  len;

    if (__atomic_load_n(&io->rd->canceled, __ATOMIC_RELAXED)
        || ngx_http_podgen_job_store_deleted(io->rd->id))
    {
        ngx_snprintf((u_char *) errbuf, errlen, "deleted%Z");
        return -1;
    }

    if (ngx_http_podgen_job_store_read_part(io->rd->id, i, &io->wav, &len,
                                            errbuf, errlen)
        != NGX_OK)
    {
        return -1;
    }

    part->wav = io->wav;
    part->len = len;

    return 0;
}


static void
ngx_http_podgen_podcast_put_part(void *data, size_t i,
    pg_episode_part_t *part, int last)
{
    ngx_http_podgen_podcast_io_t  *io = data;

    free(io->wav);
    io->wav = NULL;

    if (last) {
        /* encoded: the disk holds about one episode at a time */
        ngx_http_podgen_job_store_remove_part(io->rd->id, i);
    }
}


static int
ngx_http_podgen_podcast_write(void *data, uint64_t off,
    const unsigned char *p, size_t len)
{
    ngx_http_podgen_podcast_io_t  *io = data;

    ssize_t  n;

    /* a piece is 256 KB: a DELETE on any worker stops the render soon */

    if (__atomic_load_n(&io->rd->canceled, __ATOMIC_RELAXED)
        || ngx_http_podgen_job_store_deleted(io->rd->id))
    {
        return -1;
    }

    while (len) {
        n = pwrite(io->rd->fd, p, len, (off_t) off);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        p += n;
        off += n;
        len -= n;
    }

    return 0;
}


static void
ngx_http_podgen_podcast_render_thread(void *data)
{
    ngx_http_podgen_podcast_render_t  *rd = data;

    int                            rc;
    char                           ext[8];
    pg_episode_io_t                eio;
    ngx_http_podgen_podcast_io_t   io;

    ngx_sprintf((u_char *) ext, ".%s%Z", pg_format_name(rd->format));

    rd->rc = -1;
    rd->fd = ngx_http_podgen_job_store_episode_open(rd->id, ext, rd->error,
                                                   sizeof(rd->error));
    if (rd->fd == -1) {
        goto done;
    }

    io.rd = rd;
    io.wav = NULL;

    eio.get = ngx_http_podgen_podcast_get_part;
    eio.put = ngx_http_podgen_podcast_put_part;
    eio.write = ngx_http_podgen_podcast_write;
    eio.data = &io;

    rc = pg_episode_render_files(&eio, rd->n, 0,
                                 NGX_HTTP_PODGEN_PODCAST_PAUSE, rd->format,
                                 &rd->opts, &rd->bytes, rd->spans,
                                 &rd->duration, &rd->loud, rd->error,
                                 sizeof(rd->error));

    if (ngx_http_podgen_job_store_episode_done(rd->id, ext, rd->fd, rc == 0,
                                               rd->error, sizeof(rd->error))
        == NGX_OK)
    {
        rd->rc = 0;
    }

done:

    /* made or not, the segments are not needed any more */
    ngx_http_podgen_job_store_remove_parts(rd->id, rd->n);
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
    pj->rd = NULL;

    for (i = 0; i < pj->nsegs; i++) {
        /* gone from parts/ */
        pj->segs[i].state = 1;
    }

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
    job->rec.audio_bytes = (size_t) rd->bytes;

    job->rec.loudness = rd->loud.measured;

    if (rd->loud.measured) {
        job->rec.loudness_lufs = rd->loud.integrated_lufs;
        job->rec.loudness_peak = rd->loud.true_peak_dbtp;
        job->rec.loudness_gain = rd->loud.gain_db;
    }

    if (ngx_http_podgen_jobs_shared()) {
        /* other nodes serve the episode from Redis: it goes first */
        ngx_http_podgen_podcast_upload(pj);
        return;
    }

    ngx_http_podgen_job_complete(job, NULL, 0);
}


static void
ngx_http_podgen_podcast_render_release(void *data)
{
    ngx_http_podgen_podcast_render_t  *rd = data;

    /* after() has run: the task is never detached */

    ngx_free(rd->spans);
    ngx_free(rd->gains);
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

    rd->spans = ngx_calloc(pj->nsegs * sizeof(pg_episode_span_t), job->log);
    rd->gains = ngx_calloc(pj->nsegs * sizeof(double), job->log);

    if (rd->spans == NULL || rd->gains == NULL) {
        ngx_free(rd->spans);
        ngx_free(rd->gains);
        ngx_free(rd);
        goto nomem;
    }

    /* each voice at one level, then the episode at the target */

    for (i = 0; i < pj->nsegs; i++) {
        rd->gains[i] = ngx_http_podgen_podcast_voice_gain(pj->segs[i].voice);
    }

    rd->pj = pj;
    rd->n = pj->nsegs;
    rd->format = format;
    rd->fd = -1;
    rd->opts.loudness = (pmcf->loudness == 1);
    rd->opts.target_lufs = pmcf->loudness_lufs;
    rd->opts.peak_dbtp = pmcf->loudness_peak;
    rd->opts.gain_db = rd->gains;
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
        ngx_free(rd->spans);
        ngx_free(rd->gains);
        ngx_free(rd);

        pj->render_again = 1;

        if (!job->retry.timer_set) {
            ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOB_RETRY);
        }

        return;
    }

    pj->rendering = 1;
    pj->rd = rd;
    return;

nomem:

    ngx_http_podgen_job_fail(job, "server_error", "out of memory");
}


/* ---- the episode to Redis, in pieces ------------------------------------ */

/*
 * {prefix}episode:{id}.tmp is made with APPENDs of 1 MB read from the
 * file on the pool, one at a time (each sent when the last is answered),
 * with an hour's TTL while it grows, then renamed to {prefix}episode:{id}
 * (and the TTL removed): a node never reads half an episode, and neither
 * the worker nor its Redis connection holds more than a piece.  The job
 * completes after the RENAME is sent (the record's write follows it on the
 * same connection), or at once if Redis fails (the episode is then this
 * node's only, as a SET that failed left it).
 */

static void
ngx_http_podgen_podcast_upload(ngx_http_podgen_podcast_job_t *pj)
{
    char                               ext[8];
    ngx_http_podgen_job_t             *job;
    ngx_http_podgen_podcast_upload_t  *up;

    job = pj->job;

    up = ngx_calloc(sizeof(ngx_http_podgen_podcast_upload_t), job->log);
    if (up == NULL) {
        ngx_http_podgen_job_complete(job, NULL, 0);
        return;
    }

    up->pj = pj;
    up->size = (off_t) job->rec.audio_bytes;

    ngx_sprintf((u_char *) ext, ".%s%Z", job->rec.format);
    ngx_http_podgen_job_path(up->path, "audio", job->rec.id, ext);
    ngx_sprintf((u_char *) up->key, "%%Pepisode:%s.tmp%Z", job->rec.id);

    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 2, "DEL", up->key);

    pj->uploading = 1;

    ngx_http_podgen_podcast_upload_next(up);
}


static void
ngx_http_podgen_podcast_upload_thread(void *data)
{
    ngx_http_podgen_podcast_upload_t  *up = data;

    int     fd;
    size_t  want, got;
    ssize_t n;

    want = up->size - up->off;
    if (want > NGX_HTTP_PODGEN_PODCAST_PIECE) {
        want = NGX_HTTP_PODGEN_PODCAST_PIECE;
    }

    up->len = -1;
    up->piece = malloc(want ? want : 1);

    fd = open(up->path, O_RDONLY | O_CLOEXEC);

    if (fd == -1 || up->piece == NULL) {
        goto done;
    }

    for (got = 0; got < want; got += n) {
        n = pread(fd, up->piece + got, want - got, up->off + got);

        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            goto done;
        }
    }

    up->len = got;

done:

    if (fd != -1) {
        (void) close(fd);
    }
}


static void
ngx_http_podgen_podcast_upload_appended(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_podcast_upload_t  *up = data;

    up->pj->op = NULL;

    if (rc != NGX_OK || reply->type != NGX_HTTP_PODGEN_REDIS_INTEGER
        || reply->integer != (int64_t) up->off)
    {
        ngx_http_podgen_podcast_upload_end(up, 0);
        return;
    }

    ngx_http_podgen_podcast_upload_next(up);
}


static void
ngx_http_podgen_podcast_upload_after(void *data)
{
    ngx_http_podgen_podcast_upload_t  *up = data;

    const char  *argv[3];
    size_t       argvlen[3];

    if (up->pj->job->finished || up->len <= 0) {
        ngx_http_podgen_podcast_upload_end(up, 0);
        return;
    }

    argv[0] = "APPEND";
    argv[1] = up->key;
    argv[2] = (char *) up->piece;
    argvlen[0] = 6;
    argvlen[1] = ngx_strlen(up->key);
    argvlen[2] = up->len;

    up->off += up->len;

    /* hiredis copies the command: the piece goes now */

    up->pj->op = ngx_http_podgen_redis_command(
                     ngx_http_podgen_podcast_upload_appended, up, 3, argv,
                     argvlen, 0);

    free(up->piece);
    up->piece = NULL;

    if (up->pj->op == NULL) {
        ngx_http_podgen_podcast_upload_end(up, 0);
        return;
    }

    if (up->off == up->len) {
        /* a node that dies in the middle leaves no key for ever */
        (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 3, "PEXPIRE",
                                             up->key, "3600000");
    }
}


static void
ngx_http_podgen_podcast_upload_release(void *data)
{
    /* the upload goes on (or ended) in after() */
}


static void
ngx_http_podgen_podcast_upload_next(ngx_http_podgen_podcast_upload_t *up)
{
    ngx_http_podgen_job_t        *job;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_podgen_module);
    job = up->pj->job;

    if (job->finished) {
        ngx_http_podgen_podcast_upload_end(up, 0);
        return;
    }

    if (up->off >= up->size) {
        ngx_http_podgen_podcast_upload_end(up, 1);
        return;
    }

    if (ngx_http_podgen_offload(pmcf->thread_pool,
                                ngx_http_podgen_podcast_upload_thread,
                                ngx_http_podgen_podcast_upload_after,
                                ngx_http_podgen_podcast_upload_release, up,
                                job->log)
        == NULL)
    {
        ngx_http_podgen_podcast_upload_end(up, 0);
    }
}


static void
ngx_http_podgen_podcast_upload_end(ngx_http_podgen_podcast_upload_t *up,
    ngx_uint_t ok)
{
    char                            key[sizeof("%Pepisode:")
                                        + PG_JOB_ID_LEN];
    ngx_http_podgen_job_t          *job;
    ngx_http_podgen_podcast_job_t  *pj;

    pj = up->pj;
    job = pj->job;

    free(up->piece);

    if (ok) {
        ngx_sprintf((u_char *) key, "%%Pepisode:%s%Z", job->rec.id);
        (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 3, "RENAME",
                                             up->key, key);

        /* the episode is kept like its record (RENAME keeps the TTL) */
        (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 2, "PERSIST",
                                             key);

    } else {
        (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 2, "DEL",
                                             up->key);

        if (!job->finished) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "podgen: job \"%s\": the episode could not be "
                          "copied to redis", job->rec.id);
        }
    }

    ngx_free(up);
    pj->uploading = 0;

    if (job->finished) {
        ngx_http_podgen_job_release(job);
        return;
    }

    ngx_http_podgen_job_complete(job, NULL, 0);
}


/* ---- loudness ----------------------------------------------------------- */


/*
 * The built-in voices' loudness, measured (bench/voice-loudness.pl: the
 * same text by each, ffmpeg's ebur128 on the wav): each gets the gain that
 * brings its speech to -20 LUFS before the episode is normalised.  Other
 * voices (a .flitevox) get none.
 */

static struct {
    const char  *name;
    double       lufs;
} ngx_http_podgen_podcast_voice_lufs[] = {
    { "slt",   -16.1 },
    { "rms",   -21.6 },
    { "awb",   -20.6 },
    { "kal",   -20.8 },
    { "kal16", -28.8 },
    { NULL, 0 }
};


static double
ngx_http_podgen_podcast_voice_gain(ngx_http_podgen_voice_t *voice)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_podgen_podcast_voice_lufs[i].name; i++) {
        if (voice->name.len
                == ngx_strlen(ngx_http_podgen_podcast_voice_lufs[i].name)
            && ngx_strncmp(voice->name.data,
                           ngx_http_podgen_podcast_voice_lufs[i].name,
                           voice->name.len)
               == 0)
        {
            return NGX_HTTP_PODGEN_VOICE_LUFS
                   - ngx_http_podgen_podcast_voice_lufs[i].lufs;
        }
    }

    return 0;
}


/* podgen_loudness -16 [peak=-1] | off */

char *
ngx_http_podgen_podcast_loudness(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_podgen_main_conf_t *pmcf = conf;

    double      v;
    char       *end, buf[32];
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (pmcf->loudness != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        pmcf->loudness = 0;
        return NGX_CONF_OK;
    }

    pmcf->loudness = 1;

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1 && ngx_strncmp(value[i].data, "peak=", 5) == 0) {
            value[i].data += 5;
            value[i].len -= 5;
        } else if (i > 1) {
            return "has an unknown parameter (peak= is known)";
        }

        if (value[i].len == 0 || value[i].len >= sizeof(buf)) {
            goto invalid;
        }

        ngx_memcpy(buf, value[i].data, value[i].len);
        buf[value[i].len] = '\0';

        v = strtod(buf, &end);

        if (*end != '\0') {
            goto invalid;
        }

        if (i == 1) {
            if (!(v >= -70 && v <= 0)) {
                return "takes a target from -70 to 0 (LUFS)";
            }

            pmcf->loudness_lufs = v;

        } else {
            if (!(v >= -20 && v <= 0)) {
                return "takes a peak= from -20 to 0 (dBTP)";
            }

            pmcf->loudness_peak = v;
        }
    }

    return NGX_CONF_OK;

invalid:

    return "takes a target in LUFS and peak= in dBTP, or off";
}
