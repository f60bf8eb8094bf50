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
