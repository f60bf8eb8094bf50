/*
 * podgen core: flite voices and synthesis (plain C, no nginx).
 *
 * Voices are loaded once per process and then shared, read-only, by every
 * synthesis thread: flite keeps all per-synthesis state in the utterance,
 * and per-request settings (speed) are set on the utterance, never on the
 * shared voice.  t/ and lib/test/test_tts.c hammer this from many threads.
 */

#ifndef PG_TTS_H
#define PG_TTS_H

#include <stddef.h>
#include <stdint.h>

#include "pg_buf.h"


#define PG_VOICE_NAME_LEN  32


typedef struct pg_voice_s  pg_voice_t;

struct pg_voice_s {
    char         name[PG_VOICE_NAME_LEN];
    void        *voice;         /* cst_voice * */
    int          rate;          /* sample rate of its audio */
    int          builtin;
    const char  *source;        /* "builtin:slt" or a .flitevox path */
};


typedef struct {
    int16_t  *samples;          /* malloc'd */
    size_t    nsamples;
    int       rate;
} pg_pcm_t;


/*
 * When each word is said: a token of the text as written, with its
 * punctuation ("Hello,", "$20"), from the first sample of its first
 * phone to the last sample of its last, counted from the audio's start.
 */
typedef struct {
    uint32_t  start;            /* samples */
    uint32_t  end;
    uint32_t  off;              /* its text: list->text + off, */
    uint32_t  len;              /*   len bytes, not NUL-terminated */
} pg_word_t;

typedef struct {
    pg_word_t  *words;          /* malloc'd */
    size_t      n;
    size_t      cap;
    char       *text;           /* malloc'd */
    size_t      text_len;
    size_t      text_cap;
} pg_words_t;

#define PG_WORD_MAX_LEN  255    /* bytes of a word's text (longer: cut at
                                   a character's boundary) */


/* Names of the voices compiled into flite: "slt", "rms", ... NULL. */
extern const char  *pg_tts_builtin_names[];

/* Once per process, before any voice is loaded.  0 or -1. */
int pg_tts_init(void);

/*
 * Loads "builtin:NAME" or a .flitevox file into *v (name set by caller).
 * Returns 0, or -1 with a reason in err.
 */
int pg_tts_voice_load(pg_voice_t *v, const char *source, char *err,
    size_t errlen);

/* Checks that a file is a .flitevox voice, without flite.  0 or -1. */
int pg_tts_voice_file_check(const char *path, char *err, size_t errlen);

/*
 * Synthesizes normalized text (see pg_text_normalize) at a speed
 * 0.25..4.0 into *pcm.  Thread-safe for a shared voice.  0 or -1.
 */
int pg_tts_synth(pg_voice_t *v, const char *text, double speed,
    pg_pcm_t *pcm);

void pg_pcm_free(pg_pcm_t *pcm);

/*
 * The same, and the timings of the words said, at pcm->rate, appended to
 * *words (which may be NULL: pg_tts_synth).  Every word lies within the
 * audio, words in order and not overlapping.  0 or -1.
 */
int pg_tts_synth_words(pg_voice_t *v, const char *text, double speed,
    pg_pcm_t *pcm, pg_words_t *words);

/*
 * Appends a word of text[0..len) (cut to PG_WORD_MAX_LEN) said from start
 * to end (samples; end >= start).  0, or -1 when out of memory (*ws as it
 * was).
 */
int pg_words_add(pg_words_t *ws, const char *text, size_t len,
    uint32_t start, uint32_t end);

/* Appends src's words to dst, offset samples later.  0 or -1. */
int pg_words_append(pg_words_t *dst, const pg_words_t *src,
    uint32_t offset);

void pg_words_free(pg_words_t *ws);

/*
 * Word timings are data of a segment's WAV file: a RIFF chunk "pgwt"
 * after the data chunk, records of (le32 start, le32 end, u8 len, len
 * bytes), padded to an even size.  pg_wav_words_add() appends the chunk
 * to a complete WAV file in *wav (its sizes exact: pg_wav_fix_sizes) and
 * sets the RIFF size; nothing is appended for no words.  0 or -1.
 */
int pg_wav_words_add(pg_buf_t *wav, const pg_words_t *ws);

/*
 * Reads the "pgwt" chunk of wav[0..len) into *ws (appended) and its rate
 * into *rate.  0 (no chunk: no words), or -1 when the file or the chunk is
 * malformed (*ws then holds what was read before).  Safe on any input.
 */
int pg_wav_words(const unsigned char *wav, size_t len, pg_words_t *ws,
    int *rate);

/*
 * 1 when synthesis is deterministic: libflite's rand() was redirected to a
 * per-thread generator seeded from each text (see pg_tts.c).
 */
int pg_tts_deterministic(void);

/*
 * 1 when the voices speak the language of tag[0..len) (BCP 47, any case):
 * flite's voices, built in or .flitevox, all speak English ("en",
 * "en-GB" ...).  PG_TTS_LANGUAGES lists them for /v1/voices.
 */
int pg_tts_speaks(const char *tag, size_t len);

#define PG_TTS_LANGUAGES  "en"

/* flite's version string, e.g. "2.2". */
const char *pg_tts_version(void);

#endif /* PG_TTS_H */
