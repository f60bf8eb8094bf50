/*
 * podgen core: audio formats and streaming encoders (plain C, no nginx).
 *
 * An encoder takes mono signed 16-bit PCM at the voice's rate, in pieces,
 * and appends encoded bytes to a pg_buf_t as they become available, so a
 * response can be streamed piece by piece.  Concatenating everything an
 * encoder appended (from create to finish) gives one valid file.
 *
 * An encoder is used by one thread at a time (the caller serializes).
 */

#ifndef PG_AUDIO_H
#define PG_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "pg_buf.h"


typedef enum {
    PG_FMT_MP3 = 0,
    PG_FMT_OPUS,
    PG_FMT_AAC,         /* ADTS; speech only: episodes are not aac */
    PG_FMT_WAV,
    PG_FMT_FLAC,
    PG_FMT_PCM,         /* raw s16le mono at 24 kHz, like OpenAI */
    PG_FMT_M4A,         /* AAC-LC in MP4, whole files only (episodes) */
    PG_FMT_UNKNOWN
} pg_format_t;

#define PG_PCM_RATE  24000


typedef struct pg_enc_s  pg_enc_t;


/* "mp3" -> PG_FMT_MP3 ...; PG_FMT_UNKNOWN for anything else. */
pg_format_t pg_format_from_name(const char *name, size_t len);
const char *pg_format_name(pg_format_t fmt);            /* "mp3" */
const char *pg_format_mime(pg_format_t fmt);            /* "audio/mpeg" */

/*
 * in_rate: sample rate of the PCM that will be written (8000, 16000, ...).
 * Writes any header the format needs into *out.  For WAV the header's
 * sizes are unknown while streaming: they are written as 0xFFFFFFFF
 * placeholders and pg_wav_fix_sizes() corrects them in a complete file.
 * Returns NULL on error (bad rate, unsupported format, out of memory).
 */
pg_enc_t *pg_enc_create(pg_format_t fmt, int in_rate, pg_buf_t *out);

/*
 * The same for a whole file: the caller keeps everything written to *out
 * from now on (it does not send or drain it while encoding), so the
 * encoder may go back to its headers when it finishes: a FLAC STREAMINFO
 * with the total samples and the MD5, an mp3 LAME "Info" tag with the
 * encoder delay and padding (gapless players start on time) and the frame
 * count.  Other formats are written as by pg_enc_create().
 */
pg_enc_t *pg_enc_create_whole(pg_format_t fmt, int in_rate, pg_buf_t *out);


/* A chapter of a file: where it starts, in seconds, and its title. */
typedef struct {
    double                start;
    double                end;          /* the next one's start, or the
                                           file's end */
    const char           *title;
} pg_audio_chapter_t;

/*
 * What a file says about itself; any string may be NULL (absent).  All
 * strings are UTF-8.  cover: PNG bytes (cover_len of them) or NULL.
 */
typedef struct {
    const char                *title;
    const char                *artist;
    const char                *album;
    const char                *date;        /* "2026-12-03" */
    const char                *comment;
    const pg_audio_chapter_t  *chapters;
    size_t                     nchapters;
    const unsigned char       *cover;
    size_t                     cover_len;
} pg_audio_meta_t;

/*
 * pg_enc_create_whole() with tags (meta may be NULL: none): mp3 gets an
 * ID3v2.4 tag before its first frame (TIT2, TPE1, TALB, TDRC, COMM, APIC,
 * CHAP and CTOC), Opus and FLAC Vorbis comments (TITLE, ARTIST, ALBUM,
 * DATE, COMMENT, CHAPTERnnn / CHAPTERnnnNAME; the cover as a
 * METADATA_BLOCK_PICTURE in Opus, a PICTURE block in FLAC).  wav and pcm
 * get none.
 */
pg_enc_t *pg_enc_create_whole_meta(pg_format_t fmt, int in_rate,
    pg_buf_t *out, const pg_audio_meta_t *meta);

/*
 * Appends an ID3v2.4 tag of meta to *out.  0, or -1 when out of memory or
 * when it would pass 256 MB.
 */
int pg_id3_write(const pg_audio_meta_t *meta, pg_buf_t *out);

/*
 * A whole file's caller moved the last n bytes of *out elsewhere (and cut
 * out->len by n), never any of what the encoder may go back to (its
 * headers, in the first 64 KB from where it began): the encoder goes on
 * as if they were there.
 */
void pg_enc_drained(pg_enc_t *enc, size_t n);

/* Returns 0, or -1 on error (the encoder is then unusable). */
int pg_enc_write(pg_enc_t *enc, const int16_t *pcm, size_t nsamples,
    pg_buf_t *out);

/* Flushes everything (trailers, last frames/pages).  0 or -1. */
int pg_enc_finish(pg_enc_t *enc, pg_buf_t *out);

void pg_enc_destroy(pg_enc_t *enc);

/* Sample rate of the encoded output (e.g. 24000 for pcm, 48000 for opus). */
int pg_enc_out_rate(pg_enc_t *enc);

/*
 * A streamed file cannot go back to its headers; what they lack is known
 * when the encoder finishes, and kept for pg_audio_finalize():
 *
 *   flac  the final STREAMINFO fields: total samples, frame sizes and the
 *         MD5 of the PCM (libFLAC's own, from its metadata callback);
 *   mp3   the LAME "Info" frame (frame count, bytes, TOC, encoder delay
 *         and padding, CRCs), for the frame of zeros a stream begins with
 *         (a decoder plays it as 24 ms of silence; a player that finds
 *         the Info tag in the stored file skips it).
 *
 * Other formats need nothing (wav has its sizes fixed from the file's
 * length; Ogg granule positions and ADTS headers carry what they need).
 */

#define PG_AUDIO_TAG_MAX  2880          /* the largest mp3 frame, twice */

typedef struct {
    uint64_t              samples;      /* PCM samples in, at in_rate */

    unsigned              flac:1;       /* the flac fields are set */
    uint32_t              flac_min_frame;
    uint32_t              flac_max_frame;
    uint64_t              flac_samples;
    unsigned char         flac_md5[16];

    size_t                mp3_tag_len;  /* 0: no tag */
    unsigned char         mp3_tag[PG_AUDIO_TAG_MAX];
} pg_audio_totals_t;

/*
 * After pg_enc_finish(): fills *t (zeroed first).  0, or -1 when the
 * encoder is not finished or its library has no totals to give.
 */
int pg_enc_totals(pg_enc_t *enc, pg_audio_totals_t *t);

/*
 * Makes a complete streamed file of fmt (everything a pg_enc_create()
 * encoder appended, from create to finish) whole, in place: the FLAC
 * STREAMINFO gets the totals, the mp3's first frame (after an ID3v2 tag,
 * if any) the Info frame, a WAV its sizes.  Its length does not change.
 * 0, or -1 when buf is not what such an encoder writes (then it is left
 * as it was).  Constant time but for the mp3 check of the reserved
 * frame (at most 1441 bytes).
 */
int pg_audio_finalize(pg_format_t fmt, unsigned char *buf, size_t len,
    const pg_audio_totals_t *t);

/* Fixes the RIFF and data sizes of a complete WAV file in place; 0 or -1. */
int pg_wav_fix_sizes(unsigned char *wav, size_t len);

#endif /* PG_AUDIO_H */
