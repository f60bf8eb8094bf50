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
static size_t pg_gen_token(const char *s, size_t len, size_t *pos,
    size_t *start);
static size_t pg_gen_key(const char *tok, size_t n, char *key);
static int pg_gen_stop_word(const char *key);
static int pg_gen_anaphora(const char *tok, size_t n);
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
    char       *clean;
    size_t      i, nfocus, ntopic;
    pg_span_t  *spans;
    const char  *src;

    src = g->req->source_text ? g->req->source_text : "";
    clean = NULL;

    /* Markdown and plain text cleaned first (here, on the thread pool):
     * headings are the title, never sentences */

    if (g->req->source_text
        && pg_script_clean_source(src, &clean, &g->source_title) != 0)
    {
        return -1;
    }

    if (clean) {
        src = clean;
    }

    g->text = pg_text_normalize(src, strlen(src), &g->text_len);
    free(clean);

    if (g->text == NULL) {
        return -1;
    }

    n = pg_text_split(g->text, g->text_len, PG_SCRIPT_SENTENCE_MAX, 0,
                      &spans);
    if (n < 0) {
        return -1;
    }

    g->nslots = 1024;
    g->slots = calloc(g->nslots, sizeof(uint32_t));
    g->sents = calloc(n ? (size_t) n : 1, sizeof(pg_sentence_t));

    if (g->slots == NULL || g->sents == NULL) {
        free(spans);
        return -1;
    }

    for (i = 0; i < (size_t) n; i++) {
        if (pg_gen_sentence(g, i, &spans[i]) != 0) {
            free(spans);
            return -1;
        }

        g->nsents++;
    }

    free(spans);

    nfocus = pg_gen_mark(g, g->req->focus, 1);
    ntopic = pg_gen_mark(g, g->req->topic, 0);

    pg_gen_score(g, nfocus, ntopic);

    return pg_gen_rank(g);
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

    while ((n = pg_gen_token(s, span->len, &pos, &start)) != 0) {

        if (initial) {
            sent->anaphora = pg_gen_anaphora(s + start, n);
        }

        k = pg_gen_key(s + start, n, key);

        if (k == 0) {
            initial = 0;
            continue;
        }

        id = pg_gen_term(g, key, k, 1);
        if (id < 0) {
            return -1;
        }

        t = &g->terms[id];
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

    sent->nterms = (uint32_t) (g->nids - sent->first);

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
                  : (n ? g->subject + sizeof("a text about ") - 1
                       : "Our topic");

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

    } else if (g->source_title) {
        /* the document's own heading */
        if (pg_script_short_text(g->source_title, strlen(g->source_title),
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


/*
 * The best sentences up to budget words, greedily: one that would
 * overshoot is passed over for a shorter one further down; then in the
 * order of the source.
 */
static void
pg_gen_select(pg_gen_t *g, size_t budget)
{
    size_t          r, j, slack, words, best;
    pg_sentence_t  *s;

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

    max = g->req->style == PG_STYLE_BRIEF ? 1 : 2;
    g->nunits = 0;
    words = 0;
    u = NULL;
    prev = NULL;

    for (i = 0; i < g->npicked; i++) {
        s = &g->sents[g->picked[i]];

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
