/*
 * podgen core: the state of the built-in script generator, shared by its
 * analysis of the source (pg_analysis.c), its dialogue (pg_dialogue.c) and
 * its entry point pg_script_generate() (pg_script.c); not an API.
 */

#ifndef PG_GEN_H
#define PG_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "pg_buf.h"
#include "pg_script.h"


#define PG_SCRIPT_KEY_TERMS      4      /* words named in a recap */


/* A word of the source, lower case and lightly stemmed. */
typedef struct {
    uint32_t     hash;
    uint32_t     len;
    size_t       str;           /* the key, in g->arena */
    uint32_t     df;            /* sentences that contain it */
    uint32_t     tf;            /* occurrences in the whole source */
    uint32_t     last;          /* the last sentence that counted it, + 1 */
    uint32_t     surface_len;
    size_t       surface;       /* how it is written, in g->text */
    double       weight;        /* in a sentence's score */
    double       salience;      /* as a word to name in the framing */
    unsigned     inner:1;       /* the surface is not sentence-initial */
    unsigned     focus:1;
    unsigned     topic:1;
    unsigned     noun:1;        /* seen as the head after "the", "a",
                                   "their"...: a thing to ask about */
    unsigned     led:1;         /* seen right after a determiner */
    unsigned     cues:4;        /* PG_CUE_* of the word */
} pg_term_t;


typedef struct {
    size_t       off;           /* in g->text */
    size_t       len;
    uint32_t     nwords;
    uint32_t     first;         /* its distinct terms, sorted: */
    uint32_t     nterms;        /*   g->ids[first .. first + nterms) */
    double       score;
    unsigned     open:1;        /* no . ! ? at the end: a cut piece */
    unsigned     anaphora:1;    /* starts with "he", "this", ...: out of
                                   context, it is unclear who or what */
    uint32_t     section;       /* g->sections index + 1, 0: none */
    unsigned     stance:1;      /* contrast or a side taken: "but",
                                   "critics", "argued" */
    unsigned     claim:1;       /* a number, a superlative, a prediction */
    unsigned     personal:1;    /* first person: "I", "we", "my" */
    unsigned     definition:1;  /* "X is a ...", "refers to", "means" */
} pg_sentence_t;


typedef struct {
    double       score;
    uint32_t     index;
} pg_rank_t;


/* A content turn: picked sentences g->picked[first .. first + n). */
typedef struct {
    uint32_t     first;
    uint32_t     n;
} pg_unit_t;


typedef struct {
    const pg_script_request_t  *req;
    const pg_host_t            *hosts;
    size_t                      nhosts;
    size_t                      target;

    char                       *text;       /* the normalized source */
    char                       *source_title;   /* the source's heading */
    pg_script_section_t        *sections;   /* its titled sections */
    size_t                      nsections;
    size_t                      text_len;

    pg_sentence_t              *sents;
    size_t                      nsents;

    uint32_t                   *ids;
    size_t                      nids;
    size_t                      ids_cap;

    pg_term_t                  *terms;
    size_t                      nterms;
    size_t                      terms_cap;
    uint32_t                   *slots;      /* term index + 1, 0: empty */
    size_t                      nslots;
    char                       *arena;
    size_t                      arena_len;
    size_t                      arena_cap;

    pg_rank_t                  *ranks;
    size_t                      nranks;

    uint32_t                   *picked;     /* sentence indexes, in order */
    size_t                      npicked;
    size_t                      picked_words;
    size_t                      dup_work;   /* terms compared */
    pg_unit_t                  *units;
    size_t                      nunits;

    char                       *title;
    char                       *subject;    /* the topic, or what it is */
    char                       *focus;
    uint32_t                    key_terms[PG_SCRIPT_KEY_TERMS];
    size_t                      nkey_terms;
    uint32_t                    seed;       /* varies the phrasing */
    struct {
        const char            **table;
        unsigned                next;
    }                           picks[32];  /* each phrase table's turn */
    size_t                      npicks;
    uint32_t                    asked[4];   /* terms asked about lately */
    size_t                      nasked;
    size_t                      nstance;    /* sentences that take sides */

    /* the script being built */
    pg_segment_t               *segs;
    size_t                      nsegs;
    size_t                      segs_cap;
    size_t                      last;       /* the last speaker */
    pg_buf_t                    line;       /* the turn being written */
    pg_buf_t                    tmp;
    pg_buf_t                    term;       /* a unit's term, to ask about */
    pg_buf_t                    tmp2;       /* a section's title */
    char                       *chapter;    /* for the next segment */

    unsigned                    personal:1; /* the last quote was in the
                                               first person */
    unsigned                    compact:1;  /* short framing: a small
                                               target */
    unsigned                    failed:1;   /* out of memory */
} pg_gen_t;


/* pg_analysis.c */

int pg_gen_analyze(pg_gen_t *g);
int pg_gen_describe(pg_gen_t *g);
int pg_gen_fit(pg_gen_t *g, pg_script_t *script);
void pg_gen_group(pg_gen_t *g);
void pg_gen_offer(pg_gen_t *g, uint32_t id, int common, uint32_t *top,
    size_t *ntop, size_t k);
int pg_gen_terms_text(pg_gen_t *g, const uint32_t *ids, size_t n,
    pg_buf_t *b);
int pg_gen_phrase_of(pg_gen_t *g, const pg_sentence_t *s, uint32_t id,
    pg_buf_t *b);

/* pg_dialogue.c */

int pg_gen_build(pg_gen_t *g, pg_script_t *script);

#endif /* PG_GEN_H */
