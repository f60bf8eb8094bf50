/*
 * podgen core: a podcast episode from its segments' audio.
 *
 * The parts are parsed again for each pass over them (it only walks a
 * few chunk headers): once to check them all (nothing is encoded if one of
 * them is bad) and find the common rate, once to bound the total length,
 * and once to feed the encoder a block at a time, straight from the
 * parts' bytes or through soxr, with blocks of zeros for pauses.
 *
 * Every length is decided in whole samples at the common rate before any
 * audio is written: soxr's own count for a part may differ from
 * round(n * rate / part_rate) by a sample, so its output is cut or padded
 * to that count.  The spans then follow from sample counts alone, and the
 * file and the spans cannot drift apart.
 *
 * The parts come from io->get() one at a time (render_files: from files,
 * pg_episode_render: from memory), and the encoded file leaves through
 * io->write() as it grows; only its head stays, for the encoders that go
 * back to their headers at the end.
 *
 * With loudness, the joined PCM is float from the parts on: each part at
 * its own gain, measured by libebur128 in a first pass (integrated
 * loudness, true peak), then in the second at the episode's gain through
 * the true-peak limiter below into the encoder.  Without, the samples go
 * to the encoder as they are (the same bytes as before loudness existed).
 */

#include <math.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <soxr.h>
#include <ebur128.h>

#include "pg_episode.h"


/* The range of pg_enc_create(), for the parts and the episode alike. */
#define PG_EPISODE_RATE_MIN      4000
#define PG_EPISODE_RATE_MAX      192000
#define PG_EPISODE_PAUSE_MAX     60.0

/*
 * Samples at the common rate, per part and in all: 2^40 is 66 days at
 * 192 kHz, and keeps k * rate (2^18) far from overflowing 64 bits.
 */
#define PG_EPISODE_MAX_SAMPLES   ((uint64_t) 1 << 40)

/* Samples per pg_enc_write() and per soxr call. */
#define PG_EPISODE_CHUNK         4096

#define PG_WAV_UNKNOWN_SIZE      0xffffffff

/* the limiter: s of look-ahead, s of release, dB under the target peak */
#define PG_EPISODE_LOOKAHEAD        0.005
#define PG_EPISODE_RELEASE          0.08
#define PG_EPISODE_LOSSLESS_MARGIN  0.3
#define PG_EPISODE_LOSSY_MARGIN     1.0
#define PG_EPISODE_GAIN_MAX         40.0
#define PG_EPISODE_MAKEUP_MAX       6.0
#define PG_EPISODE_FEW_OVER         2000    /* 1 in: the limiter costs
                                               no loudness to speak of */

#define PG_TP_TAPS               12
#define PG_TP_PHASES             4


typedef struct {
    size_t           nsamples;
    int              rate;
} pg_episode_info_t;


typedef struct {
    float            ceiling;
    float            att;
    float            rel;
    float            g;
    size_t           la;                /* look-ahead, samples */
    size_t           cap;               /* la + 1 */
    uint64_t         limited;

    float            h[PG_TP_PHASES - 1][PG_TP_TAPS];
    float            hsum;              /* the largest sum of |taps| */
    float            hist[PG_TP_TAPS];
    size_t           hpos;
    uint64_t         nin;

    float           *samples;           /* ring of cap, by sample number */
    float           *need;
    uint64_t        *deque;             /* sample numbers, rising need */
    uint64_t         qhead;
    uint64_t         qtail;
    uint64_t         nmid;
} pg_episode_limiter_t;


typedef struct {
    const pg_episode_io_t    *io;
    const pg_episode_opts_t  *opts;
    pg_episode_info_t        *info;
    size_t                    n;

    pg_enc_t        *enc;
    pg_buf_t         out;               /* the head, then what is new */
    uint64_t         flushed;           /* written after the head */
    const char      *fmt_name;
    int              rate;              /* the episode's (common) rate */
    int              enc_rate;

    soxr_t           soxr;              /* kept while parts share a rate */
    int              soxr_rate;

    unsigned         whole:1;           /* m4a: the muxer seeks anywhere */
    unsigned         proc:1;            /* loudness: float, gains */
    unsigned         measure:2;         /* 1: pass 1, 2: after the limiter */
    float            gain;              /* the part's */
    float            episode_gain;
    double           episode_gain_db;
    unsigned         lim_loss_check:1;
    uint64_t         hist[64];          /* pass 1: |sample|, 1.5 dB bins */
    uint64_t         nmeasured;
    ebur128_state   *ebu;
    pg_episode_limiter_t  lim;

    char            *errbuf;
    size_t           errlen;

    size_t           on;
    int16_t          in[PG_EPISODE_CHUNK];
    int16_t          res[PG_EPISODE_CHUNK];
    int16_t          obuf[PG_EPISODE_CHUNK];
    float            fbuf[PG_EPISODE_CHUNK];
} pg_episode_ctx_t;


/* pg_episode_render(): parts in memory, the file appended to a buffer */
typedef struct {
    const pg_episode_part_t  *parts;
    pg_buf_t                 *out;
    size_t                    start;
} pg_episode_mem_t;


static int pg_episode_mem_get(void *data, size_t i,
    pg_episode_part_t *part, char *errbuf, size_t errlen);
static int pg_episode_mem_write(void *data, uint64_t off,
    const unsigned char *p, size_t len);
static int pg_episode_get(pg_episode_ctx_t *ctx, size_t i,
    pg_episode_part_t *part, const unsigned char **pcm);
static void pg_episode_put(pg_episode_ctx_t *ctx, size_t i,
    pg_episode_part_t *part, int last);
static int pg_episode_pass(pg_episode_ctx_t *ctx, uint64_t pause,
    pg_episode_span_t *spans, uint64_t *end);
static int pg_episode_loudness(pg_episode_ctx_t *ctx,
    pg_episode_loudness_t *loud);
static size_t pg_episode_bin(float a);
static uint64_t pg_episode_over(pg_episode_ctx_t *ctx, double gain);
static int pg_episode_makeup(pg_episode_ctx_t *ctx, uint64_t pause,
    pg_episode_loudness_t *loud);
static int pg_episode_drain(pg_episode_ctx_t *ctx, size_t least);
static int pg_episode_finish(pg_episode_ctx_t *ctx, pg_format_t fmt,
    uint64_t *bytes);
static int pg_episode_wav_sizes(unsigned char *head, size_t hlen,
    uint64_t total);
static void pg_episode_write_error(pg_episode_ctx_t *ctx);
static void pg_episode_free(pg_episode_ctx_t *ctx);
static int pg_episode_limiter_init(pg_episode_limiter_t *lim, int rate,
    float ceiling);
static int pg_episode_limit(pg_episode_ctx_t *ctx, float x);
static int pg_episode_lookahead(pg_episode_ctx_t *ctx, float s, float need);
static int pg_episode_limiter_flush(pg_episode_ctx_t *ctx);
static int pg_episode_flush(pg_episode_ctx_t *ctx);
static int pg_episode_encode(pg_episode_ctx_t *ctx, const int16_t *pcm,
    size_t n);
static void pg_episode_put_le32(unsigned char *p, uint32_t v);
static int pg_episode_parse(const pg_episode_part_t *part, size_t i,
    const unsigned char **pcm, size_t *nsamples, int *rate, char *errbuf,
    size_t errlen);
static uint64_t pg_episode_part_len(size_t nsamples, int part_rate,
    int rate);
static double pg_episode_seconds(uint64_t k, int rate, int enc_rate);
static int pg_episode_copy(pg_episode_ctx_t *ctx, const unsigned char *pcm,
    size_t n);
static int pg_episode_resample(pg_episode_ctx_t *ctx,
    const unsigned char *pcm, size_t n, int part_rate, uint64_t len);
static int pg_episode_soxr(pg_episode_ctx_t *ctx, int part_rate);
static int pg_episode_resampled(pg_episode_ctx_t *ctx, size_t odone,
    uint64_t *done, uint64_t len);
static int pg_episode_silence(pg_episode_ctx_t *ctx, uint64_t n);
static int pg_episode_emit(pg_episode_ctx_t *ctx, const int16_t *pcm,
    size_t n);
static void pg_episode_load(int16_t *dst, const unsigned char *src,
    size_t n);
static void pg_episode_error(char *errbuf, size_t errlen, const char *fmt,
    ...)
    __attribute__ ((format (printf, 3, 4)));
static uint32_t pg_episode_le16(const unsigned char *p);
static uint32_t pg_episode_le32(const unsigned char *p);


static const int16_t  pg_episode_zeros[PG_EPISODE_CHUNK];


int
pg_wav_parse(const unsigned char *wav, size_t len,
    const unsigned char **pcm, size_t *nsamples, int *rate)
{
    int                   have_fmt;
    size_t                off, size, left;
    uint32_t              r;
    const unsigned char  *p;

    if (wav == NULL || len < 12
        || memcmp(wav, "RIFF", 4) != 0 || memcmp(wav + 8, "WAVE", 4) != 0)
    {
        return -1;
    }

    /*
     * The RIFF size is not looked at: a streamed file has a placeholder
     * there.  Chunks are walked within the buffer only; every size is
     * compared with what is left before it is added to anything.
     */

    have_fmt = 0;
    r = 0;
    off = 12;

    while (len - off >= 8) {
        p = wav + off;
        size = pg_episode_le32(p + 4);
        left = len - off - 8;

        if (memcmp(p, "fmt ", 4) == 0) {

            if (size < 16 || size > left
                || pg_episode_le16(p + 8) != 1          /* PCM */
                || pg_episode_le16(p + 10) != 1         /* channels */
                || pg_episode_le16(p + 20) != 2         /* block align */
                || pg_episode_le16(p + 22) != 16)       /* bits/sample */
            {
                return -1;
            }

            r = pg_episode_le32(p + 12);

            if (r == 0 || r > INT32_MAX) {
                return -1;
            }

            have_fmt = 1;

        } else if (memcmp(p, "data", 4) == 0) {

            if (!have_fmt) {
                return -1;
            }

            if (size == PG_WAV_UNKNOWN_SIZE) {
                size = left;

            } else if (size > left) {
                return -1;
            }

            if (size % 2 != 0) {
                return -1;
            }

            *pcm = p + 8;
            *nsamples = size / 2;
            *rate = (int) r;

            return 0;
        }

        /* chunks are padded to an even size */

        if (size >= left) {
            return -1;
        }

        off += 8 + size + (size & 1);

        if (off > len) {
            return -1;
        }
    }

    return -1;
}


int
pg_episode_render(const pg_episode_part_t *parts, size_t n,
    int out_rate, double pause_s, pg_format_t fmt, pg_buf_t *out,
    pg_episode_span_t *spans, double *duration, char *errbuf,
    size_t errlen)
{
    size_t           start;
    pg_episode_io_t  io;
    pg_episode_mem_t  mem;

    if (parts == NULL || n == 0) {
        pg_episode_error(errbuf, errlen, "no parts");
        return -1;
    }

    if (out == NULL) {
        pg_episode_error(errbuf, errlen, "no output buffer");
        return -1;
    }

    start = out->len;

    mem.parts = parts;
    mem.out = out;
    mem.start = start;

    io.get = pg_episode_mem_get;
    io.put = NULL;
    io.write = pg_episode_mem_write;
    io.data = &mem;

    if (pg_episode_render_files(&io, n, out_rate, pause_s, fmt, NULL, NULL,
                                spans, duration, NULL, errbuf, errlen)
        != 0)
    {
        out->len = start;
        return -1;
    }

    return 0;
}


static int
pg_episode_mem_get(void *data, size_t i, pg_episode_part_t *part,
    char *errbuf, size_t errlen)
{
    pg_episode_mem_t  *mem = data;

    *part = mem->parts[i];

    return 0;
}


static int
pg_episode_mem_write(void *data, uint64_t off, const unsigned char *p,
    size_t len)
{
    pg_episode_mem_t  *mem = data;

    size_t     at, have;
    pg_buf_t  *out;

    out = mem->out;
    at = mem->start + (size_t) off;
    have = out->len;

    if (at + len > have) {
        if (pg_buf_reserve(out, at + len - have) != 0) {
            return -1;
        }

        if (at > have) {
            memset(out->data + have, 0, at - have);
        }

        out->len = at + len;
    }

    memcpy(out->data + at, p, len);

    return 0;
}


int
pg_episode_render_files(const pg_episode_io_t *io, size_t n,
    int out_rate, double pause_s, pg_format_t fmt,
    const pg_episode_opts_t *opts, uint64_t *bytes,
    pg_episode_span_t *spans, double *duration, pg_episode_loudness_t *loud,
    char *errbuf, size_t errlen)
{
    int                    rate, enc_rate;
    double                 g, margin;
    size_t                 i;
    uint64_t               pause, total, pos;
    const char            *name;
    pg_episode_ctx_t      *ctx;
    pg_episode_info_t     *info;
    pg_episode_part_t      part;

    if (io == NULL || n == 0) {
        pg_episode_error(errbuf, errlen, "no parts");
        return -1;
    }

    /* NaN fails both comparisons */

    if (!(pause_s >= 0 && pause_s <= PG_EPISODE_PAUSE_MAX)) {
        pg_episode_error(errbuf, errlen, "pause of %g s not in 0..%g",
                         pause_s, PG_EPISODE_PAUSE_MAX);
        return -1;
    }

    if (out_rate != 0
        && (out_rate < PG_EPISODE_RATE_MIN || out_rate > PG_EPISODE_RATE_MAX))
    {
        pg_episode_error(errbuf, errlen, "output rate %d not supported",
                         out_rate);
        return -1;
    }

    name = pg_format_name(fmt);

    if (name == NULL) {
        pg_episode_error(errbuf, errlen, "unknown format %d", (int) fmt);
        return -1;
    }

    if (opts && opts->loudness
        && (!(opts->target_lufs >= -70 && opts->target_lufs <= 0)
            || !(opts->peak_dbtp >= -20 && opts->peak_dbtp <= 0)))
    {
        pg_episode_error(errbuf, errlen, "loudness target out of range");
        return -1;
    }

    if (opts && opts->loudness && opts->gain_db) {
        for (i = 0; i < n; i++) {
            if (!(opts->gain_db[i] >= -40 && opts->gain_db[i] <= 40)) {
                pg_episode_error(errbuf, errlen, "part %zu: gain out of "
                                 "range", i);
                return -1;
            }
        }
    }

    info = calloc(n, sizeof(pg_episode_info_t));
    ctx = calloc(1, sizeof(pg_episode_ctx_t));

    if (info == NULL || ctx == NULL) {
        free(info);
        free(ctx);
        pg_episode_error(errbuf, errlen, "out of memory");
        return -1;
    }

    ctx->io = io;
    ctx->info = info;
    ctx->n = n;
    ctx->fmt_name = name;
    ctx->whole = fmt == PG_FMT_M4A;
    ctx->errbuf = errbuf;
    ctx->errlen = errlen;
    ctx->opts = opts;

    /* every part parses, and the common rate */

    rate = out_rate;

    for (i = 0; i < n; i++) {
        if (pg_episode_get(ctx, i, &part, NULL) != 0) {
            goto failed;
        }

        pg_episode_put(ctx, i, &part, 0);

        if (out_rate == 0 && info[i].rate > rate) {
            rate = info[i].rate;
        }
    }

    /*
     * pcm is 24 kHz whatever the rate: the parts go straight to it rather
     * than to a common rate and then through pg_audio's resampler, which
     * would resample twice, and dithers with a seed from the clock.
     */

    if (fmt == PG_FMT_PCM) {
        rate = PG_PCM_RATE;
    }

    ctx->rate = rate;

    /* the length of everything, before anything is written */

    pause = (uint64_t) (pause_s * rate + 0.5);
    total = 0;

    for (i = 0; i < n; i++) {
        total += pg_episode_part_len(info[i].nsamples, info[i].rate, rate);

        if (i + 1 < n) {
            total += pause;
        }

        if (total > PG_EPISODE_MAX_SAMPLES) {
            pg_episode_error(errbuf, errlen, "episode too long");
            goto failed;
        }
    }

    /* loudness: pass 1 measures, pass 2 applies */

    if (opts && opts->loudness) {
        ctx->proc = 1;
        ctx->gain = 1;

        ctx->ebu = ebur128_init(1, (unsigned long) rate,
                                EBUR128_MODE_I | EBUR128_MODE_TRUE_PEAK);
        if (ctx->ebu == NULL) {
            pg_episode_error(errbuf, errlen, "cannot measure loudness at "
                             "%d Hz", rate);
            goto failed;
        }

        ctx->measure = 1;

        if (pg_episode_pass(ctx, pause, NULL, NULL) != 0) {
            goto failed;
        }

        ctx->measure = 0;

        if (pg_episode_loudness(ctx, loud) != 0) {
            goto failed;
        }

        /*
         * The limiter's ceiling is under the target peak: a lossy
         * encoder's output overshoots its input a little.
         */

        margin = (fmt == PG_FMT_MP3 || fmt == PG_FMT_OPUS)
                 ? PG_EPISODE_LOSSY_MARGIN : PG_EPISODE_LOSSLESS_MARGIN;
        g = pow(10, (opts->peak_dbtp - margin) / 20);

        if (pg_episode_limiter_init(&ctx->lim, rate, (float) g) != 0) {
            pg_episode_error(errbuf, errlen, "out of memory");
            goto failed;
        }

        /*
         * Speech with a high crest (a quiet voice raised) loses loudness
         * in the limiter: once or twice more through it, measured, and the
         * gain made up for what it took (PG_EPISODE_MAKEUP_MAX dB at most
         * each time), until within 0.5 LU; not when fewer than one sample
         * in PG_EPISODE_FEW_OVER comes near the ceiling (a few peaks
         * limited cost no loudness).  (A limiter is no compressor:
         * at targets over about -14 LUFS such speech stays short.)
         */

        for (i = 0; ctx->lim_loss_check && i < 2; i++) {
            if (pg_episode_makeup(ctx, pause, loud) != 0) {
                goto failed;
            }
        }
    }

    ctx->enc = pg_enc_create_whole(fmt, rate, &ctx->out);

    if (ctx->enc == NULL) {
        pg_episode_error(errbuf, errlen,
                         "cannot create an encoder for %s at %d Hz", name,
                         rate);
        goto failed;
    }

    enc_rate = pg_enc_out_rate(ctx->enc);
    ctx->enc_rate = enc_rate;

    if (pg_episode_pass(ctx, pause, spans, &pos) != 0) {
        goto failed;
    }

    if (ctx->proc) {
        if (pg_episode_limiter_flush(ctx) != 0
            || pg_episode_flush(ctx) != 0)
        {
            goto failed;
        }

        if (loud) {
            loud->limited = ctx->lim.limited;
        }
    }

    if (pg_enc_finish(ctx->enc, &ctx->out) != 0) {
        pg_episode_error(errbuf, errlen, "%s encoder failed", name);
        goto failed;
    }

    if (pg_episode_finish(ctx, fmt, bytes) != 0) {
        goto failed;
    }

    if (duration) {
        *duration = pg_episode_seconds(pos, rate, enc_rate);
    }

    pg_episode_free(ctx);

    return 0;

failed:

    pg_episode_free(ctx);

    return -1;
}


/* Part i from io: parsed, checked, and the same as before. */

static int
pg_episode_get(pg_episode_ctx_t *ctx, size_t i, pg_episode_part_t *part,
    const unsigned char **pcm)
{
    int                   part_rate;
    size_t                nsamples;
    const unsigned char  *p;

    part->wav = NULL;
    part->len = 0;

    if (ctx->io->get(ctx->io->data, i, part, ctx->errbuf, ctx->errlen)
        != 0)
    {
        return -1;
    }

    if (pg_episode_parse(part, i, &p, &nsamples, &part_rate, ctx->errbuf,
                         ctx->errlen)
        != 0)
    {
        pg_episode_put(ctx, i, part, 0);
        return -1;
    }

    if (pcm == NULL) {
        ctx->info[i].nsamples = nsamples;
        ctx->info[i].rate = part_rate;
        return 0;
    }

    /* the parts parsed before: one changed since is the caller's bug */

    if (ctx->info[i].nsamples != nsamples || ctx->info[i].rate != part_rate) {
        pg_episode_error(ctx->errbuf, ctx->errlen, "part %zu changed", i);
        pg_episode_put(ctx, i, part, 0);
        return -1;
    }

    *pcm = p;

    return 0;
}


static void
pg_episode_put(pg_episode_ctx_t *ctx, size_t i, pg_episode_part_t *part,
    int last)
{
    if (ctx->io->put) {
        ctx->io->put(ctx->io->data, i, part, last);
    }

    part->wav = NULL;
    part->len = 0;
}


/*
 * One pass over the parts, pauses between them, through pg_episode_emit():
 * measured or encoded.  spans and *end (both may be NULL) as
 * pg_episode_render() tells.
 */

static int
pg_episode_pass(pg_episode_ctx_t *ctx, uint64_t pause,
    pg_episode_span_t *spans, uint64_t *end)
{
    int                   rc, part_rate;
    size_t                i, nsamples;
    uint64_t              len, pos;
    pg_episode_part_t     part;
    const unsigned char  *pcm;

    pos = 0;

    for (i = 0; i < ctx->n; i++) {
        if (pg_episode_get(ctx, i, &part, &pcm) != 0) {
            return -1;
        }

        nsamples = ctx->info[i].nsamples;
        part_rate = ctx->info[i].rate;
        len = pg_episode_part_len(nsamples, part_rate, ctx->rate);

        ctx->gain = 1;

        if (ctx->proc && ctx->opts->gain_db) {
            ctx->gain = (float) pow(10, ctx->opts->gain_db[i] / 20);
        }

        if (spans) {
            spans[i].start = pg_episode_seconds(pos, ctx->rate,
                                                ctx->enc_rate);
        }

        if (part_rate == ctx->rate) {
            rc = pg_episode_copy(ctx, pcm, nsamples);

        } else {
            rc = pg_episode_resample(ctx, pcm, nsamples, part_rate, len);
        }

        /* the encoding pass is the last one */
        pg_episode_put(ctx, i, &part, rc == 0 && ctx->measure == 0
                                      && ctx->enc != NULL);

        if (rc != 0) {
            return -1;
        }

        pos += len;

        if (spans) {
            spans[i].end = pg_episode_seconds(pos, ctx->rate, ctx->enc_rate);
        }

        if (i + 1 < ctx->n) {
            if (pg_episode_silence(ctx, pause) != 0) {
                return -1;
            }

            pos += pause;
        }
    }

    if (end) {
        *end = pos;
    }

    return 0;
}


static int
pg_episode_loudness(pg_episode_ctx_t *ctx, pg_episode_loudness_t *loud)
{
    double  lufs, peak, tp, gain;

    if (ebur128_loudness_global(ctx->ebu, &lufs) != EBUR128_SUCCESS
        || ebur128_true_peak(ctx->ebu, 0, &peak) != EBUR128_SUCCESS)
    {
        pg_episode_error(ctx->errbuf, ctx->errlen, "loudness measure "
                         "failed");
        return -1;
    }

    tp = peak > 0 ? 20 * log10(peak) : -HUGE_VAL;

    /* silence (nothing over the gate) is left as it is */

    gain = isfinite(lufs) ? ctx->opts->target_lufs - lufs : 0;

    if (gain > PG_EPISODE_GAIN_MAX) {
        gain = PG_EPISODE_GAIN_MAX;
    }

    ctx->episode_gain = (float) pow(10, gain / 20);
    ctx->episode_gain_db = gain;
    ctx->lim_loss_check = isfinite(lufs)
                          && tp + gain > ctx->opts->peak_dbtp - 1.0
                          && pg_episode_over(ctx, gain)
                             > ctx->nmeasured / PG_EPISODE_FEW_OVER;

    if (loud) {
        loud->measured = 1;
        loud->integrated_lufs = isfinite(lufs) ? lufs : -HUGE_VAL;
        loud->true_peak_dbtp = tp;
        loud->gain_db = gain;
        loud->limited = 0;
    }

    return 0;
}


/*
 * The file out: everything but the head goes to io->write() whenever more
 * than PG_EPISODE_DRAIN has gathered after it.  ctx->out holds the first
 * PG_EPISODE_HEAD bytes of the file, then those at PG_EPISODE_HEAD +
 * ctx->flushed on.
 */

static int
pg_episode_drain(pg_episode_ctx_t *ctx, size_t least)
{
    size_t  k;

    /*
     * The MP4 muxer goes back to any point of the file (the mdat size, the
     * moov after it): an m4a episode is kept whole until it is done, about
     * 0.5 MB a minute.
     */

    if (ctx->whole && least) {
        return 0;
    }

    if (ctx->out.len <= PG_EPISODE_HEAD + least) {
        return 0;
    }

    k = ctx->out.len - PG_EPISODE_HEAD;

    errno = 0;

    if (ctx->io->write(ctx->io->data, PG_EPISODE_HEAD + ctx->flushed,
                       ctx->out.data + PG_EPISODE_HEAD, k)
        != 0)
    {
        pg_episode_write_error(ctx);
        return -1;
    }

    ctx->flushed += k;
    ctx->out.len = PG_EPISODE_HEAD;
    pg_enc_drained(ctx->enc, k);

    return 0;
}


static int
pg_episode_finish(pg_episode_ctx_t *ctx, pg_format_t fmt, uint64_t *bytes)
{
    size_t    head;
    uint64_t  total;

    total = ctx->out.len + ctx->flushed;
    head = ctx->out.len < PG_EPISODE_HEAD ? ctx->out.len : PG_EPISODE_HEAD;

    if (fmt == PG_FMT_WAV
        && pg_episode_wav_sizes(ctx->out.data, head, total) != 0)
    {
        pg_episode_error(ctx->errbuf, ctx->errlen,
                         "episode too long for a wav file");
        return -1;
    }

    if (pg_episode_drain(ctx, 0) != 0) {
        return -1;
    }

    /* the head last: what the encoder went back to is in it */

    errno = 0;

    if (head
        && ctx->io->write(ctx->io->data, 0, ctx->out.data, head) != 0)
    {
        pg_episode_write_error(ctx);
        return -1;
    }

    if (bytes) {
        *bytes = total;
    }

    return 0;
}


/*
 * The RIFF and data sizes of a wav file of total bytes whose first hlen
 * bytes are head (its chunks up to "data" among them).
 */

static int
pg_episode_wav_sizes(unsigned char *head, size_t hlen, uint64_t total)
{
    size_t    off, size;

    if (hlen < 12 || total > 0xffffffffULL
        || memcmp(head, "RIFF", 4) != 0 || memcmp(head + 8, "WAVE", 4) != 0)
    {
        return -1;
    }

    pg_episode_put_le32(head + 4, (uint32_t) (total - 8));

    off = 12;

    while (off + 8 <= hlen) {
        if (memcmp(head + off, "data", 4) == 0) {
            pg_episode_put_le32(head + off + 4,
                                (uint32_t) (total - off - 8));
            return 0;
        }

        size = pg_episode_le32(head + off + 4);

        if (size >= hlen) {
            return -1;
        }

        off += 8 + size + (size & 1);
    }

    return -1;
}


static void
pg_episode_write_error(pg_episode_ctx_t *ctx)
{
    if (errno) {
        pg_episode_error(ctx->errbuf, ctx->errlen, "the episode could not "
                         "be written: %s", strerror(errno));
        return;
    }

    pg_episode_error(ctx->errbuf, ctx->errlen, "the episode could not be "
                     "written");
}


static void
pg_episode_free(pg_episode_ctx_t *ctx)
{
    if (ctx->enc) {
        pg_enc_destroy(ctx->enc);
    }

    if (ctx->soxr) {
        soxr_delete(ctx->soxr);
    }

    if (ctx->ebu) {
        ebur128_destroy(&ctx->ebu);
    }

    free(ctx->lim.samples);
    free(ctx->lim.need);
    free(ctx->lim.deque);
    pg_buf_free(&ctx->out);
    free(ctx->info);
    free(ctx);
}


/* |x| (0..1 and over) in bins of a quarter of an octave: 4 * log2 */

static size_t
pg_episode_bin(float a)
{
    int       b;
    uint32_t  v;

    v = a >= 1.0f ? 65535 : (uint32_t) (a * 65536.0f);

    if (v < 4) {
        return 0;
    }

    b = 31 - __builtin_clz(v);

    return (size_t) (4 * b + ((v >> (b - 2)) & 3));
}


/*
 * Samples that may reach the limiter's ceiling at gain dB: those in the
 * bins from 2 dB under it up (a true peak may be over its samples).
 */

static uint64_t
pg_episode_over(pg_episode_ctx_t *ctx, double gain)
{
    double    t;
    size_t    i, from;
    uint64_t  n;

    t = pow(10, (ctx->opts->peak_dbtp - PG_EPISODE_LOSSY_MARGIN - 2 - gain)
                / 20);
    from = pg_episode_bin((float) t);

    for (i = from, n = 0; i < 64; i++) {
        n += ctx->hist[i];
    }

    return n;
}


static int
pg_episode_makeup(pg_episode_ctx_t *ctx, uint64_t pause,
    pg_episode_loudness_t *loud)
{
    int     rc;
    double  lufs, add;
    float   ceiling;

    ebur128_destroy(&ctx->ebu);

    ctx->ebu = ebur128_init(1, (unsigned long) ctx->rate, EBUR128_MODE_I);
    if (ctx->ebu == NULL) {
        pg_episode_error(ctx->errbuf, ctx->errlen, "out of memory");
        return -1;
    }

    ctx->measure = 2;

    rc = pg_episode_pass(ctx, pause, NULL, NULL);

    if (rc == 0) {
        rc = pg_episode_limiter_flush(ctx);
    }

    if (rc == 0) {
        rc = pg_episode_flush(ctx);
    }

    ctx->measure = 0;

    if (rc != 0) {
        return -1;
    }

    if (ebur128_loudness_global(ctx->ebu, &lufs) != EBUR128_SUCCESS) {
        pg_episode_error(ctx->errbuf, ctx->errlen, "loudness measure "
                         "failed");
        return -1;
    }

    ctx->lim_loss_check = 0;

    if (isfinite(lufs)) {
        add = ctx->opts->target_lufs - lufs;

        if (add > PG_EPISODE_MAKEUP_MAX) {
            add = PG_EPISODE_MAKEUP_MAX;
        }

        /* close enough: no more passes */
        ctx->lim_loss_check = (add > 0.5);

        if (add > 0) {
            ctx->episode_gain_db += add;
            ctx->episode_gain = (float) pow(10, ctx->episode_gain_db / 20);

            if (loud) {
                loud->gain_db = ctx->episode_gain_db;
            }
        }
    }

    /* the limiter anew for the encoding pass */

    ceiling = ctx->lim.ceiling;

    free(ctx->lim.samples);
    free(ctx->lim.need);
    free(ctx->lim.deque);
    memset(&ctx->lim, 0, sizeof(pg_episode_limiter_t));

    if (pg_episode_limiter_init(&ctx->lim, ctx->rate, ceiling) != 0) {
        pg_episode_error(ctx->errbuf, ctx->errlen, "out of memory");
        return -1;
    }

    return 0;
}


/* ---- the true-peak limiter ---------------------------------------------- */

/*
 * A look-ahead limiter on the oversampled peak.  Each sample's true peak
 * is estimated as the largest of the sample and the three points after it
 * on a 4x interpolation (a Hann-windowed sinc, 12 taps a phase); its gain
 * need is ceiling / peak when that is over the ceiling.  The gain follows
 * the least need over the next PG_EPISODE_LOOKAHEAD seconds (a monotonic
 * deque), coming down with a time constant of a fifth of that (so it is
 * within 0.7% of the need when the peak is played) and going back up with
 * one of PG_EPISODE_RELEASE; what is still over the ceiling is clipped.
 * The output is as many samples as the input, delayed by 6 + look-ahead
 * samples (the flush at the end gives the rest).
 */

static int
pg_episode_limiter_init(pg_episode_limiter_t *lim, int rate, float ceiling)
{
    int     p, j;
    double  u, w, s;

    lim->ceiling = ceiling;
    lim->la = (size_t) (rate * PG_EPISODE_LOOKAHEAD + 0.5);
    lim->cap = lim->la + 1;
    lim->att = (float) (1 - exp(-5.0 / (double) lim->la));
    lim->rel = (float) (1 - exp(-1.0 / (rate * PG_EPISODE_RELEASE)));
    lim->g = 1;

    for (p = 1; p < PG_TP_PHASES; p++) {
        for (j = 0; j < PG_TP_TAPS; j++) {
            u = j - PG_TP_TAPS / 2 + (double) p / PG_TP_PHASES;
            s = (u == 0) ? 1 : sin(M_PI * u) / (M_PI * u);
            w = 0.5 * (1 + cos(M_PI * u / (PG_TP_TAPS / 2 + 1)));
            lim->h[p - 1][j] = (float) (s * w);
        }
    }

    lim->hsum = 1;

    for (p = 0; p < PG_TP_PHASES - 1; p++) {
        for (j = 0, s = 0; j < PG_TP_TAPS; j++) {
            s += fabs(lim->h[p][j]);
        }

        if (s > lim->hsum) {
            lim->hsum = (float) s;
        }
    }

    lim->samples = calloc(lim->cap, sizeof(float));
    lim->need = calloc(lim->cap, sizeof(float));
    lim->deque = calloc(lim->cap, sizeof(uint64_t));

    if (lim->samples == NULL || lim->need == NULL || lim->deque == NULL) {
        return -1;
    }

    return 0;
}


/* A sample in (already at the episode's gain); maybe one out, into obuf */

static int
pg_episode_limit(pg_episode_ctx_t *ctx, float x)
{
    int                    p, j;
    float                  s, peak, y, need;
    size_t                 h;
    uint64_t               k;
    pg_episode_limiter_t  *lim;

    lim = &ctx->lim;

    /* stage 1: the true peak of the sample PG_TP_TAPS / 2 back */

    lim->hist[lim->hpos] = x;
    lim->hpos = (lim->hpos + 1) % PG_TP_TAPS;
    k = lim->nin++;

    if (k < PG_TP_TAPS / 2) {
        return 0;
    }

    /* hist[(hpos - 1 - j) mod TAPS] is x[k - j] */

    h = (lim->hpos + PG_TP_TAPS - 1 - PG_TP_TAPS / 2) % PG_TP_TAPS;
    s = lim->hist[h];

    /* no interpolated point exceeds max |x| * the sum of |taps| */

    peak = 0;

    for (j = 0; j < PG_TP_TAPS; j++) {
        y = fabsf(lim->hist[j]);
        peak = y > peak ? y : peak;
    }

    if (peak * lim->hsum <= lim->ceiling) {
        return pg_episode_lookahead(ctx, s, 1);
    }

    peak = fabsf(s);

    for (p = 0; p < PG_TP_PHASES - 1; p++) {
        y = 0;

        for (j = 0; j < PG_TP_TAPS; j++) {
            y += lim->h[p][j]
                 * lim->hist[(lim->hpos + PG_TP_TAPS - 1 - j) % PG_TP_TAPS];
        }

        if (fabsf(y) > peak) {
            peak = fabsf(y);
        }
    }

    need = (peak > lim->ceiling) ? lim->ceiling / peak : 1;

    return pg_episode_lookahead(ctx, s, need);
}


static int
pg_episode_lookahead(pg_episode_ctx_t *ctx, float s, float need)
{
    float                  target, y;
    uint64_t               m, out;
    pg_episode_limiter_t  *lim;

    lim = &ctx->lim;

    /* stage 2: the least need over the window, the sample la back out */

    m = lim->nmid++;
    lim->samples[m % lim->cap] = s;
    lim->need[m % lim->cap] = need;

    while (lim->qtail > lim->qhead
           && lim->need[lim->deque[(lim->qtail - 1) % lim->cap] % lim->cap]
              >= need)
    {
        lim->qtail--;
    }

    lim->deque[lim->qtail++ % lim->cap] = m;

    if (m < lim->la) {
        return 0;
    }

    out = m - lim->la;

    while (lim->deque[lim->qhead % lim->cap] < out) {
        lim->qhead++;
    }

    target = lim->need[lim->deque[lim->qhead % lim->cap] % lim->cap];

    lim->g += (target - lim->g) * (target < lim->g ? lim->att : lim->rel);

    y = lim->samples[out % lim->cap] * lim->g;

    if (lim->g < 0.999f) {
        lim->limited++;
    }

    if (y > lim->ceiling) {
        y = lim->ceiling;

    } else if (y < -lim->ceiling) {
        y = -lim->ceiling;
    }

    y = rintf(y * 32768.0f);
    ctx->obuf[ctx->on++] = (int16_t) (y > 32767.0f ? 32767.0f : y);

    if (ctx->on == PG_EPISODE_CHUNK) {
        return pg_episode_flush(ctx);
    }

    return 0;
}


static int
pg_episode_limiter_flush(pg_episode_ctx_t *ctx)
{
    size_t  i;

    for (i = 0; i < PG_TP_TAPS / 2; i++) {
        if (pg_episode_limit(ctx, 0) != 0) {
            return -1;
        }
    }

    for (i = 0; i < ctx->lim.la; i++) {
        if (pg_episode_lookahead(ctx, 0, 1) != 0) {
            return -1;
        }
    }

    return 0;
}


/* the limiter's output to the encoder */

static int
pg_episode_flush(pg_episode_ctx_t *ctx)
{
    size_t  k;

    k = ctx->on;
    ctx->on = 0;

    if (ctx->measure == 2) {
        if (k && ebur128_add_frames_short(ctx->ebu, ctx->obuf, k)
                 != EBUR128_SUCCESS)
        {
            pg_episode_error(ctx->errbuf, ctx->errlen, "loudness measure "
                             "failed");
            return -1;
        }

        return 0;
    }

    return pg_episode_encode(ctx, ctx->obuf, k);
}


static int
pg_episode_encode(pg_episode_ctx_t *ctx, const int16_t *pcm, size_t n)
{
    if (n == 0) {
        return 0;
    }

    if (pg_enc_write(ctx->enc, pcm, n, &ctx->out) != 0) {
        pg_episode_error(ctx->errbuf, ctx->errlen, "%s encoder failed",
                         ctx->fmt_name);
        return -1;
    }

    return pg_episode_drain(ctx, PG_EPISODE_DRAIN);
}


static int
pg_episode_parse(const pg_episode_part_t *part, size_t i,
    const unsigned char **pcm, size_t *nsamples, int *rate, char *errbuf,
    size_t errlen)
{
    if (pg_wav_parse(part->wav, part->len, pcm, nsamples, rate) != 0) {
        pg_episode_error(errbuf, errlen, "part %zu: not a 16-bit mono wav",
                         i);
        return -1;
    }

    if (*rate < PG_EPISODE_RATE_MIN || *rate > PG_EPISODE_RATE_MAX) {
        pg_episode_error(errbuf, errlen,
                         "part %zu: sample rate %d not supported", i, *rate);
        return -1;
    }

    if ((uint64_t) *nsamples > PG_EPISODE_MAX_SAMPLES) {
        pg_episode_error(errbuf, errlen, "part %zu: too long", i);
        return -1;
    }

    return 0;
}


/* round(nsamples * rate / part_rate), the halves up */

static uint64_t
pg_episode_part_len(size_t nsamples, int part_rate, int rate)
{
    if (part_rate == rate) {
        return nsamples;
    }

    return ((uint64_t) nsamples * (uint64_t) rate + (uint64_t) part_rate / 2)
           / (uint64_t) part_rate;
}


/* k samples at rate, as whole samples at enc_rate, in seconds */

static double
pg_episode_seconds(uint64_t k, int rate, int enc_rate)
{
    if (enc_rate == rate) {
        return (double) k / rate;
    }

    k = (k * (uint64_t) enc_rate + (uint64_t) rate / 2) / (uint64_t) rate;

    return (double) k / enc_rate;
}


static int
pg_episode_copy(pg_episode_ctx_t *ctx, const unsigned char *pcm, size_t n)
{
    size_t  k;

    while (n > 0) {
        k = n < PG_EPISODE_CHUNK ? n : PG_EPISODE_CHUNK;

        pg_episode_load(ctx->in, pcm, k);

        if (pg_episode_emit(ctx, ctx->in, k) != 0) {
            return -1;
        }

        pcm += 2 * k;
        n -= k;
    }

    return 0;
}


/* Exactly len samples at ctx->rate from n samples at part_rate. */

static int
pg_episode_resample(pg_episode_ctx_t *ctx, const unsigned char *pcm,
    size_t n, int part_rate, uint64_t len)
{
    size_t          k, idone, odone;
    uint64_t        done;
    const int16_t  *p;

    if (pg_episode_soxr(ctx, part_rate) != 0) {
        return -1;
    }

    done = 0;

    while (n > 0) {
        k = n < PG_EPISODE_CHUNK ? n : PG_EPISODE_CHUNK;

        pg_episode_load(ctx->in, pcm, k);

        pcm += 2 * k;
        n -= k;
        p = ctx->in;

        /*
         * soxr may take less input than offered, or have more output than
         * fits: go on until the block is in and the output is drained.
         */

        for ( ;; ) {
            if (soxr_process(ctx->soxr, p, k, &idone, ctx->res,
                             PG_EPISODE_CHUNK, &odone)
                != NULL)
            {
                goto failed;
            }

            if (pg_episode_resampled(ctx, odone, &done, len) != 0) {
                return -1;
            }

            p += idone;
            k -= idone;

            if (k == 0 && odone < PG_EPISODE_CHUNK) {
                break;
            }

            if (idone == 0 && odone == 0) {
                goto failed;
            }
        }
    }

    /* a NULL input means end of input: soxr returns its tail */

    do {
        if (soxr_process(ctx->soxr, NULL, 0, NULL, ctx->res,
                         PG_EPISODE_CHUNK, &odone)
            != NULL)
        {
            goto failed;
        }

        if (pg_episode_resampled(ctx, odone, &done, len) != 0) {
            return -1;
        }

    } while (odone > 0);

    /* soxr rounds its own way: a sample or so short is made up */

    return pg_episode_silence(ctx, len - done);

failed:

    pg_episode_error(ctx->errbuf, ctx->errlen, "resampling %d Hz failed",
                     part_rate);

    return -1;
}


/*
 * A resampler for part_rate -> ctx->rate: the last one, cleared, when it
 * has the same rates (speakers' voices alternate, often at two rates).
 */

static int
pg_episode_soxr(pg_episode_ctx_t *ctx, int part_rate)
{
    soxr_error_t         err;
    soxr_io_spec_t       io;
    soxr_quality_spec_t  q;
    soxr_runtime_spec_t  rt;

    if (ctx->soxr != NULL) {
        if (ctx->soxr_rate == part_rate && soxr_clear(ctx->soxr) == NULL) {
            return 0;
        }

        soxr_delete(ctx->soxr);
        ctx->soxr = NULL;
    }

    /*
     * No dither: soxr seeds it from the clock, and the same episode
     * should give the same bytes (it is cached, and has an ETag).
     */

    io = soxr_io_spec(SOXR_INT16_I, SOXR_INT16_I);
    io.flags |= SOXR_NO_DITHER;
    q = soxr_quality_spec(SOXR_HQ, 0);
    rt = soxr_runtime_spec(1);

    err = NULL;
    ctx->soxr = soxr_create(part_rate, ctx->rate, 1, &err, &io, &q, &rt);

    if (ctx->soxr == NULL || err != NULL) {
        if (ctx->soxr) {
            soxr_delete(ctx->soxr);
            ctx->soxr = NULL;
        }

        pg_episode_error(ctx->errbuf, ctx->errlen,
                         "cannot resample %d Hz to %d Hz", part_rate,
                         ctx->rate);
        return -1;
    }

    ctx->soxr_rate = part_rate;

    return 0;
}


/* Passes on soxr's output in ctx->res, but never more than len in all. */

static int
pg_episode_resampled(pg_episode_ctx_t *ctx, size_t odone, uint64_t *done,
    uint64_t len)
{
    if (odone > len - *done) {
        odone = (size_t) (len - *done);
    }

    if (pg_episode_emit(ctx, ctx->res, odone) != 0) {
        return -1;
    }

    *done += odone;

    return 0;
}


static int
pg_episode_silence(pg_episode_ctx_t *ctx, uint64_t n)
{
    size_t  k;

    while (n > 0) {
        k = n < PG_EPISODE_CHUNK ? (size_t) n : PG_EPISODE_CHUNK;

        if (pg_episode_emit(ctx, pg_episode_zeros, k) != 0) {
            return -1;
        }

        n -= k;
    }

    return 0;
}


static int
pg_episode_emit(pg_episode_ctx_t *ctx, const int16_t *pcm, size_t n)
{
    float   g;
    size_t  i;

    if (n == 0) {
        return 0;
    }

    if (!ctx->proc) {
        return pg_episode_encode(ctx, pcm, n);
    }

    /* n is at most PG_EPISODE_CHUNK */

    g = ctx->gain / 32768.0f;

    if (ctx->measure == 1) {
        for (i = 0; i < n; i++) {
            ctx->fbuf[i] = pcm[i] * g;
            ctx->hist[pg_episode_bin(fabsf(ctx->fbuf[i]))]++;
        }

        ctx->nmeasured += n;

        if (ebur128_add_frames_float(ctx->ebu, ctx->fbuf, n)
            != EBUR128_SUCCESS)
        {
            pg_episode_error(ctx->errbuf, ctx->errlen, "loudness measure "
                             "failed");
            return -1;
        }

        return 0;
    }

    g *= ctx->episode_gain;

    for (i = 0; i < n; i++) {
        if (pg_episode_limit(ctx, pcm[i] * g) != 0) {
            return -1;
        }
    }

    return 0;
}


/* s16le bytes, maybe unaligned, into native samples */

static void
pg_episode_load(int16_t *dst, const unsigned char *src, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

    memcpy(dst, src, n * 2);

#else

    size_t  i;

    for (i = 0; i < n; i++) {
        dst[i] = (int16_t) (uint16_t) (src[2 * i] | src[2 * i + 1] << 8);
    }

#endif
}


static void
pg_episode_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (errbuf == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(errbuf, errlen, fmt, args);
    va_end(args);
}


static uint32_t
pg_episode_le16(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8;
}


static uint32_t
pg_episode_le32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}


static void
pg_episode_put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}
