/*
 * podgen core: audio formats and streaming encoders.
 *
 * Every encoder appends to the caller's pg_buf_t only what the library has
 * ready, so a response can be sent while the voice is still speaking:
 *
 *   wav   a 44-byte header, then the PCM as is;
 *   pcm   raw s16le at 24 kHz (soxr resamples in a streaming fashion);
 *   mp3   lame, CBR; the stream begins with a frame of zeros where the
 *         LAME "Info" tag goes (pg_audio_finalize() fills it in a stored
 *         copy; a whole file's encoder goes back to it);
 *   opus  Ogg Opus by libopusenc, through a write callback;
 *   flac  libFLAC's stream encoder, through a write callback, no seeking
 *         (the STREAMINFO's totals are kept for pg_audio_finalize());
 *   aac   FFmpeg's AAC-LC encoder (libavcodec), each packet in an ADTS
 *         header, as OpenAI sends it: a stream any player can start on;
 *   m4a   the same packets in an MP4 file (libavformat's "ipod" muxer,
 *         through a custom AVIOContext over the caller's buffer: it seeks
 *         back to write the sizes and appends the index), with the edit
 *         list that hides the encoder's delay: whole files only, as an
 *         MP4's index comes after its audio.
 *
 * Library global state, for using encoders from several threads at once:
 *
 *   lame        no global init call.  lame_init()/lame_init_params() (re)fill
 *               a few file-scope lookup tables (pow43[], pow20[], ipow20[],
 *               adj43[], the log2 table) with the same constants each time:
 *               concurrent encoders only rewrite identical values, harmless
 *               in practice though a race detector would report it.
 *   libopus     none.
 *   libopusenc  none, but it draws the Ogg serial number from rand() unless
 *               given one: we give our own, so rand()'s state is not used.
 *   libFLAC     none.
 *   soxr        none to call (its shared tables have their own locks); we
 *               ask for one thread so it never starts OpenMP workers.
 *   libavcodec  avcodec_find_encoder() and avcodec_open2() are thread-safe
 *               (FFmpeg >= 4 initializes its static tables once, itself);
 *               av_log_set_level() is set once (pthread_once) so that its
 *               chatter stays out of nginx's error log; one codec thread.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * libopusenc's header does "#include <opus.h>", so the compiler needs the
 * opus directory in its include path (pkg-config --cflags libopusenc).
 */
#if defined(__has_include)
#if !__has_include(<opus.h>)
#error "add -I/usr/include/opus (pkg-config --cflags libopusenc)"
#endif
#endif

#include <lame/lame.h>
#include <opus/opusenc.h>
#include <FLAC/metadata.h>
#include <FLAC/stream_encoder.h>
#include <soxr.h>
#include <pthread.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>

#include "pg_audio.h"


/* Input rates outside this range are rejected by pg_enc_create(). */
#define PG_RATE_MIN          4000
#define PG_RATE_MAX          192000

/* Samples handed to a library per call: bounds temporary buffers. */
#define PG_MP3_CHUNK         8192
#define PG_OPUS_CHUNK        65536
#define PG_FLAC_CHUNK        1024
#define PG_SOXR_CHUNK        4096

#define PG_MP3_FLUSH_SIZE    7200

/* room for a LAME tag frame: the largest mp3 frame is 1441 bytes */
#define PG_MP3_TAG_SIZE      2880
#define PG_OPUS_BITRATE      32000
#define PG_OPUS_RATE         48000
/* 100 ms pages: 20 ms pages cost ~9 kbps of Ogg overhead at 32 kbps, and
 * a stream is fed one sentence at a time anyway */
#define PG_OPUS_MUXING_DELAY 4800
/* speech at 32 kbps sounds the same at 5; 10 (the default) makes opus
 * encoding as costly as synthesis itself */
#define PG_OPUS_COMPLEXITY   5
#define PG_FLAC_LEVEL        5

/* speech, mono: AAC-LC at 32 kbps (24 kbps below 16 kHz) */
#define PG_AAC_BITRATE       32000
#define PG_AAC_LOW_BITRATE   24000
#define PG_AAC_CHANNELS      1
#define PG_ADTS_HEADER_SIZE  7

#define PG_WAV_HEADER_SIZE   44
#define PG_WAV_UNKNOWN_SIZE  0xffffffff


typedef enum {
    PG_ENC_ACTIVE = 0,
    PG_ENC_FINISHED,
    PG_ENC_FAILED
} pg_enc_state_t;


/* libavcodec's state for an aac encoder */
typedef struct {
    AVCodecContext       *ctx;
    AVFrame              *frame;
    AVPacket             *pkt;
    int                   filled;       /* samples in frame */
    int                   sf_index;     /* ADTS sampling frequency index */
    int64_t               pts;
    AVFormatContext      *mux;          /* m4a: the MP4 muxer, else NULL */
    AVIOContext          *io;
} pg_aac_t;


typedef struct {
    int   (*init)(pg_enc_t *enc, pg_buf_t *out);
    int   (*write)(pg_enc_t *enc, const int16_t *pcm, size_t n,
              pg_buf_t *out);
    int   (*finish)(pg_enc_t *enc, pg_buf_t *out);
    void  (*cleanup)(pg_enc_t *enc);
} pg_enc_ops_t;


struct pg_enc_s {
    const pg_enc_ops_t   *ops;
    pg_enc_state_t        state;
    int                   in_rate;
    int                   out_rate;

    /*
     * The buffer the library's write callback appends to: set just for
     * the duration of each library call, so that the callback never sees
     * a buffer the caller has since freed or moved.
     */
    pg_buf_t             *out;
    unsigned              out_failed:1;

    /*
     * A whole file: the caller keeps everything written to its buffer
     * from base on, so the encoder may go back to its headers (FLAC's
     * STREAMINFO, the mp3 LAME tag).  pos: where FLAC writes next.
     */
    unsigned              whole:1;
    size_t                base;
    size_t                pos;

    uint64_t                samples;        /* PCM samples written */

    /* libFLAC's final STREAMINFO, from its metadata callback */
    unsigned                flac_done:1;
    uint32_t                flac_min_frame;
    uint32_t                flac_max_frame;
    uint64_t                flac_samples;
    unsigned char           flac_md5[16];

    const pg_audio_meta_t  *meta;           /* during init only */
    FLAC__StreamMetadata   *flac_meta[2];   /* kept until deleted */
    unsigned                nflac_meta;

    union {
        lame_global_flags    *lame;
        OggOpusEnc           *opus;
        FLAC__StreamEncoder  *flac;
        soxr_t                soxr;      /* NULL: pcm input at 24 kHz */
        pg_aac_t             *aac;
    } lib;

    union {
        FLAC__int32           flac[PG_FLAC_CHUNK];
        int16_t               soxr[PG_SOXR_CHUNK];
    } scratch;
};


static int pg_append_s16le(pg_buf_t *out, const int16_t *pcm, size_t n);
static void pg_put_le16(unsigned char *p, uint32_t v);
static void pg_put_le32(unsigned char *p, uint32_t v);
static uint32_t pg_get_le16(const unsigned char *p);
static uint32_t pg_get_le32(const unsigned char *p);

static int pg_wav_init(pg_enc_t *enc, pg_buf_t *out);
static int pg_wav_write(pg_enc_t *enc, const int16_t *pcm, size_t n,
    pg_buf_t *out);
static int pg_wav_finish(pg_enc_t *enc, pg_buf_t *out);
static void pg_wav_cleanup(pg_enc_t *enc);

static int pg_pcm_init(pg_enc_t *enc, pg_buf_t *out);
static int pg_pcm_write(pg_enc_t *enc, const int16_t *pcm, size_t n,
    pg_buf_t *out);
static int pg_pcm_finish(pg_enc_t *enc, pg_buf_t *out);
static void pg_pcm_cleanup(pg_enc_t *enc);

static int pg_mp3_init(pg_enc_t *enc, pg_buf_t *out);
static int pg_mp3_nearest_rate(int rate);
static void pg_mp3_silence(const char *format, va_list ap);
static int pg_mp3_write(pg_enc_t *enc, const int16_t *pcm, size_t n,
    pg_buf_t *out);
static int pg_mp3_finish(pg_enc_t *enc, pg_buf_t *out);
static void pg_mp3_cleanup(pg_enc_t *enc);

static int pg_opus_init(pg_enc_t *enc, pg_buf_t *out);
static int pg_opus_max_bandwidth(int rate);
static opus_int32 pg_opus_serialno(pg_enc_t *enc);
static int pg_opus_write_cb(void *data, const unsigned char *p,
    opus_int32 len);
static int pg_opus_close_cb(void *data);
static int pg_opus_write(pg_enc_t *enc, const int16_t *pcm, size_t n,
    pg_buf_t *out);
static int pg_opus_finish(pg_enc_t *enc, pg_buf_t *out);
static void pg_opus_cleanup(pg_enc_t *enc);

static int pg_flac_init(pg_enc_t *enc, pg_buf_t *out);
static FLAC__StreamEncoderSeekStatus pg_flac_seek_cb(
    const FLAC__StreamEncoder *fe, FLAC__uint64 offset, void *data);
static FLAC__StreamEncoderTellStatus pg_flac_tell_cb(
    const FLAC__StreamEncoder *fe, FLAC__uint64 *offset, void *data);
static FLAC__StreamEncoderWriteStatus pg_flac_write_cb(
    const FLAC__StreamEncoder *fe, const FLAC__byte buffer[], size_t bytes,
    uint32_t samples, uint32_t current_frame, void *data);
static void pg_flac_metadata_cb(const FLAC__StreamEncoder *fe,
    const FLAC__StreamMetadata *m, void *data);
static int pg_flac_write(pg_enc_t *enc, const int16_t *pcm, size_t n,
    pg_buf_t *out);
static int pg_flac_finish(pg_enc_t *enc, pg_buf_t *out);
static void pg_flac_cleanup(pg_enc_t *enc);


static int pg_aac_init(pg_enc_t *enc, pg_buf_t *out);
static int pg_aac_drain(pg_enc_t *enc, pg_buf_t *out);
static int pg_aac_send(pg_enc_t *enc, AVFrame *frame, pg_buf_t *out);
static int pg_aac_write(pg_enc_t *enc, const int16_t *pcm, size_t n,
    pg_buf_t *out);
static int pg_aac_finish(pg_enc_t *enc, pg_buf_t *out);
static void pg_aac_cleanup(pg_enc_t *enc);


static int pg_m4a_init(pg_enc_t *enc, pg_buf_t *out);
static int pg_m4a_write_cb(void *data, uint8_t *buf, int size);
static int64_t pg_m4a_seek_cb(void *data, int64_t offset, int whence);
static int pg_m4a_write(pg_enc_t *enc, const int16_t *pcm, size_t n,
    pg_buf_t *out);
static int pg_m4a_finish(pg_enc_t *enc, pg_buf_t *out);


static const pg_enc_ops_t  pg_aac_ops = {
    pg_aac_init, pg_aac_write, pg_aac_finish, pg_aac_cleanup
};

static const pg_enc_ops_t  pg_m4a_ops = {
    pg_m4a_init, pg_m4a_write, pg_m4a_finish, pg_aac_cleanup
};

static const pg_enc_ops_t  pg_wav_ops = {
    pg_wav_init, pg_wav_write, pg_wav_finish, pg_wav_cleanup
};

static const pg_enc_ops_t  pg_pcm_ops = {
    pg_pcm_init, pg_pcm_write, pg_pcm_finish, pg_pcm_cleanup
};

static const pg_enc_ops_t  pg_mp3_ops = {
    pg_mp3_init, pg_mp3_write, pg_mp3_finish, pg_mp3_cleanup
};

static const pg_enc_ops_t  pg_opus_ops = {
    pg_opus_init, pg_opus_write, pg_opus_finish, pg_opus_cleanup
};

static const pg_enc_ops_t  pg_flac_ops = {
    pg_flac_init, pg_flac_write, pg_flac_finish, pg_flac_cleanup
};


/* Indexed by pg_format_t; a NULL ops means "parsed, but not encodable". */
static const struct {
    const char          *name;
    const char          *mime;
    const pg_enc_ops_t  *ops;
} pg_formats[] = {
    { "mp3",  "audio/mpeg", &pg_mp3_ops },      /* PG_FMT_MP3 */
    { "opus", "audio/ogg",  &pg_opus_ops },     /* PG_FMT_OPUS */
    { "aac",  "audio/aac",  &pg_aac_ops },      /* PG_FMT_AAC */
    { "wav",  "audio/wav",  &pg_wav_ops },      /* PG_FMT_WAV */
    { "flac", "audio/flac", &pg_flac_ops },     /* PG_FMT_FLAC */
    { "pcm",  "audio/pcm",  &pg_pcm_ops },      /* PG_FMT_PCM */
    { "m4a",  "audio/mp4",  &pg_m4a_ops }       /* PG_FMT_M4A */
};

#define PG_NFORMATS  (sizeof(pg_formats) / sizeof(pg_formats[0]))

/* the table above must follow the enum */
typedef char  pg_formats_match_enum[PG_NFORMATS == PG_FMT_UNKNOWN ? 1 : -1];


pg_format_t
pg_format_from_name(const char *name, size_t len)
{
    size_t  i;

    if (name == NULL) {
        return PG_FMT_UNKNOWN;
    }

    for (i = 0; i < PG_NFORMATS; i++) {
        if (strlen(pg_formats[i].name) == len
            && memcmp(pg_formats[i].name, name, len) == 0)
        {
            return (pg_format_t) i;
        }
    }

    return PG_FMT_UNKNOWN;
}


const char *
pg_format_name(pg_format_t fmt)
{
    if ((unsigned) fmt >= PG_NFORMATS) {
        return NULL;
    }

    return pg_formats[fmt].name;
}


const char *
pg_format_mime(pg_format_t fmt)
{
    if ((unsigned) fmt >= PG_NFORMATS) {
        return NULL;
    }

    return pg_formats[fmt].mime;
}


static pg_enc_t *
pg_enc_new(pg_format_t fmt, int in_rate, pg_buf_t *out, unsigned whole,
    const pg_audio_meta_t *meta)
{
    size_t     len;
    pg_enc_t  *enc;

    if ((unsigned) fmt >= PG_NFORMATS || pg_formats[fmt].ops == NULL
        || in_rate < PG_RATE_MIN || in_rate > PG_RATE_MAX || out == NULL)
    {
        return NULL;
    }

    enc = calloc(1, sizeof(pg_enc_t));
    if (enc == NULL) {
        return NULL;
    }

    enc->ops = pg_formats[fmt].ops;
    enc->state = PG_ENC_ACTIVE;
    enc->in_rate = in_rate;
    enc->out_rate = in_rate;
    enc->whole = whole;

    /* a failed create leaves no half-written header behind */
    len = out->len;

    /* an mp3's ID3v2 tag comes first; the LAME tag's frame after it */

    if (meta && fmt == PG_FMT_MP3 && pg_id3_write(meta, out) != 0) {
        out->len = len;
        free(enc);
        return NULL;
    }

    enc->base = out->len;
    enc->pos = out->len;
    enc->meta = meta;

    if (enc->ops->init(enc, out) != 0) {
        out->len = len;
        pg_enc_destroy(enc);
        return NULL;
    }

    enc->meta = NULL;

    return enc;
}


pg_enc_t *
pg_enc_create(pg_format_t fmt, int in_rate, pg_buf_t *out)
{
    return pg_enc_new(fmt, in_rate, out, 0, NULL);
}


pg_enc_t *
pg_enc_create_whole(pg_format_t fmt, int in_rate, pg_buf_t *out)
{
    return pg_enc_new(fmt, in_rate, out, 1, NULL);
}


pg_enc_t *
pg_enc_create_whole_meta(pg_format_t fmt, int in_rate, pg_buf_t *out,
    const pg_audio_meta_t *meta)
{
    return pg_enc_new(fmt, in_rate, out, 1, meta);
}


/* ---- tags --------------------------------------------------------------- */


static void
pg_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}


/* 28 bits, 7 a byte: ID3v2.4's sizes */
static void
pg_put_syncsafe(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) ((v >> 21) & 0x7f);
    p[1] = (unsigned char) ((v >> 14) & 0x7f);
    p[2] = (unsigned char) ((v >> 7) & 0x7f);
    p[3] = (unsigned char) (v & 0x7f);
}


/* starts a frame: its header, the size filled in by pg_id3_end() */
static int
pg_id3_begin(pg_buf_t *out, const char *id, size_t *at)
{
    unsigned char  h[10];

    memcpy(h, id, 4);
    memset(h + 4, 0, 6);
    *at = out->len;

    return pg_buf_append(out, h, 10);
}


static void
pg_id3_end(pg_buf_t *out, size_t at)
{
    pg_put_syncsafe(out->data + at + 4, (uint32_t) (out->len - at - 10));
}


/* a text frame: encoding 3 (UTF-8), the text */
static int
pg_id3_text(pg_buf_t *out, const char *id, const char *text)
{
    size_t  at;

    if (text == NULL || text[0] == '\0') {
        return 0;
    }

    if (pg_id3_begin(out, id, &at) != 0
        || pg_buf_append(out, "\3", 1) != 0
        || pg_buf_append(out, text, strlen(text)) != 0)
    {
        return -1;
    }

    pg_id3_end(out, at);

    return 0;
}


int
pg_id3_write(const pg_audio_meta_t *meta, pg_buf_t *out)
{
    char            id[16];
    size_t          i, start, at;
    unsigned char   b[16];

    start = out->len;

    memcpy(b, "ID3\4\0\0\0\0\0\0", 10);

    if (pg_buf_append(out, b, 10) != 0
        || pg_id3_text(out, "TIT2", meta->title) != 0
        || pg_id3_text(out, "TPE1", meta->artist) != 0
        || pg_id3_text(out, "TALB", meta->album) != 0
        || pg_id3_text(out, "TDRC", meta->date) != 0)
    {
        goto failed;
    }

    if (meta->comment && meta->comment[0]) {
        /* UTF-8, language, an empty description, the text */
        if (pg_id3_begin(out, "COMM", &at) != 0
            || pg_buf_append(out, "\3eng\0", 5) != 0
            || pg_buf_append(out, meta->comment, strlen(meta->comment))
               != 0)
        {
            goto failed;
        }

        pg_id3_end(out, at);
    }

    if (meta->cover && meta->cover_len) {
        /* UTF-8, the MIME type, front cover (3), no description */
        if (pg_id3_begin(out, "APIC", &at) != 0
            || pg_buf_append(out, "\3image/png\0\3\0", 13) != 0
            || pg_buf_append(out, meta->cover, meta->cover_len) != 0)
        {
            goto failed;
        }

        pg_id3_end(out, at);
    }

    if (meta->nchapters) {
        /* the table of contents: top level, ordered, every chapter */

        if (pg_id3_begin(out, "CTOC", &at) != 0
            || pg_buf_append(out, "toc\0\3", 5) != 0)
        {
            goto failed;
        }

        b[0] = (unsigned char) (meta->nchapters > 255 ? 255
                                                       : meta->nchapters);

        if (pg_buf_append(out, b, 1) != 0) {
            goto failed;
        }

        for (i = 0; i < meta->nchapters && i < 255; i++) {
            snprintf(id, sizeof(id), "ch%zu", i);

            if (pg_buf_append(out, id, strlen(id) + 1) != 0) {
                goto failed;
            }
        }

        pg_id3_end(out, at);

        for (i = 0; i < meta->nchapters && i < 255; i++) {
            snprintf(id, sizeof(id), "ch%zu", i);

            /* start and end in ms; no byte offsets (0xffffffff) */

            pg_put_be32(b, (uint32_t) (meta->chapters[i].start * 1000
                                       + 0.5));
            pg_put_be32(b + 4, (uint32_t) (meta->chapters[i].end * 1000
                                           + 0.5));
            pg_put_be32(b + 8, 0xffffffff);
            pg_put_be32(b + 12, 0xffffffff);

            if (pg_id3_begin(out, "CHAP", &at) != 0
                || pg_buf_append(out, id, strlen(id) + 1) != 0
                || pg_buf_append(out, b, 16) != 0)
            {
                goto failed;
            }

            if (pg_id3_text(out, "TIT2", meta->chapters[i].title) != 0) {
                goto failed;
            }

            pg_id3_end(out, at);
        }
    }

    if (out->len - start - 10 >= (1u << 28)) {
        goto failed;
    }

    pg_put_syncsafe(out->data + start + 6, (uint32_t) (out->len - start - 10));

    return 0;

failed:

    out->len = start;
    return -1;
}


/* Vorbis comments of meta, for Opus and FLAC: calls add(data, k, v). */
static int
pg_meta_comments(const pg_audio_meta_t *meta,
    int (*add)(void *data, const char *key, const char *value), void *data)
{
    char     key[32], val[32];
    size_t   i;
    long     ms;

    if ((meta->title && add(data, "TITLE", meta->title) != 0)
        || (meta->artist && add(data, "ARTIST", meta->artist) != 0)
        || (meta->album && add(data, "ALBUM", meta->album) != 0)
        || (meta->date && add(data, "DATE", meta->date) != 0)
        || (meta->comment && add(data, "COMMENT", meta->comment) != 0))
    {
        return -1;
    }

    for (i = 0; i < meta->nchapters && i < 1000; i++) {
        ms = (long) (meta->chapters[i].start * 1000 + 0.5);

        snprintf(key, sizeof(key), "CHAPTER%03zu", i + 1);
        snprintf(val, sizeof(val), "%02ld:%02ld:%02ld.%03ld", ms / 3600000,
                 ms / 60000 % 60, ms / 1000 % 60, ms % 1000);

        if (add(data, key, val) != 0) {
            return -1;
        }

        snprintf(key, sizeof(key), "CHAPTER%03zuNAME", i + 1);

        if (meta->chapters[i].title
            && add(data, key, meta->chapters[i].title) != 0)
        {
            return -1;
        }
    }

    return 0;
}


void
pg_enc_drained(pg_enc_t *enc, size_t n)
{
    /* between calls FLAC's position is the end of the buffer */

    if (enc->whole && enc->pos - enc->base >= n) {
        enc->pos -= n;
    }
}


int
pg_enc_write(pg_enc_t *enc, const int16_t *pcm, size_t nsamples,
    pg_buf_t *out)
{
    size_t  len;

    if (enc == NULL || out == NULL || enc->state != PG_ENC_ACTIVE) {
        return -1;
    }

    if (nsamples == 0) {
        return 0;
    }

    if (pcm == NULL) {
        enc->state = PG_ENC_FAILED;
        return -1;
    }

    len = out->len;

    if (enc->ops->write(enc, pcm, nsamples, out) != 0) {
        /* the stream is broken anyway: do not hand out a partial piece */
        out->len = len;
        enc->state = PG_ENC_FAILED;
        return -1;
    }

    enc->samples += nsamples;

    return 0;
}


int
pg_enc_finish(pg_enc_t *enc, pg_buf_t *out)
{
    size_t  len;

    if (enc == NULL || out == NULL || enc->state != PG_ENC_ACTIVE) {
        return -1;
    }

    len = out->len;

    if (enc->ops->finish(enc, out) != 0) {
        out->len = len;
        enc->state = PG_ENC_FAILED;
        return -1;
    }

    enc->state = PG_ENC_FINISHED;

    return 0;
}


void
pg_enc_destroy(pg_enc_t *enc)
{
    if (enc == NULL) {
        return;
    }

    enc->out = NULL;
    enc->ops->cleanup(enc);

    free(enc);
}


int
pg_enc_out_rate(pg_enc_t *enc)
{
    return enc ? enc->out_rate : 0;
}


int
pg_enc_totals(pg_enc_t *enc, pg_audio_totals_t *t)
{
    size_t  n;

    if (t == NULL) {
        return -1;
    }

    memset(t, 0, sizeof(pg_audio_totals_t));

    if (enc == NULL || enc->state != PG_ENC_FINISHED) {
        return -1;
    }

    t->samples = enc->samples;

    if (enc->ops == &pg_flac_ops) {
        if (!enc->flac_done) {
            return -1;
        }

        t->flac = 1;
        t->flac_min_frame = enc->flac_min_frame;
        t->flac_max_frame = enc->flac_max_frame;
        t->flac_samples = enc->flac_samples;
        memcpy(t->flac_md5, enc->flac_md5, 16);

    } else if (enc->ops == &pg_mp3_ops) {
        n = lame_get_lametag_frame(enc->lib.lame, t->mp3_tag,
                                   sizeof(t->mp3_tag));

        if (n == 0 || n > sizeof(t->mp3_tag)) {
            return -1;
        }

        t->mp3_tag_len = n;
    }

    return 0;
}


/* the length of the ID3v2 tag buf begins with, or 0 */

static size_t
pg_id3_skip(const unsigned char *buf, size_t len)
{
    size_t  n;

    if (len < 10 || memcmp(buf, "ID3", 3) != 0
        || ((buf[6] | buf[7] | buf[8] | buf[9]) & 0x80))
    {
        return 0;
    }

    n = 10 + ((size_t) buf[6] << 21 | (size_t) buf[7] << 14
              | (size_t) buf[8] << 7 | buf[9]);

    if (buf[5] & 0x10) {
        n += 10;                                /* a footer */
    }

    return n <= len ? n : 0;
}


int
pg_audio_finalize(pg_format_t fmt, unsigned char *buf, size_t len,
    const pg_audio_totals_t *t)
{
    size_t          i, off;
    unsigned char  *si;

    if (buf == NULL || t == NULL) {
        return -1;
    }

    switch (fmt) {

    case PG_FMT_WAV:
        return pg_wav_fix_sizes(buf, len);

    case PG_FMT_FLAC:

        /*
         * "fLaC", then the STREAMINFO block (type 0, 34 bytes): 16-bit
         * min/max block sizes, 24-bit min/max frame sizes, 20-bit rate,
         * 3-bit channels - 1, 5-bit bits - 1, 36-bit total samples, MD5.
         */

        if (!t->flac || len < 42 || memcmp(buf, "fLaC", 4) != 0
            || (buf[4] & 0x7f) != 0
            || buf[5] != 0 || buf[6] != 0 || buf[7] != 34
            || t->flac_samples >> 36 != 0
            || t->flac_min_frame >> 24 != 0 || t->flac_max_frame >> 24 != 0)
        {
            return -1;
        }

        si = buf + 8;

        si[4] = (unsigned char) (t->flac_min_frame >> 16);
        si[5] = (unsigned char) (t->flac_min_frame >> 8);
        si[6] = (unsigned char) t->flac_min_frame;
        si[7] = (unsigned char) (t->flac_max_frame >> 16);
        si[8] = (unsigned char) (t->flac_max_frame >> 8);
        si[9] = (unsigned char) t->flac_max_frame;

        si[13] = (unsigned char) ((si[13] & 0xf0)
                                  | (unsigned) (t->flac_samples >> 32));
        si[14] = (unsigned char) (t->flac_samples >> 24);
        si[15] = (unsigned char) (t->flac_samples >> 16);
        si[16] = (unsigned char) (t->flac_samples >> 8);
        si[17] = (unsigned char) t->flac_samples;

        memcpy(si + 18, t->flac_md5, 16);

        return 0;

    case PG_FMT_MP3:

        /*
         * The frame lame reserved: the Info frame's own header, then
         * zeros.  Anything else is not ours to overwrite.
         */

        off = pg_id3_skip(buf, len);

        if (t->mp3_tag_len < 4 || len - off < t->mp3_tag_len
            || memcmp(buf + off, t->mp3_tag, 4) != 0)
        {
            return -1;
        }

        if (memcmp(buf + off, t->mp3_tag, t->mp3_tag_len) == 0) {
            return 0;                           /* already */
        }

        for (i = 4; i < t->mp3_tag_len; i++) {
            if (buf[off + i] != 0) {
                return -1;
            }
        }

        memcpy(buf + off, t->mp3_tag, t->mp3_tag_len);

        return 0;

    case PG_FMT_OPUS:
    case PG_FMT_AAC:
    case PG_FMT_PCM:
        return 0;

    default:
        return -1;
    }
}


int
pg_wav_fix_sizes(unsigned char *wav, size_t len)
{
    uint32_t  rate;

    if (wav == NULL || len < PG_WAV_HEADER_SIZE) {
        return -1;
    }

    /* exactly the header pg_wav_init() writes, whatever its two sizes */

    if (memcmp(wav, "RIFF", 4) != 0
        || memcmp(wav + 8, "WAVEfmt ", 8) != 0
        || pg_get_le32(wav + 16) != 16
        || pg_get_le16(wav + 20) != 1
        || pg_get_le16(wav + 22) != 1
        || pg_get_le16(wav + 32) != 2
        || pg_get_le16(wav + 34) != 16
        || memcmp(wav + 36, "data", 4) != 0)
    {
        return -1;
    }

    rate = pg_get_le32(wav + 24);

    if (rate == 0 || pg_get_le32(wav + 28) != rate * 2) {
        return -1;
    }

    /* whole s16 mono samples only; 0xffffffff would read as "unknown" */

    if ((len - PG_WAV_HEADER_SIZE) % 2 != 0
        || len - 8 >= (size_t) PG_WAV_UNKNOWN_SIZE)
    {
        return -1;
    }

    pg_put_le32(wav + 4, (uint32_t) (len - 8));
    pg_put_le32(wav + 40, (uint32_t) (len - PG_WAV_HEADER_SIZE));

    return 0;
}


/* ---- helpers ------------------------------------------------------------ */


static int
pg_append_s16le(pg_buf_t *out, const int16_t *pcm, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

    if (n > SIZE_MAX / 2) {
        return -1;
    }

    return pg_buf_append(out, pcm, n * 2);

#else

    size_t          i;
    unsigned char  *p;

    if (n > SIZE_MAX / 2 || pg_buf_reserve(out, n * 2) != 0) {
        return -1;
    }

    p = out->data + out->len;

    for (i = 0; i < n; i++) {
        pg_put_le16(p + 2 * i, (uint16_t) pcm[i]);
    }

    out->len += n * 2;

    return 0;

#endif
}


static void
pg_put_le16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
}


static void
pg_put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static uint32_t
pg_get_le16(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8;
}


static uint32_t
pg_get_le32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}


/* ---- wav ---------------------------------------------------------------- */


/*
 * The sizes are not known while streaming: both are written as 0xffffffff,
 * which is what ffmpeg's own wav muxer writes to a pipe.  ffmpeg 5.1 reads
 * such a file or pipe to its end ("Ignoring maximum wav data size" at
 * warning level); pg_wav_fix_sizes() makes a complete file exact.
 */

static int
pg_wav_init(pg_enc_t *enc, pg_buf_t *out)
{
    unsigned char  h[PG_WAV_HEADER_SIZE];

    memcpy(h, "RIFF", 4);
    pg_put_le32(h + 4, PG_WAV_UNKNOWN_SIZE);
    memcpy(h + 8, "WAVEfmt ", 8);
    pg_put_le32(h + 16, 16);                            /* fmt chunk size */
    pg_put_le16(h + 20, 1);                             /* PCM */
    pg_put_le16(h + 22, 1);                             /* channels */
    pg_put_le32(h + 24, (uint32_t) enc->in_rate);
    pg_put_le32(h + 28, (uint32_t) enc->in_rate * 2);   /* bytes/second */
    pg_put_le16(h + 32, 2);                             /* block align */
    pg_put_le16(h + 34, 16);                            /* bits/sample */
    memcpy(h + 36, "data", 4);
    pg_put_le32(h + 40, PG_WAV_UNKNOWN_SIZE);

    return pg_buf_append(out, h, sizeof(h));
}


static int
pg_wav_write(pg_enc_t *enc, const int16_t *pcm, size_t n, pg_buf_t *out)
{
    return pg_append_s16le(out, pcm, n);
}


static int
pg_wav_finish(pg_enc_t *enc, pg_buf_t *out)
{
    return 0;
}


static void
pg_wav_cleanup(pg_enc_t *enc)
{
}


/* ---- pcm (s16le, 24 kHz) ------------------------------------------------ */


static int
pg_pcm_init(pg_enc_t *enc, pg_buf_t *out)
{
    soxr_error_t         err;
    soxr_io_spec_t       io;
    soxr_quality_spec_t  q;
    soxr_runtime_spec_t  rt;

    enc->out_rate = PG_PCM_RATE;

    if (enc->in_rate == PG_PCM_RATE) {
        return 0;
    }

    io = soxr_io_spec(SOXR_INT16_I, SOXR_INT16_I);
    q = soxr_quality_spec(SOXR_HQ, 0);
    rt = soxr_runtime_spec(1);

    err = NULL;
    enc->lib.soxr = soxr_create(enc->in_rate, PG_PCM_RATE, 1, &err, &io, &q,
                                &rt);

    if (enc->lib.soxr == NULL || err != NULL) {
        return -1;
    }

    return 0;
}


static int
pg_pcm_write(pg_enc_t *enc, const int16_t *pcm, size_t n, pg_buf_t *out)
{
    size_t  idone, odone;

    if (enc->lib.soxr == NULL) {
        return pg_append_s16le(out, pcm, n);
    }

    /*
     * soxr may take less input than offered, or have more output than
     * fits: go on until all input is in and the output is drained.
     */

    for ( ;; ) {
        if (soxr_process(enc->lib.soxr, pcm, n, &idone, enc->scratch.soxr,
                         PG_SOXR_CHUNK, &odone)
            != NULL)
        {
            return -1;
        }

        if (pg_append_s16le(out, enc->scratch.soxr, odone) != 0) {
            return -1;
        }

        pcm += idone;
        n -= idone;

        if (n == 0 && odone < PG_SOXR_CHUNK) {
            return 0;
        }

        if (idone == 0 && odone == 0) {
            return -1;
        }
    }
}


static int
pg_pcm_finish(pg_enc_t *enc, pg_buf_t *out)
{
    size_t  odone;

    if (enc->lib.soxr == NULL) {
        return 0;
    }

    /* a NULL input means end of input: soxr returns its tail */

    do {
        if (soxr_process(enc->lib.soxr, NULL, 0, NULL, enc->scratch.soxr,
                         PG_SOXR_CHUNK, &odone)
            != NULL)
        {
            return -1;
        }

        if (pg_append_s16le(out, enc->scratch.soxr, odone) != 0) {
            return -1;
        }

    } while (odone > 0);

    return 0;
}


static void
pg_pcm_cleanup(pg_enc_t *enc)
{
    if (enc->lib.soxr) {
        soxr_delete(enc->lib.soxr);
        enc->lib.soxr = NULL;
    }
}


/* ---- mp3 ---------------------------------------------------------------- */


static int
pg_mp3_init(pg_enc_t *enc, pg_buf_t *out)
{
    lame_global_flags  *gf;

    gf = lame_init();
    if (gf == NULL) {
        return -1;
    }

    enc->lib.lame = gf;

    /* lame reports to stderr by default, which is nginx's error log */
    lame_set_errorf(gf, pg_mp3_silence);
    lame_set_debugf(gf, pg_mp3_silence);
    lame_set_msgf(gf, pg_mp3_silence);

    /*
     * Left to itself lame picks a lower output rate for 64 kbps;
     * keep the voice's rate, or the mp3 rate nearest to it.
     */

    if (lame_set_num_channels(gf, 1) != 0
        || lame_set_mode(gf, MONO) != 0
        || lame_set_in_samplerate(gf, enc->in_rate) != 0
        || lame_set_out_samplerate(gf, pg_mp3_nearest_rate(enc->in_rate))
           != 0
        || lame_set_VBR(gf, vbr_off) != 0
        || lame_set_brate(gf, enc->in_rate >= 16000 ? 64 : 32) != 0
        || lame_set_bWriteVbrTag(gf, 1) != 0
        || lame_init_params(gf) < 0)
    {
        return -1;
    }

    enc->out_rate = lame_get_out_samplerate(gf);

    return 0;
}


static int
pg_mp3_nearest_rate(int rate)
{
    int               best, d, i;
    static const int  rates[] = {
        8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000
    };

    best = rates[0];

    for (i = 1; i < (int) (sizeof(rates) / sizeof(rates[0])); i++) {
        d = abs(rates[i] - rate) - abs(best - rate);

        if (d < 0) {
            best = rates[i];
        }
    }

    return best;
}


static void
pg_mp3_silence(const char *format, va_list ap)
{
}


static int
pg_mp3_write(pg_enc_t *enc, const int16_t *pcm, size_t n, pg_buf_t *out)
{
    int     rc;
    size_t  k, size;

    while (n > 0) {
        k = n < PG_MP3_CHUNK ? n : PG_MP3_CHUNK;

        /* the worst case from lame.h: 1.25 * samples + 7200 */
        size = k + k / 4 + 7200;

        if (pg_buf_reserve(out, size) != 0) {
            return -1;
        }

        /* mono: lame reads the left channel only */
        rc = lame_encode_buffer(enc->lib.lame, pcm, pcm, (int) k,
                                out->data + out->len, (int) size);
        if (rc < 0) {
            return -1;
        }

        out->len += rc;
        pcm += k;
        n -= k;
    }

    return 0;
}


static int
pg_mp3_finish(pg_enc_t *enc, pg_buf_t *out)
{
    int  rc;

    if (pg_buf_reserve(out, PG_MP3_FLUSH_SIZE) != 0) {
        return -1;
    }

    rc = lame_encode_flush(enc->lib.lame, out->data + out->len,
                           PG_MP3_FLUSH_SIZE);
    if (rc < 0) {
        return -1;
    }

    out->len += rc;

    if (enc->whole) {
        unsigned char  tag[PG_MP3_TAG_SIZE];
        size_t         n;

        /*
         * lame began the stream with an empty frame of the tag's size:
         * the "Info" tag goes there, with the encoder delay and padding
         * (players then start on the first real sample, on time with
         * the transcript) and the exact frame count.
         */

        n = lame_get_lametag_frame(enc->lib.lame, tag, sizeof(tag));

        if (n == 0 || n > sizeof(tag) || out->len - enc->base < n) {
            return -1;
        }

        memcpy(out->data + enc->base, tag, n);
    }

    return 0;
}


static void
pg_mp3_cleanup(pg_enc_t *enc)
{
    if (enc->lib.lame) {
        lame_close(enc->lib.lame);
        enc->lib.lame = NULL;
    }
}


/* ---- opus --------------------------------------------------------------- */


static const OpusEncCallbacks  pg_opus_callbacks = {
    pg_opus_write_cb, pg_opus_close_cb
};


static int
pg_opus_comment(void *data, const char *key, const char *value)
{
    return ope_comments_add(data, key, value) == OPE_OK ? 0 : -1;
}


static int
pg_flac_comment(void *data, const char *key, const char *value)
{
    FLAC__StreamMetadata                         *vc = data;
    FLAC__StreamMetadata_VorbisComment_Entry      e;

    if (!FLAC__metadata_object_vorbiscomment_entry_from_name_value_pair(&e,
             key, value))
    {
        return -1;
    }

    return FLAC__metadata_object_vorbiscomment_append_comment(vc, e, false)
           ? 0 : -1;
}


/* a VORBIS_COMMENT block, and a PICTURE block for the cover */
static int
pg_flac_meta(pg_enc_t *enc, FLAC__StreamEncoder *fe)
{
    const unsigned char    *png;
    FLAC__StreamMetadata   *vc, *pic;

    vc = FLAC__metadata_object_new(FLAC__METADATA_TYPE_VORBIS_COMMENT);
    if (vc == NULL) {
        return -1;
    }

    enc->flac_meta[enc->nflac_meta++] = vc;

    if (pg_meta_comments(enc->meta, pg_flac_comment, vc) != 0) {
        return -1;
    }

    png = enc->meta->cover;

    if (png && enc->meta->cover_len) {
        pic = FLAC__metadata_object_new(FLAC__METADATA_TYPE_PICTURE);
        if (pic == NULL) {
            return -1;
        }

        enc->flac_meta[enc->nflac_meta++] = pic;

        pic->data.picture.type = FLAC__STREAM_METADATA_PICTURE_TYPE_FRONT_COVER;

        /* a PNG's IHDR: width and height at 16 and 20 */
        if (enc->meta->cover_len >= 24) {
            pic->data.picture.width = (FLAC__uint32) png[16] << 24
                                      | png[17] << 16 | png[18] << 8
                                      | png[19];
            pic->data.picture.height = (FLAC__uint32) png[20] << 24
                                       | png[21] << 16 | png[22] << 8
                                       | png[23];
            pic->data.picture.depth = 24;
        }

        if (!FLAC__metadata_object_picture_set_mime_type(pic, "image/png",
                                                         true)
            || !FLAC__metadata_object_picture_set_description(pic,
                   (FLAC__byte *) "", true)
            || !FLAC__metadata_object_picture_set_data(pic,
                   (FLAC__byte *) png, (FLAC__uint32) enc->meta->cover_len,
                   true))
        {
            return -1;
        }
    }

    return FLAC__stream_encoder_set_metadata(fe, enc->flac_meta,
                                             enc->nflac_meta)
           ? 0 : -1;
}


static int
pg_opus_init(pg_enc_t *enc, pg_buf_t *out)
{
    int               err;
    opus_int16        none;
    OggOpusEnc       *oe;
    OggOpusComments  *comments;

    enc->out_rate = PG_OPUS_RATE;

    comments = ope_comments_create();
    if (comments == NULL) {
        return -1;
    }

    if (enc->meta
        && (pg_meta_comments(enc->meta, pg_opus_comment, comments) != 0
            || (enc->meta->cover && enc->meta->cover_len
                && ope_comments_add_picture_from_memory(comments,
                       (const char *) enc->meta->cover,
                       enc->meta->cover_len, 3, NULL)
                   != OPE_OK)))
    {
        ope_comments_destroy(comments);
        return -1;
    }

    /* libopusenc resamples the voice's rate to 48 kHz itself */

    oe = ope_encoder_create_callbacks(&pg_opus_callbacks, enc, comments,
                                      enc->in_rate, 1, 0, &err);

    ope_comments_destroy(comments);

    if (oe == NULL) {
        return -1;
    }

    enc->lib.opus = oe;

    /*
     * By default libopusenc holds back up to 2 s of audio (decision delay)
     * and 1 s of packets per page (muxing delay): a live stream wants its
     * audio out as soon as it is encoded, so pages hold at most 100 ms
     * (libopusenc 0.2.1 takes a muxing delay of 0 as "no limit", not as
     * "none").  The frame duration is the default one: setting it
     * initializes a field that libopusenc 0.2.1 leaves undefined and reads
     * in ope_encoder_drain().
     */

    if (ope_encoder_ctl(oe, OPUS_SET_BITRATE(PG_OPUS_BITRATE)) != OPE_OK
        || ope_encoder_ctl(oe, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)) != OPE_OK
        || ope_encoder_ctl(oe, OPUS_SET_COMPLEXITY(PG_OPUS_COMPLEXITY))
           != OPE_OK
        || ope_encoder_ctl(oe, OPUS_SET_MAX_BANDWIDTH(
                                  pg_opus_max_bandwidth(enc->in_rate)))
           != OPE_OK
        || ope_encoder_ctl(oe, OPUS_SET_EXPERT_FRAME_DURATION(
                                  OPUS_FRAMESIZE_20_MS))
           != OPE_OK
        || ope_encoder_ctl(oe, OPE_SET_DECISION_DELAY(0)) != OPE_OK
        || ope_encoder_ctl(oe, OPE_SET_MUXING_DELAY(PG_OPUS_MUXING_DELAY))
           != OPE_OK
        || ope_encoder_ctl(oe, OPE_SET_COMMENT_PADDING(0)) != OPE_OK
        || ope_encoder_ctl(oe, OPE_SET_SERIALNO(pg_opus_serialno(enc)))
           != OPE_OK)
    {
        return -1;
    }

    enc->out = out;

    err = ope_encoder_flush_header(oe);

    /*
     * libopusenc 0.2.1 sets the stream's end position only in
     * ope_encoder_write(): without this empty write, finishing an encoder
     * that got no audio reads it undefined and writes a garbage granule.
     */

    if (err == OPE_OK) {
        none = 0;
        err = ope_encoder_write(oe, &none, 0);
    }

    enc->out = NULL;

    /* libopusenc reports a failed header write in its state only */

    if (err != OPE_OK || enc->out_failed) {
        return -1;
    }

    return 0;
}


/* No bits are spent on a band the voice cannot have (half its rate). */

static int
pg_opus_max_bandwidth(int rate)
{
    if (rate <= 8000) {
        return OPUS_BANDWIDTH_NARROWBAND;
    }

    if (rate <= 12000) {
        return OPUS_BANDWIDTH_MEDIUMBAND;
    }

    if (rate <= 16000) {
        return OPUS_BANDWIDTH_WIDEBAND;
    }

    if (rate <= 24000) {
        return OPUS_BANDWIDTH_SUPERWIDEBAND;
    }

    return OPUS_BANDWIDTH_FULLBAND;
}


/*
 * Only needs to differ between streams that might be chained or muxed
 * together; the clock and the encoder's address are enough for that.
 */

static opus_int32
pg_opus_serialno(pg_enc_t *enc)
{
    uint32_t         h;
    struct timespec  ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }

    h = (uint32_t) ts.tv_sec ^ (uint32_t) ts.tv_nsec
        ^ (uint32_t) ((uintptr_t) enc >> 4);

    /* a multiplicative hash spreads the few bits that change */
    h *= 0x9e3779b1u;

    return (opus_int32) (h & 0x7fffffff);
}


static int
pg_opus_write_cb(void *data, const unsigned char *p, opus_int32 len)
{
    pg_enc_t  *enc = data;

    if (enc->out == NULL || len < 0
        || pg_buf_append(enc->out, p, (size_t) len) != 0)
    {
        enc->out_failed = 1;
        return 1;
    }

    return 0;
}


static int
pg_opus_close_cb(void *data)
{
    return 0;
}


static int
pg_opus_write(pg_enc_t *enc, const int16_t *pcm, size_t n, pg_buf_t *out)
{
    int     rc;
    size_t  k;

    while (n > 0) {
        k = n < PG_OPUS_CHUNK ? n : PG_OPUS_CHUNK;

        enc->out = out;
        rc = ope_encoder_write(enc->lib.opus, pcm, (int) k);
        enc->out = NULL;

        if (rc != OPE_OK || enc->out_failed) {
            return -1;
        }

        pcm += k;
        n -= k;
    }

    return 0;
}


static int
pg_opus_finish(pg_enc_t *enc, pg_buf_t *out)
{
    int  rc;

    enc->out = out;
    rc = ope_encoder_drain(enc->lib.opus);
    enc->out = NULL;

    if (rc != OPE_OK || enc->out_failed) {
        return -1;
    }

    return 0;
}


static void
pg_opus_cleanup(pg_enc_t *enc)
{
    if (enc->lib.opus) {
        ope_encoder_destroy(enc->lib.opus);
        enc->lib.opus = NULL;
    }
}


/* ---- flac --------------------------------------------------------------- */


static int
pg_flac_init(pg_enc_t *enc, pg_buf_t *out)
{
    FLAC__StreamEncoder              *fe;
    FLAC__StreamEncoderInitStatus     st;

    fe = FLAC__stream_encoder_new();
    if (fe == NULL) {
        return -1;
    }

    enc->lib.flac = fe;

    /*
     * A stream (no seek callback) keeps the STREAMINFO written first:
     * "total samples unknown" and an all-zero MD5, which decoders take
     * as "not known".
     */

    if (!FLAC__stream_encoder_set_channels(fe, 1)
        || !FLAC__stream_encoder_set_bits_per_sample(fe, 16)
        || !FLAC__stream_encoder_set_sample_rate(fe, enc->in_rate)
        || !FLAC__stream_encoder_set_compression_level(fe, PG_FLAC_LEVEL)
        || !FLAC__stream_encoder_set_total_samples_estimate(fe, 0)
        || (enc->meta && pg_flac_meta(enc, fe) != 0))
    {
        return -1;
    }

    /*
     * A whole file can be gone back to: at the end libFLAC rewrites its
     * STREAMINFO with the total samples, the MD5 and the frame sizes.
     */

    enc->out = out;
    st = FLAC__stream_encoder_init_stream(fe, pg_flac_write_cb,
                                          enc->whole ? pg_flac_seek_cb : NULL,
                                          enc->whole ? pg_flac_tell_cb : NULL,
                                          pg_flac_metadata_cb, enc);
    enc->out = NULL;

    if (st != FLAC__STREAM_ENCODER_INIT_STATUS_OK || enc->out_failed) {
        return -1;
    }

    return 0;
}


static FLAC__StreamEncoderWriteStatus
pg_flac_write_cb(const FLAC__StreamEncoder *fe, const FLAC__byte buffer[],
    size_t bytes, uint32_t samples, uint32_t current_frame, void *data)
{
    pg_enc_t  *enc = data;

    size_t  over;

    if (enc->out == NULL) {
        goto failed;
    }

    if (!enc->whole) {
        if (pg_buf_append(enc->out, buffer, bytes) != 0) {
            goto failed;
        }

        return FLAC__STREAM_ENCODER_WRITE_STATUS_OK;
    }

    /* a whole file: over what is there (after a seek back), then on */

    if (enc->pos > enc->out->len) {
        goto failed;
    }

    over = enc->out->len - enc->pos;
    if (over > bytes) {
        over = bytes;
    }

    if (over) {
        memcpy(enc->out->data + enc->pos, buffer, over);
    }

    if (pg_buf_append(enc->out, buffer + over, bytes - over) != 0) {
        goto failed;
    }

    enc->pos += bytes;

    return FLAC__STREAM_ENCODER_WRITE_STATUS_OK;

failed:

    enc->out_failed = 1;
    return FLAC__STREAM_ENCODER_WRITE_STATUS_FATAL_ERROR;
}


static FLAC__StreamEncoderSeekStatus
pg_flac_seek_cb(const FLAC__StreamEncoder *fe, FLAC__uint64 offset,
    void *data)
{
    pg_enc_t  *enc = data;

    if (enc->out == NULL || offset > enc->out->len - enc->base) {
        return FLAC__STREAM_ENCODER_SEEK_STATUS_ERROR;
    }

    enc->pos = enc->base + offset;

    return FLAC__STREAM_ENCODER_SEEK_STATUS_OK;
}


static FLAC__StreamEncoderTellStatus
pg_flac_tell_cb(const FLAC__StreamEncoder *fe, FLAC__uint64 *offset,
    void *data)
{
    pg_enc_t  *enc = data;

    *offset = enc->pos - enc->base;

    return FLAC__STREAM_ENCODER_TELL_STATUS_OK;
}


/* at the end: the STREAMINFO a stream could not write at its start */

static void
pg_flac_metadata_cb(const FLAC__StreamEncoder *fe,
    const FLAC__StreamMetadata *m, void *data)
{
    pg_enc_t  *enc = data;

    const FLAC__StreamMetadata_StreamInfo  *si;

    if (m->type != FLAC__METADATA_TYPE_STREAMINFO) {
        return;
    }

    si = &m->data.stream_info;

    enc->flac_min_frame = si->min_framesize;
    enc->flac_max_frame = si->max_framesize;
    enc->flac_samples = si->total_samples;
    memcpy(enc->flac_md5, si->md5sum, 16);
    enc->flac_done = 1;
}


static int
pg_flac_write(pg_enc_t *enc, const int16_t *pcm, size_t n, pg_buf_t *out)
{
    size_t       i, k;
    FLAC__bool   ok;

    while (n > 0) {
        k = n < PG_FLAC_CHUNK ? n : PG_FLAC_CHUNK;

        for (i = 0; i < k; i++) {
            enc->scratch.flac[i] = pcm[i];
        }

        enc->out = out;
        ok = FLAC__stream_encoder_process_interleaved(enc->lib.flac,
                                                      enc->scratch.flac,
                                                      (uint32_t) k);
        enc->out = NULL;

        if (!ok || enc->out_failed) {
            return -1;
        }

        pcm += k;
        n -= k;
    }

    return 0;
}


static int
pg_flac_finish(pg_enc_t *enc, pg_buf_t *out)
{
    FLAC__bool  ok;

    enc->out = out;
    ok = FLAC__stream_encoder_finish(enc->lib.flac);
    enc->out = NULL;

    if (!ok || enc->out_failed) {
        return -1;
    }

    return 0;
}


static void
pg_flac_cleanup(pg_enc_t *enc)
{
    /*
     * Deleting an unfinished encoder does not write a last frame, and
     * enc->out is NULL here, so the callback would refuse anyway.
     */

    if (enc->lib.flac) {
        FLAC__stream_encoder_delete(enc->lib.flac);
        enc->lib.flac = NULL;
    }

    while (enc->nflac_meta) {
        FLAC__metadata_object_delete(enc->flac_meta[--enc->nflac_meta]);
    }
}


/* ---- aac (ADTS) --------------------------------------------------------- */


static pthread_once_t  pg_aac_once = PTHREAD_ONCE_INIT;


static void
pg_aac_quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}


static int
pg_aac_init(pg_enc_t *enc, pg_buf_t *out)
{
    int              i;
    pg_aac_t        *a;
    const AVCodec   *codec;
    static const int rates[] = {
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000,
        12000, 11025, 8000, 7350
    };

    (void) pthread_once(&pg_aac_once, pg_aac_quiet);

    /* ADTS has an index for each rate AAC knows; flite's are among them */

    for (i = 0; i < (int) (sizeof(rates) / sizeof(rates[0])); i++) {
        if (rates[i] == enc->in_rate) {
            break;
        }
    }

    if (i == (int) (sizeof(rates) / sizeof(rates[0]))) {
        return -1;
    }

    codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (codec == NULL) {
        return -1;
    }

    a = calloc(1, sizeof(pg_aac_t));
    if (a == NULL) {
        return -1;
    }

    enc->lib.aac = a;
    a->sf_index = i;

    a->ctx = avcodec_alloc_context3(codec);
    a->frame = av_frame_alloc();
    a->pkt = av_packet_alloc();

    if (a->ctx == NULL || a->frame == NULL || a->pkt == NULL) {
        return -1;
    }

    a->ctx->sample_fmt = AV_SAMPLE_FMT_FLTP;
    a->ctx->sample_rate = enc->in_rate;
    a->ctx->bit_rate = enc->in_rate >= 16000 ? PG_AAC_BITRATE
                                             : PG_AAC_LOW_BITRATE;
    a->ctx->profile = FF_PROFILE_AAC_LOW;
    a->ctx->thread_count = 1;
    a->ctx->time_base = (AVRational) { 1, enc->in_rate };

    if (enc->ops == &pg_m4a_ops) {
        /* MP4 keeps the AudioSpecificConfig in its header, not in-band */
        a->ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    av_channel_layout_default(&a->ctx->ch_layout, PG_AAC_CHANNELS);

    if (avcodec_open2(a->ctx, codec, NULL) < 0) {
        return -1;
    }

    a->frame->format = AV_SAMPLE_FMT_FLTP;
    a->frame->sample_rate = enc->in_rate;
    a->frame->nb_samples = a->ctx->frame_size;

    if (av_channel_layout_copy(&a->frame->ch_layout, &a->ctx->ch_layout) < 0
        || av_frame_get_buffer(a->frame, 0) < 0)
    {
        return -1;
    }

    /* no header: each packet carries its own */
    (void) out;

    return 0;
}


/* the packets the encoder has ready, each after its ADTS header */

static int
pg_aac_drain(pg_enc_t *enc, pg_buf_t *out)
{
    int             rc;
    size_t          len;
    pg_aac_t       *a = enc->lib.aac;
    unsigned char   h[PG_ADTS_HEADER_SIZE];

    for ( ;; ) {
        rc = avcodec_receive_packet(a->ctx, a->pkt);

        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
            return 0;
        }

        if (rc < 0) {
            return -1;
        }

        if (a->mux) {
            av_packet_rescale_ts(a->pkt, a->ctx->time_base,
                                 a->mux->streams[0]->time_base);
            a->pkt->stream_index = 0;

            /* the muxer takes the packet's reference */
            if (av_interleaved_write_frame(a->mux, a->pkt) < 0
                || enc->out_failed)
            {
                return -1;
            }

            continue;
        }

        len = (size_t) a->pkt->size + PG_ADTS_HEADER_SIZE;

        if (len > 0x1fff) {
            av_packet_unref(a->pkt);
            return -1;
        }

        /* ISO 14496-3 1.A.2: MPEG-4, no CRC, AAC LC (object type 2),
         * one channel, one raw data block, a VBR buffer fullness */

        h[0] = 0xff;
        h[1] = 0xf1;
        h[2] = (unsigned char) (((2 - 1) << 6) | (a->sf_index << 2)
                                | (PG_AAC_CHANNELS >> 2));
        h[3] = (unsigned char) (((PG_AAC_CHANNELS & 3) << 6) | (len >> 11));
        h[4] = (unsigned char) ((len >> 3) & 0xff);
        h[5] = (unsigned char) (((len & 7) << 5) | 0x1f);
        h[6] = 0xfc;

        rc = pg_buf_append(out, h, sizeof(h)) != 0
             || pg_buf_append(out, a->pkt->data, a->pkt->size) != 0;

        av_packet_unref(a->pkt);

        if (rc) {
            return -1;
        }
    }
}


static int
pg_aac_send(pg_enc_t *enc, AVFrame *frame, pg_buf_t *out)
{
    if (avcodec_send_frame(enc->lib.aac->ctx, frame) < 0) {
        return -1;
    }

    return pg_aac_drain(enc, out);
}


static int
pg_aac_write(pg_enc_t *enc, const int16_t *pcm, size_t n, pg_buf_t *out)
{
    float     *s;
    size_t     i;
    pg_aac_t  *a = enc->lib.aac;

    for (i = 0; i < n; /* void */) {

        if (a->filled == 0 && av_frame_make_writable(a->frame) < 0) {
            return -1;
        }

        s = (float *) a->frame->data[0];

        while (i < n && a->filled < a->frame->nb_samples) {
            s[a->filled++] = (float) pcm[i++] / 32768.0f;
        }

        if (a->filled == a->frame->nb_samples) {
            a->frame->pts = a->pts;
            a->pts += a->filled;
            a->filled = 0;

            if (pg_aac_send(enc, a->frame, out) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


static int
pg_aac_finish(pg_enc_t *enc, pg_buf_t *out)
{
    pg_aac_t  *a = enc->lib.aac;

    /* the last samples in a short frame, then the encoder's delay */

    if (a->filled) {
        a->frame->nb_samples = a->filled;
        a->frame->pts = a->pts;
        a->pts += a->filled;
        a->filled = 0;

        if (pg_aac_send(enc, a->frame, out) != 0) {
            return -1;
        }
    }

    return pg_aac_send(enc, NULL, out);
}


static void
pg_aac_cleanup(pg_enc_t *enc)
{
    pg_aac_t  *a = enc->lib.aac;

    if (a == NULL) {
        return;
    }

    if (a->mux) {
        avformat_free_context(a->mux);
    }

    if (a->io) {
        av_freep(&a->io->buffer);
        avio_context_free(&a->io);
    }

    avcodec_free_context(&a->ctx);
    av_frame_free(&a->frame);
    av_packet_free(&a->pkt);
    free(a);

    enc->lib.aac = NULL;
}


/* ---- m4a (AAC in MP4, whole files) -------------------------------------- */


#define PG_M4A_IO_SIZE  32768


static int
pg_m4a_init(pg_enc_t *enc, pg_buf_t *out)
{
    int                rc;
    pg_aac_t          *a;
    AVStream          *st;
    unsigned char     *iobuf;
    const AVOutputFormat  *ofmt;

    /* the index comes last and sizes are written back: never a stream */

    if (!enc->whole || pg_aac_init(enc, out) != 0) {
        return -1;
    }

    a = enc->lib.aac;

    ofmt = av_guess_format("ipod", NULL, NULL);
    if (ofmt == NULL
        || avformat_alloc_output_context2(&a->mux, ofmt, NULL, NULL) < 0)
    {
        return -1;
    }

    iobuf = av_malloc(PG_M4A_IO_SIZE);
    if (iobuf == NULL) {
        return -1;
    }

    a->io = avio_alloc_context(iobuf, PG_M4A_IO_SIZE, 1, enc, NULL,
                               pg_m4a_write_cb, pg_m4a_seek_cb);
    if (a->io == NULL) {
        av_free(iobuf);
        return -1;
    }

    a->mux->pb = a->io;
    a->mux->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_BITEXACT;

    st = avformat_new_stream(a->mux, NULL);
    if (st == NULL
        || avcodec_parameters_from_context(st->codecpar, a->ctx) < 0)
    {
        return -1;
    }

    st->time_base = a->ctx->time_base;

    enc->out = out;
    rc = avformat_write_header(a->mux, NULL);
    enc->out = NULL;

    return (rc < 0 || enc->out_failed) ? -1 : 0;
}


/* the muxer's output: over what is there (after a seek back), then on */

static int
pg_m4a_write_cb(void *data, uint8_t *buf, int size)
{
    pg_enc_t  *enc = data;

    size_t  over, n;

    n = (size_t) size;

    if (enc->out == NULL || size < 0 || enc->pos > enc->out->len) {
        enc->out_failed = 1;
        return AVERROR(EIO);
    }

    over = enc->out->len - enc->pos;
    if (over > n) {
        over = n;
    }

    if (over) {
        memcpy(enc->out->data + enc->pos, buf, over);
    }

    if (pg_buf_append(enc->out, buf + over, n - over) != 0) {
        enc->out_failed = 1;
        return AVERROR(ENOMEM);
    }

    enc->pos += n;

    return size;
}


static int64_t
pg_m4a_seek_cb(void *data, int64_t offset, int whence)
{
    pg_enc_t  *enc = data;

    int64_t  len, to;

    if (enc->out == NULL) {
        return AVERROR(EIO);
    }

    len = (int64_t) (enc->out->len - enc->base);

    switch (whence & ~AVSEEK_FORCE) {

    case AVSEEK_SIZE:
        return len;

    case SEEK_SET:
        to = offset;
        break;

    case SEEK_CUR:
        to = (int64_t) (enc->pos - enc->base) + offset;
        break;

    case SEEK_END:
        to = len + offset;
        break;

    default:
        return AVERROR(EINVAL);
    }

    if (to < 0 || to > len) {
        return AVERROR(EINVAL);
    }

    enc->pos = enc->base + (size_t) to;

    return to;
}


static int
pg_m4a_write(pg_enc_t *enc, const int16_t *pcm, size_t n, pg_buf_t *out)
{
    int  rc;

    enc->out = out;
    rc = pg_aac_write(enc, pcm, n, out);
    enc->out = NULL;

    return (rc != 0 || enc->out_failed) ? -1 : 0;
}


static int
pg_m4a_finish(pg_enc_t *enc, pg_buf_t *out)
{
    int        rc;
    pg_aac_t  *a = enc->lib.aac;

    enc->out = out;

    rc = pg_aac_finish(enc, out);

    if (rc == 0 && av_write_trailer(a->mux) < 0) {
        rc = -1;
    }

    if (rc == 0) {
        avio_flush(a->io);
    }

    enc->out = NULL;

    return (rc != 0 || enc->out_failed || a->io->error) ? -1 : 0;
}
