/*
 * podgen core: flite voices and synthesis.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* dl_iterate_phdr() */
#endif

#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

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


/*
 * flite's clustergen voices (slt, rms, awb) draw from libc rand() while
 * synthesizing.  glibc's rand() takes a process-wide lock on every call,
 * which costs a quarter of the speed when two threads synthesize at once,
 * and its shared state makes the same text sound slightly different from
 * one call to the next.
 *
 * So libflite's import of rand() is pointed at a generator with per-thread
 * state, seeded from the text before each synthesis: threads no longer
 * contend, and the same sentence gives the same samples in every thread,
 * worker and node.  The import is a GOT slot (libflite is linked with
 * BIND_NOW, so the slot is resolved at load and protected by RELRO: it is
 * unprotected for the write).  If anything is not as expected, nothing is
 * changed and flite keeps libc's rand().
 */

static __thread uint32_t  pg_tts_rand_state = 0x9e3779b9;
static int                pg_tts_rand_hooked;


static int
pg_tts_rand(void)
{
    uint32_t  x;

    /* xorshift32: RAND_MAX is 2^31 - 1, so drop one bit */

    x = pg_tts_rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pg_tts_rand_state = x;

    return (int) (x >> 1);
}


static void
pg_tts_seed(const char *text, double speed, const char *voice)
{
    uint32_t        h;
    const uint8_t  *p;

    /* FNV-1a over what determines the sound */

    h = 2166136261u;

    for (p = (const uint8_t *) text; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }

    for (p = (const uint8_t *) voice; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }

    h ^= (uint32_t) (speed * 1000);

    pg_tts_rand_state = h ? h : 1;
}


static int
pg_tts_patch_rand(struct dl_phdr_info *info, size_t size, void *data)
{
    int                 *patched = data;
    char                *name;
    void               **slot;
    size_t               i, n, pagesize;
    uintptr_t            page;
    const char          *strtab;
    Elf64_Sym           *symtab;
    Elf64_Dyn           *dyn;
    Elf64_Rela          *rela;
    const ElfW(Phdr)    *ph;

    if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libflite.so")
                                   == NULL)
    {
        return 0;
    }

    dyn = NULL;

    for (i = 0; i < info->dlpi_phnum; i++) {
        ph = &info->dlpi_phdr[i];

        if (ph->p_type == PT_DYNAMIC) {
            dyn = (Elf64_Dyn *) (info->dlpi_addr + ph->p_vaddr);
        }
    }

    if (dyn == NULL) {
        return 0;
    }

    strtab = NULL;
    symtab = NULL;
    rela = NULL;
    n = 0;

    /* ld.so has relocated these d_ptr values in place on x86-64/glibc;
     * be safe on loaders that do not */

#define pg_dyn_ptr(d)                                                        \
    ((d)->d_un.d_ptr < info->dlpi_addr ? info->dlpi_addr + (d)->d_un.d_ptr   \
                                       : (d)->d_un.d_ptr)

    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_STRTAB:
            strtab = (const char *) pg_dyn_ptr(dyn);
            break;
        case DT_SYMTAB:
            symtab = (Elf64_Sym *) pg_dyn_ptr(dyn);
            break;
        case DT_JMPREL:
            rela = (Elf64_Rela *) pg_dyn_ptr(dyn);
            break;
        case DT_PLTRELSZ:
            n = dyn->d_un.d_val / sizeof(Elf64_Rela);
            break;
        }
    }

    if (strtab == NULL || symtab == NULL || rela == NULL) {
        return 0;
    }

    pagesize = (size_t) sysconf(_SC_PAGESIZE);

    for (i = 0; i < n; i++) {
        if (ELF64_R_TYPE(rela[i].r_info) != R_X86_64_JUMP_SLOT) {
            continue;
        }

        name = (char *) strtab + symtab[ELF64_R_SYM(rela[i].r_info)].st_name;

        if (strcmp(name, "rand") != 0) {
            continue;
        }

        slot = (void **) (info->dlpi_addr + rela[i].r_offset);
        page = (uintptr_t) slot & ~(pagesize - 1);

        if (mprotect((void *) page, pagesize, PROT_READ | PROT_WRITE) != 0) {
            return 1;
        }

        *slot = (void *) pg_tts_rand;

        /* back to read-only: the slot lies in the RELRO segment */
        (void) mprotect((void *) page, pagesize, PROT_READ);

        *patched = 1;
        return 1;
    }

    return 1;
}


/* 1 when flite draws from podgen's per-thread generator. */

int
pg_tts_deterministic(void)
{
    return pg_tts_rand_hooked;
}


int
pg_tts_init(void)
{
    int  patched;

    flite_init();

#if defined(__x86_64__) && defined(__linux__)
    if (!pg_tts_rand_hooked) {
        patched = 0;
        dl_iterate_phdr(pg_tts_patch_rand, &patched);
        pg_tts_rand_hooked = patched;
    }
#else
    (void) patched;
#endif

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


/*
 * flite reports a bad voice file through cst_error(), which exits the
 * process: look at the file's header before flite does.
 */

int
pg_tts_voice_file_check(const char *path, char *err, size_t errlen)
{
    char         head[32];
    FILE        *f;
    size_t       n;
    const char  *magic = "CMU_FLITE_CG_VOXDATA-v2.0";

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open voice file \"%s\"", path);
        return -1;
    }

    n = fread(head, 1, strlen(magic), f);
    fclose(f);

    if (n != strlen(magic) || memcmp(head, magic, n) != 0) {
        snprintf(err, errlen, "\"%s\" is not a flite clustergen voice "
                 "(.flitevox) file", path);
        return -1;
    }

    return 0;
}


int
pg_tts_voice_load(pg_voice_t *v, const char *source, char *err,
    size_t errlen)
{
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

        if (pg_tts_voice_file_check(source, err, errlen) != 0) {
            return -1;
        }

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
    return pg_tts_synth_words(v, text, speed, pcm, NULL);
}


/*
 * The words of an utterance: each token of the Token relation that has
 * words is one word here, timed from the end of the phone before its first
 * word's first phone to the end of its last word's last phone (flite's
 * Segment ends, in seconds of the wave, duration_stretch included).
 */

static int
pg_tts_words(cst_utterance *u, int rate, size_t nsamples, pg_words_t *ws)
{
    char         word[PG_WORD_MAX_LEN + 1];
    size_t       n, m;
    double       s, e, last;
    uint32_t     a, b;
    cst_item    *t, *w1, *wn;
    const char  *pre, *name, *punc;

    last = 0;

    for (t = relation_head(utt_relation(u, "Token")); t; t = item_next(t)) {
        w1 = item_daughter(t);
        wn = item_last_daughter(t);

        if (w1 == NULL || wn == NULL) {
            continue;
        }

        s = ffeature_float(w1,
                   "R:SylStructure.daughter1.daughter1.R:Segment.p.end");
        e = ffeature_float(wn,
                   "R:SylStructure.daughtern.daughtern.R:Segment.end");

        if (e <= 0) {
            continue;               /* a word without phones */
        }

        if (s < last) {
            s = last;
        }

        if (e < s) {
            e = s;
        }

        last = e;

        pre = item_feat_present(t, "prepunctuation")
              ? item_feat_string(t, "prepunctuation") : "";
        name = item_feat_string(t, "name");
        punc = item_feat_present(t, "punc") ? item_feat_string(t, "punc")
                                            : "";

        n = 0;

        for (m = 0; pre[m] && n < PG_WORD_MAX_LEN; m++) {
            word[n++] = pre[m];
        }

        for (m = 0; name[m] && n < PG_WORD_MAX_LEN; m++) {
            word[n++] = name[m];
        }

        for (m = 0; punc[m] && n < PG_WORD_MAX_LEN; m++) {
            word[n++] = punc[m];
        }

        if (n == 0) {
            continue;
        }

        a = (uint32_t) (s * rate + 0.5);
        b = (uint32_t) (e * rate + 0.5);

        if (a > nsamples) {
            a = nsamples;
        }

        if (b > nsamples) {
            b = nsamples;
        }

        if (pg_words_add(ws, word, n, a, b) != 0) {
            return -1;
        }
    }

    return 0;
}


int
pg_tts_synth_words(pg_voice_t *v, const char *text, double speed,
    pg_pcm_t *pcm, pg_words_t *words)
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

    pg_tts_seed(text, speed, v->name);

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

        if (words
            && pg_tts_words(u, pcm->rate, pcm->nsamples, words) != 0)
        {
            pg_pcm_free(pcm);
            delete_utterance(u);
            return -1;
        }
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


/* ---- word timings ------------------------------------------------------ */


int
pg_words_add(pg_words_t *ws, const char *text, size_t len, uint32_t start,
    uint32_t end)
{
    char       *t;
    size_t      cap;
    pg_word_t  *w;

    if (len > PG_WORD_MAX_LEN) {
        len = PG_WORD_MAX_LEN;

        /* not in the middle of a UTF-8 sequence */
        while (len > 0 && ((unsigned char) text[len] & 0xc0) == 0x80) {
            len--;
        }
    }

    if (ws->n == ws->cap) {
        cap = ws->cap ? 2 * ws->cap : 32;
        w = realloc(ws->words, cap * sizeof(pg_word_t));
        if (w == NULL) {
            return -1;
        }

        ws->words = w;
        ws->cap = cap;
    }

    if (ws->text_len + len > ws->text_cap) {
        cap = ws->text_cap ? 2 * ws->text_cap : 256;

        while (cap < ws->text_len + len) {
            cap *= 2;
        }

        t = realloc(ws->text, cap);
        if (t == NULL) {
            return -1;
        }

        ws->text = t;
        ws->text_cap = cap;
    }

    w = &ws->words[ws->n++];
    w->start = start;
    w->end = end < start ? start : end;
    w->off = (uint32_t) ws->text_len;
    w->len = (uint32_t) len;

    memcpy(ws->text + ws->text_len, text, len);
    ws->text_len += len;

    return 0;
}


int
pg_words_append(pg_words_t *dst, const pg_words_t *src, uint32_t offset)
{
    size_t      i, n, tl;
    pg_word_t  *w;

    n = dst->n;
    tl = dst->text_len;

    for (i = 0; i < src->n; i++) {
        w = &src->words[i];

        if (pg_words_add(dst, src->text + w->off, w->len, w->start + offset,
                         w->end + offset)
            != 0)
        {
            dst->n = n;
            dst->text_len = tl;
            return -1;
        }
    }

    return 0;
}


void
pg_words_free(pg_words_t *ws)
{
    free(ws->words);
    free(ws->text);
    memset(ws, 0, sizeof(pg_words_t));
}


static void
pg_tts_put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static uint32_t
pg_tts_get_le32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}


int
pg_wav_words_add(pg_buf_t *wav, const pg_words_t *ws)
{
    size_t          i, size, start;
    unsigned char   rec[9];
    pg_word_t      *w;

    if (ws == NULL || ws->n == 0) {
        return 0;
    }

    if (wav->len < 12 || memcmp(wav->data, "RIFF", 4) != 0) {
        return -1;
    }

    for (i = 0, size = 0; i < ws->n; i++) {
        size += 9 + ws->words[i].len;
    }

    if (wav->len + size + 9 > 0xfffffff0u) {
        return -1;
    }

    start = wav->len;

    memcpy(rec, "pgwt", 4);
    pg_tts_put_le32(rec + 4, (uint32_t) size);

    if (pg_buf_append(wav, rec, 8) != 0) {
        return -1;
    }

    for (i = 0; i < ws->n; i++) {
        w = &ws->words[i];

        pg_tts_put_le32(rec, w->start);
        pg_tts_put_le32(rec + 4, w->end);
        rec[8] = (unsigned char) w->len;

        if (pg_buf_append(wav, rec, 9) != 0
            || pg_buf_append(wav, ws->text + w->off, w->len) != 0)
        {
            wav->len = start;
            return -1;
        }
    }

    if (size % 2 && pg_buf_append(wav, "", 1) != 0) {
        wav->len = start;
        return -1;
    }

    pg_tts_put_le32((unsigned char *) wav->data + 4,
                    (uint32_t) (wav->len - 8));

    return 0;
}


int
pg_wav_words(const unsigned char *wav, size_t len, pg_words_t *ws,
    int *rate)
{
    size_t                off, size, left, k, n;
    uint32_t              a, b, r;
    const unsigned char  *p;

    r = 0;

    if (wav == NULL || len < 12
        || memcmp(wav, "RIFF", 4) != 0 || memcmp(wav + 8, "WAVE", 4) != 0)
    {
        return -1;
    }

    off = 12;

    while (len - off >= 8) {
        p = wav + off;
        size = pg_tts_get_le32(p + 4);
        left = len - off - 8;

        if (size > left) {
            /* a streamed file's data placeholder: no chunk after it */
            return memcmp(p, "data", 4) == 0 ? 0 : -1;
        }

        if (memcmp(p, "fmt ", 4) == 0 && size >= 16) {
            r = pg_tts_get_le32(p + 12);

        } else if (memcmp(p, "pgwt", 4) == 0) {

            if (r == 0 || r > 192000) {
                return -1;
            }

            for (k = 0; k < size; k += 9 + n) {
                if (size - k < 9) {
                    return -1;
                }

                a = pg_tts_get_le32(p + 8 + k);
                b = pg_tts_get_le32(p + 8 + k + 4);
                n = p[8 + k + 8];

                if (n == 0 || n > size - k - 9 || b < a) {
                    return -1;
                }

                if (pg_words_add(ws, (const char *) p + 8 + k + 9, n, a, b)
                    != 0)
                {
                    return -1;
                }
            }

            *rate = (int) r;
            return 0;
        }

        size += size & 1;

        if (size >= left) {
            break;
        }

        off += 8 + size;
    }

    return 0;
}


int
pg_tts_speaks(const char *tag, size_t len)
{
    /* the primary subtag: "en", then nothing or a dash */

    return len >= 2 && (tag[0] == 'e' || tag[0] == 'E')
           && (tag[1] == 'n' || tag[1] == 'N')
           && (len == 2 || tag[2] == '-');
}


const char *
pg_tts_version(void)
{
    return FLITE_PROJECT_VERSION;
}
