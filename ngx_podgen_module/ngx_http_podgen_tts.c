/*
 * podgen: speech jobs on the nginx thread pool (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <time.h>

#include "pg_text.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_metrics.h"


typedef struct {
    ngx_thread_task_t            task;
    ngx_http_podgen_tts_job_t   *job;
    char                        *text;      /* NUL-terminated */
    pg_pcm_t                     pcm;
    pg_words_t                   words;     /* from its first sample */
    double                       seconds;   /* flite time, by the thread */
    int                          rc;        /* written by the thread */
    unsigned                     done:1;    /* written by the event loop */
} ngx_http_podgen_tts_chunk_t;


struct ngx_http_podgen_tts_job_s {
    ngx_http_podgen_tts_conf_t    conf;
    ngx_queue_t                   queue;    /* in ngx_http_podgen_tts_jobs */

    /* the consumer, one per synthesis task on the pool, one per encoder
     * task on the pool, one while calling the consumer */
    ngx_uint_t                    refs;

    char                         *texts;
    ngx_uint_t                    nchunks;
    ngx_http_podgen_tts_chunk_t  *chunks;

    ngx_uint_t                    next_synth;
    ngx_uint_t                    next_encode;
    ngx_uint_t                    in_flight;

    /* the encoder and its output belong to the encoder task while
     * `encoding` is set, to the event loop otherwise */
    ngx_thread_task_t             enc_task;
    pg_enc_t                     *enc;
    pg_buf_t                      out;
    ngx_uint_t                    enc_from;
    ngx_uint_t                    enc_to;
    int                           enc_rc;
    uint64_t                      enc_samples;
    pg_words_t                    words;    /* of what is encoded */

    /* the pool's queue was full with nothing of ours on it: try again */
    ngx_event_t                   retry;

    double                        estimate;     /* s of audio, admitted */

    unsigned                      attached:1;
    unsigned                      encoding:1;
    unsigned                      failed:1;
    unsigned                      complete:1;
    unsigned                      retrying:1;
};


/* live jobs of this worker, to find leaks at exit */
static ngx_queue_t  ngx_http_podgen_tts_jobs;
static ngx_uint_t   ngx_http_podgen_tts_jobs_init;


static void ngx_http_podgen_tts_post_synth(ngx_http_podgen_tts_job_t *job);
static void ngx_http_podgen_tts_synth_thread(void *data, ngx_log_t *log);
static void ngx_http_podgen_tts_synth_done(ngx_event_t *ev);
static void ngx_http_podgen_tts_try_encode(ngx_http_podgen_tts_job_t *job);
static void ngx_http_podgen_tts_encode_thread(void *data, ngx_log_t *log);
static void ngx_http_podgen_tts_encode_done(ngx_event_t *ev);
static void ngx_http_podgen_tts_fail(ngx_http_podgen_tts_job_t *job);
static void ngx_http_podgen_tts_release(ngx_http_podgen_tts_job_t *job);
static void ngx_http_podgen_tts_retry_handler(ngx_event_t *ev);
static void ngx_http_podgen_tts_use_cycle_log(ngx_http_podgen_tts_job_t *job);
static void ngx_http_podgen_tts_retry(ngx_http_podgen_tts_job_t *job);


/* seconds of audio the live jobs of this worker were admitted with */
static double  ngx_http_podgen_tts_pending;


#define NGX_HTTP_PODGEN_TTS_PACE      16.0    /* characters a second */
#define NGX_HTTP_PODGEN_TTS_RATE      50.0    /* s of audio a second */


double
ngx_http_podgen_tts_estimate(const char *text, size_t len, double speed)
{
    size_t  i, n;

    n = len;

    for (i = 0; i < len; i++) {
        if (text[i] >= '0' && text[i] <= '9') {
            n += 5;
        }
    }

    return (double) n / NGX_HTTP_PODGEN_TTS_PACE / (speed > 0 ? speed : 1);
}


ngx_uint_t
ngx_http_podgen_tts_retry_after(void)
{
    /* what is queued, at the pace a worker makes audio (measured: tens of
     * seconds of audio a second on a few threads) */
    return 1 + (ngx_uint_t) (ngx_http_podgen_tts_pending
                             / NGX_HTTP_PODGEN_TTS_RATE);
}


ngx_http_podgen_tts_job_t *
ngx_http_podgen_tts_start(ngx_http_podgen_tts_conf_t *conf, const char *text,
    size_t len, ngx_int_t *rc)
{
    long                          n, i;
    char                         *p;
    double                        estimate;
    pg_span_t                    *spans;
    ngx_http_podgen_tts_job_t    *job;
    ngx_http_podgen_tts_chunk_t  *chunk;

    *rc = NGX_ERROR;

    /* admission: the audio this worker has to make is bounded; a worker
     * with nothing to do takes any job (its length is bounded apart) */

    estimate = ngx_http_podgen_tts_estimate(text, len, conf->speed);

    if (conf->max_queue && ngx_http_podgen_tts_pending > 0
        && ngx_http_podgen_tts_pending + estimate > (double) conf->max_queue)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, conf->log, 0,
                       "podgen tts: %.0f s of audio queued, %.0f s refused",
                       ngx_http_podgen_tts_pending, estimate);
        *rc = NGX_BUSY;
        return NULL;
    }

    n = pg_text_split(text, len, conf->chunk_max, conf->first_chunk_max,
                      &spans);
    if (n <= 0) {
        return NULL;
    }

    job = ngx_calloc(sizeof(ngx_http_podgen_tts_job_t), conf->log);
    if (job == NULL) {
        free(spans);
        return NULL;
    }

    job->conf = *conf;
    job->nchunks = n;
    job->chunks = ngx_calloc(n * sizeof(ngx_http_podgen_tts_chunk_t),
                             conf->log);
    job->texts = ngx_alloc(len + n, conf->log);

    if (job->chunks == NULL || job->texts == NULL) {
        free(spans);
        ngx_free(job->chunks);
        ngx_free(job->texts);
        ngx_free(job);
        return NULL;
    }

    p = job->texts;

    for (i = 0; i < n; i++) {
        chunk = &job->chunks[i];

        chunk->job = job;
        chunk->text = p;
        p = (char *) ngx_cpymem(p, text + spans[i].off, spans[i].len);
        *p++ = '\0';

        chunk->task.ctx = chunk;
        chunk->task.handler = ngx_http_podgen_tts_synth_thread;
        chunk->task.event.handler = ngx_http_podgen_tts_synth_done;
        chunk->task.event.data = chunk;
        chunk->task.event.log = conf->log;
    }

    free(spans);

    job->enc_task.ctx = job;
    job->enc_task.handler = ngx_http_podgen_tts_encode_thread;
    job->enc_task.event.handler = ngx_http_podgen_tts_encode_done;
    job->enc_task.event.data = job;
    job->enc_task.event.log = conf->log;

    job->retry.handler = ngx_http_podgen_tts_retry_handler;
    job->retry.data = job;
    job->retry.log = ngx_cycle->log;

    job->refs = 1;
    job->attached = 1;
    job->estimate = estimate;
    ngx_http_podgen_tts_pending += estimate;

    if (!ngx_http_podgen_tts_jobs_init) {
        ngx_queue_init(&ngx_http_podgen_tts_jobs);
        ngx_http_podgen_tts_jobs_init = 1;
    }

    ngx_queue_insert_tail(&ngx_http_podgen_tts_jobs, &job->queue);

    ngx_http_podgen_tts_post_synth(job);

    if (job->in_flight == 0) {
        /* not even the first sentence got on the pool: it is full */
        *rc = NGX_BUSY;
        job->attached = 0;

        /* a retry timer may still hold it, past the request */
        ngx_http_podgen_tts_use_cycle_log(job);
        ngx_http_podgen_tts_release(job);
        return NULL;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, conf->log, 0,
                   "podgen tts: job %p, %ui chunks", job, job->nchunks);

    *rc = NGX_OK;

    return job;
}


static void
ngx_http_podgen_tts_use_cycle_log(ngx_http_podgen_tts_job_t *job)
{
    ngx_uint_t  i;

    /* the request's log goes away with its connection; tasks still on
     * the pool complete under the cycle's log */

    job->conf.log = ngx_cycle->log;
    job->enc_task.event.log = ngx_cycle->log;

    for (i = 0; i < job->nchunks; i++) {
        job->chunks[i].task.event.log = ngx_cycle->log;
    }
}


void
ngx_http_podgen_tts_rebind(ngx_http_podgen_tts_job_t *job,
    ngx_http_podgen_tts_output_pt output, void *data)
{
    ngx_http_podgen_tts_use_cycle_log(job);

    job->conf.output = output;
    job->conf.data = data;
}


void
ngx_http_podgen_tts_detach(ngx_http_podgen_tts_job_t *job)
{
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, job->conf.log, 0,
                   "podgen tts: job %p detached, %ui in flight, encoding %d",
                   job, job->in_flight, (int) job->encoding);

    ngx_http_podgen_tts_use_cycle_log(job);

    job->attached = 0;
    ngx_http_podgen_tts_release(job);
}


/*
 * At worker exit: a job nobody waits for, with nothing on the pool, should
 * not exist; one with work still on the pool is only finishing late.
 */

void
ngx_http_podgen_tts_exit(ngx_cycle_t *cycle)
{
    ngx_queue_t                *q;
    ngx_http_podgen_tts_job_t  *job;

    if (!ngx_http_podgen_tts_jobs_init) {
        return;
    }

    for (q = ngx_queue_head(&ngx_http_podgen_tts_jobs);
         q != ngx_queue_sentinel(&ngx_http_podgen_tts_jobs);
         q = ngx_queue_next(q))
    {
        job = ngx_queue_data(q, ngx_http_podgen_tts_job_t, queue);

        if (!job->attached && job->in_flight == 0 && !job->encoding) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "podgen: speech job %p leaked (refs %ui)",
                          job, job->refs);

        } else {
            ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                          "podgen: speech job %p still running at exit",
                          job);
        }
    }
}


double
ngx_http_podgen_tts_audio_seconds(ngx_http_podgen_tts_job_t *job)
{
    if (job->conf.voice->rate <= 0) {
        return 0;
    }

    return (double) job->enc_samples / job->conf.voice->rate;
}


/*
 * Keeps up to `parallelism` sentences on the pool, in text order, and no
 * more than a few synthesized sentences waiting for the encoder, so that
 * memory stays bounded whatever the input length.
 */

pg_words_t *
ngx_http_podgen_tts_words(ngx_http_podgen_tts_job_t *job)
{
    return &job->words;
}


ngx_int_t
ngx_http_podgen_tts_finalize(ngx_http_podgen_tts_job_t *job, u_char *audio,
    size_t len)
{
    pg_audio_totals_t  totals;

    /* the encoder is finished and idle: its totals are the event loop's */

    if (job->complete && !job->failed && !job->encoding && job->enc
        && pg_enc_totals(job->enc, &totals) == 0
        && pg_audio_finalize(job->conf.format, audio, len, &totals) == 0)
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, job->conf.log, 0,
                  "podgen: %s audio of %uz bytes could not be made whole",
                  pg_format_name(job->conf.format), len);

    return NGX_ERROR;
}


static void
ngx_http_podgen_tts_post_synth(ngx_http_podgen_tts_job_t *job)
{
    ngx_http_podgen_tts_chunk_t  *chunk;

    while (job->attached
           && !job->failed
           && job->next_synth < job->nchunks
           && job->in_flight < job->conf.parallelism
           && job->next_synth - job->next_encode
              < 4 * job->conf.parallelism + 4)
    {
        chunk = &job->chunks[job->next_synth];

        if (ngx_thread_task_post(job->conf.thread_pool, &chunk->task)
            != NGX_OK)
        {
            /* the queue is full; what is in flight will call us again,
             * or, with nothing in flight, a timer */

            if (job->in_flight == 0 && !job->encoding) {
                ngx_http_podgen_tts_retry(job);
            }

            return;
        }

        job->next_synth++;
        job->in_flight++;
        job->refs++;

        ngx_http_podgen_metrics_thread_queue(1);
    }
}


static void
ngx_http_podgen_tts_synth_thread(void *data, ngx_log_t *log)
{
    ngx_http_podgen_tts_chunk_t  *chunk = data;

    struct timespec             t0, t1;
    ngx_http_podgen_tts_job_t  *job;

    job = chunk->job;

    clock_gettime(CLOCK_MONOTONIC, &t0);

    chunk->rc = pg_tts_synth_words(job->conf.voice, chunk->text,
                                   job->conf.speed, &chunk->pcm,
                                   job->conf.words ? &chunk->words : NULL);

    clock_gettime(CLOCK_MONOTONIC, &t1);

    chunk->seconds = (double) (t1.tv_sec - t0.tv_sec)
                     + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
}


static void
ngx_http_podgen_tts_synth_done(ngx_event_t *ev)
{
    ngx_http_podgen_tts_chunk_t  *chunk = ev->data;

    ngx_http_podgen_tts_job_t  *job;

    job = chunk->job;

    job->in_flight--;
    chunk->done = 1;

    ngx_http_podgen_metrics_thread_queue(-1);

    if (chunk->rc == 0) {
        ngx_http_podgen_metrics_tts(chunk->seconds,
                                    chunk->pcm.rate > 0
                                    ? (double) chunk->pcm.nsamples
                                      / chunk->pcm.rate
                                    : 0);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, job->conf.log, 0,
                   "podgen tts: job %p chunk %ui done, rc %d",
                   job, (ngx_uint_t) (chunk - job->chunks), chunk->rc);

    if (job->attached && !job->failed) {

        if (chunk->rc != 0) {
            ngx_log_error(NGX_LOG_ERR, job->conf.log, 0,
                          "podgen: flite failed on \"%s\"", chunk->text);
            ngx_http_podgen_metrics_error(PG_ERR_TTS);
            ngx_http_podgen_tts_fail(job);

        } else {
            ngx_http_podgen_tts_post_synth(job);
            ngx_http_podgen_tts_try_encode(job);
        }
    }

    ngx_http_podgen_tts_release(job);
}


static void
ngx_http_podgen_tts_try_encode(ngx_http_podgen_tts_job_t *job)
{
    ngx_uint_t  to;

    if (job->encoding || job->failed || job->complete || !job->attached) {
        return;
    }

    for (to = job->next_encode;
         to < job->nchunks && job->chunks[to].done;
         to++)
    {
        /* void */
    }

    if (to == job->next_encode) {
        return;
    }

    job->enc_from = job->next_encode;
    job->enc_to = to;

    if (ngx_thread_task_post(job->conf.thread_pool, &job->enc_task)
        != NGX_OK)
    {
        if (job->in_flight == 0) {
            /* nothing else will come back: a timer will */
            ngx_http_podgen_tts_retry(job);
        }

        return;
    }

    job->encoding = 1;
    job->refs++;

    ngx_http_podgen_metrics_thread_queue(1);
}


static void
ngx_http_podgen_tts_encode_thread(void *data, ngx_log_t *log)
{
    ngx_http_podgen_tts_job_t  *job = data;

    ngx_uint_t  i;
    pg_pcm_t   *pcm;

    job->enc_rc = 0;

    if (job->enc == NULL) {
        job->enc = pg_enc_create(job->conf.format, job->conf.voice->rate,
                                 &job->out);
        if (job->enc == NULL) {
            job->enc_rc = -1;
            return;
        }
    }

    for (i = job->enc_from; i < job->enc_to; i++) {
        pcm = &job->chunks[i].pcm;

        if (job->chunks[i].words.n
            && pg_words_append(&job->words, &job->chunks[i].words,
                               (uint32_t) job->enc_samples)
               != 0)
        {
            job->enc_rc = -1;
            return;
        }

        pg_words_free(&job->chunks[i].words);

        if (pcm->nsamples
            && pg_enc_write(job->enc, pcm->samples, pcm->nsamples, &job->out)
               != 0)
        {
            job->enc_rc = -1;
            return;
        }

        job->enc_samples += pcm->nsamples;
        pg_pcm_free(pcm);
    }

    if (job->enc_to == job->nchunks) {
        if (pg_enc_finish(job->enc, &job->out) != 0) {
            job->enc_rc = -1;
        }
    }
}


static void
ngx_http_podgen_tts_encode_done(ngx_event_t *ev)
{
    ngx_http_podgen_tts_job_t  *job = ev->data;

    ngx_uint_t  last;

    job->encoding = 0;

    ngx_http_podgen_metrics_thread_queue(-1);

    if (!job->attached || job->failed) {
        ngx_http_podgen_tts_release(job);
        return;
    }

    if (job->enc_rc != 0) {
        ngx_log_error(NGX_LOG_ERR, job->conf.log, 0,
                      "podgen: %s encoder failed",
                      pg_format_name(job->conf.format));
        ngx_http_podgen_metrics_error(PG_ERR_ENCODER);
        ngx_http_podgen_tts_fail(job);
        ngx_http_podgen_tts_release(job);
        return;
    }

    job->next_encode = job->enc_to;
    last = (job->next_encode == job->nchunks);

    if (last) {
        job->complete = 1;
    }

    /* the encoder task's reference covers the call: the consumer may
     * detach from inside it */

    job->conf.output(job->conf.data, job->out.data, job->out.len, last,
                     NGX_OK);

    pg_buf_reset(&job->out);

    if (!last) {
        ngx_http_podgen_tts_post_synth(job);
        ngx_http_podgen_tts_try_encode(job);
    }

    ngx_http_podgen_tts_release(job);
}


static void
ngx_http_podgen_tts_fail(ngx_http_podgen_tts_job_t *job)
{
    if (job->failed) {
        return;
    }

    job->failed = 1;

    if (job->attached) {
        job->refs++;
        job->conf.output(job->conf.data, NULL, 0, 1, NGX_ERROR);
        ngx_http_podgen_tts_release(job);
    }
}


static void
ngx_http_podgen_tts_retry(ngx_http_podgen_tts_job_t *job)
{
    if (job->retrying) {
        return;
    }

    /* the timer holds a reference */

    job->retrying = 1;
    job->refs++;
    ngx_add_timer(&job->retry, 20);
}


static void
ngx_http_podgen_tts_retry_handler(ngx_event_t *ev)
{
    ngx_http_podgen_tts_job_t  *job = ev->data;

    job->retrying = 0;

    ngx_http_podgen_tts_post_synth(job);
    ngx_http_podgen_tts_try_encode(job);

    ngx_http_podgen_tts_release(job);
}


static void
ngx_http_podgen_tts_release(ngx_http_podgen_tts_job_t *job)
{
    ngx_uint_t  i;

    if (--job->refs > 0) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->conf.log, 0,
                   "podgen tts: job %p freed", job);

    ngx_queue_remove(&job->queue);

    ngx_http_podgen_tts_pending -= job->estimate;

    if (ngx_http_podgen_tts_pending < 0.001) {
        ngx_http_podgen_tts_pending = 0;
    }

    for (i = 0; i < job->nchunks; i++) {
        pg_pcm_free(&job->chunks[i].pcm);
        pg_words_free(&job->chunks[i].words);
    }

    pg_words_free(&job->words);

    if (job->enc) {
        pg_enc_destroy(job->enc);
    }

    pg_buf_free(&job->out);
    ngx_free(job->chunks);
    ngx_free(job->texts);
    ngx_free(job);
}
