/*
 * Unit tests of lib/pg_episode.c: pg_wav_parse() on good and hostile
 * input, and episodes rendered in every format, their spans checked
 * against the encoded file (decoded back by ffmpeg when it is installed).
 */

#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_audio.h"
#include "pg_episode.h"
#include "unit.h"

#include <ebur128.h>
#include <fcntl.h>


#define FUZZ_BUFFERS   4000
#define ERRLEN         128


typedef struct {
    pg_format_t   fmt;
    int           rate;             /* the encoder's output rate */
    const char   *magic;
    size_t        magic_len;
} fmt_t;


static const fmt_t  formats[] = {
    { PG_FMT_WAV,  16000, "RIFF", 4 },
    { PG_FMT_PCM,  24000, "", 0 },
    { PG_FMT_FLAC, 16000, "fLaC", 4 },
    { PG_FMT_MP3,  16000, "\xff", 1 },
    { PG_FMT_OPUS, 48000, "OggS", 4 }
};

#define NFORMATS  (sizeof(formats) / sizeof(formats[0]))


static uint64_t  rng_state = 0x9e3779b97f4a7c15ULL;
static char      tmpdir[64];
static int       have_ffmpeg;
static int       file_no;


static uint64_t
rng_next(void)
{
    /* xorshift64: fixed seed, so every run sees the same "random" bytes */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;

    return rng_state;
}


static int16_t *
make_sine(int rate, size_t n, double freq)
{
    size_t    i;
    int16_t  *pcm;

    pcm = malloc((n ? n : 1) * sizeof(int16_t));
    if (pcm == NULL) {
        abort();
    }

    for (i = 0; i < n; i++) {
        pcm[i] = (int16_t) (12000.0 * sin(2 * M_PI * freq * i / rate));
    }

    return pcm;
}


/* A WAV made by pg_enc, with its placeholder sizes unless fix. */

static void
make_wav(pg_buf_t *b, int rate, size_t n, double freq, int fix)
{
    int16_t   *pcm;
    pg_enc_t  *enc;

    pcm = make_sine(rate, n, freq);

    enc = pg_enc_create(PG_FMT_WAV, rate, b);

    if (enc == NULL || pg_enc_write(enc, pcm, n, b) != 0
        || pg_enc_finish(enc, b) != 0
        || (fix && pg_wav_fix_sizes(b->data, b->len) != 0))
    {
        printf("Bail out! cannot make a wav\n");
        exit(1);
    }

    pg_enc_destroy(enc);
    free(pcm);
}


/* The same samples read back, little-endian, wherever they are. */

static int16_t
sample_at(const unsigned char *p, size_t i)
{
    return (int16_t) (uint16_t) (p[2 * i] | p[2 * i + 1] << 8);
}


static uint32_t
pg_episode_le32_test(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}


static void
put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


/* Parses a copy of exactly len bytes, so that ASan sees any overread. */

static int
parse_copy(const unsigned char *wav, size_t len, size_t *nsamples,
    int *rate)
{
    int                   rc;
    unsigned char        *copy;
    const unsigned char  *pcm;

    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        abort();
    }

    if (len) {
        memcpy(copy, wav, len);
    }

    pcm = NULL;
    rc = pg_wav_parse(copy, len, &pcm, nsamples, rate);

    if (rc == 0
        && (pcm < copy || pcm > copy + len
            || *nsamples > (size_t) (copy + len - pcm) / 2))
    {
        printf("# pcm out of the buffer\n");
        rc = -2;
    }

    free(copy);

    return rc;
}


static void
test_parse_good(void)
{
    int                   rate;
    size_t                i, n, len;
    int16_t              *want;
    pg_buf_t              w = { NULL, 0, 0 }, x = { NULL, 0, 0 };
    const unsigned char  *pcm;

    want = make_sine(8000, 1001, 440);

    /* as streamed: both sizes 0xffffffff */

    make_wav(&w, 8000, 1001, 440, 0);

    pcm = NULL;
    is_int(pg_wav_parse(w.data, w.len, &pcm, &n, &rate), 0,
           "streamed wav parses");
    ok(pcm == w.data + 44, "pcm points into the wav, after the header");
    is_int(n, 1001, "streamed wav: 1001 samples");
    is_int(rate, 8000, "streamed wav: 8000 Hz");

    for (i = 0; i < n && sample_at(pcm, i) == want[i]; i++) {
        /* void */
    }

    is_int(i, 1001, "streamed wav: the samples");

    /* placeholder data size: to the end of the buffer */

    is_int(pg_wav_parse(w.data, w.len - 20, &pcm, &n, &rate), 0,
           "streamed wav, 20 bytes less, parses");
    is_int(n, 991, "streamed wav, 20 bytes less: 991 samples");
    is_int(pg_wav_parse(w.data, w.len - 1, &pcm, &n, &rate), -1,
           "streamed wav, odd length: -1");
    is_int(pg_wav_parse(w.data, 44, &pcm, &n, &rate), 0,
           "streamed header only parses");
    is_int(n, 0, "streamed header only: 0 samples");

    /* fixed sizes */

    is_int(pg_wav_fix_sizes(w.data, w.len), 0, "fix sizes");
    is_int(pg_wav_parse(w.data, w.len, &pcm, &n, &rate), 0,
           "fixed wav parses");
    ok(pcm == w.data + 44 && n == 1001 && rate == 8000,
       "fixed wav: 1001 samples at 8000 Hz");
    is_int(pg_wav_parse(w.data, w.len - 2, &pcm, &n, &rate), -1,
           "fixed wav, truncated: -1");

    /* trailing bytes or chunks after a sized data chunk are not audio */

    len = w.len;
    pg_buf_append(&w, "LIST\4\0\0\0abcd", 12);
    is_int(pg_wav_parse(w.data, w.len, &pcm, &n, &rate), 0,
           "fixed wav + a LIST chunk after data parses");
    is_int(n, 1001, "... data size wins: 1001 samples");
    w.len = len;

    /*
     * A LIST chunk of odd size (so a pad byte) between fmt and data, and
     * an 18-byte fmt chunk (with cbSize, as some writers do)
     */

    pg_buf_append(&x, w.data, 12);
    pg_buf_append(&x, "fmt \x12\0\0\0", 8);
    pg_buf_append(&x, w.data + 20, 16);
    pg_buf_append(&x, "\0\0", 2);
    pg_buf_append(&x, "LIST\5\0\0\0INFO!\0", 14);
    pg_buf_append(&x, "junk\0\0\0\0", 8);
    pg_buf_append(&x, w.data + 36, w.len - 36);
    put_le32(x.data + 4, (uint32_t) x.len - 8);

    is_int(pg_wav_parse(x.data, x.len, &pcm, &n, &rate), 0,
           "fmt 18, LIST (odd, padded), empty junk, then data: parses");
    ok(n == 1001 && rate == 8000 && pcm == x.data + x.len - 2002,
       "... 1001 samples at 8000 Hz, at the end");

    for (i = 0; i < n && sample_at(pcm, i) == want[i]; i++) {
        /* void */
    }

    is_int(i, 1001, "... the samples");

    pg_buf_free(&x);
    pg_buf_free(&w);
    free(want);
}


static void
test_parse_hostile(void)
{
    int                   rate;
    size_t                n, i;
    pg_buf_t              w = { NULL, 0, 0 };
    unsigned char         b[128];
    const unsigned char  *pcm;

    is_int(parse_copy((const unsigned char *) "", 0, &n, &rate), -1,
           "empty: -1");
    is_int(pg_wav_parse(NULL, 44, &pcm, &n, &rate), -1, "NULL: -1");
    is_int(parse_copy((const unsigned char *) "RIFF\0\0\0\0WAV", 11, &n,
                      &rate),
           -1, "11 bytes: -1");
    is_int(parse_copy((const unsigned char *) "RIFF\xff\xff\xff\xffWAVE", 12,
                      &n, &rate),
           -1, "RIFF of huge size, nothing else: -1");
    is_int(parse_copy((const unsigned char *)
                      "RIFF\xff\xff\xff\xffWAVEfmt \xf0\xff\xff\xff", 20,
                      &n, &rate),
           -1, "fmt of huge size: -1");
    is_int(parse_copy((const unsigned char *)
                      "RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\1\0\1\0", 24,
                      &n, &rate),
           -1, "fmt chunk larger than the buffer: -1");
    is_int(parse_copy((const unsigned char *)
                      "RIFF\xff\xff\xff\xffWAVEjunk\xff\xff\xff\xff", 20,
                      &n, &rate),
           -1, "a chunk of size 0xffffffff: -1");
    is_int(parse_copy((const unsigned char *)
                      "RIFF\xff\xff\xff\xffWAVEjunk\xfd\xff\xff\xff", 20,
                      &n, &rate),
           -1, "a chunk of odd size near 4 GB: -1");

    make_wav(&w, 16000, 10, 440, 1);
    ok(w.len == 64 && parse_copy(w.data, w.len, &n, &rate) == 0
       && n == 10, "the 64-byte base file parses");

#define MUTATE(at, bytes, size, what)                                        \
    memcpy(b, w.data, w.len);                                                \
    memcpy(b + (at), bytes, size);                                           \
    is_int(parse_copy(b, w.len, &n, &rate), -1, what)

    MUTATE(0, "RIFX", 4, "RIFX: -1");
    MUTATE(8, "AVI ", 4, "not WAVE: -1");
    MUTATE(20, "\3\0", 2, "float: -1");
    MUTATE(20, "\xfe\xff", 2, "extensible: -1");
    MUTATE(22, "\2\0", 2, "stereo: -1");
    MUTATE(32, "\1\0", 2, "block align 1: -1");
    MUTATE(34, "\x08\0", 2, "8-bit: -1");
    MUTATE(34, "\x18\0", 2, "24-bit: -1");
    MUTATE(24, "\0\0\0\0", 4, "rate 0: -1");
    MUTATE(24, "\0\0\0\x80", 4, "rate 2^31: -1");
    MUTATE(40, "\x13\0\0\0", 4, "odd data length: -1");
    MUTATE(40, "\x16\0\0\0", 4, "data longer than the buffer: -1");
    MUTATE(40, "\xfe\xff\xff\xff", 4, "data of size 0xfffffffe: -1");
    MUTATE(12, "data", 4, "data before fmt: -1");
    MUTATE(36, "dat4", 4, "no data chunk: -1");
    MUTATE(16, "\x0f\0\0\0", 4, "fmt of 15 bytes: -1");
    MUTATE(16, "\x2c\0\0\0", 4, "fmt over data, to the end: -1");

    /* truncations of a file, with real sizes and as streamed */

    for (i = 0; i < w.len; i++) {
        if (parse_copy(w.data, i, &n, &rate) != -1) {
            break;
        }
    }

    is_int(i, w.len, "every truncation of a fixed file: -1");

    memcpy(b, w.data, w.len);
    put_le32(b + 4, 0xffffffff);
    put_le32(b + 40, 0xffffffff);

    for (i = 0; i < w.len; i++) {
        int  rc = parse_copy(b, i, &n, &rate);

        if (i < 44 || i % 2 != 0 ? rc != -1 : rc != 0 || n != (i - 44) / 2) {
            break;
        }
    }

    is_int(i, w.len, "truncations of a streamed file: whole samples parse");

#undef MUTATE

    pg_buf_free(&w);
}


/*
 * Random buffers, and random mutations of valid files (sizes and chunk
 * ids included), each parsed from a copy of its exact size.
 */

static void
test_parse_fuzz(void)
{
    int                   rate, rc;
    size_t                i, j, len, n, parsed, failed;
    uint64_t              r;
    pg_buf_t              w = { NULL, 0, 0 };
    unsigned char         b[256];
    static const char    *ids[] = { "RIFF", "WAVE", "fmt ", "data", "LIST" };

    make_wav(&w, 8000, 50, 440, 1);

    /* a LIST chunk in the middle, so that there is a chunk to walk */

    memmove(w.data + 36 + 12, w.data + 36, w.len - 36);
    memcpy(w.data + 36, "LIST\4\0\0\0abcd", 12);
    w.len += 12;

    parsed = 0;
    failed = 0;

    for (i = 0; i < FUZZ_BUFFERS; i++) {
        r = rng_next();

        switch (i % 4) {

        case 0:
            /* random bytes, maybe behind a RIFF/WAVE header */

            len = rng_next() % sizeof(b);

            for (j = 0; j < len; j++) {
                b[j] = (unsigned char) rng_next();
            }

            if ((r & 1) && len >= 12) {
                memcpy(b, "RIFF", 4);
                memcpy(b + 8, "WAVE", 4);
            }

            break;

        case 1:
            /* a truncation of the valid file */

            len = rng_next() % (w.len + 1);
            memcpy(b, w.data, len);
            break;

        default:
            /* the valid file with a few bytes or words changed */

            len = w.len;
            memcpy(b, w.data, len);

            for (j = 0; j < 1 + r % 4; j++) {
                size_t  at = rng_next() % len;

                switch (rng_next() % 4) {
                case 0:
                    b[at] = (unsigned char) rng_next();
                    break;
                case 1:
                    if (at + 4 <= len) {
                        put_le32(b + at, (uint32_t) rng_next());
                    }
                    break;
                case 2:
                    if (at + 4 <= len) {
                        put_le32(b + at, 0xffffffff - (rng_next() % 64));
                    }
                    break;
                default:
                    if (at + 4 <= len) {
                        memcpy(b + at, ids[rng_next() % 5], 4);
                    }
                    break;
                }
            }

            if (r & 0x100) {
                len -= rng_next() % 16;
            }

            break;
        }

        rc = parse_copy(b, len, &n, &rate);

        if (rc == 0) {
            parsed++;

        } else if (rc != -1) {
            failed++;
        }
    }

    is_int(failed, 0, "%d random buffers: no pcm out of bounds",
           FUZZ_BUFFERS);
    ok(parsed > 0 && parsed < FUZZ_BUFFERS,
       "... some of them parse (%zu), not all", parsed);

    pg_buf_free(&w);
}


/* ---- rendering ---------------------------------------------------------- */


static int
save(const pg_buf_t *b, size_t from, const char *ext, char *path,
    size_t size)
{
    FILE  *f;

    snprintf(path, size, "%s/%d.%s", tmpdir, file_no++, ext);

    f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }

    if (b->len > from
        && fwrite(b->data + from, 1, b->len - from, f) != b->len - from)
    {
        fclose(f);
        return -1;
    }

    return fclose(f) == 0 ? 0 : -1;
}


/*
 * Decodes a file to mono s16 at rate into *pcm (malloc'd); returns the
 * number of samples, or -1 if ffmpeg failed or said anything.
 */

static long
decode(const char *path, pg_format_t fmt, int rate, int16_t **pcm)
{
    char     cmd[512], err[300], msg[512];
    FILE    *p, *e;
    size_t   r, len, cap;
    int16_t *buf, *nbuf;
    int      status;

    snprintf(err, sizeof(err), "%s.err", path);
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error %s -i '%s' -f s16le -ac 1 -ar %d "
             "- 2>'%s'",
             fmt == PG_FMT_PCM ? "-f s16le -ar 24000 -ac 1" : "", path,
             rate, err);

    p = popen(cmd, "r");
    if (p == NULL) {
        return -1;
    }

    cap = 65536;
    len = 0;
    buf = malloc(cap * 2);

    while (buf != NULL && (r = fread(buf + len, 2, cap - len, p)) > 0) {
        len += r;

        if (len == cap) {
            nbuf = realloc(buf, cap * 4);
            if (nbuf == NULL) {
                free(buf);
                buf = NULL;
            }

            buf = nbuf;
            cap *= 2;
        }
    }

    status = pclose(p);

    e = fopen(err, "r");
    if (e != NULL) {
        r = fread(msg, 1, sizeof(msg) - 1, e);
        msg[r] = '\0';
        fclose(e);
        unlink(err);

        if (r > 0) {
            printf("# ffmpeg: %s", msg);
            status = -1;
        }
    }

    if (buf == NULL || status == -1 || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
    {
        free(buf);
        return -1;
    }

    *pcm = buf;

    return (long) len;
}


/*
 * Where the sound of each part begins in decoded audio: the first loud
 * sample after a stretch of near silence (the pauses) or at the start.
 */

static size_t
onsets(const int16_t *pcm, long n, int rate, double *at, size_t max)
{
    long    i, quiet;
    size_t  k;

    k = 0;
    quiet = rate;               /* the start counts as after silence */

    for (i = 0; i < n && k < max; i++) {
        if (abs(pcm[i]) >= 3000) {
            if (quiet >= rate / 10) {
                at[k++] = (double) i / rate;
            }

            quiet = 0;

        } else if (abs(pcm[i]) < 300) {
            quiet++;
        }
    }

    return k;
}


static void
check_decoded(const fmt_t *f, const pg_buf_t *out,
    const pg_episode_span_t *spans, size_t nspans, double duration)
{
    long         n;
    size_t       i, k;
    double       at[8], want, lo, hi;
    int16_t     *pcm;
    const char  *name;
    char         path[128];

    name = pg_format_name(f->fmt);

    if (!have_ffmpeg) {
        ok(1, "%s: decodes # SKIP no ffmpeg", name);
        return;
    }

    if (save(out, 0, name, path, sizeof(path)) != 0) {
        ok(0, "%s: saved", name);
        return;
    }

    pcm = NULL;
    n = decode(path, f->fmt, f->rate, &pcm);
    unlink(path);

    ok(n >= 0, "%s: ffmpeg decodes it cleanly", name);
    if (n < 0) {
        return;
    }

    /*
     * An episode's mp3 carries a LAME "Info" tag: the decoder drops lame's
     * delay (576 samples, plus its own 529) and the padding to whole
     * frames, so it is as long as rendered and on time, like the others.
     * (Without the tag it was 1105 samples late and up to two granules
     * long.)
     */

    lo = -1.0 / f->rate;
    hi = 1.0 / f->rate;

    if (f->fmt == PG_FMT_OPUS) {
        lo = -0.001;
        hi = 0.001;
    }

    ok((double) n / f->rate - duration >= lo - 1e-9
       && (double) n / f->rate - duration <= hi + 1e-9,
       "%s: decoded %.4f s, rendered %.4f s (%+.1f ms)", name,
       (double) n / f->rate, duration,
       ((double) n / f->rate - duration) * 1000);

    k = onsets(pcm, n, f->rate, at, 8);

    is_int(k, nspans, "%s: %zu parts heard", name, nspans);

    for (i = 0; i < k && i < nspans; i++) {
        want = spans[i].start;

        /* lossy codecs smear an onset by a few ms (pre-echo) */

        ok(fabs(at[i] - want) <= (f->fmt == PG_FMT_MP3 ? 0.005
                                  : f->fmt == PG_FMT_OPUS ? 0.003
                                  : 0.0002),
           "%s: part %zu heard at %.4f s, span start %.4f s (%+.2f ms)",
           name, i, at[i], spans[i].start,
           (at[i] - spans[i].start) * 1000);
    }

    free(pcm);
}


/* 0.5 s at 16 kHz, 0.25 s at 8 kHz, 1 s at 16 kHz, pauses of 0.3 s. */

static void
make_three(pg_buf_t *w, pg_episode_part_t *parts)
{
    make_wav(&w[0], 16000, 8000, 440, 0);
    make_wav(&w[1], 8000, 2000, 300, 1);
    make_wav(&w[2], 16000, 16000, 523.25, 0);

    parts[0].wav = w[0].data;
    parts[0].len = w[0].len;
    parts[1].wav = w[1].data;
    parts[1].len = w[1].len;
    parts[2].wav = w[2].data;
    parts[2].len = w[2].len;
}


static void
test_render_three(void)
{
    int                   rate, rc;
    size_t                f, i, n;
    double                duration, sum;
    pg_buf_t              w[3] = { { NULL, 0, 0 }, { NULL, 0, 0 },
                                   { NULL, 0, 0 } };
    pg_buf_t              out = { NULL, 0, 0 }, again = { NULL, 0, 0 };
    const char           *name;
    const unsigned char  *pcm;
    pg_episode_part_t     parts[3];
    pg_episode_span_t     spans[3];
    char                  err[ERRLEN];

    static const double  want[3][2] = {
        { 0, 0.5 }, { 0.8, 1.05 }, { 1.35, 2.35 }
    };

    make_three(w, parts);

    for (f = 0; f < NFORMATS; f++) {
        name = pg_format_name(formats[f].fmt);

        pg_buf_reset(&out);
        memset(spans, 0, sizeof(spans));
        duration = 0;
        err[0] = '\0';

        rc = pg_episode_render(parts, 3, 0, 0.3, formats[f].fmt, &out, spans,
                               &duration, err, sizeof(err));
        is_int(rc, 0, "%s: rendered %s", name, err);
        if (rc != 0) {
            continue;
        }

        ok(out.len > 0 && out.len >= formats[f].magic_len
           && memcmp(out.data, formats[f].magic, formats[f].magic_len) == 0,
           "%s: %zu bytes, right magic", name, out.len);

        for (i = 0; i < 3; i++) {
            ok(fabs(spans[i].start - want[i][0]) <= 0.001
               && fabs(spans[i].end - want[i][1]) <= 0.001,
               "%s: span %zu [%.5f, %.5f]", name, i, spans[i].start,
               spans[i].end);
        }

        ok(fabs(duration - 2.35) <= 0.001, "%s: duration %.5f", name,
           duration);

        sum = 0;

        for (i = 0; i < 3; i++) {
            sum += spans[i].end - spans[i].start;

            if (i + 1 < 3) {
                sum += spans[i + 1].start - spans[i].end;
            }
        }

        ok(spans[0].start == 0 && spans[2].end == duration
           && fabs(sum - duration) < 1e-12,
           "%s: spans and pauses add up to the duration", name);

        switch (formats[f].fmt) {

        case PG_FMT_WAV:
            is_int(pg_wav_parse(out.data, out.len, &pcm, &n, &rate), 0,
                   "wav: the episode parses");
            is_int(rate, 16000, "wav: at the highest rate, 16000");
            is_int(n, (long long) llround(duration * rate),
                   "wav: samples == duration * rate");
            ok(memcmp(out.data + 4, "\xff\xff\xff\xff", 4) != 0
               && memcmp(out.data + 40, "\xff\xff\xff\xff", 4) != 0,
               "wav: sizes fixed");

            /* part 0 is copied as is; the pauses are digital silence */

            ok(memcmp(pcm, parts[0].wav + 44, 16000) == 0,
               "wav: part 0 is the very samples");

            for (i = 8000; i < 12800 && sample_at(pcm, i) == 0; i++) {
                /* void */
            }

            is_int(i, 12800, "wav: first pause is silence");

            for (i = 16800; i < 21600 && sample_at(pcm, i) == 0; i++) {
                /* void */
            }

            is_int(i, 21600, "wav: second pause is silence");
            ok(memcmp(pcm + 2 * 21600, parts[2].wav + 44, 32000) == 0,
               "wav: part 2 is the very samples");
            break;

        case PG_FMT_PCM:
            ok(labs((long) out.len - (long) llround(2 * 24000 * duration))
               <= 4,
               "pcm: %zu bytes, 2 * 24000 * duration is %.0f", out.len,
               2 * 24000 * duration);
            break;

        case PG_FMT_FLAC:
            is_int(unit_flac_total(out.data, out.len),
                   (long long) llround(duration * 16000),
                   "flac: STREAMINFO has the total samples");
            ok(unit_flac_has_md5(out.data, out.len),
               "flac: and an MD5 of the audio");
            break;

        case PG_FMT_MP3:
            /* the first frame is the LAME tag, not an empty frame */
            ok(unit_mp3_lame_tag(out.data, out.len),
               "mp3: begins with a LAME Info tag");
            break;

        default:
            break;
        }

        check_decoded(&formats[f], &out, spans, 3, duration);

        /* the same episode, the same bytes (opus has a random serial) */

        if (formats[f].fmt != PG_FMT_OPUS) {
            pg_buf_reset(&again);
            rc = pg_episode_render(parts, 3, 0, 0.3, formats[f].fmt, &again,
                                   NULL, NULL, err, sizeof(err));
            ok(rc == 0 && again.len == out.len
               && memcmp(again.data, out.data, out.len) == 0,
               "%s: rendered again, the same bytes", name);
        }
    }

    pg_buf_free(&again);
    pg_buf_free(&out);

    for (i = 0; i < 3; i++) {
        pg_buf_free(&w[i]);
    }
}


static void
test_render_rates(void)
{
    int                   rate, rc;
    size_t                i, n;
    double                duration;
    pg_buf_t              w[3] = { { NULL, 0, 0 }, { NULL, 0, 0 },
                                   { NULL, 0, 0 } };
    pg_buf_t              out = { NULL, 0, 0 };
    const unsigned char  *pcm;
    pg_episode_part_t     parts[4];
    pg_episode_span_t     spans[4];
    char                  err[ERRLEN];

    /* an odd count of samples to 22050: round(2001 * 22050 / 8000) */

    make_wav(&w[0], 8000, 2001, 440, 0);
    make_wav(&w[1], 16000, 3200, 440, 1);
    make_wav(&w[2], 8000, 0, 440, 0);

    parts[0].wav = w[0].data;
    parts[0].len = w[0].len;

    pg_buf_append(&out, "xyz", 3);
    rc = pg_episode_render(parts, 1, 22050, 0.3, PG_FMT_WAV, &out, spans,
                           &duration, err, sizeof(err));
    is_int(rc, 0, "one part 8000 -> 22050");
    ok(out.len > 3 && memcmp(out.data, "xyz", 3) == 0,
       "appended after what was in out");
    ok(pg_wav_parse(out.data + 3, out.len - 3, &pcm, &n, &rate) == 0
       && rate == 22050 && n == 5515,
       "5515 samples at 22050 (%zu at %d)", n, rate);
    ok(spans[0].start == 0 && spans[0].end == 5515.0 / 22050
       && duration == 5515.0 / 22050, "one part: no pause, span is all");

    /*
     * The same 8 kHz part twice, a 16 kHz one between: the resampler is
     * reused for the third part and must give the same samples.  An empty
     * part at the end has two pauses before it, none after.
     */

    parts[1].wav = w[1].data;
    parts[1].len = w[1].len;
    parts[2] = parts[0];
    parts[3].wav = w[2].data;
    parts[3].len = w[2].len;

    pg_buf_reset(&out);
    rc = pg_episode_render(parts, 4, 0, 0.1, PG_FMT_WAV, &out, spans,
                           &duration, err, sizeof(err));
    is_int(rc, 0, "8000, 16000, 8000, empty -> 16000");
    ok(pg_wav_parse(out.data, out.len, &pcm, &n, &rate) == 0
       && rate == 16000 && n == 4002 + 1600 + 3200 + 1600 + 4002 + 1600,
       "%zu samples at %d", n, rate);
    ok(memcmp(pcm, pcm + 2 * (4002 + 1600 + 3200 + 1600), 2 * 4002) == 0,
       "the same part resampled twice: the same samples");
    ok(memcmp(pcm + 2 * (4002 + 1600), w[1].data + 44, 6400) == 0,
       "the 16 kHz part is copied");
    ok(fabs(spans[3].start - duration) < 1e-12
       && spans[3].end == spans[3].start,
       "empty part: an empty span at the end");
    ok(fabs(spans[2].end + 0.1 - spans[3].start) < 1e-12,
       "and a pause before it");

    /* parts with fixed or placeholder sizes give the same episode */

    pg_buf_reset(&out);
    pg_wav_fix_sizes(w[0].data, w[0].len);
    parts[0].wav = w[0].data;
    rc = pg_episode_render(parts, 4, 0, 0.1, PG_FMT_WAV, &out, NULL, NULL,
                           err, sizeof(err));
    ok(rc == 0 && pg_wav_parse(out.data, out.len, &pcm, &i, &rate) == 0
       && i == n, "a part with fixed sizes: the same length");

    /* opus's 48 kHz from 22050: spans in whole 48 kHz samples */

    pg_buf_reset(&out);
    rc = pg_episode_render(parts, 3, 22050, 0.25, PG_FMT_OPUS, &out, spans,
                           &duration, err, sizeof(err));
    is_int(rc, 0, "three parts at 22050, opus");

    for (i = 0; i < 3; i++) {
        ok(fabs(spans[i].start * 48000 - llround(spans[i].start * 48000))
           < 1e-6
           && fabs(spans[i].end * 48000 - llround(spans[i].end * 48000))
              < 1e-6,
           "opus span %zu in whole samples at 48 kHz: [%.6f, %.6f]", i,
           spans[i].start, spans[i].end);
    }

    ok(fabs(duration - (2 * 5515 + 2 * 5513 + 4410) / 22050.0) < 0.0001,
       "opus duration %.6f", duration);

    /* pcm: straight to 24 kHz, whatever out_rate */

    for (i = 0; i < 3; i++) {
        pg_buf_reset(&w[i]);
    }

    make_three(w, parts);

    pg_buf_reset(&out);
    rc = pg_episode_render(parts, 3, 8000, 0.3, PG_FMT_PCM, &out, spans,
                           &duration, err, sizeof(err));
    ok(rc == 0 && duration == 2.35 && out.len == 2 * 56400,
       "pcm with out_rate 8000: still 24 kHz, %zu bytes, %.5f s", out.len,
       duration);
    ok(spans[1].start == 0.8 && spans[1].end == 1.05,
       "pcm: span 1 exactly [0.8, 1.05]");

    pg_buf_free(&out);

    for (i = 0; i < 3; i++) {
        pg_buf_free(&w[i]);
    }
}


static void
test_render_errors(void)
{
    size_t                  i;
    double                  duration;
    pg_buf_t                w[3] = { { NULL, 0, 0 }, { NULL, 0, 0 },
                                     { NULL, 0, 0 } };
    pg_buf_t                out = { NULL, 0, 0 }, full;
    unsigned char          *bad;
    pg_episode_part_t       parts[3];
    pg_episode_span_t       spans[3];
    char                    err[ERRLEN];
    static unsigned char    dummy;

    make_three(w, parts);
    pg_buf_append(&out, "xyz", 3);

#define FAILS(call, want, what)                                              \
    err[0] = '\0';                                                           \
    is_int(call, -1, what);                                                  \
    ok(strstr(err, want) != NULL && out.len == 3,                            \
       "... \"%s\", out unchanged", err)

    FAILS(pg_episode_render(parts, 0, 0, 0.3, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "no parts", "n == 0: -1");
    FAILS(pg_episode_render(NULL, 3, 0, 0.3, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "no parts", "parts NULL: -1");

    /* a corrupt part: nothing is encoded */

    bad = malloc(w[1].len);
    memcpy(bad, w[1].data, w[1].len);
    bad[22] = 2;
    parts[1].wav = bad;

    FAILS(pg_episode_render(parts, 3, 0, 0.3, PG_FMT_MP3, &out, spans,
                            &duration, err, sizeof(err)),
          "part 1: not a 16-bit mono wav", "stereo part 1: -1");

    memcpy(bad, "RIFX", 4);
    FAILS(pg_episode_render(parts, 3, 0, 0.3, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "part 1: not a 16-bit mono wav", "not RIFF: -1");

    parts[1].wav = w[1].data;
    parts[2].len = 30;
    FAILS(pg_episode_render(parts, 3, 0, 0.3, PG_FMT_OPUS, &out, spans,
                            &duration, err, sizeof(err)),
          "part 2: not a 16-bit mono wav", "truncated part 2: -1");
    parts[2].wav = NULL;
    FAILS(pg_episode_render(parts, 3, 0, 0.3, PG_FMT_OPUS, &out, spans,
                            &duration, err, sizeof(err)),
          "part 2: not a 16-bit mono wav", "part 2 NULL: -1");
    parts[2].wav = w[2].data;
    parts[2].len = w[2].len;

    memcpy(bad, w[1].data, w[1].len);
    put_le32(bad + 24, 1000);
    put_le32(bad + 28, 2000);
    parts[1].wav = bad;
    FAILS(pg_episode_render(parts, 3, 0, 0.3, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "part 1: sample rate 1000 not supported", "part at 1000 Hz: -1");
    parts[1].wav = w[1].data;

    /* arguments */

    FAILS(pg_episode_render(parts, 3, 0, -0.1, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "pause", "pause -0.1: -1");
    FAILS(pg_episode_render(parts, 3, 0, NAN, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "pause", "pause NaN: -1");
    FAILS(pg_episode_render(parts, 3, 0, 61, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "pause", "pause 61: -1");
    FAILS(pg_episode_render(parts, 3, 100, 0.3, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "output rate 100", "out_rate 100: -1");
    FAILS(pg_episode_render(parts, 3, 1000000, 0.3, PG_FMT_WAV, &out, spans,
                            &duration, err, sizeof(err)),
          "output rate", "out_rate 1e6: -1");
    /* aac encodes at the rates ADTS has an index for, 9 kHz is not one */
    FAILS(pg_episode_render(parts, 3, 9000, 0.3, PG_FMT_AAC, &out, spans,
                            &duration, err, sizeof(err)),
          "encoder for aac", "aac at 9 kHz: -1");
    FAILS(pg_episode_render(parts, 3, 0, 0.3, PG_FMT_UNKNOWN, &out, spans,
                            &duration, err, sizeof(err)),
          "format", "unknown format: -1");

#undef FAILS

    is_int(pg_episode_render(parts, 3, 0, 0.3, PG_FMT_WAV, NULL, spans,
                             &duration, err, sizeof(err)),
           -1, "out NULL: -1");
    is_int(pg_episode_render(parts, 0, 0, 0.3, PG_FMT_WAV, &out, NULL, NULL,
                             NULL, 0),
           -1, "no errbuf: -1 all the same");

    memset(err, 'x', sizeof(err));
    pg_episode_render(parts, 0, 0, 0.3, PG_FMT_WAV, &out, NULL, NULL, err,
                      4);
    ok(memcmp(err, "no ", 4) == 0 && err[4] == 'x',
       "a short errbuf: cut and terminated");

    /*
     * A buffer that cannot grow stands for out of memory (see
     * test_audio.c): every format fails cleanly, leaving out alone.
     */

    full.data = &dummy;
    full.len = ((size_t) -1) / 2;
    full.cap = full.len;

    for (i = 0; i < NFORMATS; i++) {
        err[0] = '\0';
        is_int(pg_episode_render(parts, 3, 0, 0.3, formats[i].fmt, &full,
                                 spans, &duration, err, sizeof(err)),
               -1, "oom %s: -1 (%s)", pg_format_name(formats[i].fmt), err);
        is_int(full.len, ((size_t) -1) / 2, "oom %s: out unchanged",
               pg_format_name(formats[i].fmt));
    }

    free(bad);
    pg_buf_free(&out);

    for (i = 0; i < 3; i++) {
        pg_buf_free(&w[i]);
    }
}


/* ---- parts from elsewhere, the file out in pieces ----------------------- */


typedef struct {
    pg_buf_t       *wavs;
    int             fd;
    uint64_t        size;
    size_t          gets;
    size_t          held;           /* parts got and not put */
    size_t          max_write;
    int             low_writes;     /* writes under the head but the last */
    int             head_written;
    size_t          lasts;          /* puts with last set */
} io_t;


static int
io_get(void *data, size_t i, pg_episode_part_t *part, char *errbuf,
    size_t errlen)
{
    io_t  *io = data;

    part->wav = io->wavs[i].data;
    part->len = io->wavs[i].len;
    io->gets++;
    io->held++;

    return 0;
}


static void
io_put(void *data, size_t i, pg_episode_part_t *part, int last)
{
    io_t  *io = data;

    io->held--;
    io->lasts += last;
}


static int
io_write(void *data, uint64_t off, const unsigned char *p, size_t len)
{
    io_t  *io = data;

    if (off < PG_EPISODE_HEAD) {
        if (off != 0 || io->head_written) {
            io->low_writes++;
        }

        io->head_written = 1;

    } else if (io->head_written) {
        io->low_writes++;
    }

    if (len > io->max_write) {
        io->max_write = len;
    }

    if (pwrite(io->fd, p, len, (off_t) off) != (ssize_t) len) {
        return -1;
    }

    if (off + len > io->size) {
        io->size = off + len;
    }

    return 0;
}


/* A voice-like sound: tones under a syllable envelope, amp 0..1. */

static int16_t *
make_voice(int rate, size_t n, double amp, double f0)
{
    size_t    i;
    double    t, env, v;
    int16_t  *pcm;

    pcm = malloc((n ? n : 1) * sizeof(int16_t));
    if (pcm == NULL) {
        abort();
    }

    for (i = 0; i < n; i++) {
        t = (double) i / rate;
        env = 0.5 * (1 + sin(2 * M_PI * 3.3 * t));
        env *= env;
        v = 0.5 * sin(2 * M_PI * f0 * t) + 0.3 * sin(2 * M_PI * 2.1 * f0 * t)
            + 0.2 * sin(2 * M_PI * 4.7 * f0 * t + 1);
        pcm[i] = (int16_t) (32000.0 * amp * env * v);
    }

    return pcm;
}


static void
wav_of(pg_buf_t *b, const int16_t *pcm, size_t n, int rate)
{
    pg_enc_t  *enc;

    enc = pg_enc_create(PG_FMT_WAV, rate, b);

    if (enc == NULL || pg_enc_write(enc, pcm, n, b) != 0
        || pg_enc_finish(enc, b) != 0)
    {
        printf("Bail out! cannot make a wav\n");
        exit(1);
    }

    pg_enc_destroy(enc);
}


static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE           *f;
    long            n;
    unsigned char  *d;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    d = malloc(n ? n : 1);

    if (d == NULL || fread(d, 1, n, f) != (size_t) n) {
        free(d);
        fclose(f);
        return NULL;
    }

    fclose(f);
    *len = n;

    return d;
}


/*
 * Three parts of 40 s (a file of megabytes): written in pieces, each
 * part got and put in turn, and the file exact: the wav is the parts'
 * samples with the pauses' zeros, the flac decodes to them and has its
 * total in STREAMINFO, the mp3 its Info tag and length.
 */

static void
test_render_long(void)
{
    int                   rc;
    size_t                i, f, n, len, k, total;
    double                duration;
    io_t                  io;
    int16_t              *pcm[3], *want, *got;
    uint64_t              bytes, frames;
    pg_buf_t              w[3];
    unsigned char        *file;
    pg_episode_io_t       eio;
    pg_episode_span_t     spans[3];
    char                  path[128], err[ERRLEN];
    static const pg_format_t  fmts[] = { PG_FMT_WAV, PG_FMT_FLAC,
                                         PG_FMT_MP3, PG_FMT_M4A };

    n = 40 * 16000;

    for (i = 0; i < 3; i++) {
        pcm[i] = make_voice(16000, n, 0.2 + 0.2 * i, 150 + 40 * i);
        memset(&w[i], 0, sizeof(pg_buf_t));
        wav_of(&w[i], pcm[i], n, 16000);
    }

    /* the episode's samples: parts, 0.3 s pauses */

    total = 3 * n + 2 * 4800;
    want = calloc(total, sizeof(int16_t));
    if (want == NULL) {
        abort();
    }

    for (i = 0; i < 3; i++) {
        memcpy(want + i * (n + 4800), pcm[i], n * sizeof(int16_t));
    }

    for (f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
        const char  *name = pg_format_name(fmts[f]);

        snprintf(path, sizeof(path), "%s/long.%s", tmpdir, name);

        memset(&io, 0, sizeof(io_t));
        io.wavs = w;
        io.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        eio.get = io_get;
        eio.put = io_put;
        eio.write = io_write;
        eio.data = &io;

        err[0] = '\0';
        bytes = 0;
        rc = pg_episode_render_files(&eio, 3, 0, 0.3, fmts[f], NULL, &bytes,
                                     spans, &duration, NULL, err,
                                     sizeof(err));
        close(io.fd);

        is_int(rc, 0, "long %s: rendered (%s)", name, err);
        is_int(io.held, 0, "long %s: every part got was put", name);
        ok(io.gets == 6, "long %s: each part got twice (%zu gets)", name,
           io.gets);
        is_int(io.lasts, 3, "long %s: each part put last once", name);
        if (fmts[f] != PG_FMT_M4A) {
            is_int(io.low_writes, 0, "long %s: the head written once, last",
                   name);
            ok(io.max_write <= PG_EPISODE_DRAIN + 64 * 1024,
               "long %s: written in pieces (at most %zu bytes)", name,
               io.max_write);
        }
        ok(bytes == io.size, "long %s: %llu bytes, as written", name,
           (unsigned long long) bytes);
        ok(fabs(duration - (double) total / 16000) < 1e-9,
           "long %s: %.4f s", name, duration);

        file = slurp(path, &len);
        ok(file != NULL && len == bytes, "long %s: the file", name);
        if (file == NULL) {
            continue;
        }

        if (fmts[f] == PG_FMT_WAV) {
            ok(len == 44 + total * 2
               && pg_episode_le32_test(file + 4) == len - 8
               && pg_episode_le32_test(file + 40) == total * 2
               && memcmp(file + 44, want, total * 2) == 0,
               "long wav: its sizes, and exactly the parts and pauses");

        } else if (fmts[f] == PG_FMT_FLAC) {
            /* STREAMINFO: 36 bits of total samples after 8 + 10 bytes */
            frames = ((uint64_t) (file[21] & 0x0f) << 32)
                     | (uint64_t) file[22] << 24 | (uint64_t) file[23] << 16
                     | (uint64_t) file[24] << 8 | file[25];
            ok(frames == total, "long flac: STREAMINFO has %llu samples",
               (unsigned long long) frames);

            for (k = 0; k < 16 && file[26 + k] == 0; k++) { /* void */ }
            ok(k < 16, "long flac: and an MD5");

            if (have_ffmpeg) {
                got = NULL;
                rc = (int) decode(path, PG_FMT_FLAC, 16000, &got);
                ok(rc == (int) total && got
                   && memcmp(got, want, total * 2) == 0,
                   "long flac: decodes to exactly the parts and pauses");
                free(got);
            }

        } else if (fmts[f] == PG_FMT_M4A) {

            /* the muxer goes back over the whole file: it is kept whole */

            ok(len > PG_EPISODE_DRAIN + 64 * 1024,
               "long m4a: more than one drain's worth (%zu bytes)", len);
            ok(memmem(file, len, "moov", 4) != NULL
               && memmem(file, 64, "ftyp", 4) != NULL,
               "long m4a: an MP4 with its index (moov)");

            if (have_ffmpeg) {
                got = NULL;
                rc = (int) decode(path, PG_FMT_M4A, 16000, &got);
                ok(rc >= (int) total && rc <= (int) total + 1024,
                   "long m4a: decodes to %d samples (%zu, and at most one "
                   "frame more)", rc, total);
                free(got);
            }

        } else {
            ok(memmem(file, len < 4096 ? len : 4096, "Info", 4) != NULL,
               "long mp3: a LAME Info tag at the start");

            if (have_ffmpeg) {
                got = NULL;
                rc = (int) decode(path, PG_FMT_MP3, 16000, &got);
                ok(labs((long) rc - (long) total) <= 1,
                   "long mp3: decodes to %d samples (%zu)", rc, total);
                free(got);
            }
        }

        free(file);
        unlink(path);
    }

    free(want);

    for (i = 0; i < 3; i++) {
        free(pcm[i]);
        pg_buf_free(&w[i]);
    }
}


static int
lossy(pg_format_t fmt)
{
    return fmt == PG_FMT_MP3 || fmt == PG_FMT_OPUS;
}


/* loudness of pcm[from, to) at rate: integrated LUFS, true peak dBTP */

static void
measure(const int16_t *pcm, size_t from, size_t to, int rate, double *lufs,
    double *tp)
{
    double          peak;
    ebur128_state  *st;

    st = ebur128_init(1, rate, EBUR128_MODE_I | EBUR128_MODE_TRUE_PEAK);

    if (st == NULL
        || ebur128_add_frames_short(st, pcm + from, to - from)
           != EBUR128_SUCCESS
        || ebur128_loudness_global(st, lufs) != EBUR128_SUCCESS
        || ebur128_true_peak(st, 0, &peak) != EBUR128_SUCCESS)
    {
        printf("Bail out! ebur128\n");
        exit(1);
    }

    *tp = 20 * log10(peak);
    ebur128_destroy(&st);
}


/*
 * Loudness: a quiet part and a loud one (with peaks near full scale),
 * each voiced at its own gain that levels them, brought to -16 LUFS and
 * -1 dBTP in every format, measured on the decoded file.
 */

static void
test_render_loudness(void)
{
    int                    rc, rate;
    long                   got_n;
    size_t                 i, f, n, a, b;
    double                 duration, lufs, tp, l0, l1, t0, target;
    double                 gains[2];
    io_t                   io;
    int16_t               *pcm[2], *got;
    uint64_t               bytes;
    pg_buf_t               w[2], plain, again;
    pg_episode_io_t        eio;
    pg_episode_opts_t      opts;
    pg_episode_span_t      spans[2];
    pg_episode_loudness_t  loud;
    pg_episode_part_t      parts[2];
    char                   path[128], err[ERRLEN];

    n = 20 * 16000;

    /* -12 dB apart; the loud one peaks at about -1 dBFS */
    pcm[0] = make_voice(16000, n, 0.22, 140);
    pcm[1] = make_voice(16000, n, 0.88, 210);

    for (i = 0; i < 2; i++) {
        memset(&w[i], 0, sizeof(pg_buf_t));
        wav_of(&w[i], pcm[i], n, 16000);
        parts[i].wav = w[i].data;
        parts[i].len = w[i].len;
    }

    measure(pcm[0], 0, n, 16000, &l0, &t0);
    measure(pcm[1], 0, n, 16000, &l1, &t0);

    /* the parts' own gains bring both to -20 LUFS before the episode's */
    gains[0] = -20 - l0;
    gains[1] = -20 - l1;

    ok(l1 - l0 > 10, "loudness: the parts differ by %.1f LU", l1 - l0);

    for (f = 0; f < 2 * NFORMATS; f++) {
        target = f < NFORMATS ? -16 : -10;
        const char  *name = pg_format_name(formats[f % NFORMATS].fmt);

        rate = formats[f % NFORMATS].rate;

        snprintf(path, sizeof(path), "%s/loud.%s", tmpdir, name);

        memset(&io, 0, sizeof(io_t));
        io.wavs = w;
        io.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        eio.get = io_get;
        eio.put = io_put;
        eio.write = io_write;
        eio.data = &io;

        memset(&opts, 0, sizeof(opts));
        opts.loudness = 1;
        opts.target_lufs = target;
        opts.peak_dbtp = -1;
        opts.gain_db = gains;

        memset(&loud, 0, sizeof(loud));
        err[0] = '\0';

        rc = pg_episode_render_files(&eio, 2, 0, 0.5,
                                     formats[f % NFORMATS].fmt, &opts,
                                     &bytes, spans, &duration, &loud, err,
                                     sizeof(err));
        close(io.fd);

        is_int(rc, 0, "loudness %s %g: rendered (%s)", name, target, err);
        ok(io.gets == 6 || (target == -10 && io.gets >= 8 && io.gets <= 10),
           "loudness %s: parts got %zu times (checked, measured, [measured "
           "limited,] encoded)", name, io.gets);
        ok(loud.measured && fabs(loud.integrated_lufs - -20) < 0.5
           && loud.gain_db >= target - loud.integrated_lufs - 1e-9
           && loud.gain_db <= target - loud.integrated_lufs + 12 + 1e-9
           && (loud.limited || loud.gain_db
                               == target - loud.integrated_lufs),
           "loudness %s: measured %.2f LUFS %.2f dBTP, gain %+.2f dB, %llu "
           "samples limited", name, loud.integrated_lufs, loud.true_peak_dbtp,
           loud.gain_db, (unsigned long long) loud.limited);
        ok(fabs(duration - (2.0 * n + 8000) / 16000) < 0.001,
           "loudness %s: the length is the same (%.4f s)", name, duration);

        if (!have_ffmpeg) {
            unlink(path);
            continue;
        }

        got = NULL;
        got_n = decode(path, formats[f % NFORMATS].fmt, rate, &got);
        unlink(path);

        ok(got_n > 0, "loudness %s: decodes", name);
        if (got_n <= 0) {
            continue;
        }

        measure(got, 0, got_n, rate, &lufs, &tp);

        /*
         * At -10 LUFS the sound (14 dB from its loudness to its peak)
         * cannot keep under -1 dBTP unlimited: the limiter holds the peak,
         * for lossless output, at the cost of some loudness.
         */

        if (target == -16) {
            ok(fabs(lufs - target) <= 1.0,
               "loudness %s: %.2f LUFS integrated (%g +- 1)", name, lufs,
               target);

        } else {
            ok(lufs > -16 + 1 && lufs < target + 0.5,
               "loudness %s: %.2f LUFS integrated at a target of %g, "
               "limited", name, lufs, target);
        }

        if (target == -16 || !lossy(formats[f % NFORMATS].fmt)) {
            ok(tp <= -1 + 0.3, "loudness %s: true peak %.2f dBTP (<= -0.7)",
               name, tp);
        }

        /* each part measured alone: one level */

        a = (size_t) (spans[0].end * rate);
        b = (size_t) (spans[1].start * rate);

        if (b < (size_t) got_n) {
            measure(got, 0, a, rate, &l0, &t0);
            measure(got, b, got_n, rate, &l1, &t0);
            ok(fabs(l0 - l1) <= 1.0,
               "loudness %s: the parts at %.2f and %.2f LUFS", name, l0, l1);
        }

        free(got);
    }

    /* off: the same bytes as pg_episode_render() */

    memset(&plain, 0, sizeof(pg_buf_t));
    memset(&again, 0, sizeof(pg_buf_t));

    rc = pg_episode_render(parts, 2, 0, 0.5, PG_FMT_FLAC, &plain, NULL, NULL,
                           err, sizeof(err));

    snprintf(path, sizeof(path), "%s/off.flac", tmpdir);
    memset(&io, 0, sizeof(io_t));
    io.wavs = w;
    io.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    eio.get = io_get;
    eio.put = io_put;
    eio.write = io_write;
    eio.data = &io;
    memset(&opts, 0, sizeof(opts));
    opts.gain_db = gains;

    rc |= pg_episode_render_files(&eio, 2, 0, 0.5, PG_FMT_FLAC, &opts,
                                  &bytes, NULL, NULL, NULL, err,
                                  sizeof(err));
    close(io.fd);

    {
        size_t          len;
        unsigned char  *file = slurp(path, &len);

        ok(rc == 0 && file && len == plain.len
           && memcmp(file, plain.data, len) == 0,
           "loudness off: the same file as without options");
        free(file);
    }

    unlink(path);

    /* out of range */

    memset(&opts, 0, sizeof(opts));
    opts.loudness = 1;
    opts.target_lufs = 3;
    opts.peak_dbtp = -1;
    ok(pg_episode_render_files(&eio, 2, 0, 0.5, PG_FMT_WAV, &opts, NULL,
                               NULL, NULL, NULL, err, sizeof(err)) == -1,
       "loudness: a target of +3 LUFS refused (%s)", err);

    pg_buf_free(&plain);
    pg_buf_free(&again);

    for (i = 0; i < 2; i++) {
        free(pcm[i]);
        pg_buf_free(&w[i]);
    }
}


int
main(void)
{
    char  dir[] = "/tmp/pg_episode_XXXXXX";

    setvbuf(stdout, NULL, _IOLBF, 0);

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }

    snprintf(tmpdir, sizeof(tmpdir), "%s", dir);

    have_ffmpeg = system("ffmpeg -version >/dev/null 2>&1") == 0;

    if (!have_ffmpeg) {
        printf("# ffmpeg not found: decoding checks are skipped\n");
    }

    test_parse_good();
    test_parse_hostile();
    test_parse_fuzz();
    test_render_three();
    test_render_rates();
    test_render_errors();
    test_render_long();
    test_render_loudness();

    rmdir(tmpdir);

    return done_testing();
}
