/*
 * podgen core: the built-in generator's analysis of the source text:
 * sentences, words and terms (stop words, light stemming, a hash table),
 * TF-IDF scores and the ranking, what the script is about (title,
 * subject, seed of the phrasing), the selection of sentences without near
 * duplicates, their grouping into turns, and fitting the script to the
 * word budget.
 *
 * Analysis is linear in the source apart from sorting the sentences by
 * score; the dialogue is then built a few times, from at most a few
 * hundred sentences, until its length meets the word budget.
 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pg_buf.h"
#include "pg_gen.h"
#include "pg_script.h"
#include "pg_script_int.h"
#include "pg_text.h"


#define PG_SCRIPT_SENTENCE_MAX   480    /* bytes; longer sentences are cut */
#define PG_SCRIPT_TERM_MAX       32     /* longer tokens are not terms */
#define PG_SCRIPT_SURFACE_MAX    24     /* a word quoted in the framing */
#define PG_SCRIPT_UNIT_WORDS     50     /* words of one content turn */
#define PG_SCRIPT_ROUNDS         6      /* attempts at the word budget */
#define PG_SCRIPT_DUP_WORK       20000000  /* terms compared in a selection */


static int pg_gen_sentence(pg_gen_t *g, size_t si, const pg_span_t *span);
static size_t pg_gen_join_quotes(pg_gen_t *g, pg_span_t *spans, size_t n);
static size_t pg_gen_token(const char *s, size_t len, size_t *pos,
    size_t *start);
static size_t pg_gen_key(const char *tok, size_t n, char *key);
static int pg_gen_stop_word(const char *key);
static int pg_gen_anaphora(const char *tok, size_t n);
static int pg_gen_determiner(const char *tok, size_t n);
static int pg_gen_conjunction(const char *tok, size_t n);
static unsigned pg_gen_cue_flags(const char *tok, size_t n);
static void pg_gen_cues(pg_sentence_t *sent, unsigned flags);
static void pg_gen_defines(pg_sentence_t *sent, const char *tok, size_t n,
    size_t word, size_t *be);
static uint32_t pg_gen_hash(const char *s, size_t n, uint32_t h);
static int pg_gen_cmp_id(const void *a, const void *b);
static int pg_gen_cmp_stop(const void *a, const void *b);
static int pg_gen_cmp_rank(const void *a, const void *b);
static long pg_gen_term(pg_gen_t *g, const char *key, size_t n, int insert);
static int pg_gen_grow_slots(pg_gen_t *g);
static size_t pg_gen_mark(pg_gen_t *g, const char *s, int focus);
static void pg_gen_score(pg_gen_t *g, size_t nfocus, size_t ntopic);
static int pg_gen_rank(pg_gen_t *g);
static int pg_gen_near_duplicate(pg_gen_t *g, const pg_sentence_t *a,
    const pg_sentence_t *b);
static void pg_gen_select(pg_gen_t *g, size_t budget);
static int pg_gen_picked(pg_gen_t *g, uint32_t index);


/* English function words, sorted (C locale) for bsearch() */
static const char  *pg_stop_words[] = {
    "a", "about", "above", "after", "again", "against", "all", "almost",
    "also", "although", "always", "am", "among", "an", "and", "another",
    "any", "anyone", "anything", "are", "around", "as", "at", "away",
    "back", "be", "became", "because", "become", "becomes", "been",
    "before", "being", "below", "between", "both", "but", "by", "can",
    "cannot", "could", "did", "do", "does", "doing", "done", "down",
    "during", "each", "either", "else", "enough", "even", "ever", "every",
    "everyone", "everything", "few", "for", "from", "further", "get",
    "gets", "getting", "give", "given", "go", "goes", "going", "got",
    "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "however", "i", "if", "in", "into",
    "is", "it", "its", "itself", "just", "keep", "kind", "know", "last",
    "least", "less", "let", "like", "made", "make", "makes", "many", "may",
    "maybe", "me", "might", "mine", "more", "most", "mostly", "much",
    "must", "my", "myself", "near", "need", "never", "new", "next", "no",
    "nor", "not", "nothing", "now", "of", "off", "often", "on", "once",
    "one", "ones", "only", "onto", "or", "other", "others", "otherwise",
    "our", "ours", "ourselves", "out", "over", "own", "per", "perhaps",
    "put", "quite", "rather", "really", "said", "same", "say", "says",
    "see", "seem", "seemed", "seems", "several", "shall", "she", "should",
    "since", "so", "some", "someone", "something", "sometimes", "still",
    "such", "take", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "therefore", "these", "they", "thing",
    "things", "this", "those", "though", "through", "thus", "to",
    "together", "too", "toward", "towards", "under", "until", "up", "upon",
    "us", "use", "used", "uses", "using", "very", "via", "was", "way", "we",
    "well", "were", "what", "whatever", "when", "whenever", "where",
    "whether", "which", "while", "who", "whoever", "whole", "whom", "whose",
    "why", "will", "with", "within", "without", "would", "yet", "you",
    "your", "yours", "yourself", "yourselves"
};


int
pg_gen_analyze(pg_gen_t *g)
{
    long        n;
    size_t      i, nfocus, ntopic, paragraph, pos, sec;
    pg_span_t  *spans;
    const char  *src;

    src = g->req->source_text ? g->req->source_text : "";

    g->text = pg_text_normalize(src, strlen(src), &g->text_len);
    if (g->text == NULL) {
        return -1;
    }

    n = pg_text_split(g->text, g->text_len, PG_SCRIPT_SENTENCE_MAX, 0,
                      &spans);
    if (n < 0) {
        return -1;
    }

    n = (long) pg_gen_join_quotes(g, spans, (size_t) n);

    g->nslots = 1024;
    g->slots = calloc(g->nslots, sizeof(uint32_t));
    g->sents = calloc(n ? (size_t) n : 1, sizeof(pg_sentence_t));

    if (g->slots == NULL || g->sents == NULL) {
        free(spans);
        return -1;
    }

    paragraph = 0;
    pos = 0;
    sec = 0;

    for (i = 0; i < (size_t) n; i++) {
        if (pg_gen_sentence(g, i, &spans[i]) != 0) {
            free(spans);
            return -1;
        }

        /* the document's section it is in: paragraphs counted so far */

        for ( /* void */ ; pos < spans[i].off; pos++) {
            paragraph += g->text[pos] == '\n';
        }

        while (sec < g->req->nsections
               && g->req->sections[sec].paragraph <= paragraph)
        {
            sec++;
        }

        g->sents[i].section = (uint32_t) sec;

        g->nsents++;
    }

    free(spans);

    nfocus = pg_gen_mark(g, g->req->focus, 1);
    ntopic = pg_gen_mark(g, g->req->topic, 0);

    pg_gen_score(g, nfocus, ntopic);

    return pg_gen_rank(g);
}


/*
 * A quotation of several sentences is one unit with its "said X": the
 * sentences from one that opens a quote (an odd number of '"') to the one
 * that closes it are joined, up to a bound; a paragraph break ends it.
 * Returns the number of spans left.
 */
static size_t
pg_gen_join_quotes(pg_gen_t *g, pg_span_t *spans, size_t n)
{
    size_t       i, j, k, quotes, end;
    const char  *p;

    j = 0;

    for (i = 0; i < n; i = k) {
        spans[j] = spans[i];
        quotes = 0;

        for (k = i; k < n; k++) {
            for (p = g->text + spans[k].off;
                 p < g->text + spans[k].off + spans[k].len;
                 p++)
            {
                quotes += *p == '"';
            }

            end = spans[k].off + spans[k].len;

            if (k > i) {
                if (memchr(g->text + spans[j].off + spans[j].len, '\n',
                           spans[k].off - spans[j].off - spans[j].len)
                    || end - spans[j].off > 2 * PG_SCRIPT_SENTENCE_MAX)
                {
                    break;
                }

                spans[j].len = end - spans[j].off;
            }

            if (quotes % 2 == 0) {
                k++;
                break;
            }
        }

        j++;
    }

    return j;
}


/* A sentence: its words, its distinct terms, their counts. */
static int
pg_gen_sentence(pg_gen_t *g, size_t si, const pg_span_t *span)
{
    char            key[PG_SCRIPT_TERM_MAX + 1], c;
    long            id;
    size_t          pos, start, n, k, cap;
    uint32_t       *p;
    pg_term_t      *t;
    const char     *s;
    pg_sentence_t  *sent;
    int             initial;
    long            head;
    size_t          word, be, det, head_end;

    sent = &g->sents[si];
    sent->off = span->off;
    sent->len = span->len;
    sent->first = (uint32_t) g->nids;

    s = g->text + span->off;
    sent->nwords = (uint32_t) pg_script_count_words(s, span->len);

    c = s[span->len - 1];
    sent->open = !(c == '.' || c == '!' || c == '?' || c == '"' || c == '\''
                   || c == ')' || c == ']' || c == '}');

    pos = 0;
    initial = 1;
    word = 0;
    be = 0;
    det = 0;
    head = -1;
    head_end = 0;

    while ((n = pg_gen_token(s, span->len, &pos, &start)) != 0) {

        if (initial) {
            sent->anaphora = pg_gen_anaphora(s + start, n);
        }

        pg_gen_defines(sent, s + start, n, word++, &be);

        k = pg_gen_key(s + start, n, key);

        /*
         * A noun: the word right after a determiner ("the clock", "their
         * habits") when no content word follows it at once.
         */

        if (head >= 0 && (k == 0 || head_end + 1 != start)
            && !(head_end + 1 == start && pg_gen_conjunction(s + start, n)))
        {
            g->terms[head].noun = 1;
        }

        head = -1;

        if (k == 0) {
            pg_gen_cues(sent, pg_gen_cue_flags(s + start, n));
            det = pg_gen_determiner(s + start, n);
            initial = 0;
            continue;
        }

        id = pg_gen_term(g, key, k, 1);
        if (id < 0) {
            return -1;
        }

        if (det) {
            head = id;
            head_end = start + n;
            g->terms[id].led = 1;
            det = 0;
        }

        t = &g->terms[id];

        /* what a word says is looked up once, when it is first seen */

        if (t->tf == 0) {
            t->cues = pg_gen_cue_flags(s + start, n);
        }

        pg_gen_cues(sent, t->cues);
        t->tf++;

        /* remember how the word is written, preferably not capitalized
         * only because it starts a sentence */

        if (t->surface_len == 0 || (!t->inner && !initial)) {
            t->surface = span->off + start;
            t->surface_len = (uint32_t) n;
            t->inner = !initial;

            if (n > 2 && s[start + n - 2] == '\'') {
                t->surface_len -= 2;
            }
        }

        initial = 0;

        if (t->last == si + 1) {
            continue;
        }

        t->last = (uint32_t) (si + 1);
        t->df++;

        if (g->nids == g->ids_cap) {
            cap = g->ids_cap ? g->ids_cap * 2 : 1024;

            p = realloc(g->ids, cap * sizeof(uint32_t));
            if (p == NULL) {
                return -1;
            }

            g->ids = p;
            g->ids_cap = cap;
        }

        g->ids[g->nids++] = (uint32_t) id;
    }

    if (head >= 0) {
        g->terms[head].noun = 1;
    }

    sent->nterms = (uint32_t) (g->nids - sent->first);

    /* a personal or definitional sentence is not a claim to weigh */

    if (sent->personal || sent->definition) {
        sent->claim = 0;
    }

    /* a quotation's "I" and "we" are the speaker's, named by its "said" */

    if (memchr(s, '"', span->len) != NULL) {
        sent->personal = 0;
    }

    g->nstance += sent->stance;

    /* sorted, for the near-duplicate test */

    if (sent->nterms > 1) {
        qsort(g->ids + sent->first, sent->nterms, sizeof(uint32_t),
              pg_gen_cmp_id);
    }

    return 0;
}


/*
 * The next word of s[*pos..len): a run of letters and digits, with
 * apostrophes between letters ("don't", "Gutenberg's").  Returns its
 * length with its start in *start, or 0 at the end.
 */
static size_t
pg_gen_token(const char *s, size_t len, size_t *pos, size_t *start)
{
    size_t  i, b;

    for (i = *pos; i < len && !PG_ALNUM(s[i]); i++) {
        /* void */
    }

    if (i == len) {
        *pos = len;
        return 0;
    }

    b = i;

    while (i < len) {
        if (PG_ALNUM(s[i])) {
            i++;

        } else if (s[i] == '\'' && i + 1 < len && PG_ALPHA(s[i + 1])
                   && PG_ALPHA(s[i - 1]))
        {
            i++;

        } else {
            break;
        }
    }

    *pos = i;
    *start = b;

    return i - b;
}


/*
 * The term of a word: lower case, a possessive dropped, plurals folded
 * ("books" -> "book", "stories" -> "story").  Returns its length, or 0
 * when the word is no term: a function word, a contraction, one letter,
 * or a token too long to be a word (a URL, a hash).
 */
static size_t
pg_gen_key(const char *tok, size_t n, char *key)
{
    char    c;
    size_t  i, k;

    if (n < 2 || n > PG_SCRIPT_TERM_MAX) {
        return 0;
    }

    for (k = 0, i = 0; i < n; i++) {
        c = tok[i];

        if (c == '\'') {
            if (n - i == 2 && (tok[i + 1] == 's' || tok[i + 1] == 'S')) {
                break;
            }

            return 0;
        }

        key[k++] = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
    }

    key[k] = '\0';

    if (k < 2 || pg_gen_stop_word(key)) {
        return 0;
    }

    if (k >= 4 && key[k - 1] == 's') {

        if (k > 4 && key[k - 3] == 'i' && key[k - 2] == 'e') {
            key[k - 3] = 'y';
            k -= 2;

        } else if (key[k - 2] == 's' && key[k - 3] == 'e'
                   && key[k - 4] == 's')
        {
            k -= 2;

        } else if (key[k - 2] != 's' && key[k - 2] != 'u'
                   && key[k - 2] != 'i')
        {
            k--;
        }

        key[k] = '\0';
    }

    return k;
}


static int
pg_gen_determiner(const char *tok, size_t n)
{
    size_t        i;
    const char  **p;

    static const char  *dets[6][6] = {
        { NULL },
        { "a", NULL },
        { "an", "my", NULL },
        { "the", "his", "her", "its", "our", NULL },
        { "this", "that", "each", "your", NULL },
        { "these", "those", "their", "every", NULL }
    };

    if (n == 0 || n > 5) {
        return 0;
    }

    for (p = dets[n]; *p; p++) {
        for (i = 0; i < n; i++) {
            if ((tok[i] | 0x20) != (*p)[i]) {
                break;
            }
        }

        if (i == n) {
            return 1;
        }
    }

    return 0;
}


/* "a mild but persistent debt": what "and", "but" follow may be an
 * adjective */
static int
pg_gen_conjunction(const char *tok, size_t n)
{
    return (n == 3 && (strncasecmp(tok, "and", 3) == 0
                       || strncasecmp(tok, "but", 3) == 0
                       || strncasecmp(tok, "yet", 3) == 0))
           || (n == 2 && strncasecmp(tok, "or", 2) == 0);
}


/* A sentence that starts with a pronoun leans on the one before it. */
static int
pg_gen_anaphora(const char *tok, size_t n)
{
    char          w[8];
    size_t        i;
    const char  **p;

    static const char  *pronouns[] = {
        "he", "she", "it", "they", "this", "these", "that", "those", "his",
        "her", "its", "their", "such", NULL
    };

    if (n >= sizeof(w)) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        w[i] = (tok[i] >= 'A' && tok[i] <= 'Z') ? tok[i] + ('a' - 'A')
                                                : tok[i];
    }

    w[n] = '\0';

    for (p = pronouns; *p; p++) {
        if (strcmp(w, *p) == 0) {
            return 1;
        }
    }

    return 0;
}


#define PG_CUE_STANCE      1
#define PG_CUE_CLAIM       2
#define PG_CUE_PERSONAL    4
#define PG_CUE_DEFINITION  8

typedef struct {
    const char  *word;
    unsigned     flags;
} pg_cue_t;

/* sorted (strcmp), for bsearch */
static const pg_cue_t  pg_cues[] = {
    { "advocates", PG_CUE_STANCE },
    { "although", PG_CUE_STANCE },
    { "always", PG_CUE_CLAIM },
    { "argue", PG_CUE_STANCE },
    { "argued", PG_CUE_STANCE },
    { "argues", PG_CUE_STANCE },
    { "argument", PG_CUE_STANCE },
    { "best", PG_CUE_CLAIM },
    { "biggest", PG_CUE_CLAIM },
    { "billion", PG_CUE_CLAIM },
    { "but", PG_CUE_STANCE },
    { "claimed", PG_CUE_STANCE },
    { "contend", PG_CUE_STANCE },
    { "contended", PG_CUE_STANCE },
    { "controversial", PG_CUE_STANCE },
    { "controversy", PG_CUE_STANCE },
    { "could", PG_CUE_CLAIM },
    { "critic", PG_CUE_STANCE },
    { "criticised", PG_CUE_STANCE },
    { "criticized", PG_CUE_STANCE },
    { "critics", PG_CUE_STANCE },
    { "debate", PG_CUE_STANCE },
    { "debated", PG_CUE_STANCE },
    { "defenders", PG_CUE_STANCE },
    { "defined", PG_CUE_DEFINITION },
    { "denotes", PG_CUE_DEFINITION },
    { "disagree", PG_CUE_STANCE },
    { "disagreed", PG_CUE_STANCE },
    { "dispute", PG_CUE_STANCE },
    { "disputed", PG_CUE_STANCE },
    { "doubled", PG_CUE_CLAIM },
    { "estimated", PG_CUE_CLAIM },
    { "every", PG_CUE_CLAIM },
    { "expected", PG_CUE_CLAIM },
    { "fastest", PG_CUE_CLAIM },
    { "forecast", PG_CUE_CLAIM },
    { "greatest", PG_CUE_CLAIM },
    { "highest", PG_CUE_CLAIM },
    { "however", PG_CUE_STANCE },
    { "i", PG_CUE_PERSONAL },
    { "i'd", PG_CUE_PERSONAL },
    { "i'm", PG_CUE_PERSONAL },
    { "i've", PG_CUE_PERSONAL },
    { "insisted", PG_CUE_STANCE },
    { "instead", PG_CUE_STANCE },
    { "largest", PG_CUE_CLAIM },
    { "least", PG_CUE_CLAIM },
    { "likely", PG_CUE_CLAIM },
    { "longest", PG_CUE_CLAIM },
    { "lowest", PG_CUE_CLAIM },
    { "me", PG_CUE_PERSONAL },
    { "means", PG_CUE_DEFINITION },
    { "million", PG_CUE_CLAIM },
    { "mine", PG_CUE_PERSONAL },
    { "most", PG_CUE_CLAIM },
    { "my", PG_CUE_PERSONAL },
    { "never", PG_CUE_CLAIM },
    { "nevertheless", PG_CUE_STANCE },
    { "nonetheless", PG_CUE_STANCE },
    { "objected", PG_CUE_STANCE },
    { "objections", PG_CUE_STANCE },
    { "oldest", PG_CUE_CLAIM },
    { "only", PG_CUE_CLAIM },
    { "opponents", PG_CUE_STANCE },
    { "opposed", PG_CUE_STANCE },
    { "our", PG_CUE_PERSONAL },
    { "percent", PG_CUE_CLAIM },
    { "predicted", PG_CUE_CLAIM },
    { "predicts", PG_CUE_CLAIM },
    { "projected", PG_CUE_CLAIM },
    { "proponents", PG_CUE_STANCE },
    { "proved", PG_CUE_CLAIM },
    { "proves", PG_CUE_CLAIM },
    { "refers", PG_CUE_DEFINITION },
    { "sceptics", PG_CUE_STANCE },
    { "showed", PG_CUE_CLAIM },
    { "shows", PG_CUE_CLAIM },
    { "skeptics", PG_CUE_STANCE },
    { "smallest", PG_CUE_CLAIM },
    { "strongest", PG_CUE_CLAIM },
    { "supporters", PG_CUE_STANCE },
    { "though", PG_CUE_STANCE },
    { "tripled", PG_CUE_CLAIM },
    { "us", PG_CUE_PERSONAL },
    { "warned", PG_CUE_STANCE },
    { "we", PG_CUE_PERSONAL },
    { "we're", PG_CUE_PERSONAL },
    { "whereas", PG_CUE_STANCE },
    { "will", PG_CUE_CLAIM },
    { "worst", PG_CUE_CLAIM },
    { "yet", PG_CUE_STANCE },
};


static int
pg_gen_cmp_cue(const void *a, const void *b)
{
    return strcmp((const char *) a, ((const pg_cue_t *) b)->word);
}


/*
 * What a word says about its sentence: taking a side or contrasting (a
 * debate's material), a claim that can be checked (a number, a
 * superlative, a prediction: a critique's), the first person, a
 * definition (neither).  PG_CUE_* flags.
 */
static unsigned
pg_gen_cue_flags(const char *tok, size_t n)
{
    char             w[16];
    size_t           i;
    const pg_cue_t  *cue;

    for (i = 0; i < n; i++) {
        if (tok[i] >= '0' && tok[i] <= '9') {
            return PG_CUE_CLAIM;
        }
    }

    if (n >= sizeof(w)) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        w[i] = (tok[i] >= 'A' && tok[i] <= 'Z') ? tok[i] + ('a' - 'A')
                                                : tok[i];
    }

    w[n] = '\0';

    cue = bsearch(w, pg_cues, PG_NELEMS(pg_cues), sizeof(pg_cue_t),
                  pg_gen_cmp_cue);

    return cue ? cue->flags : 0;
}


static void
pg_gen_cues(pg_sentence_t *sent, unsigned flags)
{
    sent->stance |= (flags & PG_CUE_STANCE) != 0;
    sent->claim |= (flags & PG_CUE_CLAIM) != 0;
    sent->personal |= (flags & PG_CUE_PERSONAL) != 0;
    sent->definition |= (flags & PG_CUE_DEFINITION) != 0;
}


/*
 * "X is a ...", "they are the ...": a definition, when "is", "are" or
 * "was" is among the first five words and an article follows it; *be is
 * the word after the verb, + 1.
 */
static void
pg_gen_defines(pg_sentence_t *sent, const char *tok, size_t n, size_t word,
    size_t *be)
{
    if (*be && word == *be
        && ((n == 1 && (tok[0] | 0x20) == 'a')
            || (n == 2 && strncasecmp(tok, "an", 2) == 0)
            || (n == 3 && strncasecmp(tok, "the", 3) == 0)))
    {
        sent->definition = 1;
    }

    *be = 0;

    if (word < 5
        && ((n == 2 && strncasecmp(tok, "is", 2) == 0)
            || (n == 3 && (strncasecmp(tok, "are", 3) == 0
                           || strncasecmp(tok, "was", 3) == 0))))
    {
        *be = word + 1;
    }
}


static int
pg_gen_stop_word(const char *key)
{
    return bsearch(&key, pg_stop_words, PG_NELEMS(pg_stop_words),
                   sizeof(const char *), pg_gen_cmp_stop) != NULL;
}


static int
pg_gen_cmp_stop(const void *a, const void *b)
{
    return strcmp(*(const char * const *) a, *(const char * const *) b);
}


static int
pg_gen_cmp_id(const void *a, const void *b)
{
    uint32_t  x, y;

    x = *(const uint32_t *) a;
    y = *(const uint32_t *) b;

    return (x > y) - (x < y);
}


/* by score, then by position: a total order, so the result is stable */
static int
pg_gen_cmp_rank(const void *a, const void *b)
{
    const pg_rank_t  *x, *y;

    x = a;
    y = b;

    if (x->score != y->score) {
        return x->score < y->score ? 1 : -1;
    }

    return (x->index > y->index) - (x->index < y->index);
}


static uint32_t
pg_gen_hash(const char *s, size_t n, uint32_t h)
{
    size_t  i;

    /* FNV-1a */

    for (i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 16777619u;
    }

    return h;
}


/* Finds (or adds) a term; its index, or -1 (absent, or out of memory). */
static long
pg_gen_term(pg_gen_t *g, const char *key, size_t n, int insert)
{
    char        *a;
    size_t       i, mask, cap;
    uint32_t     h, slot;
    pg_term_t   *t;

    h = pg_gen_hash(key, n, 2166136261u);

    for ( ;; ) {
        mask = g->nslots - 1;

        for (i = h & mask; (slot = g->slots[i]) != 0; i = (i + 1) & mask) {
            t = &g->terms[slot - 1];

            if (t->hash == h && t->len == n
                && memcmp(g->arena + t->str, key, n) == 0)
            {
                return (long) slot - 1;
            }
        }

        if (!insert) {
            return -1;
        }

        /* at most half full, so that probes stay short */

        if ((g->nterms + 1) * 2 <= g->nslots) {
            break;
        }

        if (pg_gen_grow_slots(g) != 0) {
            return -1;
        }
    }

    if (g->nterms == g->terms_cap) {
        cap = g->terms_cap ? g->terms_cap * 2 : 512;

        t = realloc(g->terms, cap * sizeof(pg_term_t));
        if (t == NULL) {
            return -1;
        }

        g->terms = t;
        g->terms_cap = cap;
    }

    if (g->arena_cap - g->arena_len < n) {
        cap = g->arena_cap ? g->arena_cap * 2 : 4096;

        while (cap - g->arena_len < n) {
            cap *= 2;
        }

        a = realloc(g->arena, cap);
        if (a == NULL) {
            return -1;
        }

        g->arena = a;
        g->arena_cap = cap;
    }

    memcpy(g->arena + g->arena_len, key, n);

    t = &g->terms[g->nterms];
    memset(t, 0, sizeof(pg_term_t));
    t->hash = h;
    t->len = (uint32_t) n;
    t->str = g->arena_len;

    g->arena_len += n;
    g->slots[i] = (uint32_t) ++g->nterms;

    return (long) g->nterms - 1;
}


static int
pg_gen_grow_slots(pg_gen_t *g)
{
    size_t     i, j, n, mask;
    uint32_t  *slots;

    n = g->nslots * 2;

    slots = calloc(n, sizeof(uint32_t));
    if (slots == NULL) {
        return -1;
    }

    mask = n - 1;

    for (i = 0; i < g->nterms; i++) {
        for (j = g->terms[i].hash & mask; slots[j]; j = (j + 1) & mask) {
            /* void */
        }

        slots[j] = (uint32_t) i + 1;
    }

    free(g->slots);
    g->slots = slots;
    g->nslots = n;

    return 0;
}


/*
 * Marks the terms of the focus (or the topic) that occur in the source;
 * returns how many terms the focus has, found or not.
 */
static size_t
pg_gen_mark(pg_gen_t *g, const char *s, int focus)
{
    char    *norm, key[PG_SCRIPT_TERM_MAX + 1];
    long     id;
    size_t   len, pos, start, n, k, count;

    if (s == NULL) {
        return 0;
    }

    norm = pg_text_normalize(s, strlen(s), &len);
    if (norm == NULL) {
        /* only a bonus is lost */
        return 0;
    }

    pos = 0;
    count = 0;

    while ((n = pg_gen_token(norm, len, &pos, &start)) != 0) {
        k = pg_gen_key(norm + start, n, key);
        if (k == 0) {
            continue;
        }

        count++;

        id = pg_gen_term(g, key, k, 0);
        if (id < 0) {
            continue;
        }

        if (focus) {
            g->terms[id].focus = 1;

        } else {
            g->terms[id].topic = 1;
        }
    }

    free(norm);

    return count;
}


/*
 * TF-IDF with each sentence a document: a term weighs by how often the
 * source uses it, dampened, and by how few sentences it is in.  A sentence
 * scores the sum of its distinct terms' weights over the square root of
 * their number, so that long sentences gain, but not in proportion.
 */
static void
pg_gen_score(pg_gen_t *g, size_t nfocus, size_t ntopic)
{
    double          n, max, score, early;
    size_t          i, j, focus, topic;
    pg_term_t      *t;
    pg_sentence_t  *s;

    n = (double) g->nsents;

    for (i = 0; i < g->nterms; i++) {
        t = &g->terms[i];
        t->weight = log(1.0 + t->tf) * (log(n / t->df) + 1.0);

        /* frequency first: the words the text is about */
        t->salience = t->tf * log(1.0 + n / t->df);
    }

    max = 0.0;

    for (i = 0; i < g->nsents; i++) {
        s = &g->sents[i];
        score = 0.0;

        for (j = 0; j < s->nterms; j++) {
            score += g->terms[g->ids[s->first + j]].weight;
        }

        s->score = s->nterms ? score / sqrt((double) s->nterms) : 0.0;

        if (s->score > max) {
            max = s->score;
        }
    }

    early = 0.25 * n + 1.0;

    for (i = 0; i < g->nsents; i++) {
        s = &g->sents[i];
        score = max > 0.0 ? s->score / max : 0.0;

        /* introductions and topic sentences come first */

        if (i < early) {
            score += 0.1 * (1.0 - i / early);
        }

        if (s->off == 0 || g->text[s->off - 1] == '\n') {
            score += 0.03;
        }

        focus = 0;
        topic = 0;

        for (j = 0; j < s->nterms; j++) {
            t = &g->terms[g->ids[s->first + j]];
            focus += t->focus;
            topic += t->topic;
        }

        if (nfocus) {
            score += 0.25 * (focus < nfocus ? (double) focus / nfocus : 1.0);
        }

        if (ntopic) {
            score += 0.1 * (topic < ntopic ? (double) topic / ntopic : 1.0);
        }

        /* fragments and run-ons make poor turns */

        if (s->nwords < 6) {
            score *= 0.6;

        } else if (s->nwords > 90) {
            score *= 0.5;

        } else if (s->nwords > 60) {
            score *= 0.7;
        }

        if (s->open) {
            score *= 0.5;
        }

        if (s->anaphora) {
            score *= 0.85;
        }

        /*
         * Each style looks for its own material: a debate for sentences
         * that take sides, a critique for claims that can be weighed.
         */

        switch (g->req->style) {

        case PG_STYLE_DEBATE:
            score *= s->stance ? 1.6 : 0.8;
            break;

        case PG_STYLE_CRITIQUE:
            score *= s->claim ? 1.5 : 0.85;
            break;

        default:
            break;
        }

        s->score = score;
    }
}


/* The usable sentences by score, best first. */
static int
pg_gen_rank(pg_gen_t *g)
{
    size_t          i, n;
    pg_sentence_t  *s;

    n = g->nsents ? g->nsents : 1;

    g->ranks = malloc(n * sizeof(pg_rank_t));
    g->picked = malloc(n * sizeof(uint32_t));
    g->units = malloc(n * sizeof(pg_unit_t));

    if (g->ranks == NULL || g->picked == NULL || g->units == NULL) {
        return -1;
    }

    for (i = 0; i < g->nsents; i++) {
        s = &g->sents[i];

        if (s->nwords >= 3 && s->nterms >= 1) {
            g->ranks[g->nranks].score = s->score;
            g->ranks[g->nranks].index = (uint32_t) i;
            g->nranks++;
        }
    }

    qsort(g->ranks, g->nranks, sizeof(pg_rank_t), pg_gen_cmp_rank);

    return 0;
}


/*
 * How a term is written in sentence s, with the word before it when that
 * is "the" or another content word ("the printing press", "metal type"),
 * into b, NUL-terminated; lower-cased when capitalized only for starting
 * the sentence.  0, or -1 when the sentence does not have it.
 */
int
pg_gen_phrase_of(pg_gen_t *g, const pg_sentence_t *s, uint32_t id,
    pg_buf_t *b)
{
    char         key[PG_SCRIPT_TERM_MAX + 1], c;
    long         tid;
    size_t       pos, start, n, k, from, end, p1, n1, p2, n2, first;
    const char  *t;

    t = g->text + s->off;
    pos = 0;
    n1 = 0;
    n2 = 0;
    p1 = 0;
    p2 = 0;
    k = 0;

    while ((n = pg_gen_token(t, s->len, &pos, &start)) != 0) {
        k = pg_gen_key(t + start, n, key);

        tid = k ? pg_gen_term(g, key, k, 0) : -1;

        if (tid != (long) id) {
            p2 = p1;
            n2 = n1;
            p1 = start;

            /* a noun before it makes it a verb: "the loaf holds" */
            n1 = k ? (tid >= 0 && g->terms[tid].noun ? 0 : n)
                   : (n == 3 && strncasecmp(t + start, "the", 3) == 0
                      ? 3 : 0);
            continue;
        }

        from = start;
        end = start + n;

        if (n > 2 && t[end - 2] == '\'') {
            end -= 2;
        }

        /*
         * The words before, if next to it: "the", or "the" and a content
         * word ("the printing press"); a content word alone is too often
         * an adjective or a verb ("few dozen letters").
         */

        if (n1 && p1 + n1 + 1 == start && t[p1 + n1] == ' ') {

            if (n1 == 3 && strncasecmp(t + p1, "the", 3) == 0) {
                from = p1;

            } else if (n2 == 3 && p2 + 4 == p1 && t[p2 + 3] == ' '
                       && strncasecmp(t + p2, "the", 3) == 0)
            {
                from = p2;
            }
        }

        /* a name goes on while the words are capitalized: "Mayor
         * Whitfield" */

        while (t[start] >= 'A' && t[start] <= 'Z' && end == start + n
               && end + 2 < s->len && t[end] == ' '
               && t[end + 1] >= 'A' && t[end + 1] <= 'Z')
        {
            pos = end + 1;
            n = pg_gen_token(t, s->len, &pos, &start);

            if (n == 0 || start != end + 1) {
                break;
            }

            end = start + n;

            if (n > 2 && t[end - 2] == '\'') {
                end -= 2;
                break;
            }
        }

        b->len = 0;
        first = b->len;

        if (pg_buf_append(b, t + from, end - from) != 0
            || pg_buf_append(b, "", 1) != 0)
        {
            return -1;
        }

        c = (char) b->data[first];

        if (from == 0 && c >= 'A' && c <= 'Z' && end - from > 1
            && b->data[first + 1] >= 'a' && b->data[first + 1] <= 'z')
        {
            b->data[first] = (unsigned char) (c + ('a' - 'A'));
        }

        return 0;
    }

    return -1;
}


/*
 * Offers a term for a list of the k heaviest, kept in order; only words
 * worth saying in the framing qualify: with a letter, not too long and,
 * in a text of some length, used more than once.
 */
void
pg_gen_offer(pg_gen_t *g, uint32_t id, int common, uint32_t *top,
    size_t *ntop, size_t k)
{
    size_t       i, j, alpha;
    pg_term_t   *t, *o;
    const char  *p;

    t = &g->terms[id];

    if (t->surface_len < 3 || t->surface_len > PG_SCRIPT_SURFACE_MAX
        || (common && t->df < 2))
    {
        return;
    }

    alpha = 0;

    for (i = 0; i < t->surface_len; i++) {
        alpha += PG_ALPHA(g->text[t->surface + i]);
    }

    /* "printed", "quickly": adjectives and adverbs name nothing */

    p = g->text + t->surface + t->surface_len - 2;

    if (alpha == 0 || (p[0] == 'e' && p[1] == 'd')
        || (p[0] == 'l' && p[1] == 'y'))
    {
        return;
    }

    /* nor do numbers ("1455") and verbs: a word "the" or "a" leads to,
     * or a name */

    if (alpha != t->surface_len
        || !(t->led || (t->inner && g->text[t->surface] >= 'A'
                        && g->text[t->surface] <= 'Z')))
    {
        return;
    }

    for (i = 0; i < *ntop; i++) {
        if (top[i] == id) {
            return;
        }
    }

    for (i = 0; i < *ntop; i++) {
        o = &g->terms[top[i]];

        if (t->salience > o->salience
            || (t->salience == o->salience && t->surface < o->surface))
        {
            break;
        }
    }

    if (i == k) {
        return;
    }

    if (*ntop < k) {
        (*ntop)++;
    }

    for (j = *ntop - 1; j > i; j--) {
        top[j] = top[j - 1];
    }

    top[i] = id;
}


/* "printing, Gutenberg and books", NUL-terminated, in b */
int
pg_gen_terms_text(pg_gen_t *g, const uint32_t *ids, size_t n, pg_buf_t *b)
{
    size_t      i;
    pg_term_t  *t;

    b->len = 0;

    for (i = 0; i < n; i++) {
        t = &g->terms[ids[i]];

        if ((i > 0 && pg_buf_append_str(b, i + 1 == n ? " and " : ", ") != 0)
            || pg_buf_append(b, g->text + t->surface, t->surface_len) != 0)
        {
            return -1;
        }
    }

    return pg_buf_append(b, "", 1);
}


/*
 * What the script is about, said once: the title, the subject for the
 * framing ("the history of printing", or "a text about printing,
 * Gutenberg and books"), the focus, and the seed of the phrasing.
 */
int
pg_gen_describe(pg_gen_t *g)
{
    char        *topic, *p;
    size_t       i, n, len;
    uint32_t     top[3];
    pg_buf_t     b;
    const char  *t;

    memset(&b, 0, sizeof(pg_buf_t));

    t = g->req->topic;

    if (pg_script_short_text(t, t ? strlen(t) : 0, PG_SCRIPT_SHORT_MAX,
                             &topic) != 0
        || pg_script_short_text(g->req->focus,
                                g->req->focus ? strlen(g->req->focus) : 0,
                                PG_SCRIPT_SHORT_MAX, &g->focus) != 0)
    {
        return -1;
    }

    n = 0;

    if (topic == NULL) {
        for (i = 0; i < g->nterms; i++) {
            pg_gen_offer(g, (uint32_t) i, g->nsents >= 4, top, &n, 3);
        }
    }

    if (topic) {
        /* mid-sentence: "a deep dive into the history of printing" */

        g->subject = strdup(topic);

        if (g->subject
            && (strncmp(topic, "The ", 4) == 0 || strncmp(topic, "A ", 2) == 0
                || strncmp(topic, "An ", 3) == 0))
        {
            g->subject[0] += 'a' - 'A';
        }

    } else if (g->req->source_title
               && strlen(g->req->source_title) <= 80)
    {
        /* the document's own title: "a deep dive into Harbour Project" */

        g->subject = strdup(g->req->source_title);

    } else if (n) {
        if (pg_buf_append_str(&b, "a text about ") != 0
            || pg_gen_terms_text(g, top, n, &g->tmp) != 0
            || pg_buf_append(&b, g->tmp.data, g->tmp.len) != 0)
        {
            free(b.data);
            return -1;
        }

        g->subject = (char *) b.data;
        b.data = NULL;

    } else {
        g->subject = strdup(g->req->source_text ? "the text we were given"
                                                : "our topic");
    }

    if (g->subject == NULL) {
        free(topic);
        return -1;
    }

    /* the title */

    if (g->nranks == 0) {
        t = topic ? topic
                  : (strncmp(g->subject, "a text about ",
                             sizeof("a text about ") - 1) == 0
                     ? g->subject + sizeof("a text about ") - 1
                     : (g->req->source_title ? g->subject : "Our topic"));

        if (pg_script_short_text(t, strlen(t),
                                 PG_SCRIPT_SHORT_MAX - sizeof(": an outline")
                                 + 1, &p) != 0)
        {
            free(topic);
            return -1;
        }

        len = p ? strlen(p) : 0;

        g->title = p ? realloc(p, len + sizeof(": an outline")) : NULL;

        if (g->title) {
            memcpy(g->title + len, ": an outline", sizeof(": an outline"));

        } else {
            free(p);
        }

    } else if (topic) {
        g->title = strdup(topic);

    } else if (g->req->source_title) {
        /* the document's own heading */
        if (pg_script_short_text(g->req->source_title,
                                 strlen(g->req->source_title),
                                 PG_SCRIPT_SHORT_MAX, &g->title) != 0)
        {
            free(topic);
            return -1;
        }

    } else if (n) {
        g->title = strdup((const char *) g->tmp.data);

    } else if (pg_script_short_text(g->text + g->sents[0].off,
                                    g->sents[0].len, PG_SCRIPT_SHORT_MAX,
                                    &g->title) != 0)
    {
        free(topic);
        return -1;
    }

    free(topic);

    if (g->title == NULL) {
        g->title = strdup("A podcast");
        if (g->title == NULL) {
            return -1;
        }
    }

    pg_script_title_case(g->title);

    g->seed = pg_gen_hash(g->text, g->text_len, 2166136261u);

    if (g->req->topic) {
        g->seed = pg_gen_hash(g->req->topic, strlen(g->req->topic), g->seed);
    }

    return 0;
}


/*
 * Two sentences say much the same when their terms mostly coincide
 * (Jaccard 0.7), or when one's terms are nearly all in the other.
 */
static int
pg_gen_near_duplicate(pg_gen_t *g, const pg_sentence_t *a,
    const pg_sentence_t *b)
{
    size_t           i, j, common, small;
    const uint32_t  *x, *y;

    x = g->ids + a->first;
    y = g->ids + b->first;
    i = 0;
    j = 0;
    common = 0;

    while (i < a->nterms && j < b->nterms) {
        if (x[i] == y[j]) {
            common++;
            i++;
            j++;

        } else if (x[i] < y[j]) {
            i++;

        } else {
            j++;
        }
    }

    g->dup_work += i + j;

    if (common * 10 >= (a->nterms + b->nterms - common) * 7) {
        return 1;
    }

    small = a->nterms < b->nterms ? a->nterms : b->nterms;

    return small >= 4 && common * 20 >= small * 17;
}


static int
pg_gen_picked(pg_gen_t *g, uint32_t index)
{
    size_t  i;

    for (i = 0; i < g->npicked; i++) {
        if (g->picked[i] == index) {
            return 1;
        }
    }

    return 0;
}


/*
 * The best sentences up to budget words, greedily: one that would
 * overshoot is passed over for a shorter one further down; then in the
 * order of the source.
 */
static void
pg_gen_select(pg_gen_t *g, size_t budget)
{
    size_t          r, j, slack, words, best;
    uint32_t        prev;
    pg_sentence_t  *s, *p;

    g->npicked = 0;
    g->dup_work = 0;
    words = 0;
    slack = budget / 20 + 5;

    for (r = 0; r < g->nranks && words < budget; r++) {
        s = &g->sents[g->ranks[r].index];

        if (words + s->nwords > budget + slack) {
            continue;
        }

        /*
         * Near duplicates score alike, so a sentence is most likely a
         * copy of a recent pick: those are compared first.  A source made
         * of variations on a few sentences could still make this
         * quadratic; past a bound, what was picked is enough.
         */

        if (g->dup_work > PG_SCRIPT_DUP_WORK) {
            break;
        }

        for (j = g->npicked; j > 0; j--) {
            if (pg_gen_near_duplicate(g, s, &g->sents[g->picked[j - 1]])) {
                break;
            }
        }

        if (j > 0) {
            continue;
        }

        /*
         * A sentence that starts with a pronoun comes with the one before
         * it ("He was 12." needs who he is), or not at all.
         */

        prev = g->ranks[r].index;

        if (s->anaphora && prev > 0 && !pg_gen_picked(g, prev - 1)) {
            p = &g->sents[prev - 1];

            if (p->nwords < 3 || p->open
                || words + s->nwords + p->nwords > budget + slack)
            {
                continue;
            }

            g->picked[g->npicked++] = prev - 1;
            words += p->nwords;
        }

        g->picked[g->npicked++] = g->ranks[r].index;
        words += s->nwords;
    }

    if (g->npicked == 0 && g->nranks) {
        /* every sentence is over a tiny budget: the shortest good one */

        best = g->ranks[0].index;

        for (r = 1; r < g->nranks && r < 16; r++) {
            if (g->sents[g->ranks[r].index].nwords < g->sents[best].nwords) {
                best = g->ranks[r].index;
            }
        }

        g->picked[g->npicked++] = (uint32_t) best;
        words = g->sents[best].nwords;
    }

    g->picked_words = words;

    qsort(g->picked, g->npicked, sizeof(uint32_t), pg_gen_cmp_id);
}


/*
 * Content turns: up to two sentences, or one in a brief, and no more than
 * about 50 words; a cut piece ends its turn (it gets a period after it).
 */
void
pg_gen_group(pg_gen_t *g)
{
    size_t          i, max, words;
    pg_unit_t      *u;
    pg_sentence_t  *s, *prev;

    max = 2;
    g->nunits = 0;
    words = 0;
    u = NULL;
    prev = NULL;

    for (i = 0; i < g->npicked; i++) {
        s = &g->sents[g->picked[i]];

        /* a pronoun-led sentence stays in the turn of the one before */

        if (u != NULL && s->anaphora && !prev->open
            && g->picked[i] == g->picked[i - 1] + 1
            && words + s->nwords <= 2 * PG_SCRIPT_UNIT_WORDS)
        {
            u->n++;
            words += s->nwords;
            prev = s;
            continue;
        }

        if (u == NULL || u->n == max || prev->open
            || words + s->nwords > PG_SCRIPT_UNIT_WORDS)
        {
            u = &g->units[g->nunits++];
            u->first = (uint32_t) i;
            u->n = 0;
            words = 0;
        }

        u->n++;
        words += s->nwords;
        prev = s;
    }
}


/*
 * Builds the script a few times, moving the content budget by how far
 * the last script missed the target, and keeps the closest.
 */
int
pg_gen_fit(pg_gen_t *g, pg_script_t *script)
{
    long         budget;
    size_t       round, diff, best, words, prev_n, prev_words;
    pg_script_t  s;

    if (g->nranks == 0) {
        return pg_gen_build(g, script);
    }

    best = (size_t) -1;

again:

    /* welcome and goodbye, a line per host, a short line per turn */

    budget = ((long) g->target - 30 - 5 * (long) g->nhosts) * 4 / 5;
    prev_n = (size_t) -1;
    prev_words = (size_t) -1;

    for (round = 0; round < PG_SCRIPT_ROUNDS; round++) {

        pg_gen_select(g, budget > 0 ? (size_t) budget : 1);

        if (g->npicked == prev_n && g->picked_words == prev_words) {
            break;
        }

        prev_n = g->npicked;
        prev_words = g->picked_words;

        if (pg_gen_build(g, &s) != 0) {
            pg_script_free(script);
            return -1;
        }

        words = s.word_count;
        diff = words > g->target ? words - g->target : g->target - words;

        if (diff < best) {
            pg_script_free(script);
            *script = s;
            best = diff;

        } else {
            pg_script_free(&s);
        }

        if (diff * 25 <= g->target) {
            break;
        }

        /*
         * The framing grows with the content (a line per turn), so the
         * miss is corrected by the share of content in the script.
         */

        budget += (long) (((double) g->target - (double) words)
                          * g->picked_words / (words ? words : 1));
    }

    /* still too long: the framing alone is too much for the target */

    if (!g->compact && script->word_count > g->target + g->target / 10) {
        g->compact = 1;
        goto again;
    }

    return 0;
}
