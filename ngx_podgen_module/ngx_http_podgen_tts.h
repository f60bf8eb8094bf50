/*
 * podgen: the one place where speech work meets the nginx thread pool.
 *
 * A job turns normalized text into encoded audio: the text is cut into
 * chunks (sentences), chunks are synthesized in parallel on the thread
 * pool (at most `parallelism` at a time, in text order), and finished
 * chunks are encoded in order by one encoder task at a time.  Every piece
 * of encoded audio is handed to the job's consumer as soon as it exists.
 *
 * A job is malloc'd: it outlives its request when the client goes away
 * while tasks are still on the pool.  It is freed when the last of its
 * tasks completes after the consumer has detached.
 */

#ifndef NGX_HTTP_PODGEN_TTS_H
#define NGX_HTTP_PODGEN_TTS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_thread_pool.h>

#include "pg_audio.h"
#include "pg_tts.h"


typedef struct ngx_http_podgen_tts_job_s  ngx_http_podgen_tts_job_t;

/*
 * Called in the event loop with the next piece of encoded audio, in order.
 * last: the stream is complete.  rc != NGX_OK: the job failed (data is
 * then empty).  The data is only valid during the call.
 */
typedef void (*ngx_http_podgen_tts_output_pt)(void *data, u_char *audio,
    size_t len, ngx_uint_t last, ngx_int_t rc);


typedef struct {
    ngx_thread_pool_t              *thread_pool;
    pg_voice_t                     *voice;
    pg_format_t                     format;
    double                          speed;
    ngx_uint_t                      parallelism;
    size_t                          chunk_max;
    size_t                          first_chunk_max;
    ngx_http_podgen_tts_output_pt   output;
    void                           *data;
    ngx_log_t                      *log;
    time_t                          max_queue;  /* s of audio; 0: no bound */
    ngx_uint_t                      words;      /* time the words */
} ngx_http_podgen_tts_conf_t;


/*
 * Seconds of audio that text[0..len) (normalized) makes at speed: an
 * estimate from flite's pace (about 16 characters a second at speed 1; a
 * digit is read as a word, about 6), a little long rather than short.
 */
double ngx_http_podgen_tts_estimate(const char *text, size_t len,
    double speed);

/*
 * Seconds to wait before asking again when a job was refused (NGX_BUSY):
 * from the audio this worker still has to make.
 */
ngx_uint_t ngx_http_podgen_tts_retry_after(void);


/*
 * Starts a job on text[0..len) (copied).  Returns the job, or NULL with
 * NGX_ERROR / NGX_BUSY in *rc: the thread pool queue is full, or the
 * worker already has max_queue seconds of audio to make (admission).
 */
ngx_http_podgen_tts_job_t *ngx_http_podgen_tts_start(
    ngx_http_podgen_tts_conf_t *conf, const char *text, size_t len,
    ngx_int_t *rc);

/*
 * Another consumer takes over (the request went away but someone else
 * waits for the result): the job goes on and calls output(data, ...).
 */
void ngx_http_podgen_tts_rebind(ngx_http_podgen_tts_job_t *job,
    ngx_http_podgen_tts_output_pt output, void *data);

/* The consumer goes away; no output callback is called after this. */
void ngx_http_podgen_tts_detach(ngx_http_podgen_tts_job_t *job);

/* Reports leaked jobs at worker exit. */
void ngx_http_podgen_tts_exit(ngx_cycle_t *cycle);

/*
 * With conf.words: the timings of the words of the audio handed to the
 * consumer so far (samples at the voice's rate, from the stream's first
 * sample), valid until the job is freed.
 */
pg_words_t *ngx_http_podgen_tts_words(ngx_http_podgen_tts_job_t *job);

/*
 * The job is complete: audio[0..len) is everything it handed to its
 * consumer, in order; it is made a whole file in place (pg_audio_finalize:
 * FLAC STREAMINFO totals and MD5, the mp3 Info frame, WAV sizes), its
 * length unchanged.  What is stored is that; what was streamed stays as it
 * was sent.  NGX_OK, or NGX_ERROR (logged): not to be stored.
 */
ngx_int_t ngx_http_podgen_tts_finalize(ngx_http_podgen_tts_job_t *job,
    u_char *audio, size_t len);

/* Seconds of audio synthesized so far (for headers / metrics). */
double ngx_http_podgen_tts_audio_seconds(ngx_http_podgen_tts_job_t *job);


#endif /* NGX_HTTP_PODGEN_TTS_H */
