/*
 * podgen core: flite voices and synthesis.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flite/flite.h>
#include <flite/flite_version.h>

#include "pg_tts.h"


cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_kal(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);

void usenglish_init(cst_voice *v);
cst_lexicon *cmulex_init(void);


typedef cst_voice *(*pg_tts_register_pt)(const char *voxdir);

typedef struct {
    const char          *name;
    pg_tts_register_pt   reg;
} pg_tts_builtin_t;


static pg_tts_builtin_t  pg_tts_builtins[] = {
    { "slt", register_cmu_us_slt },
    { "rms", register_cmu_us_rms },
    { "awb", register_cmu_us_awb },
    { "kal", register_cmu_us_kal },
    { "kal16", register_cmu_us_kal16 },
    { NULL, NULL }
};

const char  *pg_tts_builtin_names[] = {
    "slt", "rms", "awb", "kal", "kal16", NULL
};


int
pg_tts_init(void)
{
    flite_init();

    /* .flitevox voices name their language; flite finds it in this list */
    flite_add_lang("eng", usenglish_init, cmulex_init);
    flite_add_lang("usenglish", usenglish_init, cmulex_init);

    return 0;
}


static int
pg_tts_probe_rate(cst_voice *voice)
{
    int             rate;
    cst_wave       *w;
    cst_utterance  *u;

    /* the rate is a property of the voice's database, not a feature:
     * the simplest portable way to learn it is to say one word */

    u = flite_synth_text("a", voice);
    if (u == NULL) {
        return -1;
    }

    w = utt_wave(u);
    rate = w ? w->sample_rate : -1;
    delete_utterance(u);

    return rate;
}


int
pg_tts_voice_load(pg_voice_t *v, const char *source, char *err,
    size_t errlen)
{
    FILE              *f;
    cst_voice         *voice;
    pg_tts_builtin_t  *b;

    voice = NULL;

    if (strncmp(source, "builtin:", 8) == 0) {
        for (b = pg_tts_builtins; b->name; b++) {
            if (strcmp(b->name, source + 8) == 0) {
                voice = b->reg(NULL);
                break;
            }
        }

        if (b->name == NULL) {
            snprintf(err, errlen, "unknown built-in voice \"%s\" "
                     "(built in: slt, rms, awb, kal, kal16)", source + 8);
            return -1;
        }

        v->builtin = 1;

    } else {
        /* flite_voice_load() on a missing file reports through flite's
         * error path; check first to give a clear message */

        f = fopen(source, "rb");
        if (f == NULL) {
            snprintf(err, errlen, "cannot open voice file \"%s\"", source);
            return -1;
        }

        fclose(f);

        voice = flite_voice_load(source);
        v->builtin = 0;
    }

    if (voice == NULL) {
        snprintf(err, errlen, "cannot load voice \"%s\"", source);
        return -1;
    }

    v->voice = voice;
    v->source = source;
    v->rate = pg_tts_probe_rate(voice);

    if (v->rate <= 0) {
        snprintf(err, errlen, "voice \"%s\" produced no audio", source);
        return -1;
    }

    return 0;
}


int
pg_tts_synth(pg_voice_t *v, const char *text, double speed, pg_pcm_t *pcm)
{
    cst_wave       *w;
    cst_utterance  *u;

    pcm->samples = NULL;
    pcm->nsamples = 0;
    pcm->rate = v->rate;

    u = new_utterance();
    if (u == NULL) {
        return -1;
    }

    utt_set_input_text(u, text);

    /* speed is set on the utterance: the voice is shared by threads */

    if (speed != 1.0) {
        feat_set_float(u->features, "duration_stretch", (float) (1.0 / speed));
    }

    u = flite_do_synth(u, v->voice, utt_synth);
    if (u == NULL) {
        return -1;
    }

    w = utt_wave(u);

    if (w && w->num_samples > 0) {
        pcm->samples = malloc(w->num_samples * sizeof(int16_t));
        if (pcm->samples == NULL) {
            delete_utterance(u);
            return -1;
        }

        memcpy(pcm->samples, w->samples, w->num_samples * sizeof(int16_t));
        pcm->nsamples = w->num_samples;
        pcm->rate = w->sample_rate;
    }

    delete_utterance(u);

    return 0;
}


void
pg_pcm_free(pg_pcm_t *pcm)
{
    free(pcm->samples);
    pcm->samples = NULL;
    pcm->nsamples = 0;
}


const char *
pg_tts_version(void)
{
    return FLITE_PROJECT_VERSION;
}
