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
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <soxr.h>

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


typedef struct {
    pg_enc_t        *enc;
    pg_buf_t        *out;
    const char      *fmt_name;
    int              rate;              /* the episode's (common) rate */

    soxr_t           soxr;              /* kept while parts share a rate */
    int              soxr_rate;

    char            *errbuf;
    size_t           errlen;

    int16_t          in[PG_EPISODE_CHUNK];
    int16_t          res[PG_EPISODE_CHUNK];
} pg_episode_ctx_t;


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
    int                    rate, part_rate, enc_rate, rc;
    size_t                 i, start, nsamples;
    uint64_t               len, pause, pos, total;
    const char            *name;
    pg_episode_ctx_t      *ctx;
    const unsigned char   *pcm;

    if (parts == NULL || n == 0) {
        pg_episode_error(errbuf, errlen, "no parts");
        return -1;
    }

    if (out == NULL) {
        pg_episode_error(errbuf, errlen, "no output buffer");
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

    /* every part parses, and the common rate */

    rate = out_rate;

    for (i = 0; i < n; i++) {
        if (pg_episode_parse(&parts[i], i, &pcm, &nsamples, &part_rate,
                             errbuf, errlen)
            != 0)
        {
            return -1;
        }

        if (out_rate == 0 && part_rate > rate) {
            rate = part_rate;
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

    /* the length of everything, before anything is written */

    pause = (uint64_t) (pause_s * rate + 0.5);
    total = 0;

    for (i = 0; i < n; i++) {
        if (pg_episode_parse(&parts[i], i, &pcm, &nsamples, &part_rate,
                             errbuf, errlen)
            != 0)
        {
            return -1;
        }

        total += pg_episode_part_len(nsamples, part_rate, rate);

        if (i + 1 < n) {
            total += pause;
        }

        if (total > PG_EPISODE_MAX_SAMPLES) {
            pg_episode_error(errbuf, errlen, "episode too long");
            return -1;
        }
    }

    ctx = calloc(1, sizeof(pg_episode_ctx_t));
    if (ctx == NULL) {
        pg_episode_error(errbuf, errlen, "out of memory");
        return -1;
    }

    ctx->out = out;
    ctx->fmt_name = name;
    ctx->rate = rate;
    ctx->errbuf = errbuf;
    ctx->errlen = errlen;

    start = out->len;

    ctx->enc = pg_enc_create_whole(fmt, rate, out);

    if (ctx->enc == NULL) {
        pg_episode_error(errbuf, errlen,
                         "cannot create an encoder for %s at %d Hz", name,
                         rate);
        goto failed;
    }

    enc_rate = pg_enc_out_rate(ctx->enc);

    /* the parts parsed above: one changed since is the caller's bug */

    pos = 0;

    for (i = 0; i < n; i++) {
        if (pg_episode_parse(&parts[i], i, &pcm, &nsamples, &part_rate,
                             errbuf, errlen)
            != 0)
        {
            goto failed;
        }

        len = pg_episode_part_len(nsamples, part_rate, rate);

        if (spans) {
            spans[i].start = pg_episode_seconds(pos, rate, enc_rate);
        }

        if (part_rate == rate) {
            rc = pg_episode_copy(ctx, pcm, nsamples);

        } else {
            rc = pg_episode_resample(ctx, pcm, nsamples, part_rate, len);
        }

        if (rc != 0) {
            goto failed;
        }

        pos += len;

        if (spans) {
            spans[i].end = pg_episode_seconds(pos, rate, enc_rate);
        }

        if (i + 1 < n) {
            if (pg_episode_silence(ctx, pause) != 0) {
                goto failed;
            }

            pos += pause;
        }
    }

    if (pg_enc_finish(ctx->enc, out) != 0) {
        pg_episode_error(errbuf, errlen, "%s encoder failed", name);
        goto failed;
    }

    if (fmt == PG_FMT_WAV
        && pg_wav_fix_sizes(out->data + start, out->len - start) != 0)
    {
        pg_episode_error(errbuf, errlen, "episode too long for a wav file");
        goto failed;
    }

    if (duration) {
        *duration = pg_episode_seconds(pos, rate, enc_rate);
    }

    pg_enc_destroy(ctx->enc);

    if (ctx->soxr) {
        soxr_delete(ctx->soxr);
    }

    free(ctx);

    return 0;

failed:

    out->len = start;

    pg_enc_destroy(ctx->enc);

    if (ctx->soxr) {
        soxr_delete(ctx->soxr);
    }

    free(ctx);

    return -1;
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
    if (n == 0) {
        return 0;
    }

    if (pg_enc_write(ctx->enc, pcm, n, ctx->out) != 0) {
        pg_episode_error(ctx->errbuf, ctx->errlen, "%s encoder failed",
                         ctx->fmt_name);
        return -1;
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
