/*
 * podgen: POST /v1/audio/speech — OpenAI-compatible text to speech.
 *
 * The body is validated and normalized by lib/, then a TTS job synthesizes
 * sentences in parallel on the thread pool; encoded audio is written to
 * the client in order, chunked, as soon as each piece exists.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "pg_speech_request.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_speech.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_fetch.h"


typedef struct {
    ngx_http_podgen_fetch_t     fetch;      /* owns the markers now */
    pg_format_t                 format;
    pg_buf_t                    full;
    ngx_uint_t                  overflow;
    ngx_http_podgen_tts_job_t  *job;
} ngx_http_podgen_speech_orphan_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_podgen_tts_job_t  *job;
    ngx_http_podgen_voice_t    *voice;
    char                       *text;
    size_t                      text_len;
    double                      speed;
    ngx_http_podgen_fetch_t     fetch;      /* the cache tiers */
    ngx_uint_t                  overflow;   /* too big for an entry */
    ngx_chain_t                *free;
    ngx_chain_t                *busy;
    ngx_uint_t                  input_tokens;
    pg_format_t                 format;
    pg_buf_t                    full;       /* the whole audio, for L1 */
    size_t                      words_sent; /* timestamps: words out */
    unsigned                    sse:1;
    unsigned                    timestamps:1;
    unsigned                    header_sent:1;
    unsigned                    done:1;
} ngx_http_podgen_speech_t;


static void ngx_http_podgen_speech_body(ngx_http_request_t *r);
static void ngx_http_podgen_speech_cleanup(void *data);
static ngx_int_t ngx_http_podgen_speech_url(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s);
static ngx_int_t ngx_http_podgen_speech_cached(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *data, size_t len, char *how);
static void ngx_http_podgen_speech_try(ngx_http_podgen_speech_t *s);
static ngx_int_t ngx_http_podgen_speech_timestamps(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, ngx_chain_t ***ll, ngx_buf_t **bp);
static void ngx_http_podgen_speech_found(ngx_http_podgen_fetch_t *f,
    ngx_uint_t from, u_char *data, size_t len);
static void ngx_http_podgen_speech_make(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_speech_cache_error(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_speech_start(ngx_http_podgen_speech_t *s);
static void ngx_http_podgen_speech_orphan_output(void *data, u_char *audio,
    size_t len, ngx_uint_t last, ngx_int_t rc);
static void ngx_http_podgen_speech_output(void *data, u_char *audio,
    size_t len, ngx_uint_t last, ngx_int_t rc);
static ngx_int_t ngx_http_podgen_speech_send_header(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s);
static ngx_int_t ngx_http_podgen_speech_send(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *audio, size_t len,
    ngx_uint_t last);
static void ngx_http_podgen_speech_write_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_speech_flushed(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, ngx_int_t rc);


static const ngx_http_podgen_fetch_handlers_t
    ngx_http_podgen_speech_handlers = {
    ngx_http_podgen_speech_found,
    ngx_http_podgen_speech_make,
    ngx_http_podgen_speech_cache_error
};


static u_char  ngx_http_podgen_sse_delta_start[] =
    "data: {\"type\":\"speech.audio.delta\",\"audio\":\"";
static u_char  ngx_http_podgen_sse_delta_end[] = "\"}\n\n";


ngx_int_t
ngx_http_podgen_speech_handler(ngx_http_request_t *r)
{
    return ngx_http_podgen_read_json_request(r, ngx_http_podgen_speech_body);
}


static void
ngx_http_podgen_speech_body(ngx_http_request_t *r)
{
    char                          hex[PG_KEY_LEN + 1];
    double                        audio;
    u_char                       *body;
    size_t                        len;
    pg_error_t                    err;
    ngx_pool_cleanup_t           *cln;
    pg_speech_request_t           req;
    ngx_http_podgen_ctx_t        *ctx;
    ngx_http_podgen_voice_t      *voice;
    ngx_http_podgen_speech_t     *s;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);
    ctx = ngx_http_podgen_get_ctx(r);

    if (ctx == NULL
        || ngx_http_podgen_body_bytes(r, &body, &len) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (pg_speech_request_parse((char *) body, len, pmcf->max_input,
                                ngx_http_podgen_voice_exists, pmcf, &req,
                                &err)
        != 0)
    {
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    /* a cost bound before any work: the audio this text makes */

    audio = ngx_http_podgen_tts_estimate(req.text, req.text_len, req.speed);

    if (pmcf->max_audio && audio > (double) pmcf->max_audio) {
        pg_error_set(&err, 400, "input", "audio_too_long",
                     "this input at speed %.2f would make about %.0f "
                     "minutes of audio; the most is %.0f (podgen_max_audio)",
                     req.speed, audio / 60, (double) pmcf->max_audio / 60);
        pg_speech_request_free(&req);
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    voice = ngx_http_podgen_find_voice(pmcf, req.voice);

    s = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_speech_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (s == NULL || cln == NULL
        || ngx_http_podgen_speech_key(voice, req.format, req.speed, req.text,
                                      req.text_len, hex) != NGX_OK)
    {
        pg_speech_request_free(&req);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* what the work needs, kept in the request: it may start later, when
     * another request making the same audio gives up */

    s->text = ngx_pnalloc(r->pool, req.text_len + 1);
    if (s->text == NULL) {
        pg_speech_request_free(&req);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(s->text, req.text, req.text_len + 1);
    s->text_len = req.text_len;

    s->request = r;
    s->voice = voice;
    s->format = req.format;
    s->speed = req.speed;
    s->sse = req.sse;
    s->timestamps = req.timestamps;
    s->input_tokens = (req.text_len + 3) / 4;

    /* L1 hits go to the request's pool (large ones pinned there) */
    ngx_http_podgen_fetch_init(&s->fetch, &ngx_http_podgen_fetch_audio,
                               &ngx_http_podgen_speech_handlers, &pmcf->cache,
                               hex, req.format, r->pool, s,
                               r->connection->log);

    pg_speech_request_free(&req);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "podgen speech: voice %V, format %s, speed %.2f, "
                   "%uz chars", &voice->name, pg_format_name(s->format),
                   s->speed, s->text_len);

    ctx->speech = s;

    cln->handler = ngx_http_podgen_speech_cleanup;
    cln->data = s;

    /* notice a client that goes away while we work or wait */
    r->read_event_handler = ngx_http_test_reading;

    ngx_http_podgen_speech_try(s);
}


/*
 * The cache decides: a hit is served, work in flight elsewhere is waited
 * for (single flight), else this request makes the audio.
 */

static void
ngx_http_podgen_speech_try(ngx_http_podgen_speech_t *s)
{
    u_char              *data;
    size_t               len;
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = s->request;

    if (s->timestamps) {
        /* word timings come from synthesis: the cache is not read (a
         * stored mp3 has none), nor written */
        ngx_http_podgen_speech_start(s);
        return;
    }

    rc = ngx_http_podgen_fetch(&s->fetch, r->pool, &data, &len);

    switch (rc) {

    case NGX_OK:
        s->done = 1;
        ngx_http_podgen_finalize(r, ngx_http_podgen_speech_cached(r, s, data,
                                                                  len,
                                                                  "HIT-L1"));
        return;

    case NGX_AGAIN:
        return;

    case NGX_DECLINED:
        ngx_http_podgen_speech_start(s);
        return;

    default:
        s->done = 1;
        ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_podgen_speech_found(ngx_http_podgen_fetch_t *f, ngx_uint_t from,
    u_char *data, size_t len)
{
    ngx_http_podgen_speech_t  *s = f->data;

    u_char              *value;
    ngx_http_request_t  *r;

    r = s->request;
    s->done = 1;

    /* an L2 value is the reply's own memory: kept, not copied */

    value = ngx_http_podgen_fetch_keep(f, r->pool, data);
    if (value == NULL) {
        ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_podgen_finalize(r, ngx_http_podgen_speech_cached(r, s, value,
                                  len,
                                  from == NGX_HTTP_PODGEN_FROM_COALESCED
                                  ? "COALESCED"
                                  : (from == NGX_HTTP_PODGEN_FROM_L2
                                     ? "HIT-L2" : "HIT-L1")));
}


static void
ngx_http_podgen_speech_make(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_speech_start(f->data);
}


static void
ngx_http_podgen_speech_cache_error(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_speech_t  *s = f->data;

    s->done = 1;
    ngx_http_podgen_finalize(s->request, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


static void
ngx_http_podgen_speech_start(ngx_http_podgen_speech_t *s)
{
    ngx_int_t                     rc;
    pg_error_t                    err;
    u_char                       *p;
    ngx_table_elt_t              *h;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_podgen_tts_conf_t    conf;
    ngx_http_podgen_main_conf_t  *pmcf;

    r = s->request;
    c = r->connection;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    conf.thread_pool = pmcf->thread_pool;
    conf.voice = &s->voice->voice;
    conf.format = s->format;
    conf.speed = s->speed;
    conf.parallelism = pmcf->parallelism;
    conf.chunk_max = pmcf->chunk_max;
    conf.first_chunk_max = pmcf->first_chunk_max;
    conf.output = ngx_http_podgen_speech_output;
    conf.data = s;
    conf.log = c->log;
    conf.max_queue = pmcf->max_queue;

    /* a WAV artifact carries its words' timings */
    conf.words = (s->format == PG_FMT_WAV || s->timestamps);

    s->job = ngx_http_podgen_tts_start(&conf, s->text, s->text_len, &rc);

    if (s->job) {
        return;
    }

    ngx_http_podgen_fetch_abandon(&s->fetch);

    s->done = 1;

    if (rc == NGX_BUSY) {
        h = ngx_list_push(&r->headers_out.headers);
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);

        if (h && p) {
            h->hash = 1;
            ngx_str_set(&h->key, "Retry-After");
            h->value.data = p;
            h->value.len = ngx_sprintf(p, "%ui",
                                       ngx_http_podgen_tts_retry_after())
                           - p;
        }

        ngx_http_podgen_metrics_error(PG_ERR_BUSY);

        pg_error_set(&err, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                     "server_busy",
                     "the speech queue is full; retry shortly");
        err.type = "server_error";

    } else {
        pg_error_set(&err, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL,
                     "server_error", "could not start synthesis");
        err.type = "server_error";
    }

    ngx_http_podgen_finalize(r, ngx_http_podgen_send_error(r, &err));
}


/* where the finished audio stays, content-addressed (GET /v1/audio/) */

static ngx_int_t
ngx_http_podgen_speech_url(ngx_http_request_t *r, ngx_http_podgen_speech_t *s)
{
    ngx_str_t  value;

    if (s->fetch.cache == NULL) {
        return NGX_OK;
    }

    value.data = ngx_pnalloc(r->pool, sizeof("/v1/audio/.flac") + PG_KEY_LEN);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(value.data, "/v1/audio/%s.%s", s->fetch.hex,
                            pg_format_name(s->format))
                - value.data;

    return ngx_http_podgen_add_header(r, "X-Podgen-Audio-Url", &value);
}


/*
 * The key of speech audio: what flite says (normalized text), the voice,
 * the format, the speed, and flite's version.  v2: stored files are whole
 * (a FLAC's STREAMINFO totals, an mp3's Info frame), so a v1 entry of the
 * same request, left in Redis by an older podgen, is other bytes and must
 * not answer under the same key and ETag.
 */

ngx_int_t
ngx_http_podgen_speech_key(ngx_http_podgen_voice_t *voice, pg_format_t format,
    double speed, const char *text, size_t len, char *hex)
{
    ngx_int_t  rc;
    pg_buf_t   canon;
    char       head[160];

    ngx_memzero(&canon, sizeof(pg_buf_t));

    ngx_snprintf((u_char *) head, sizeof(head),
                 "speech|v2|flite-%s|det=%d|%V|%s|%.3f|%Z",
                 pg_tts_version(), pg_tts_deterministic(), &voice->name,
                 pg_format_name(format), speed);

    rc = NGX_ERROR;

    if (pg_buf_append_str(&canon, head) == 0
        && pg_buf_append(&canon, text, len) == 0
        && pg_key_sha256(canon.data, canon.len, hex) == 0)
    {
        rc = NGX_OK;
    }

    pg_buf_free(&canon);

    return rc;
}


/*
 * A hit is served whole: Content-Length, ETag (the audio's, at its
 * X-Podgen-Audio-Url; a POST is never a 304, see
 * ngx_http_podgen_check_preconditions()) and Range (nginx's range filter).
 */

static ngx_int_t
ngx_http_podgen_speech_cached(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *data, size_t len, char *how)
{
    u_char                 *p, *body;
    size_t                  size;
    ngx_str_t               value, src, dst;
    ngx_http_podgen_ctx_t  *ctx;

    if (s->sse) {
        size = sizeof(ngx_http_podgen_sse_delta_start) - 1
               + ngx_base64_encoded_length(len)
               + sizeof(ngx_http_podgen_sse_delta_end) - 1 + 160;

        p = ngx_pnalloc(r->pool, size);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body = p;
        p = ngx_cpymem(p, ngx_http_podgen_sse_delta_start,
                       sizeof(ngx_http_podgen_sse_delta_start) - 1);
        src.data = data;
        src.len = len;
        dst.data = p;
        ngx_encode_base64(&dst, &src);
        p += dst.len;
        p = ngx_cpymem(p, ngx_http_podgen_sse_delta_end,
                       sizeof(ngx_http_podgen_sse_delta_end) - 1);
        p = ngx_sprintf(p, "data: {\"type\":\"speech.audio.done\","
                        "\"usage\":{\"input_tokens\":%ui,"
                        "\"output_tokens\":0,\"total_tokens\":%ui}}\n\n",
                        s->input_tokens, s->input_tokens);
        len = p - body;

        ngx_str_set(&r->headers_out.content_type, "text/event-stream");

    } else {
        body = data;

        r->headers_out.content_type.data = (u_char *) pg_format_mime(s->format);
        r->headers_out.content_type.len =
                                  ngx_strlen(r->headers_out.content_type.data);

        /* a strong validator: the key names the exact bytes */

        if (ngx_http_podgen_set_etag(r, s->fetch.hex) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->allow_ranges = 1;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    value.data = (u_char *) how;
    value.len = ngx_strlen(how);

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK
        || ngx_http_podgen_add_header(r, "X-Podgen-Cache", &value) != NGX_OK
        || ngx_http_podgen_speech_url(r, s) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_podgen_get_ctx(r);

    if (ctx) {
        ngx_http_podgen_metrics_first_audio(how[0] == 'C'
                                            ? PG_FIRST_AUDIO_COALESCED
                                            : PG_FIRST_AUDIO_HIT,
                 (double) (ngx_http_podgen_now_us() - ctx->start_us) / 1e6);
    }

    return ngx_http_podgen_send_memory(r, body, len);
}


/*
 * The request goes away.  A waiter stops waiting.  An owner whose audio
 * others wait for hands its job to an orphan that finishes it into the
 * cache; with nobody waiting, the work stops.
 */

static void
ngx_http_podgen_speech_cleanup(void *data)
{
    ngx_http_podgen_speech_t  *s = data;

    ngx_http_podgen_speech_orphan_t  *o;

    if (s->job == NULL) {
        ngx_http_podgen_fetch_cancel(&s->fetch);
        pg_buf_free(&s->full);
        return;
    }

    if (!s->done) {
        ngx_http_podgen_metrics_error(PG_ERR_CLIENT_GONE);
    }

    /* still the owner: the audio is not stored yet */

    if (ngx_http_podgen_fetch_waiters(&s->fetch)) {
        o = ngx_calloc(sizeof(ngx_http_podgen_speech_orphan_t),
                       ngx_cycle->log);
        if (o) {
            ngx_http_podgen_fetch_move(&o->fetch, &s->fetch, o);
            o->format = s->format;
            o->overflow = s->overflow;
            o->full = s->full;
            ngx_memzero(&s->full, sizeof(pg_buf_t));

            o->job = s->job;
            ngx_http_podgen_tts_rebind(s->job,
                                       ngx_http_podgen_speech_orphan_output,
                                       o);
            s->job = NULL;
            return;
        }
    }

    ngx_http_podgen_fetch_cancel(&s->fetch);

    pg_buf_free(&s->full);

    ngx_http_podgen_tts_detach(s->job);
    s->job = NULL;
}


/* Stores the finished audio; gives the markers up if it cannot. */

static void
ngx_http_podgen_speech_store(ngx_http_podgen_fetch_t *f, pg_format_t format,
    pg_buf_t *full, ngx_uint_t complete, ngx_http_podgen_tts_job_t *job)
{
    /* a whole file is stored, or nothing: the streamed one is finalized
     * (its headers get what only the end knows) */

    if (!complete || full->len == 0
        || ngx_http_podgen_tts_finalize(job, full->data, full->len)
           != NGX_OK)
    {
        ngx_http_podgen_fetch_abandon(f);
        pg_buf_free(full);
        return;
    }

    if (format == PG_FMT_WAV) {
        (void) pg_wav_words_add(full, ngx_http_podgen_tts_words(job));
    }

    ngx_http_podgen_fetch_store(f, full->data, full->len);

    pg_buf_free(full);
}


/* Keeps the whole stream for the cache, while it fits an entry. */

static void
ngx_http_podgen_speech_keep(ngx_http_podgen_cache_conf_t *cache,
    pg_buf_t *full, ngx_uint_t *overflow, u_char *audio, size_t len)
{
    if (*overflow || len == 0) {
        return;
    }

    if (full->len + len > cache->max_entry
        || pg_buf_append(full, audio, len) != 0)
    {
        *overflow = 1;
        pg_buf_free(full);
    }
}


static void
ngx_http_podgen_speech_orphan_output(void *data, u_char *audio, size_t len,
    ngx_uint_t last, ngx_int_t rc)
{
    ngx_http_podgen_speech_orphan_t  *o = data;

    if (rc == NGX_OK) {
        ngx_http_podgen_speech_keep(o->fetch.cache, &o->full, &o->overflow,
                                    audio, len);
    }

    if (!last && rc == NGX_OK) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "podgen speech: orphan done, rc %i", rc);

    ngx_http_podgen_speech_store(&o->fetch, o->format, &o->full,
                                 rc == NGX_OK && !o->overflow, o->job);

    /* the last output: detached, the job frees itself */
    ngx_http_podgen_tts_detach(o->job);
    ngx_free(o);
}


static void
ngx_http_podgen_speech_output(void *data, u_char *audio, size_t len,
    ngx_uint_t last, ngx_int_t rc)
{
    ngx_http_podgen_speech_t  *s = data;

    pg_error_t           err;
    ngx_http_request_t  *r;

    r = s->request;

    if (rc != NGX_OK) {
        s->done = 1;

        if (s->fetch.owner) {
            ngx_http_podgen_speech_store(&s->fetch, s->format, &s->full, 0,
                                         NULL);
        }

        if (!s->header_sent) {
            pg_error_set(&err, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL,
                         "server_error", "speech synthesis failed");
            err.type = "server_error";
            rc = ngx_http_podgen_send_error(r, &err);

        } else {
            /* the status is out: cut the stream so the client sees it
             * is incomplete */
            rc = NGX_ERROR;
        }

        ngx_http_podgen_finalize(r, rc);
        return;
    }

    if (!s->header_sent) {
        rc = ngx_http_podgen_speech_send_header(r, s);

        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            s->done = (rc != NGX_ERROR);
            ngx_http_podgen_finalize(r, rc);
            return;
        }
    }

    if (s->fetch.owner) {
        ngx_http_podgen_speech_keep(s->fetch.cache, &s->full, &s->overflow,
                                    audio, len);

        if (last) {
            ngx_http_podgen_speech_store(&s->fetch, s->format, &s->full,
                                         !s->overflow, s->job);
        }
    }

    rc = ngx_http_podgen_speech_send(r, s, audio, len, last);

    if (!last) {
        if (ngx_http_podgen_speech_flushed(r, s, rc) == NGX_OK) {
            return;
        }

        /* the client is gone: the cleanup hands the work on or stops it */
        rc = NGX_ERROR;

    } else if (rc != NGX_ERROR) {
        s->done = 1;
    }

    ngx_http_podgen_finalize(r, rc);
}


static ngx_int_t
ngx_http_podgen_speech_send_header(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s)
{
    ngx_str_t               value;
    ngx_http_podgen_ctx_t  *ctx;

    ctx = ngx_http_podgen_get_ctx(r);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;

    if (s->sse) {
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");

        ngx_str_set(&value, "no-cache");
        if (ngx_http_podgen_add_header(r, "Cache-Control", &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        r->headers_out.content_type.data =
                                      (u_char *) pg_format_mime(s->format);
        r->headers_out.content_type.len =
                                      ngx_strlen(pg_format_mime(s->format));
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (s->timestamps) {
        ngx_str_set(&value, "BYPASS");

    } else {
        ngx_str_set(&value, "MISS");
    }

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK
        || ngx_http_podgen_add_header(r, "X-Podgen-Cache", &value) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_podgen_speech_url(r, s) != NGX_OK) {
        return NGX_ERROR;
    }

    /* time to the first audio: what a streaming client waits for */

    value.data = ngx_pnalloc(r->pool,
                             sizeof("first-audio;dur=") + NGX_INT_T_LEN);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(value.data, "first-audio;dur=%M",
                            (ngx_msec_t) (ngx_current_msec - ctx->start))
                - value.data;

    if (ngx_http_podgen_add_header(r, "Server-Timing", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_podgen_metrics_first_audio(PG_FIRST_AUDIO_MISS,
                 (double) (ngx_http_podgen_now_us() - ctx->start_us) / 1e6);

    s->header_sent = 1;

    return ngx_http_send_header(r);
}


static ngx_buf_t *
ngx_http_podgen_speech_buf(ngx_http_request_t *r, ngx_http_podgen_speech_t *s,
    size_t size, ngx_chain_t ***last)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = ngx_chain_get_free_buf(r->pool, &s->free);
    if (cl == NULL) {
        return NULL;
    }

    b = cl->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));

    b->start = ngx_palloc(r->pool, size);
    if (b->start == NULL) {
        return NULL;
    }

    b->pos = b->start;
    b->last = b->start;
    b->end = b->start + size;
    b->temporary = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_podgen_module;

    **last = cl;
    *last = &cl->next;

    return b;
}


/*
 * The words of the audio sent so far that were not yet:
 *
 *   data: {"type":"speech.audio.timestamps","words":[{"word":"Hello,",
 *          "start":0.164,"end":0.661},...]}
 *
 * in seconds from the stream's start, in a new buffer that becomes *bp
 * (untouched when there is nothing to send).  NGX_OK or NGX_ERROR.
 */

static ngx_int_t
ngx_http_podgen_speech_timestamps(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, ngx_chain_t ***ll, ngx_buf_t **bp)
{
    int          rate;
    size_t       i, size;
    ngx_buf_t   *b;
    pg_word_t   *w;
    pg_words_t  *ws;

    static u_char  start[] =
        "data: {\"type\":\"speech.audio.timestamps\",\"words\":[";
    static u_char  end[] = "]}\n\n";

    ws = ngx_http_podgen_tts_words(s->job);
    rate = s->voice->voice.rate;

    if (ws->n <= s->words_sent || rate <= 0) {
        return NGX_OK;
    }

    size = sizeof(start) - 1 + sizeof(end) - 1;

    for (i = s->words_sent; i < ws->n; i++) {
        w = &ws->words[i];
        size += sizeof("{\"word\":\"\",\"start\":,\"end\":},") - 1
                + 2 * (NGX_INT64_LEN + 4)
                + w->len
                + ngx_escape_json(NULL, (u_char *) ws->text + w->off,
                                  w->len);
    }

    b = ngx_http_podgen_speech_buf(r, s, size, ll);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, start, sizeof(start) - 1);

    for (i = s->words_sent; i < ws->n; i++) {
        w = &ws->words[i];

        b->last = ngx_cpymem(b->last, i > s->words_sent ? ",{\"word\":\""
                                                         : "{\"word\":\"",
                             i > s->words_sent ? 10 : 9);
        b->last = (u_char *) ngx_escape_json(b->last,
                                             (u_char *) ws->text + w->off,
                                             w->len);
        b->last = ngx_sprintf(b->last, "\",\"start\":%.3f,\"end\":%.3f}",
                              (double) w->start / rate,
                              (double) w->end / rate);
    }

    b->last = ngx_cpymem(b->last, end, sizeof(end) - 1);

    s->words_sent = ws->n;
    *bp = b;

    return NGX_OK;
}


static ngx_int_t
ngx_http_podgen_speech_send(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *audio, size_t len, ngx_uint_t last)
{
    size_t         size;
    ngx_int_t      rc;
    ngx_buf_t     *b;
    ngx_str_t      src, dst;
    ngx_chain_t   *out, **ll, *cl;

    out = NULL;
    ll = &out;
    b = NULL;

    if (len) {
        size = s->sse ? sizeof(ngx_http_podgen_sse_delta_start) - 1
                        + ngx_base64_encoded_length(len)
                        + sizeof(ngx_http_podgen_sse_delta_end) - 1
                      : len;

        b = ngx_http_podgen_speech_buf(r, s, size, &ll);
        if (b == NULL) {
            return NGX_ERROR;
        }

        if (s->sse) {
            b->last = ngx_cpymem(b->last, ngx_http_podgen_sse_delta_start,
                                 sizeof(ngx_http_podgen_sse_delta_start) - 1);

            src.data = audio;
            src.len = len;
            dst.data = b->last;
            ngx_encode_base64(&dst, &src);
            b->last += dst.len;

            b->last = ngx_cpymem(b->last, ngx_http_podgen_sse_delta_end,
                                 sizeof(ngx_http_podgen_sse_delta_end) - 1);

        } else {
            b->last = ngx_cpymem(b->last, audio, len);
        }
    }

    if (s->timestamps && s->job
        && ngx_http_podgen_speech_timestamps(r, s, &ll, &b) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (last && s->sse) {
        b = ngx_http_podgen_speech_buf(r, s, 160, &ll);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->last = ngx_sprintf(b->last,
                              "data: {\"type\":\"speech.audio.done\","
                              "\"usage\":{\"input_tokens\":%ui,"
                              "\"output_tokens\":0,\"total_tokens\":%ui}}"
                              "\n\n",
                              s->input_tokens, s->input_tokens);
    }

    if (last && b == NULL) {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
    }

    if (b == NULL) {
        return NGX_OK;
    }

    *ll = NULL;

    /* every piece goes out now, not when postpone_output is reached */
    b->flush = 1;

    if (last) {
        b->last_buf = 1;
        b->last_in_chain = 1;
    }

    rc = ngx_http_output_filter(r, out);

    ngx_chain_update_chains(r->pool, &s->free, &s->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_podgen_module);

    /* sent pieces give their (large) memory back at once: a long stream
     * must not keep every piece until the request ends */

    for (cl = s->free; cl; cl = cl->next) {
        if (cl->buf->start) {
            ngx_pfree(r->pool, cl->buf->start);
            cl->buf->start = NULL;
        }
    }

    return rc;
}


/*
 * Between pieces a slow client may leave data unsent: keep flushing it on
 * write events, under send_timeout, until the next piece arrives.
 */

static ngx_int_t
ngx_http_podgen_speech_flushed(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, ngx_int_t rc)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    r->write_event_handler = ngx_http_podgen_speech_write_handler;

    if (r->connection->buffered || r->buffered || s->busy) {
        if (!wev->delayed && !wev->timer_set) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

    } else if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_podgen_speech_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_chain_t               *out;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_podgen_ctx_t     *ctx;
    ngx_http_podgen_speech_t  *s;

    c = r->connection;
    wev = c->write;

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);
    if (ctx == NULL || ctx->speech == NULL) {
        return;
    }

    s = ctx->speech;

    if (s->done) {
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "podgen: client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    rc = ngx_http_output_filter(r, NULL);

    out = NULL;
    ngx_chain_update_chains(r->pool, &s->free, &s->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_podgen_module);

    if (ngx_http_podgen_speech_flushed(r, s, rc) != NGX_OK) {
        /* the client is gone (ngx_http_request_handler() runs the posted
         * requests after us) */
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}
