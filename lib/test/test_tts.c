/*
 * flite voices shared by concurrent threads (festvox/flite issue 109 says
 * it is undocumented).  podgen loads each voice once per worker and lets
 * every synthesis thread use it, setting per-request options only on the
 * utterance.  This test hammers that from several threads, with all
 * built-in voices at once, and checks every result against a
 * single-threaded reference.  It runs under ASan/UBSan (make unit-asan)
 * and under helgrind (make helgrind).
 *
 * flite's clustergen voices call rand(); pg_tts points libflite's rand()
 * at a per-thread generator seeded from the text, so every result must be
 * byte-identical to the single-threaded reference.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "pg_audio.h"
#include "pg_text.h"
#include "pg_tts.h"
#include "unit.h"


#define NVOICES   5
#define NTEXTS    3

static pg_voice_t   voices[NVOICES];
static size_t       reference[NVOICES][NTEXTS];
static uint64_t     checksum[NVOICES][NTEXTS];
static int          iterations = 2;

static const char  *texts[NTEXTS] = {
    "The quick brown fox jumps over the lazy dog.",
    "Podcasts are made of voices, pauses, and the occasional number like "
    "3.14 or 1999.",
    "Hello!",
};


typedef struct {
    int     id;
    int     failures;
    int     runs;
} worker_t;


static uint64_t
sum_samples(pg_pcm_t *pcm)
{
    size_t    i;
    uint64_t  h;

    h = 1469598103934665603ull;

    for (i = 0; i < pcm->nsamples; i++) {
        h = (h ^ (uint16_t) pcm->samples[i]) * 1099511628211ull;
    }

    return h;
}


static int
close_enough(size_t got, size_t want)
{
    double  r;

    if (want == 0) {
        return got == 0;
    }

    r = (double) got / (double) want;

    return r > 0.85 && r < 1.15;
}


static void *
worker(void *data)
{
    int        i, v, t;
    pg_pcm_t   pcm;
    worker_t  *w = data;

    for (i = 0; i < iterations; i++) {
        for (v = 0; v < NVOICES; v++) {
            /* threads walk the voices in different orders */
            int  vv = (v + w->id) % NVOICES;

            for (t = 0; t < NTEXTS; t++) {
                if (pg_tts_synth(&voices[vv], texts[t], 1.0, &pcm) != 0
                    || pcm.nsamples != reference[vv][t]
                    || sum_samples(&pcm) != checksum[vv][t])
                {
                    w->failures++;
                }

                w->runs++;
                pg_pcm_free(&pcm);
            }
        }
    }

    return NULL;
}


static long long
pg_get_riff_size(const unsigned char *p)
{
    return (long long) p[4] | (long long) p[5] << 8 | (long long) p[6] << 16
           | (long long) p[7] << 24;
}


/* the last 10 ms window of pcm whose RMS is over -40 dBFS */

static double
audible_end(const pg_pcm_t *pcm)
{
    size_t  i, k, win;
    double  e;

    win = pcm->rate / 100;

    for (i = pcm->nsamples; i >= win; i -= win) {
        for (k = i - win, e = 0; k < i; k++) {
            e += (double) pcm->samples[k] * pcm->samples[k];
        }

        if (e / win > 300.0 * 300.0) {
            return (double) i / pcm->rate;
        }
    }

    return 0;
}


static void
test_words(void)
{
    int             v, rate, mono, inside;
    char            word[PG_WORD_MAX_LEN + 1];
    size_t          i;
    double          end, last;
    pg_buf_t        wav;
    pg_pcm_t        pcm;
    pg_enc_t       *enc;
    pg_words_t      ws, back;
    const char     *text = "Hello, world! It costs $20 in 2024.";

    for (v = 0; v < NVOICES; v++) {
        memset(&ws, 0, sizeof(ws));

        ok(pg_tts_synth_words(&voices[v], text, 1.0, &pcm, &ws) == 0
           && ws.n == 7, "%s: 7 words timed (%zu)", pg_tts_builtin_names[v], ws.n);

        mono = 1;
        inside = 1;

        for (i = 0; i < ws.n; i++) {
            mono = mono && ws.words[i].end >= ws.words[i].start
                   && (i == 0 || ws.words[i].start >= ws.words[i - 1].end);
            inside = inside && ws.words[i].end <= pcm.nsamples;
        }

        ok(mono && inside && ws.n && ws.words[0].start > 0,
           "%s: words in order, each within the audio", pg_tts_builtin_names[v]);

        end = ws.n ? (double) ws.words[ws.n - 1].end / pcm.rate : 0;
        last = audible_end(&pcm);

        ok(end - last < 0.05 && last - end < 0.05,
           "%s: the last word ends %.3f s, the audio is heard until %.3f s",
           pg_tts_builtin_names[v], end, last);

        if (v == 0) {
            snprintf(word, sizeof(word), "%.*s", (int) ws.words[0].len,
                     ws.text + ws.words[0].off);
            is_str(word, "Hello,", "a word keeps its punctuation");
            snprintf(word, sizeof(word), "%.*s", (int) ws.words[4].len,
                     ws.text + ws.words[4].off);
            is_str(word, "$20", "a word is written as in the text");
        }

        /* the WAV artifact carries them */

        memset(&wav, 0, sizeof(wav));
        memset(&back, 0, sizeof(back));
        enc = pg_enc_create_whole(PG_FMT_WAV, pcm.rate, &wav);
        pg_enc_write(enc, pcm.samples, pcm.nsamples, &wav);
        pg_enc_finish(enc, &wav);
        pg_enc_destroy(enc);
        pg_wav_fix_sizes(wav.data, wav.len);

        ok(pg_wav_words_add(&wav, &ws) == 0
           && pg_wav_words(wav.data, wav.len, &back, &rate) == 0
           && rate == pcm.rate && back.n == ws.n
           && memcmp(back.words, ws.words, ws.n * sizeof(pg_word_t)) == 0
           && back.text_len == ws.text_len
           && memcmp(back.text, ws.text, ws.text_len) == 0,
           "%s: word timings read back from the WAV file", pg_tts_builtin_names[v]);

        is_int(pg_get_riff_size(wav.data), wav.len - 8,
               "the RIFF size covers the chunk");

        if (v == 0) {
            pg_words_free(&back);

            /* a chunk cut short is refused, never read past */
            ok(pg_wav_words(wav.data, wav.len - 3, &back, &rate) == -1,
               "a truncated word chunk is refused");
            pg_words_free(&back);

            /* the first record's length byte */
            wav.data[44 + pcm.nsamples * 2 + 8 + 8] = 255;
            ok(pg_wav_words(wav.data, wav.len, &back, &rate) == -1,
               "a word longer than its chunk is refused");
        }

        pg_words_free(&back);
        pg_buf_free(&wav);
        pg_words_free(&ws);
        pg_pcm_free(&pcm);
    }

    memset(&ws, 0, sizeof(ws));
    pg_tts_synth_words(&voices[0], text, 2.0, &pcm, &ws);
    end = ws.n ? (double) ws.words[ws.n - 1].end / pcm.rate : 0;
    last = audible_end(&pcm);
    ok(ws.n == 7 && end - last < 0.05 && last - end < 0.05,
       "at speed 2 the words follow the audio (%.3f vs %.3f s)", end, last);
    pg_words_free(&ws);
    pg_pcm_free(&pcm);
}


int
main(int argc, char **argv)
{
    int         i, t, nthreads, failures, runs;
    char        err[256], source[64];
    pg_pcm_t    pcm, slow, fast;
    pthread_t   tid[8];
    worker_t    w[8];

    nthreads = 4;

    if (getenv("PG_TTS_STRESS_ITER")) {
        iterations = atoi(getenv("PG_TTS_STRESS_ITER"));
    }

    ok(pg_tts_init() == 0, "flite initialized");

    for (i = 0; i < NVOICES; i++) {
        snprintf(source, sizeof(source), "builtin:%s",
                 pg_tts_builtin_names[i]);
        ok(pg_tts_voice_load(&voices[i], source, err, sizeof(err)) == 0,
           "voice %s loads (%d Hz)", pg_tts_builtin_names[i],
           voices[i].rate);
    }

    is_int(voices[3].rate, 8000, "kal speaks at 8 kHz");
    is_int(voices[0].rate, 16000, "slt speaks at 16 kHz");

    ok(pg_tts_voice_load(&voices[0], "builtin:nope", err, sizeof(err)) != 0,
       "an unknown built-in voice is refused: %s", err);
    ok(pg_tts_voice_load(&voices[0], "/nonexistent.flitevox", err,
                         sizeof(err)) != 0,
       "a missing voice file is refused: %s", err);
    pg_tts_voice_load(&voices[0], "builtin:slt", err, sizeof(err));

    for (i = 0; i < NVOICES; i++) {
        for (t = 0; t < NTEXTS; t++) {
            pg_tts_synth(&voices[i], texts[t], 1.0, &pcm);
            reference[i][t] = pcm.nsamples;
            checksum[i][t] = sum_samples(&pcm);
            pg_pcm_free(&pcm);
        }
    }

    ok(reference[0][0] > 16000, "slt says the fox sentence in > 1 s");

    ok(pg_tts_deterministic(), "libflite's rand() is podgen's generator");

    pg_tts_synth(&voices[0], texts[1], 1.0, &pcm);
    ok(pcm.nsamples == reference[0][1] && sum_samples(&pcm) == checksum[0][1],
       "slt: the same text twice gives the same samples");
    pg_pcm_free(&pcm);

    /* the process's own rand() is still libc's */
    srand(1);
    is_int(rand(), 1804289383, "libc rand() untouched outside libflite");

    /* speed is per utterance: the shared voice is not touched */

    pg_tts_synth(&voices[0], texts[0], 2.0, &fast);
    pg_tts_synth(&voices[0], texts[0], 0.5, &slow);
    pg_tts_synth(&voices[0], texts[0], 1.0, &pcm);

    ok(fast.nsamples < pcm.nsamples * 0.65 && fast.nsamples
       > pcm.nsamples * 0.35, "speed 2.0 halves the duration (%zu vs %zu)",
       fast.nsamples, pcm.nsamples);
    ok(slow.nsamples > pcm.nsamples * 1.6, "speed 0.5 doubles it (%zu)",
       slow.nsamples);
    ok(close_enough(pcm.nsamples, reference[0][0]),
       "speed 1.0 after that is unchanged: the voice was not modified");

    pg_pcm_free(&fast);
    pg_pcm_free(&slow);
    pg_pcm_free(&pcm);

    test_words();

    for (i = 0; i < nthreads; i++) {
        w[i].id = i;
        w[i].failures = 0;
        w[i].runs = 0;
        pthread_create(&tid[i], NULL, worker, &w[i]);
    }

    failures = 0;
    runs = 0;

    for (i = 0; i < nthreads; i++) {
        pthread_join(tid[i], NULL);
        failures += w[i].failures;
        runs += w[i].runs;
    }

    is_int(failures, 0, "%d threads, %d syntheses on shared voices, all "
           "identical to the single-threaded results", nthreads, runs);

    return done_testing();
}
