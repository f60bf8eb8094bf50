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
 * 1 when synthesis is deterministic: libflite's rand() was redirected to a
 * per-thread generator seeded from each text (see pg_tts.c).
 */
int pg_tts_deterministic(void);

/* flite's version string, e.g. "2.2". */
const char *pg_tts_version(void);

#endif /* PG_TTS_H */
