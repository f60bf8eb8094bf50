/*
 * podgen core: a podcast episode from its segments' audio (plain C, no
 * nginx).
 *
 * Each segment's audio is a complete WAV file (what pg_audio's wav encoder
 * writes); the episode joins them in order, a short silence between two
 * segments, at one common rate, and encodes the whole with pg_audio's
 * encoders, piece by piece.  pg_episode_render_files() asks for the parts
 * one at a time and hands the encoded file out in pieces: it holds one
 * part, a few thousand samples and the file's first PG_EPISODE_HEAD bytes
 * (which encoders go back to at the end) plus at most PG_EPISODE_DRAIN
 * more, whatever the episode's length.
 *
 * Loudness (EBU R128 / ITU-R BS.1770, libebur128), when asked: a first
 * pass over the joined PCM measures the integrated loudness and the true
 * peak, the second applies the gain that brings the episode to the target
 * and a true-peak limiter while it encodes (see pg_episode.c).
 */

#ifndef PG_EPISODE_H
#define PG_EPISODE_H

#include <stddef.h>
#include <stdint.h>

#include "pg_audio.h"
#include "pg_buf.h"


/* One segment's audio: a complete mono s16 WAV file. */
typedef struct {
    const unsigned char  *wav;
    size_t                len;
} pg_episode_part_t;

/*
 * Where a segment sits in the episode, in seconds of the encoded output.
 * (Not "pg_span_t": pg_text.h has one, a piece of a text.)
 */
typedef struct {
    double   start;
    double   end;
} pg_episode_span_t;


/* What render_files() keeps of the file in memory (see above). */
#define PG_EPISODE_HEAD          (64 * 1024)
#define PG_EPISODE_DRAIN         (256 * 1024)


/*
 * Where render_files() gets the parts and puts the file.  get() gives
 * part i (0..n) as a complete WAV, valid until put(i) (called after every
 * successful get, before the next get); 0, or -1 with a reason in errbuf.
 * A part is asked for two or three times (checked, measured, encoded):
 * it must be the same each time.  write() puts len bytes at offset off of
 * the file: the file grows in order but for its first PG_EPISODE_HEAD
 * bytes, written (again) once everything else is; 0 or -1 (errno set, for
 * the reason).  put may be NULL; last is 1 when part i will not be asked
 * for again (its file may go: the disk then holds about one episode).
 */
typedef struct {
    int    (*get)(void *data, size_t i, pg_episode_part_t *part,
               char *errbuf, size_t errlen);
    void   (*put)(void *data, size_t i, pg_episode_part_t *part,
               int last);
    int    (*write)(void *data, uint64_t off, const unsigned char *p,
               size_t len);
    void    *data;
} pg_episode_io_t;

/*
 * Loudness: on when loudness is 1.  target_lufs -70..0 (integrated),
 * peak_dbtp -20..0 (the most true peak).  gain_db: NULL, or per part a
 * gain (-40..40 dB) applied to it before anything is measured (a voice's
 * level; with loudness on only).
 */
typedef struct {
    unsigned        loudness:1;
    double          target_lufs;
    double          peak_dbtp;
    const double   *gain_db;
} pg_episode_opts_t;

/*
 * What loudness found: the joined PCM (with the parts' gains) measured
 * integrated_lufs and true_peak_dbtp (-HUGE_VAL for silence), and gain_db
 * was applied (0 for silence).  limited: samples the limiter lowered.
 */
typedef struct {
    unsigned        measured:1;
    double          integrated_lufs;
    double          true_peak_dbtp;
    double          gain_db;
    uint64_t        limited;
} pg_episode_loudness_t;


/*
 * Parses a mono 16-bit PCM WAV (RIFF/WAVE, fmt chunk with format 1, any
 * extra chunks skipped).  On success *pcm points INTO wav (no copy; may be
 * unaligned, so callers copy with memcpy), *nsamples and *rate are set.
 * The RIFF size is not used; a data size of 0xffffffff (a streamed file's
 * placeholder) means "to the end of the buffer".
 * Returns 0, or -1 for anything else (truncated, stereo, 8-bit, float,
 * not RIFF, an odd number of data bytes, rate 0 ...).  Never reads out of
 * bounds on hostile input.
 */
int pg_wav_parse(const unsigned char *wav, size_t len,
    const unsigned char **pcm, size_t *nsamples, int *rate);

/*
 * Joins parts[0..n) with pause_s seconds (0..60) of silence between
 * consecutive parts (none before the first or after the last), at
 * out_rate (0: the highest rate among the parts), resampling parts of
 * another rate with soxr, and encodes the result as fmt into *out
 * (appended).  Rates, the parts' and out_rate, are 4000..192000 Hz.  pcm
 * is always 24 kHz (PG_PCM_RATE): for it the parts are resampled straight
 * to that, whatever out_rate.  soxr does not dither here: the same parts
 * give the same bytes (but for opus's random stream serial number).
 *
 * Lengths are whole samples: at out_rate, a part of n samples at rate r
 * lasts round(n * out_rate / r) samples, a pause round(pause_s * out_rate).
 * spans[i] (n of them) gets the start and end of part i, and *duration the
 * total, in seconds reckoned from sample counts at the OUTPUT rate of the
 * encoder (pg_enc_out_rate: e.g. opus is 48000, pcm 24000): a position of
 * k samples at out_rate is round(k * enc_rate / out_rate) / enc_rate.  So
 * spans[0].start is 0, spans[n - 1].end is *duration, and the pauses are
 * exactly the gaps between spans (pause_s up to a sample's rounding).
 * spans and duration may be NULL.
 *
 * The positions are the encoder's input, which wav, flac, pcm and opus
 * decode to exactly.  An mp3 has no gapless tag: decoders play lame's
 * delay and their own first (576 + 529 samples, 69 ms at 16 kHz), so
 * everything is heard that much later than its span, and the end is
 * padded to whole frames (about 100 ms longer than *duration in all).
 *
 * For WAV output the header sizes are fixed (pg_wav_fix_sizes) so the file
 * is complete.  Returns 0, or -1 with a short reason in errbuf (size
 * errlen) and *out as it was: "no parts", "part 3: not a 16-bit mono wav"
 * (3 is the index in parts[]), a rate out of range, a bad pause, encoder
 * or resampler failure, out of memory.
 */
int pg_episode_render(const pg_episode_part_t *parts, size_t n,
    int out_rate, double pause_s, pg_format_t fmt, pg_buf_t *out,
    pg_episode_span_t *spans, double *duration, char *errbuf,
    size_t errlen);

/*
 * The same, parts from io->get() and the file to io->write(): *bytes (may
 * be NULL) gets the file's size, *loud (may be NULL) the loudness found
 * when opts asks for it (opts NULL: none, the same bytes as
 * pg_episode_render()).  On error what was written is garbage: the caller
 * writes to a temporary file and renames it when this returns 0.
 */
int pg_episode_render_files(const pg_episode_io_t *io, size_t n,
    int out_rate, double pause_s, pg_format_t fmt,
    const pg_episode_opts_t *opts, uint64_t *bytes,
    pg_episode_span_t *spans, double *duration, pg_episode_loudness_t *loud,
    char *errbuf, size_t errlen);

#endif /* PG_EPISODE_H */
