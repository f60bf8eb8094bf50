/*
 * Unit tests of pg_audio: format tables, the encoders' streaming output
 * (decoded back by ffmpeg when it is installed), pg_wav_fix_sizes(), and
 * encoders used from other threads.
 */

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_audio.h"
#include "unit.h"


#define SINE_SECONDS   1.5
#define DECODE_RATE    16000


typedef struct {
    pg_format_t   fmt;
    int           rate;
    int16_t      *pcm;
    size_t        n;
    pg_buf_t      out;
    size_t        streamed;         /* bytes out before finish */
    int           out_rate;
    int           rc;
    pg_enc_t     *enc;
} job_t;


static const pg_format_t  formats[] = {
    PG_FMT_WAV, PG_FMT_PCM, PG_FMT_MP3, PG_FMT_OPUS, PG_FMT_FLAC, PG_FMT_AAC
};

#define NFORMATS  (sizeof(formats) / sizeof(formats[0]))

static const int  rates[] = { 8000, 16000, 22050, 24000, 44100, 48000 };

#define NRATES  (sizeof(rates) / sizeof(rates[0]))


static char  tmpdir[64];
static int   have_ffmpeg;
static int   file_no;


static int16_t *
make_sine(int rate, double seconds, size_t *n)
{
    size_t    i;
    int16_t  *pcm;

    *n = (size_t) (rate * seconds + 0.5);

    pcm = malloc(*n * sizeof(int16_t));
    if (pcm == NULL) {
        abort();
    }

    for (i = 0; i < *n; i++) {
        pcm[i] = (int16_t) (12000.0 * sin(2 * M_PI * 440.0 * i / rate));
    }

    return pcm;
}


/* Writes in uneven pieces (1, 160, 4000, the rest) with empty writes. */

static int
encode_pieces(job_t *j)
{
    size_t               off, k, i;
    static const size_t  pieces[] = { 1, 0, 160, 4000, 0 };

    off = 0;

    for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        k = pieces[i] < j->n - off ? pieces[i] : j->n - off;

        if (pg_enc_write(j->enc, k ? j->pcm + off : NULL, k, &j->out) != 0) {
            return -1;
        }

        off += k;
    }

    if (pg_enc_write(j->enc, j->pcm + off, j->n - off, &j->out) != 0) {
        return -1;
    }

    j->streamed = j->out.len;
    j->out_rate = pg_enc_out_rate(j->enc);

    return pg_enc_finish(j->enc, &j->out);
}


static void *
encode_thread(void *arg)
{
    job_t  *j = arg;

    j->rc = encode_pieces(j);
    pg_enc_destroy(j->enc);
    j->enc = NULL;

    return NULL;
}


static int
save(const pg_buf_t *b, const char *ext, char *path, size_t size)
{
    FILE  *f;

    snprintf(path, size, "%s/%d.%s", tmpdir, file_no++, ext);

    f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }

    if (b->len && fwrite(b->data, 1, b->len, f) != b->len) {
        fclose(f);
        return -1;
    }

    return fclose(f) == 0 ? 0 : -1;
}


/*
 * Decodes a file to mono s16 at DECODE_RATE; returns the number of
 * samples, or -1 if ffmpeg failed or said anything at error level.
 */

static long
decode(const char *path, pg_format_t fmt, int pipe)
{
    int     status;
    char    cmd[512], err[300], buf[8192];
    long    bytes;
    FILE   *p, *e;
    size_t  r;

    /* through a pipe ffmpeg cannot seek: as a client reading a stream */

    snprintf(err, sizeof(err), "%s.err", path);
    snprintf(cmd, sizeof(cmd),
             "%s%s%s ffmpeg -nostdin -v error %s -i %s -f s16le -ac 1 -ar %d "
             "- 2>'%s'",
             pipe ? "cat '" : "", pipe ? path : "", pipe ? "' |" : "",
             fmt == PG_FMT_PCM ? "-f s16le -ar 24000 -ac 1" : "",
             pipe ? "-" : path, DECODE_RATE, err);

    p = popen(cmd, "r");
    if (p == NULL) {
        return -1;
    }

    bytes = 0;

    while ((r = fread(buf, 1, sizeof(buf), p)) > 0) {
        bytes += (long) r;
    }

    status = pclose(p);

    e = fopen(err, "r");
    if (e != NULL) {
        r = fread(buf, 1, sizeof(buf) - 1, e);
        buf[r] = '\0';
        fclose(e);
        unlink(err);

        if (r > 0) {
            printf("# ffmpeg: %s", buf);
            return -1;
        }
    }

    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return -1;
    }

    return bytes / 2;
}


/* ffprobe's idea of a file's duration in ms, or -1. */

static double
probe_ms(const char *path)
{
    char    cmd[512], line[64];
    FILE   *p;
    double  d;

    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -show_entries format=duration -of csv=p=0 "
             "'%s'", path);

    p = popen(cmd, "r");
    if (p == NULL) {
        return -1;
    }

    d = -1;

    if (fgets(line, sizeof(line), p) != NULL) {
        d = atof(line) * 1000;
    }

    return pclose(p) == 0 ? d : -1;
}


/* ffprobe's start_time of a file's stream in ms, or -1e9 */

static double
probe_start_ms(const char *path)
{
    char    cmd[512], line[64];
    FILE   *p;
    double  d;

    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -show_entries stream=start_time -of csv=p=0 "
             "'%s'", path);

    p = popen(cmd, "r");
    if (p == NULL) {
        return -1e9;
    }

    d = -1e9;

    if (fgets(line, sizeof(line), p) != NULL) {
        d = atof(line) * 1000;
    }

    return pclose(p) == 0 ? d : -1e9;
}


static int
starts_right(pg_format_t fmt, const pg_buf_t *b)
{
    const unsigned char  *p = b->data;

    switch (fmt) {

    case PG_FMT_WAV:
        return b->len >= 44 && memcmp(p, "RIFF", 4) == 0
               && memcmp(p + 8, "WAVE", 4) == 0;

    case PG_FMT_MP3:
        return b->len >= 3
               && (memcmp(p, "ID3", 3) == 0
                   || (p[0] == 0xff && (p[1] & 0xe0) == 0xe0));

    case PG_FMT_OPUS:
        return b->len >= 36 && memcmp(p, "OggS", 4) == 0
               && memcmp(p + 28, "OpusHead", 8) == 0;

    case PG_FMT_FLAC:
        return b->len >= 4 && memcmp(p, "fLaC", 4) == 0;

    case PG_FMT_AAC:
        /* ADTS: the sync word, MPEG-4, layer 0, no CRC; AAC LC, mono */
        return b->len >= 7 && p[0] == 0xff && p[1] == 0xf1
               && (p[2] >> 6) == 1 && ((p[2] & 1) << 2 | p[3] >> 6) == 1;

    default:
        return 1;
    }
}


/*
 * The decoded duration minus the input's, in ms, must be in [lo, hi].
 * An mp3 without a gapless (LAME) tag decodes 1152 samples of encoder and
 * decoder delay more, plus the padding of the last frame (576 or 1152
 * samples a frame): lame 3.100 measured, from 1000 to 7000 samples; and a
 * stream's first frame, reserved for the Info tag, decodes as one frame
 * of silence.
 */

static void
tolerance_ms(const job_t *j, double *lo, double *hi)
{
    int  frame;

    switch (j->fmt) {

    case PG_FMT_MP3:
        frame = j->out_rate >= 32000 ? 1152 : 576;
        *lo = (1152 + frame) * 1000.0 / j->out_rate - 2;
        *hi = (1152 + 2 * frame) * 1000.0 / j->out_rate + 2;
        break;

    case PG_FMT_OPUS:
        *lo = -10;
        *hi = 10;
        break;

    case PG_FMT_AAC:
        /* ADTS carries no priming: the encoder's 1024 samples of delay
         * and the last frame's padding (under 1024) decode too */
        *lo = 1024 * 1000.0 / j->out_rate - 2;
        *hi = 2048 * 1000.0 / j->out_rate + 2;
        break;

    default:
        *lo = -5;
        *hi = 5;
        break;
    }
}


static void
check_output(job_t *j, const char *what)
{
    long         got, want;
    double       diff, lo, hi;
    const char  *name;
    char         path[128];

    name = pg_format_name(j->fmt);

    ok(starts_right(j->fmt, &j->out), "%s %s %d: right magic", what, name,
       j->rate);

    if (j->fmt == PG_FMT_PCM) {
        want = (long) ((double) j->n * PG_PCM_RATE / j->rate + 0.5);
        got = (long) (j->out.len / 2);
        ok(labs(got - want) <= 2, "%s pcm %d: %ld samples at 24 kHz (%ld)",
           what, j->rate, got, want);
    }

    if (!have_ffmpeg) {
        ok(1, "%s %s %d: decodes # SKIP no ffmpeg", what, name, j->rate);
        return;
    }

    if (save(&j->out, name, path, sizeof(path)) != 0) {
        ok(0, "%s %s %d: saved", what, name, j->rate);
        return;
    }

    got = decode(path, j->fmt, 0);
    want = (long) (SINE_SECONDS * DECODE_RATE);
    diff = (got - want) * 1000.0 / DECODE_RATE;

    tolerance_ms(j, &lo, &hi);

    ok(got >= 0, "%s %s %d: ffmpeg decodes it cleanly", what, name, j->rate);
    ok(got >= 0 && diff >= lo && diff <= hi,
       "%s %s %d: duration off by %.1f ms (%.1f to %.1f)", what, name,
       j->rate, diff, lo, hi);

    if (j->fmt == PG_FMT_WAV) {
        /* the streamed header's 0xffffffff sizes */
        is_int(decode(path, j->fmt, 1), want,
               "%s wav %d: streamed file decodes through a pipe", what,
               j->rate);
        ok(fabs(probe_ms(path) - SINE_SECONDS * 1000) <= 1,
           "%s wav %d: ffprobe duration of the streamed file", what,
           j->rate);

        is_int(pg_wav_fix_sizes(j->out.data, j->out.len), 0,
               "%s wav %d: pg_wav_fix_sizes", what, j->rate);
        unlink(path);

        if (save(&j->out, name, path, sizeof(path)) == 0) {
            is_int(decode(path, j->fmt, 0), want,
                   "%s wav %d: fixed file decodes", what, j->rate);
            ok(fabs(probe_ms(path) - SINE_SECONDS * 1000) <= 1,
               "%s wav %d: ffprobe duration of the fixed file", what,
               j->rate);
        }
    }

    unlink(path);
}


static void
test_tables(void)
{
    size_t  i;

    static const struct {
        const char  *name;
        pg_format_t  fmt;
        const char  *mime;
    } t[] = {
        { "mp3",  PG_FMT_MP3,  "audio/mpeg" },
        { "opus", PG_FMT_OPUS, "audio/ogg" },
        { "aac",  PG_FMT_AAC,  "audio/aac" },
        { "wav",  PG_FMT_WAV,  "audio/wav" },
        { "flac", PG_FMT_FLAC, "audio/flac" },
        { "pcm",  PG_FMT_PCM,  "audio/pcm" }
    };

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        is_int(pg_format_from_name(t[i].name, strlen(t[i].name)), t[i].fmt,
               "from_name %s", t[i].name);
        is_str(pg_format_name(t[i].fmt), t[i].name, "name %s", t[i].name);
        is_str(pg_format_mime(t[i].fmt), t[i].mime, "mime %s", t[i].name);
    }

    /* the length counts, not a NUL */
    is_int(pg_format_from_name("mp3x", 3), PG_FMT_MP3, "from_name len 3");
    is_int(pg_format_from_name("flacx", 4), PG_FMT_FLAC, "from_name len 4");
    is_int(pg_format_from_name("mp3", 2), PG_FMT_UNKNOWN, "prefix unknown");
    is_int(pg_format_from_name("mp3x", 4), PG_FMT_UNKNOWN, "longer unknown");
    is_int(pg_format_from_name("MP3", 3), PG_FMT_UNKNOWN, "case-sensitive");
    is_int(pg_format_from_name("", 0), PG_FMT_UNKNOWN, "empty unknown");
    is_int(pg_format_from_name(NULL, 3), PG_FMT_UNKNOWN, "NULL unknown");
    is_int(pg_format_from_name("mp3\0", 4), PG_FMT_UNKNOWN, "NUL counts");

    is_str(pg_format_name(PG_FMT_UNKNOWN), NULL, "name of unknown: NULL");
    is_str(pg_format_mime(PG_FMT_UNKNOWN), NULL, "mime of unknown: NULL");
    is_str(pg_format_name((pg_format_t) 99), NULL, "name of 99: NULL");
}


static void
test_create_errors(void)
{
    size_t     i;
    pg_buf_t   out = { NULL, 0, 0 };
    pg_enc_t  *enc;

    pg_buf_append(&out, "xyz", 3);

    ok(pg_enc_create(PG_FMT_AAC, 9000, &out) == NULL,
       "aac at a rate ADTS has no index for -> NULL");
    ok(pg_enc_create(PG_FMT_UNKNOWN, 16000, &out) == NULL,
       "unknown -> NULL");
    ok(pg_enc_create((pg_format_t) -1, 16000, &out) == NULL, "-1 -> NULL");

    for (i = 0; i < NFORMATS; i++) {
        ok(pg_enc_create(formats[i], 0, &out) == NULL, "%s rate 0 -> NULL",
           pg_format_name(formats[i]));
        ok(pg_enc_create(formats[i], -1, &out) == NULL, "%s rate -1 -> NULL",
           pg_format_name(formats[i]));
        ok(pg_enc_create(formats[i], 10000000, &out) == NULL,
           "%s rate 1e7 -> NULL", pg_format_name(formats[i]));
        ok(pg_enc_create(formats[i], 16000, NULL) == NULL,
           "%s out NULL -> NULL", pg_format_name(formats[i]));
    }

    is_int(out.len, 3, "failed creates leave out alone");

    pg_enc_destroy(NULL);
    ok(1, "pg_enc_destroy(NULL)");
    is_int(pg_enc_out_rate(NULL), 0, "out_rate(NULL) is 0");
    is_int(pg_enc_write(NULL, NULL, 0, &out), -1, "write(NULL) is -1");
    is_int(pg_enc_finish(NULL, &out), -1, "finish(NULL) is -1");

    /* a write error makes the encoder unusable, but destroyable */

    enc = pg_enc_create(PG_FMT_OPUS, 16000, &out);
    ok(enc != NULL, "opus created");
    is_int(pg_enc_write(enc, NULL, 10, &out), -1, "write NULL pcm is -1");
    is_int(pg_enc_write(enc, NULL, 0, &out), -1, "then write is -1");
    is_int(pg_enc_finish(enc, &out), -1, "then finish is -1");
    pg_enc_destroy(enc);

    pg_buf_free(&out);
}


static void
test_open_and_finish(void)
{
    int        want_rate;
    size_t     i, len;
    char       path[128];
    long       got;
    pg_buf_t   out = { NULL, 0, 0 };
    pg_enc_t  *enc;
    int16_t    one = 1000;

    for (i = 0; i < NFORMATS; i++) {
        const char  *name = pg_format_name(formats[i]);

        pg_buf_reset(&out);

        enc = pg_enc_create(formats[i], 22050, &out);
        ok(enc != NULL, "%s: created", name);
        if (enc == NULL) {
            continue;
        }

        switch (formats[i]) {
        case PG_FMT_WAV:
            is_int(out.len, 44, "wav: 44-byte header at create");
            ok(memcmp(out.data + 4, "\xff\xff\xff\xff", 4) == 0
               && memcmp(out.data + 40, "\xff\xff\xff\xff", 4) == 0,
               "wav: sizes are 0xffffffff while streaming");
            want_rate = 22050;
            break;
        case PG_FMT_OPUS:
            ok(starts_right(PG_FMT_OPUS, &out), "opus: header at create");
            want_rate = 48000;
            break;
        case PG_FMT_FLAC:
            ok(starts_right(PG_FMT_FLAC, &out), "flac: header at create");
            want_rate = 22050;
            break;
        case PG_FMT_PCM:
            is_int(out.len, 0, "pcm: nothing at create");
            want_rate = 24000;
            break;
        default:
            is_int(out.len, 0, "%s: nothing at create", name);
            want_rate = 22050;
            break;
        }

        is_int(pg_enc_out_rate(enc), want_rate, "%s: out rate", name);

        len = out.len;
        is_int(pg_enc_write(enc, NULL, 0, &out), 0, "%s: empty write", name);
        is_int(pg_enc_write(enc, &one, 0, &out), 0, "%s: 0 samples", name);
        is_int(out.len, len, "%s: empty writes add nothing", name);

        is_int(pg_enc_finish(enc, &out), 0, "%s: finish right after create",
               name);
        is_int(pg_enc_finish(enc, &out), -1, "%s: second finish is -1",
               name);
        is_int(pg_enc_write(enc, &one, 1, &out), -1,
               "%s: write after finish is -1", name);

        pg_enc_destroy(enc);

        /* a valid, empty file where the format has a header */

        if (formats[i] == PG_FMT_WAV || formats[i] == PG_FMT_OPUS
            || formats[i] == PG_FMT_FLAC)
        {
            if (!have_ffmpeg) {
                ok(1, "%s: empty file decodes # SKIP no ffmpeg", name);

            } else if (save(&out, name, path, sizeof(path)) == 0) {
                got = decode(path, formats[i], 0);
                ok(got >= 0 && got < DECODE_RATE / 50,
                   "%s: empty file decodes (%ld samples)", name, got);
                unlink(path);
            }
        }

        /* destroying an encoder that was never finished */

        pg_buf_reset(&out);
        enc = pg_enc_create(formats[i], 16000, &out);
        ok(enc != NULL && pg_enc_write(enc, &one, 1, &out) == 0,
           "%s: unfinished encoder", name);
        pg_enc_destroy(enc);
    }

    pg_buf_free(&out);
}


static void
test_formats(void)
{
    size_t  f, r;
    job_t   j;

    for (f = 0; f < NFORMATS; f++) {
        for (r = 0; r < NRATES; r++) {
            memset(&j, 0, sizeof(j));
            j.fmt = formats[f];
            j.rate = rates[r];
            j.pcm = make_sine(j.rate, SINE_SECONDS, &j.n);

            j.enc = pg_enc_create(j.fmt, j.rate, &j.out);
            ok(j.enc != NULL, "%s %d: created", pg_format_name(j.fmt),
               j.rate);

            if (j.enc != NULL) {
                is_int(encode_pieces(&j), 0, "%s %d: encoded",
                       pg_format_name(j.fmt), j.rate);

                /*
                 * streaming: most bytes come out before finish (flac
                 * holds back up to a block, 4096 samples)
                 */
                ok(j.streamed * 2 >= j.out.len,
                   "%s %d: %zu of %zu bytes out before finish",
                   pg_format_name(j.fmt), j.rate, j.streamed, j.out.len);

                pg_enc_destroy(j.enc);
                check_output(&j, "main");
            }

            free(j.pcm);
            pg_buf_free(&j.out);
        }
    }
}


/* Created in this thread, encoded in others, all formats at once. */

static void
test_threads(void)
{
    size_t     i;
    job_t      jobs[NFORMATS];
    pthread_t  tid[NFORMATS];
    int        started[NFORMATS];

    for (i = 0; i < NFORMATS; i++) {
        memset(&jobs[i], 0, sizeof(job_t));
        jobs[i].fmt = formats[i];
        jobs[i].rate = 16000;
        jobs[i].pcm = make_sine(16000, SINE_SECONDS, &jobs[i].n);
        jobs[i].enc = pg_enc_create(formats[i], 16000, &jobs[i].out);
        jobs[i].rc = -1;

        started[i] = jobs[i].enc != NULL
                     && pthread_create(&tid[i], NULL, encode_thread,
                                       &jobs[i]) == 0;
    }

    for (i = 0; i < NFORMATS; i++) {
        if (started[i]) {
            pthread_join(tid[i], NULL);
        }

        ok(started[i] && jobs[i].rc == 0, "thread %s: encoded",
           pg_format_name(formats[i]));

        if (started[i] && jobs[i].rc == 0) {
            check_output(&jobs[i], "thread");
        }

        pg_enc_destroy(jobs[i].enc);
        free(jobs[i].pcm);
        pg_buf_free(&jobs[i].out);
    }
}


/*
 * A buffer that cannot grow (pg_buf_reserve() refuses before touching
 * memory) stands for out of memory: every path must return an error,
 * leave the buffer alone, and leak nothing.
 */

static void
test_out_of_memory(void)
{
    size_t                i, n;
    int16_t              *pcm;
    pg_buf_t              out = { NULL, 0, 0 }, full;
    pg_enc_t             *enc;
    pg_format_t           fmt;
    const char           *name;
    static unsigned char  dummy;

    full.data = &dummy;
    full.len = ((size_t) -1) / 2;
    full.cap = full.len;

    pcm = make_sine(16000, 1.0, &n);

    for (i = 0; i < NFORMATS; i++) {
        fmt = formats[i];
        name = pg_format_name(fmt);

        /* the header does not fit */

        enc = pg_enc_create(fmt, 16000, &full);

        if (fmt == PG_FMT_MP3 || fmt == PG_FMT_PCM || fmt == PG_FMT_AAC) {
            ok(enc != NULL, "oom %s: no header, created", name);
            is_int(pg_enc_write(enc, pcm, n, &full), -1,
                   "oom %s: write is -1", name);
            is_int(pg_enc_finish(enc, &out), -1,
                   "oom %s: then finish is -1", name);

        } else {
            ok(enc == NULL, "oom %s: create is NULL", name);
        }

        pg_enc_destroy(enc);
        is_int(full.len, ((size_t) -1) / 2, "oom %s: out unchanged", name);

        /* the audio does not fit */

        pg_buf_reset(&out);
        enc = pg_enc_create(fmt, 16000, &out);
        ok(enc != NULL && pg_enc_write(enc, pcm, 1600, &out) == 0,
           "oom %s: created, 0.1 s written", name);
        is_int(pg_enc_write(enc, pcm, n, &full), -1,
               "oom %s: write of 1 s is -1", name);
        is_int(pg_enc_write(enc, pcm, n, &out), -1,
               "oom %s: encoder unusable after", name);
        pg_enc_destroy(enc);

        /* the tail does not fit */

        pg_buf_reset(&out);
        enc = pg_enc_create(fmt, 16000, &out);
        ok(enc != NULL && pg_enc_write(enc, pcm, n, &out) == 0,
           "oom %s: created, 1 s written", name);
        is_int(pg_enc_finish(enc, &full), fmt == PG_FMT_WAV ? 0 : -1,
               "oom %s: finish", name);
        pg_enc_destroy(enc);

        is_int(full.len, ((size_t) -1) / 2, "oom %s: out unchanged", name);
    }

    free(pcm);
    pg_buf_free(&out);
}


static void
test_wav_fix_sizes(void)
{
    unsigned char  w[64];
    pg_buf_t       out = { NULL, 0, 0 };
    pg_enc_t      *enc;
    int16_t        s[10] = { 0 };

    enc = pg_enc_create(PG_FMT_WAV, 8000, &out);
    ok(enc != NULL, "wav created");
    if (enc == NULL) {
        return;
    }

    pg_enc_write(enc, s, 10, &out);
    pg_enc_finish(enc, &out);
    pg_enc_destroy(enc);

    is_int(out.len, 64, "wav of 10 samples is 64 bytes");
    memcpy(w, out.data, 64);

    is_int(pg_wav_fix_sizes(w, 64), 0, "fix sizes");
    ok(memcmp(w + 4, "\x38\0\0\0", 4) == 0, "RIFF size 56");
    ok(memcmp(w + 40, "\x14\0\0\0", 4) == 0, "data size 20");
    is_int(pg_wav_fix_sizes(w, 64), 0, "fixing again is fine");
    is_int(pg_wav_fix_sizes(w, 44), 0, "header only");
    ok(memcmp(w + 40, "\0\0\0\0", 4) == 0, "data size 0");

    is_int(pg_wav_fix_sizes(w, 43), -1, "43 bytes: -1");
    is_int(pg_wav_fix_sizes(w, 63), -1, "odd data: -1");
    is_int(pg_wav_fix_sizes(NULL, 64), -1, "NULL: -1");

    memcpy(w, out.data, 64);
    w[0] = 'X';
    is_int(pg_wav_fix_sizes(w, 64), -1, "not RIFF: -1");

    memcpy(w, out.data, 64);
    w[20] = 3;
    is_int(pg_wav_fix_sizes(w, 64), -1, "float wav: -1");

    memcpy(w, out.data, 64);
    w[22] = 2;
    is_int(pg_wav_fix_sizes(w, 64), -1, "stereo wav: -1");

    memcpy(w, out.data, 64);
    memcpy(w + 36, "LIST", 4);
    is_int(pg_wav_fix_sizes(w, 64), -1, "no data chunk at 36: -1");

    ok(memcmp(out.data + 4, "\xff\xff\xff\xff", 4) == 0,
       "failed fixes leave the file alone");

    pg_buf_free(&out);
}


/*
 * Whole files: from an empty buffer, and after bytes that are not the
 * encoder's (its headers are at its own start): FLAC's STREAMINFO gets
 * the total samples and an MD5, an mp3 begins with a LAME Info tag; the
 * bytes before stay as they were.
 */

/* 40000 samples of a tone after base bytes of "HEAD!"; the file, or NULL */
static const unsigned char *
whole_file(pg_format_t fmt, size_t base, pg_buf_t *out)
{
    size_t     i;
    pg_enc_t  *enc;
    int16_t    pcm[4000];
    const char  *name = pg_format_name(fmt);

    for (i = 0; i < 4000; i++) {
        pcm[i] = (int16_t) (8000 * sin(2 * M_PI * 440 * i / 16000.0));
    }

    pg_buf_free(out);
    pg_buf_append(out, "HEAD!", base);

    enc = pg_enc_create_whole(fmt, 16000, out);
    ok(enc != NULL, "whole %s (%zu before): created", name, base);
    if (enc == NULL) {
        return NULL;
    }

    for (i = 0; i < 10; i++) {
        pg_enc_write(enc, pcm, 4000, out);
    }

    is_int(pg_enc_finish(enc, out), 0, "whole %s: finished", name);
    pg_enc_destroy(enc);

    ok(out->len > base && memcmp(out->data, "HEAD!", base) == 0,
       "whole %s: the bytes before are intact", name);

    return out->data + base;
}


static void
test_whole(void)
{
    size_t                base;
    pg_buf_t              out = { NULL, 0, 0 };
    const unsigned char  *h;

    for (base = 0; base <= 5; base += 5) {
        h = whole_file(PG_FMT_FLAC, base, &out);
        if (h) {
            is_int(unit_flac_total(h, out.len - base), 40000,
                   "whole flac: STREAMINFO has the 40000 samples");
            ok(unit_flac_has_md5(h, out.len - base), "whole flac: and an MD5");
        }

        h = whole_file(PG_FMT_MP3, base, &out);
        if (h) {
            ok(unit_mp3_lame_tag(h, out.len - base),
               "whole mp3: it begins with a LAME Info tag");
        }
    }

    pg_buf_free(&out);
}


/*
 * A streamed file made whole: pg_enc_totals() after the stream's finish,
 * pg_audio_finalize() on what was streamed.  The result is the very file
 * the whole-file encoder writes for the same samples (FLAC: STREAMINFO
 * with the total and the MD5; mp3: the LAME Info frame where the stream
 * reserved it), ffprobe knows its length without decoding it, and a
 * buffer that is not such a stream is refused and left alone.
 */

static void
finalize_one(pg_format_t fmt, int rate)
{
    char                path[256];
    size_t              i;
    long                n;
    double              ms, want;
    pg_buf_t            s = { NULL, 0, 0 }, w = { NULL, 0, 0 };
    pg_enc_t           *enc, *whole;
    int16_t             pcm[4000];
    pg_audio_totals_t   t;
    unsigned char      *copy;
    const char         *name = pg_format_name(fmt);

    for (i = 0; i < 4000; i++) {
        pcm[i] = (int16_t) (8000 * sin(2 * M_PI * 440 * i / (double) rate));
    }

    enc = pg_enc_create(fmt, rate, &s);
    whole = pg_enc_create_whole(fmt, rate, &w);
    ok(enc != NULL && whole != NULL, "finalize %s %d: encoders", name, rate);
    if (enc == NULL || whole == NULL) {
        pg_enc_destroy(enc);
        pg_enc_destroy(whole);
        return;
    }

    for (i = 0; i < 10; i++) {
        pg_enc_write(enc, pcm, 4000, &s);
        pg_enc_write(whole, pcm, 4000, &w);
    }

    is_int(pg_enc_totals(enc, &t), -1,
           "finalize %s %d: no totals before the end", name, rate);

    pg_enc_finish(enc, &s);
    pg_enc_finish(whole, &w);

    is_int(pg_enc_totals(enc, &t), 0, "finalize %s %d: totals", name, rate);
    is_int(t.samples, 40000, "finalize %s %d: 40000 samples in", name, rate);

    if (fmt == PG_FMT_FLAC) {
        ok(t.flac && t.flac_samples == 40000 && t.flac_max_frame > 0
           && t.flac_min_frame <= t.flac_max_frame,
           "finalize flac %d: STREAMINFO totals", rate);
        ok(unit_flac_total(s.data, s.len) == 0
           && !unit_flac_has_md5(s.data, s.len),
           "finalize flac %d: the stream had no total nor MD5", rate);

    } else {
        ok(t.mp3_tag_len > 0 && unit_has(t.mp3_tag, 64, "Info", 4)
           && unit_has(t.mp3_tag, t.mp3_tag_len, "LAME", 4),
           "finalize mp3 %d: an Info frame of %zu bytes", rate,
           t.mp3_tag_len);
        ok(!unit_mp3_lame_tag(s.data, s.len),
           "finalize mp3 %d: the stream began without one", rate);
    }

    copy = malloc(s.len);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, s.data, s.len);

    is_int(pg_audio_finalize(fmt, s.data, s.len, &t), 0,
           "finalize %s %d: 0", name, rate);
    ok(s.len == w.len && memcmp(s.data, w.data, s.len) == 0,
       "finalize %s %d: the whole file's very bytes (%zu)", name, rate,
       s.len);
    is_int(pg_audio_finalize(fmt, s.data, s.len, &t), 0,
           "finalize %s %d: again, the same", name, rate);
    ok(memcmp(s.data, w.data, s.len) == 0,
       "finalize %s %d: still the same bytes", name, rate);

    if (fmt == PG_FMT_FLAC) {
        ok(unit_flac_total(s.data, s.len) == 40000
           && unit_flac_has_md5(s.data, s.len),
           "finalize flac %d: STREAMINFO total and MD5", rate);

    } else {
        ok(unit_has(s.data, 64, "Info", 4)
           && unit_has(s.data, t.mp3_tag_len, "LAME", 4),
           "finalize mp3 %d: begins with the Info frame", rate);
    }

    if (have_ffmpeg && save(&s, name, path, sizeof(path)) == 0) {
        /*
         * The length from the headers, and from decoding it all: FLAC's
         * exact; an mp3's Info frame counts its frames, and its LAME tag
         * has ffmpeg start after the encoder's delay (start_time) and cut
         * the last frame's padding: the decoded audio is the input, to
         * the sample, and ffprobe's length (from start_time on) is
         * within one frame of it.
         */
        want = 40000 * 1000.0 / rate;
        ms = probe_ms(path) - probe_start_ms(path);
        n = decode(path, fmt, 0);
        ok(fabs(n * 1000.0 / DECODE_RATE - want) <= 1,
           "finalize %s %d: decodes to the %.1f ms in (%.1f)", name, rate,
           want, n * 1000.0 / DECODE_RATE);
        ok(fabs(ms - want) <= (fmt == PG_FMT_FLAC ? 1 : 1000.0 * 576 / rate),
           "finalize %s %d: ffprobe says %.1f ms", name, rate, ms);
        unlink(path);
    }

    /* refused, left alone */

    memcpy(s.data, copy, s.len);
    s.data[fmt == PG_FMT_FLAC ? 0 : 100] ^= 1;
    is_int(pg_audio_finalize(fmt, s.data, s.len, &t), -1,
           "finalize %s %d: not the stream's start: -1", name, rate);
    s.data[fmt == PG_FMT_FLAC ? 0 : 100] ^= 1;
    ok(memcmp(s.data, copy, s.len) == 0,
       "finalize %s %d: and left alone", name, rate);

    is_int(pg_audio_finalize(fmt, s.data, fmt == PG_FMT_FLAC ? 41 : 50, &t),
           -1, "finalize %s %d: too short: -1", name, rate);
    is_int(pg_audio_finalize(fmt == PG_FMT_FLAC ? PG_FMT_MP3 : PG_FMT_FLAC,
                             s.data, s.len, &t),
           -1, "finalize %s %d: other totals: -1", name, rate);
    is_int(pg_audio_finalize(fmt, NULL, s.len, &t), -1,
           "finalize %s %d: NULL: -1", name, rate);
    ok(memcmp(s.data, copy, s.len) == 0,
       "finalize %s %d: still left alone", name, rate);

    free(copy);
    pg_enc_destroy(enc);
    pg_enc_destroy(whole);
    pg_buf_free(&s);
    pg_buf_free(&w);
}


static void
test_finalize(void)
{
    pg_buf_t           b = { NULL, 0, 0 };
    pg_enc_t          *enc;
    int16_t            z[100] = { 0 };
    pg_audio_totals_t  t;

    finalize_one(PG_FMT_FLAC, 16000);
    finalize_one(PG_FMT_FLAC, 8000);
    finalize_one(PG_FMT_MP3, 16000);
    finalize_one(PG_FMT_MP3, 24000);
    finalize_one(PG_FMT_MP3, 8000);

    /* wav: its sizes; opus, aac: as they are */

    enc = pg_enc_create(PG_FMT_WAV, 8000, &b);
    pg_enc_write(enc, z, 100, &b);
    pg_enc_finish(enc, &b);
    is_int(pg_enc_totals(enc, &t), 0, "finalize wav: totals");
    is_int(pg_audio_finalize(PG_FMT_WAV, b.data, b.len, &t), 0,
           "finalize wav: 0");
    ok(memcmp(b.data + 40, "\xc8\0\0\0", 4) == 0,
       "finalize wav: data size 200");
    pg_enc_destroy(enc);
    pg_buf_free(&b);

    enc = pg_enc_create(PG_FMT_OPUS, 16000, &b);
    pg_enc_write(enc, z, 100, &b);
    pg_enc_finish(enc, &b);
    is_int(pg_enc_totals(enc, &t), 0, "finalize opus: totals");
    is_int(pg_audio_finalize(PG_FMT_OPUS, b.data, b.len, &t), 0,
           "finalize opus: 0, nothing to do");
    pg_enc_destroy(enc);
    pg_buf_free(&b);

    is_int(pg_enc_totals(NULL, &t), -1, "totals of no encoder: -1");
}


/* what ffprobe says of a file's tags, chapters and streams, as JSON */

static int
probe_json(const char *path, char *buf, size_t size)
{
    char    cmd[512];
    FILE   *p;
    size_t  n;

    snprintf(cmd, sizeof(cmd), "ffprobe -v error -show_chapters 2>&1 "
             "-show_format -show_streams -of json '%s'", path);

    p = popen(cmd, "r");
    if (p == NULL) {
        return -1;
    }

    n = fread(buf, 1, size - 1, p);
    buf[n] = '\0';

    return pclose(p) == 0 ? 0 : -1;
}


static void
test_meta(void)
{
    int                  f, ok_tags, ok_chap;
    char                 path[256], *j;
    size_t               n;
    pg_buf_t             out;
    int16_t             *pcm;
    pg_enc_t            *enc;
    pg_audio_meta_t      meta;
    pg_audio_chapter_t   ch[3];

    static const unsigned char  png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73,
        0x00, 0x00, 0x00, 0x11, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63,
        0xf8, 0xcf, 0xc0, 0x00, 0x44, 0x0c, 0x60, 0xf2, 0x3f, 0x00, 0x1b,
        0xf2, 0x03, 0xfd, 0xf3, 0xe7, 0x4b, 0xb1, 0x00, 0x00, 0x00, 0x00,
        0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82
    };
    static const pg_format_t  fmts[] = { PG_FMT_MP3, PG_FMT_OPUS,
                                         PG_FMT_FLAC };

    ch[0].start = 0;
    ch[0].end = 1.5;
    ch[0].title = "Introduction";
    ch[1].start = 1.5;
    ch[1].end = 3.25;
    ch[1].title = "The circadian clock";
    ch[2].start = 3.25;
    ch[2].end = 4;
    ch[2].title = "Wrap-up \xc3\xa9t\xc3\xa9";

    memset(&meta, 0, sizeof(meta));
    meta.title = "Sleep, explained";
    meta.artist = "Ada, Ben";
    meta.album = "The Night Show";
    meta.date = "2026-12-03";
    meta.comment = "Made by podgen";
    meta.chapters = ch;
    meta.nchapters = 3;
    meta.cover = png;
    meta.cover_len = sizeof(png);

    j = malloc(65536);
    pcm = make_sine(16000, 4.0, &n);

    for (f = 0; f < 3; f++) {
        memset(&out, 0, sizeof(out));

        enc = pg_enc_create_whole_meta(fmts[f], 16000, &out, &meta);
        ok(enc != NULL && pg_enc_write(enc, pcm, n, &out) == 0
           && pg_enc_finish(enc, &out) == 0,
           "%s with tags: encoded", pg_format_name(fmts[f]));
        pg_enc_destroy(enc);

        if (!have_ffmpeg || save(&out, pg_format_name(fmts[f]), path,
                                 sizeof(path)) != 0)
        {
            pg_buf_free(&out);
            continue;
        }

        ok(probe_json(path, j, 65536) == 0 && j[0] == '{',
           "%s with tags: ffprobe reads it without an error",
           pg_format_name(fmts[f]));

        ok_tags = strstr(j, "\"Sleep, explained\"") != NULL
                  && strstr(j, "\"Ada, Ben\"") != NULL
                  && strstr(j, "\"The Night Show\"") != NULL
                  && strstr(j, "2026-12-03") != NULL
                  && strstr(j, "\"Made by podgen\"") != NULL;
        ok(ok_tags, "%s: title, artist, album, date, comment",
           pg_format_name(fmts[f]));

        ok_chap = strstr(j, "\"Introduction\"") != NULL
                  && strstr(j, "\"The circadian clock\"") != NULL
                  && strstr(j, "Wrap-up \xc3\xa9t\xc3\xa9") != NULL
                  && strstr(j, "\"start_time\": \"1.500000\"") != NULL
                  && strstr(j, "\"start_time\": \"3.250000\"") != NULL;
        ok(ok_chap, "%s: ffprobe -show_chapters lists the 3 chapters",
           pg_format_name(fmts[f]));

        ok(strstr(j, "\"attached_pic\": 1") != NULL
           || strstr(j, "METADATA_BLOCK_PICTURE") != NULL,
           "%s: the cover is attached", pg_format_name(fmts[f]));

        if (!(ok_tags && ok_chap)) {
            printf("# %s\n", j);
        }

        ok(probe_ms(path) > 3900 && probe_ms(path) < 4200,
           "%s with tags: still 4 s (%.0f ms)", pg_format_name(fmts[f]),
           probe_ms(path));

        unlink(path);
        pg_buf_free(&out);
    }

    /* no meta: the bytes pg_enc_create_whole() makes */

    memset(&out, 0, sizeof(out));
    enc = pg_enc_create_whole_meta(PG_FMT_MP3, 16000, &out, NULL);
    ok(enc != NULL && (out.len < 3 || memcmp(out.data, "ID3", 3) != 0),
       "mp3 without meta: no ID3 tag");
    pg_enc_destroy(enc);
    pg_buf_free(&out);

    free(pcm);
    free(j);
}


/*
 * m4a: whole files only; an MP4 (ftyp, then mdat and moov) whose duration,
 * thanks to its edit list, is the input's, not the input's plus the AAC
 * encoder's delay; written before it into a buffer that already holds
 * something (the encoder seeks relative to where it started).
 */

static void
test_m4a(void)
{
    int        r;
    char       path[128], cmd[256], line[64];
    FILE      *p;
    size_t     n, i, step;
    double     d;
    int16_t   *pcm;
    pg_buf_t   out = { NULL, 0, 0 }, file = { NULL, 0, 0 };
    pg_enc_t  *enc;
    static const int  m4a_rates[] = { 16000, 24000, 8000 };

    pg_buf_append(&out, "xyz", 3);
    ok(pg_enc_create(PG_FMT_M4A, 16000, &out) == NULL,
       "m4a: no streaming encoder");
    is_int(out.len, 3, "m4a: out untouched");
    is_str(pg_format_mime(PG_FMT_M4A), "audio/mp4", "m4a: audio/mp4");

    for (r = 0; r < 3; r++) {
        pg_buf_reset(&out);
        pg_buf_append(&out, "xyz", 3);

        pcm = make_sine(m4a_rates[r], 2.0, &n);
        enc = pg_enc_create_whole(PG_FMT_M4A, m4a_rates[r], &out);
        ok(enc != NULL, "m4a %d: created", m4a_rates[r]);

        for (i = 0; enc && i < n; i += step) {
            step = n - i < 3001 ? n - i : 3001;
            if (pg_enc_write(enc, pcm + i, step, &out) != 0) {
                break;
            }
        }

        ok(enc && i >= n && pg_enc_finish(enc, &out) == 0,
           "m4a %d: written and finished", m4a_rates[r]);
        pg_enc_destroy(enc);
        free(pcm);

        ok(out.len > 3 + 8 && memcmp(out.data, "xyz", 3) == 0
           && memcmp(out.data + 3 + 4, "ftyp", 4) == 0,
           "m4a %d: an MP4 after what was there", m4a_rates[r]);

        if (!have_ffmpeg || out.len <= 3) {
            continue;
        }

        pg_buf_reset(&file);
        pg_buf_append(&file, out.data + 3, out.len - 3);
        save(&file, "m4a", path, sizeof(path));

        snprintf(cmd, sizeof(cmd), "ffprobe -v error -show_entries "
                 "format=duration -of csv=p=0 %s 2>&1", path);
        d = -1;
        p = popen(cmd, "r");
        if (p) {
            if (fgets(line, sizeof(line), p)) {
                d = atof(line);
            }
            pclose(p);
        }

        ok(d > 1.98 && d < 2.03, "m4a %d: ffprobe says %.3f s for 2 s "
           "(the encoder delay is edited out)", m4a_rates[r], d);

        snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -i %s -f null - "
                 "2>&1 | grep -q . && exit 1 || exit 0", path);
        ok(system(cmd) == 0, "m4a %d: ffmpeg decodes it cleanly",
           m4a_rates[r]);
        unlink(path);
    }

    pg_buf_free(&out);
    pg_buf_free(&file);
}


int
main(void)
{
    char  dir[] = "/tmp/pg_audio_XXXXXX";

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

    test_tables();
    test_create_errors();
    test_wav_fix_sizes();
    test_open_and_finish();
    test_whole();
    test_finalize();
    test_out_of_memory();
    test_formats();
    test_threads();
    test_meta();
    test_m4a();

    rmdir(tmpdir);

    return done_testing();
}
