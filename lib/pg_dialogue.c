/*
 * podgen core: the built-in generator's dialogue: the five styles (deep
 * dive, brief, debate, interview, critique), the outline when there is
 * no source to quote, and the phrase tables of the framing.
 *
 * Every sentence of content is a sentence of the (normalized) source,
 * verbatim, so nothing is made up.  Only the framing is written here
 * (welcome, hand-overs, questions, recap, outro), and it states no facts:
 * it names the hosts, the topic and words that occur in the source.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_buf.h"
#include "pg_gen.h"
#include "pg_script.h"
#include "pg_script_int.h"


#define PG_SCRIPT_SECTION        3      /* content turns of a section */
#define PG_NOBODY                ((size_t) -1)


static const char *pg_gen_pick(pg_gen_t *g, const char **table, size_t n);
static const char *pg_gen_name(pg_gen_t *g, size_t h);
static void pg_gen_append(pg_gen_t *g, const char *s, size_t n);
static void pg_gen_phrase(pg_gen_t *g, const char *tpl, const char *name,
    const char *text);
static void pg_gen_ask(pg_gen_t *g, const char *tpl, size_t asker,
    size_t target);
static void pg_gen_unit(pg_gen_t *g, size_t u);
static const char *pg_gen_unit_term(pg_gen_t *g, size_t u, int remember);
static const char *pg_gen_section_title(pg_gen_t *g, uint32_t sec);
static int pg_gen_unit_has(pg_gen_t *g, size_t u, int what);
static void pg_gen_say(pg_gen_t *g, size_t speaker);
static size_t pg_gen_other(pg_gen_t *g, size_t a, size_t b, size_t k);
static const char *pg_gen_names(pg_gen_t *g, size_t skip, int roles);
static void pg_gen_intro(pg_gen_t *g, const char *with_one,
    const char *with_many, const char *what);
static void pg_gen_greetings(pg_gen_t *g, const char **table, size_t n);
static void pg_gen_position(pg_gen_t *g, size_t h, size_t unit,
    int debate);
static void pg_gen_outro(pg_gen_t *g, const char *with_names,
    const char *solo);
static void pg_gen_deep_dive(pg_gen_t *g);
static void pg_gen_brief(pg_gen_t *g);
static void pg_gen_debate(pg_gen_t *g);
static void pg_gen_interview(pg_gen_t *g);
static void pg_gen_critique(pg_gen_t *g);
static void pg_gen_outline(pg_gen_t *g);


/*
 * The framing.  In a phrase "%n" is the name of the host spoken to; when
 * a host speaks alone (one host) ", %n" and "%n, " vanish.  "%t" is a
 * text: a topic, a list of names or of words.  No phrase states a fact.
 */

static const char  *pg_welcomes[] = {
    "Hello, and welcome to the show.",
    "Hi everyone, and welcome to the show.",
    "Welcome to the show, everyone."
};

static const char  *pg_greetings[] = {
    "Thanks, %n. Glad to be here.",
    "Hi everyone.",
    "Great to be here.",
    "Hello, everyone.",
    "Happy to be here."
};

static const char  *pg_dd_first[] = {
    "%n, where should we start?",
    "%n, what caught your eye first?",
    "%n, what should listeners know first?"
};

static const char  *pg_dd_next[] = {
    "%n, what stood out to you next?",
    "%n, what else should we dig into?",
    "%n, where does it go from here?",
    "%n, what comes next?",
    "%n, what did you take from the next part?"
};

/* a question about what the next turn is about: "%t" is its key term */
static const char  *pg_dd_asks[] = {
    "%n, what about %t?",
    "And what's the story with %t, %n?",
    "%n, what should we know about %t?",
    "Tell me about %t, %n.",
    "So what about %t, %n?"
};

static const char  *pg_dd_sections[] = {
    "Next, %t. %n, what did you find?",
    "Let's turn to %t. %n?",
    "Now, %t. %n, walk us through it.",
    "On to %t. %n, what stood out?"
};

/* the listener's side of a turn that goes on: no question */
static const char  *pg_go_ons[] = {
    "Go on, %n.",
    "Interesting.",
    "Okay.",
    "I see.",
    "Right, keep going.",
    "Huh."
};

static const char  *pg_attributions[] = {
    "In the author's words.",
    "The author puts it like this.",
    "Here is the author, in the first person."
};

static const char  *pg_answers[] = {
    "", "Sure.", "Well.", "", "Right.", "Good question."
};

/* one host alone: hand-overs to the next part, never a question */
static const char  *pg_solo_sections[] = {
    "Next, %t.",
    "Now to %t.",
    "Then there's %t.",
    "Let's turn to %t."
};

static const char  *pg_brief_next[] = {
    "Next.", "Also.", "Another point.", "Then."
};

static const char  *pg_db_greetings[] = {
    "Ready to argue it out, %n.",
    "Happy to take the other side.",
    "Let's do it.",
    "Looking forward to it."
};

static const char  *pg_db_counters[] = {
    "I'd push back on that, %n.",
    "I see it differently, %n.",
    "Fair point, %n, but consider this.",
    "That's only half the picture, %n.",
    "Let me challenge that, %n.",
    "I'm not so sure, %n."
};

static const char  *pg_iv_greetings[] = {
    "Thanks for having me, %n.",
    "Glad to be here, %n.",
    "Happy to be here."
};

static const char  *pg_iv_asks[] = {
    "%n, what about %t?",
    "What should listeners know about %t, %n?",
    "%n, can you tell us about %t?",
    "And what's the story with %t, %n?",
    "How would you explain %t to a newcomer, %n?",
    "%n, what's worth knowing about %t?",
    "Where do you start with %t, %n?",
    "%n, what surprised you about %t?"
};

static const char  *pg_db_contexts[] = {
    "Some context first, %n.",
    "Adding to that, %n.",
    "Here's what the source says, %n.",
    "Let me add this, %n."
};

static const char  *pg_cr_solo_doubts[] = {
    "That one needs evidence. Here's another claim to check.",
    "That would need more data. This one needs support too.",
    "That may be too broad. Consider this, too."
};

static const char  *pg_cr_plain[] = {
    "That part describes more than it claims, %n. Here's another.",
    "Fair enough as description, %n. This one, too.",
    "Nothing to doubt there, %n. Next."
};

static const char  *pg_iv_questions[] = {
    "%n, what comes next?",
    "%n, can you tell us more?",
    "What's the most important detail here, %n?",
    "%n, how would you explain the next part?",
    "What else should listeners know, %n?",
    "%n, where does this lead?",
    "Why does this matter, %n?"
};

static const char  *pg_cr_strengths[] = {
    "That's a strong point, %n. Here's another.",
    "Agreed, %n. I'd add this.",
    "Good one, %n. This also works."
};

static const char  *pg_cr_claims[] = {
    "Take this claim.",
    "This one, for example.",
    "Consider this."
};

static const char  *pg_cr_doubts[] = {
    "What's the evidence for that, %n? Here's another claim to check.",
    "%n, does that hold up without more data? I'd also question this.",
    "Is that too broad, %n? This one needs support too.",
    "Who would disagree with that, %n? Consider this, too."
};

static const char  *pg_cr_verdicts[] = {
    "My verdict: worth reading, with claims worth checking.",
    "My verdict: convincing in parts, but I'd want sources.",
    "My verdict: clear and useful, with caveats.",
    "My verdict: a good start that needs more evidence.",
    "My verdict: stronger on description than on proof.",
    "My verdict: I'd recommend it, and read it critically.",
    "My verdict: solid, though some claims go unsupported."
};

static const char  *pg_cr_short_verdicts[PG_NELEMS(pg_cr_verdicts)] = {
    "My verdict: worth reading.",
    "My verdict: it needs sources.",
    "My verdict: convincing in parts.",
    "My verdict: useful, with caveats.",
    "My verdict: a good start.",
    "My verdict: read it critically.",
    "My verdict: mostly solid."
};

static const char  *pg_outline_questions[] = {
    "First question. What is %t?",
    "Next. Why does it matter, and to whom?",
    "And how did it come about?",
    "What do people often get wrong about it?",
    "Finally. What are the open questions?"
};


int
pg_gen_build(pg_gen_t *g, pg_script_t *script)
{
    char           *t;
    size_t          i, j;
    pg_sentence_t  *s;

    memset(script, 0, sizeof(pg_script_t));

    g->nsegs = 0;
    g->last = PG_NOBODY;
    g->npicks = 0;
    g->nasked = 0;
    g->personal = 0;
    g->line.len = 0;
    g->nkey_terms = 0;

    if (g->nranks == 0) {
        pg_gen_outline(g);

    } else {
        pg_gen_group(g);

        for (i = 0; i < g->npicked; i++) {
            s = &g->sents[g->picked[i]];

            for (j = 0; j < s->nterms; j++) {
                pg_gen_offer(g, g->ids[s->first + j], g->nsents >= 4,
                             g->key_terms, &g->nkey_terms,
                             PG_SCRIPT_KEY_TERMS);
            }
        }

        switch (g->req->style) {

        case PG_STYLE_BRIEF:
            pg_gen_brief(g);
            break;

        case PG_STYLE_DEBATE:
            pg_gen_debate(g);
            break;

        case PG_STYLE_INTERVIEW:
            pg_gen_interview(g);
            break;

        case PG_STYLE_CRITIQUE:
            pg_gen_critique(g);
            break;

        default:
            pg_gen_deep_dive(g);
            break;
        }
    }

    script->segments = g->segs;
    script->nsegments = g->nsegs;

    g->segs = NULL;
    g->nsegs = 0;
    g->segs_cap = 0;

    script->title = strdup(g->title);

    if (g->failed || script->title == NULL
        || pg_script_copy_hosts(script, g->hosts, g->nhosts) != 0)
    {
        pg_script_free(script);
        return -1;
    }

    for (i = 0; i < script->nsegments; i++) {
        t = script->segments[i].text;
        script->word_count += pg_script_count_words(t, strlen(t));
    }

    return 0;
}


#define PG_PICK(g, table)  pg_gen_pick(g, table, PG_NELEMS(table))


/*
 * A variant of a phrase: varies along the script and between sources;
 * each table keeps its own turn, so that tables used together do not
 * come back in lockstep.
 */
static const char *
pg_gen_pick(pg_gen_t *g, const char **table, size_t n)
{
    size_t  i;

    for (i = 0; i < g->npicks; i++) {
        if (g->picks[i].table == table) {
            break;
        }
    }

    if (i == g->npicks) {
        if (i == PG_NELEMS(g->picks)) {
            return table[g->seed % n];
        }

        g->picks[i].table = table;
        g->picks[i].next = (unsigned) i;
        g->npicks++;
    }

    return table[(g->seed + g->picks[i].next++) % n];
}


static const char *
pg_gen_name(pg_gen_t *g, size_t h)
{
    return g->hosts[h].name;
}


static void
pg_gen_append(pg_gen_t *g, const char *s, size_t n)
{
    if (!g->failed && pg_buf_append(&g->line, s, n) != 0) {
        g->failed = 1;
    }
}


/* Adds a phrase to the turn being written; see the phrase tables. */
static void
pg_gen_phrase(pg_gen_t *g, const char *tpl, const char *name,
    const char *text)
{
    int          upper;
    char         c;
    const char  *p, *s;

    if (tpl[0] == '\0') {
        return;
    }

    if (g->line.len) {
        pg_gen_append(g, " ", 1);
    }

    upper = 0;

    for (p = tpl; *p; p++) {

        if (name == NULL && strncmp(p, ", %n", 4) == 0) {
            p += 3;
            continue;
        }

        if (name == NULL && strncmp(p, "%n, ", 4) == 0) {
            p += 3;
            upper = 1;
            continue;
        }

        if (p[0] == '%' && (p[1] == 'n' || p[1] == 't')) {
            s = p[1] == 'n' ? name : text;

            if (s) {
                pg_gen_append(g, s, strlen(s));
            }

            p++;
            continue;
        }

        c = *p;

        if (upper && c >= 'a' && c <= 'z') {
            c -= 'a' - 'A';
        }

        upper = 0;
        pg_gen_append(g, &c, 1);
    }
}


/* A question to a host by name; to oneself (a solo show) without it. */
static void
pg_gen_ask(pg_gen_t *g, const char *tpl, size_t asker, size_t target)
{
    pg_gen_phrase(g, tpl, target != asker ? pg_gen_name(g, target) : NULL,
                  NULL);
}


/* The sentences of a content turn, verbatim. */
static void
pg_gen_unit(pg_gen_t *g, size_t u)
{
    char            c;
    size_t          i;
    pg_unit_t      *unit;
    pg_sentence_t  *s;

    unit = &g->units[u];
    g->personal = 0;

    for (i = unit->first; i < unit->first + unit->n; i++) {
        s = &g->sents[g->picked[i]];

        /*
         * The author's "I" is not the host's: a run of first-person
         * sentences is said to be quoted.
         */

        if (s->personal && !g->personal) {
            pg_gen_phrase(g, PG_PICK(g, pg_attributions), NULL, NULL);
        }

        g->personal = s->personal;

        if (g->line.len) {
            pg_gen_append(g, " ", 1);
        }

        pg_gen_append(g, g->text + s->off, s->len);

        /* a piece cut from a run-on sentence: end it for the voice */

        c = g->text[s->off + s->len - 1];

        if (s->open && PG_ALNUM(c)) {
            pg_gen_append(g, ".", 1);
        }
    }
}


/* A word to ask about: a plain word, not a verb form or a number. */
static int
pg_gen_askable(pg_gen_t *g, const pg_term_t *t)
{
    char          w[32];
    size_t        i, n;
    const char   *s, **p;

    static const char  *verbs[] = {
        "said", "says", "told", "tells", "made", "makes", "take", "takes",
        "took", "gave", "give", "gives", "went", "goes", "came", "come",
        "comes", "found", "finds", "became", "become", "becomes", "seem",
        "seems", "include", "includes", "used", "uses", "have", "keep",
        "keeps", "kept", "know", "knew", "known", "think", "thought",
        "want", "wants", "need", "needs", "like", "also", "many", "much",
        "more", "most", "other", "such", "even", "well", "just", "longer",
        "shorter", "later", "earlier", "larger", "smaller", "higher",
        "lower", "better", "works", "spread", "rise", "tend", "times",
        "hold", "holds", "play", "part", "kind", "sort", "ways", "lot",
        "thing", "things", "number", "same", "whole", "first", "last",
        "next", "rest", NULL
    };

    n = t->surface_len;
    s = g->text + t->surface;

    if (n < 4 || n >= sizeof(w)) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!(PG_ALPHA(s[i]) || (s[i] == '-' && i > 0 && i + 1 < n))) {
            return 0;
        }

        w[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + ('a' - 'A') : s[i];
    }

    w[n] = '\0';

    if ((n > 5 && strcmp(w + n - 3, "ing") == 0)
        || (n > 4 && strcmp(w + n - 2, "ed") == 0)
        || (n > 4 && strcmp(w + n - 2, "ly") == 0))
    {
        return 0;
    }

    for (p = verbs; *p; p++) {
        if (strcmp(w, *p) == 0) {
            return 0;
        }
    }

    return 1;
}


/*
 * What a content turn is about, to ask about it: the heaviest askable
 * term of its first sentence not asked about lately; NULL if none.  The
 * surface is in g->term, lower-cased if it was capitalized only because
 * it started a sentence.
 */
static const char *
pg_gen_unit_term(pg_gen_t *g, size_t u, int remember)
{
    int             proper;
    char            c;
    size_t          j, k;
    double          w, bw;
    uint32_t        id, best;
    pg_term_t      *t;
    pg_sentence_t  *s;

    s = &g->sents[g->picked[g->units[u].first]];
    best = (uint32_t) -1;
    bw = 0.0;

    for (j = 0; j < s->nterms; j++) {
        id = g->ids[s->first + j];
        t = &g->terms[id];

        for (k = 0; k < g->nasked; k++) {
            if (g->asked[k] == id) {
                break;
            }
        }

        /* a thing or a name, not an adjective or a verb */

        proper = t->inner && g->text[t->surface] >= 'A'
                 && g->text[t->surface] <= 'Z';

        w = t->weight * (t->inner ? 1.0 : 0.7) * (t->tf > 1 ? 1.0 : 0.8);

        if (w <= bw || k < g->nasked || !(t->noun || proper)
            || !pg_gen_askable(g, t))
        {
            continue;
        }

        bw = w;
        best = id;
    }

    if (best == (uint32_t) -1) {
        return NULL;
    }

    if (remember) {
        if (g->nasked == PG_NELEMS(g->asked)) {
            memmove(g->asked, g->asked + 1,
                    (PG_NELEMS(g->asked) - 1) * sizeof(uint32_t));
            g->nasked--;
        }

        g->asked[g->nasked++] = best;
    }

    if (pg_gen_phrase_of(g, s, best, &g->term) == 0) {
        return (const char *) g->term.data;
    }

    t = &g->terms[best];
    g->term.len = 0;

    if (pg_buf_append(&g->term, g->text + t->surface, t->surface_len) != 0
        || pg_buf_append(&g->term, "", 1) != 0)
    {
        g->failed = 1;
        return NULL;
    }

    c = (char) g->term.data[0];

    if (!t->inner && c >= 'A' && c <= 'Z'
        && !(g->term.data[1] >= 'A' && g->term.data[1] <= 'Z'))
    {
        g->term.data[0] = (unsigned char) (c + ('a' - 'A'));
    }

    return (const char *) g->term.data;
}


/*
 * A section's title as the hosts say it, in g->tmp2: without a final
 * colon or period; NULL for none or one too long to say.
 */
static const char *
pg_gen_section_title(pg_gen_t *g, uint32_t sec)
{
    size_t       len;
    const char  *s;

    if (sec == 0 || sec > g->nsections) {
        return NULL;
    }

    s = g->sections[sec - 1].title;
    len = strlen(s);

    while (len && (s[len - 1] == ':' || s[len - 1] == '.'
                   || s[len - 1] == ' '))
    {
        len--;
    }

    if (len == 0 || len > 80) {
        return NULL;
    }

    g->tmp2.len = 0;

    if (pg_buf_append(&g->tmp2, s, len) != 0
        || pg_buf_append(&g->tmp2, "", 1) != 0)
    {
        g->failed = 1;
        return NULL;
    }

    return (const char *) g->tmp2.data;
}


#define PG_UNIT_STANCE  1
#define PG_UNIT_CLAIM   2

static int
pg_gen_unit_has(pg_gen_t *g, size_t u, int what)
{
    size_t          i;
    pg_unit_t      *unit;
    pg_sentence_t  *s;

    unit = &g->units[u];

    for (i = unit->first; i < unit->first + unit->n; i++) {
        s = &g->sents[g->picked[i]];

        if ((what == PG_UNIT_STANCE && s->stance)
            || (what == PG_UNIT_CLAIM && s->claim))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The turn being written becomes a segment of speaker; when the same host
 * spoke last it joins that segment, so no host has two turns in a row
 * (except in a solo show, where the turns stay apart).
 */
static void
pg_gen_say(pg_gen_t *g, size_t speaker)
{
    char          *p;
    size_t         len, cap;
    pg_segment_t  *seg;

    if (g->failed || g->line.len == 0) {
        return;
    }

    /* (a chapter waiting starts with the next segment) */

    if (g->nsegs && g->nhosts > 1 && g->last == speaker) {
        seg = &g->segs[g->nsegs - 1];
        len = strlen(seg->text);

        p = realloc(seg->text, len + 1 + g->line.len + 1);
        if (p == NULL) {
            g->failed = 1;
            return;
        }

        p[len] = ' ';
        memcpy(p + len + 1, g->line.data, g->line.len);
        p[len + 1 + g->line.len] = '\0';
        seg->text = p;

        g->line.len = 0;
        return;
    }

    if (g->nsegs == g->segs_cap) {
        cap = g->segs_cap ? g->segs_cap * 2 : 32;

        seg = realloc(g->segs, cap * sizeof(pg_segment_t));
        if (seg == NULL) {
            g->failed = 1;
            return;
        }

        g->segs = seg;
        g->segs_cap = cap;
    }

    p = malloc(g->line.len + 1);
    if (p == NULL) {
        g->failed = 1;
        return;
    }

    memcpy(p, g->line.data, g->line.len);
    p[g->line.len] = '\0';

    g->segs[g->nsegs].speaker = speaker;
    g->segs[g->nsegs].text = p;
    g->segs[g->nsegs].chapter = g->chapter;
    g->chapter = NULL;
    g->nsegs++;

    g->line.len = 0;
    g->last = speaker;
}


/*
 * A host other than a and b, taking turns with k; failing that one other
 * than a; failing that (a solo show) a.
 */
static size_t
pg_gen_other(pg_gen_t *g, size_t a, size_t b, size_t k)
{
    size_t  i, h;

    for (i = 0; i < g->nhosts; i++) {
        h = (k + i) % g->nhosts;

        if (h != a && h != b) {
            return h;
        }
    }

    for (i = 0; i < g->nhosts; i++) {
        h = (k + i) % g->nhosts;

        if (h != a) {
            return h;
        }
    }

    return a;
}


/*
 * "Sam", "Sam, our expert", "Sam, Jo and Kim": the hosts but skip, in
 * g->tmp; with roles, a role is named for a single other host, and only a
 * plain one ("expert", "guest", not "host").
 */
static const char *
pg_gen_names(pg_gen_t *g, size_t skip, int roles)
{
    int           plain;
    size_t        h, n, i, count;
    const char   *role;
    pg_buf_t     *b;

    b = &g->tmp;
    b->len = 0;
    count = g->nhosts - (skip < g->nhosts);
    n = 0;

    for (h = 0; h < g->nhosts; h++) {
        if (h == skip) {
            continue;
        }

        if (n > 0 && pg_buf_append_str(b, n + 1 == count ? " and " : ", ")
                     != 0)
        {
            g->failed = 1;
        }

        if (pg_buf_append_str(b, pg_gen_name(g, h)) != 0) {
            g->failed = 1;
        }

        n++;

        role = g->hosts[h].role;

        if (!roles || count != 1 || role == NULL
            || pg_script_same_name(role, "host")
            || strlen(role) > 32)
        {
            continue;
        }

        plain = 1;

        for (i = 0; role[i]; i++) {
            if (!(PG_ALPHA(role[i]) || role[i] == ' ' || role[i] == '-')) {
                plain = 0;
            }
        }

        if (plain && (pg_buf_append_str(b, ", our ") != 0
                      || pg_buf_append_str(b, role) != 0))
        {
            g->failed = 1;
        }
    }

    if (pg_buf_append(b, "", 1) != 0) {
        g->failed = 1;
        return "";
    }

    return (const char *) b->data;
}


/*
 * The next segment starts a chapter: the script's sections (the intro,
 * every PG_SCRIPT_SECTION content turns, the recap, the outro) are the
 * episode's chapters.  A title is one line of at most
 * PG_SCRIPT_CHAPTER_MAX bytes, its first letter a capital.
 */
static void
pg_gen_chapter(pg_gen_t *g, const char *title, size_t len)
{
    char    *c;
    size_t   i;

    if (g->failed || len == 0) {
        return;
    }

    if (len > PG_SCRIPT_CHAPTER_MAX) {
        len = PG_SCRIPT_CHAPTER_MAX;

        while (len > 0 && ((unsigned char) title[len] & 0xc0) == 0x80) {
            len--;
        }
    }

    c = malloc(len + 1);
    if (c == NULL) {
        g->failed = 1;
        return;
    }

    for (i = 0; i < len; i++) {
        c[i] = ((unsigned char) title[i] < 0x20) ? ' ' : title[i];
    }

    c[len] = '\0';

    if (c[0] >= 'a' && c[0] <= 'z') {
        c[0] = (char) (c[0] - 'a' + 'A');
    }

    free(g->chapter);
    g->chapter = c;
}


/* A section begins with content turn u: a chapter named for its term. */
static void
pg_gen_section(pg_gen_t *g, size_t u)
{
    int          n;
    char         part[32];
    const char  *t;

    if (u % PG_SCRIPT_SECTION != 0) {
        return;
    }

    t = pg_gen_unit_term(g, u, 0);

    if (t != NULL) {
        pg_gen_chapter(g, t, strlen(t));
        return;
    }

    n = snprintf(part, sizeof(part), "Part %zu", u / PG_SCRIPT_SECTION + 1);
    pg_gen_chapter(g, part, (size_t) n);
}


/* Host 0 welcomes the listeners, names the others and the subject. */
static void
pg_gen_intro(pg_gen_t *g, const char *with_one, const char *with_many,
    const char *what)
{
    pg_gen_chapter(g, "Introduction", sizeof("Introduction") - 1);

    if (g->compact) {
        pg_gen_phrase(g, "Welcome.", NULL, NULL);

        if (g->nhosts == 1) {
            pg_gen_phrase(g, "I'm %t.", NULL, pg_gen_name(g, 0));

        } else {
            pg_gen_phrase(g, "I'm %n, with %t.", pg_gen_name(g, 0),
                          pg_gen_names(g, 0, 0));
        }

        if (what) {
            pg_gen_phrase(g, "Our subject: %t.", NULL, g->subject);
        }

        return;
    }

    pg_gen_phrase(g, PG_PICK(g, pg_welcomes), NULL, NULL);

    if (g->nhosts == 1) {
        pg_gen_phrase(g, "I'm %t.", NULL, pg_gen_name(g, 0));

    } else {
        pg_gen_phrase(g, g->nhosts == 2 ? with_one : with_many,
                      pg_gen_name(g, 0), pg_gen_names(g, 0, 1));
    }

    if (what) {
        pg_gen_phrase(g, what, NULL, g->subject);
    }

    if (g->focus) {
        pg_gen_phrase(g, "We'll pay special attention to %t.", NULL,
                      g->focus);
    }
}


static void
pg_gen_greetings(pg_gen_t *g, const char **table, size_t n)
{
    size_t  h;

    if (g->compact) {
        return;
    }

    /* a panel greets once, not five times in a row */

    if (g->nhosts > 3) {
        pg_gen_phrase(g, "Hello from all of us, %n.", pg_gen_name(g, 0),
                      NULL);
        pg_gen_say(g, 1);
        return;
    }

    for (h = 1; h < g->nhosts; h++) {
        pg_gen_phrase(g, pg_gen_pick(g, table, n), pg_gen_name(g, 0), NULL);
        pg_gen_say(g, h);
    }
}


/* Host 0 says goodbye, thanking the others by name. */
static void
pg_gen_outro(pg_gen_t *g, const char *with_names, const char *solo)
{
    pg_gen_chapter(g, "Wrap-up", sizeof("Wrap-up") - 1);

    if (g->compact) {
        pg_gen_phrase(g, "Thanks for listening.", NULL, NULL);

    } else if (g->nhosts > 1 && with_names) {
        pg_gen_phrase(g, with_names, NULL, pg_gen_names(g, 0, 0));

    } else {
        pg_gen_phrase(g, solo, NULL, NULL);
    }

    pg_gen_say(g, 0);
}


/*
 * Deep dive: sections of three turns, each with its presenter, who is
 * handed over to by name and asked follow-up questions by the others;
 * then a recap and the outro.
 */
static void
pg_gen_deep_dive(pg_gen_t *g)
{
    int          start;
    size_t       u, p, asker, r, part, since;
    uint32_t     sec, prev;
    const char  *t, *title;

    pg_gen_intro(g, "I'm %n, and with me today is %t.",
                 "I'm %n, and with me today are %t.",
                 "Today we're taking a deep dive into %t.");
    pg_gen_say(g, 0);
    pg_gen_greetings(g, pg_greetings, PG_NELEMS(pg_greetings));

    p = 0;
    part = 0;
    since = 0;
    prev = 0;

    for (u = 0; u < g->nunits; u++) {
        pg_gen_section(g, u);

        t = pg_gen_unit_term(g, u, 1);

        /*
         * A part starts with each titled section of the document, and
         * every few turns within one; a titled one is handed over to by
         * its title ("Next, the incident review").
         */

        sec = g->sents[g->picked[g->units[u].first]].section;
        title = (sec != prev) ? pg_gen_section_title(g, sec) : NULL;
        prev = sec;

        if (title != NULL) {
            /* the document's own title names the chapter */
            pg_gen_chapter(g, title, strlen(title));
        }

        start = u == 0 || title != NULL || since == PG_SCRIPT_SECTION;

        if (start) {
            since = 0;
            part += u > 0;
        }

        since++;

        if (g->nhosts == 1) {

            /* alone: a hand-over to each part, no questions to oneself */

            if (start && (title || (u > 0 && t))) {
                pg_gen_phrase(g, u == 0 ? "First, %t." :
                                          PG_PICK(g, pg_solo_sections),
                              NULL, title ? title : t);
            }

        } else if (start) {

            /* a part: the first host hands over, by name and subject */

            p = (1 + part) % g->nhosts;
            asker = p != 0 ? 0 : pg_gen_other(g, p, p, u);

            if (title) {
                pg_gen_phrase(g, u == 0 ? "%n, let's start with %t."
                                        : PG_PICK(g, pg_dd_sections),
                              pg_gen_name(g, p), title);

            } else if (u == 0 || t == NULL) {
                pg_gen_ask(g, u == 0 ? PG_PICK(g, pg_dd_first)
                                     : PG_PICK(g, pg_dd_next),
                           asker, p);

            } else {
                pg_gen_phrase(g, PG_PICK(g, pg_dd_sections),
                              pg_gen_name(g, p), t);
            }

            pg_gen_say(g, asker);

        } else if (since == 2 && t) {

            /* a question the next turn answers: it is about its term */

            asker = pg_gen_other(g, p, PG_NOBODY, u);
            pg_gen_phrase(g, PG_PICK(g, pg_dd_asks), pg_gen_name(g, p), t);
            pg_gen_say(g, asker);

            pg_gen_phrase(g, PG_PICK(g, pg_answers), NULL, NULL);

        } else {
            asker = pg_gen_other(g, p, PG_NOBODY, u);
            pg_gen_phrase(g, PG_PICK(g, pg_go_ons), pg_gen_name(g, p), NULL);
            pg_gen_say(g, asker);
        }

        pg_gen_unit(g, u);
        pg_gen_say(g, p);
    }

    /*
     * The recap, when there is something to recap, by another host than
     * the last one and host 0, who closes.
     */

    if (g->nunits >= 3 && !g->compact) {
        r = pg_gen_other(g, g->last, 0, g->nunits);

        pg_gen_chapter(g, "Recap", sizeof("Recap") - 1);
        pg_gen_phrase(g, "Let's recap.", NULL, NULL);

        if (g->nkey_terms >= 2
            && pg_gen_terms_text(g, g->key_terms, g->nkey_terms, &g->tmp)
               == 0)
        {
            pg_gen_phrase(g, "Today we talked about %t.", NULL,
                          (const char *) g->tmp.data);

        } else {
            pg_gen_phrase(g, "That covers the main points.", NULL, NULL);
        }

        pg_gen_say(g, r);
    }

    pg_gen_outro(g, "That's it for this deep dive. Thanks, %t, and thanks "
                 "for listening.",
                 "That's it for this deep dive. Thanks for listening.");
}


/* Brief: a short intro, the points in quick turns, a one-line outro. */
static void
pg_gen_brief(pg_gen_t *g)
{
    size_t  u, p;

    pg_gen_intro(g, "I'm %n, here with %t.", "I'm %n, here with %t.",
                 "Here's the brief on %t.");
    pg_gen_say(g, 0);

    for (u = 0; u < g->nunits; u++) {
        pg_gen_section(g, u);

        p = (u + 1) % g->nhosts;

        if (g->nhosts > 1 && u > 0 && u % 3 == 0 && g->last != p) {
            pg_gen_phrase(g, "Thanks, %n.", pg_gen_name(g, g->last), NULL);
        }

        if (u == 0) {
            pg_gen_phrase(g, "First.", NULL, NULL);

        } else if (u + 1 == g->nunits) {
            pg_gen_phrase(g, "Finally.", NULL, NULL);

        } else {
            pg_gen_phrase(g, PG_PICK(g, pg_brief_next), NULL, NULL);
        }

        pg_gen_unit(g, u);
        pg_gen_say(g, p);
    }

    pg_gen_outro(g, NULL, "That's the brief. Thanks for listening.");
}


/*
 * A host's closing position in a debate: the side they argued, named by
 * what their last turn was about; in a discussion (a source that takes no
 * sides) a take, not a side.
 */
static void
pg_gen_position(pg_gen_t *g, size_t h, size_t unit, int debate)
{
    const char  *t;

    if (g->compact) {
        pg_gen_phrase(g, debate ? (h % 2 ? "I'm not convinced."
                                         : "I'm convinced.")
                                : "A lot to think about.", NULL, NULL);
        return;
    }

    t = unit != PG_NOBODY ? pg_gen_unit_term(g, unit, 0) : NULL;

    if (!debate) {
        pg_gen_phrase(g, t ? "My take: what stays with me is %t."
                           : "My take: there is a lot here to think about.",
                      NULL, t);
        return;
    }

    if (t) {
        pg_gen_phrase(g, h % 2 ? "My position: I'm not persuaded, for the "
                                 "reasons I gave on %t."
                               : "My position: I stand by the point on %t.",
                      NULL, t);
        return;
    }

    pg_gen_phrase(g, h % 2 ? "My position: the source leaves too many "
                             "questions open."
                           : "My position: the source makes a stronger case "
                             "than it first seems.", NULL, NULL);
}


/*
 * Debate: the sides are the source's own: turns with sentences that
 * contrast or take a stand ("but", "critics", "argued") are answered from
 * the other side ("I'd push back on that, Sam"), the others add context;
 * each host closes with a position.  A source with fewer than two such
 * turns is not staged as a fight: it is a discussion, and said to be one.
 */
static void
pg_gen_debate(pg_gen_t *g)
{
    int     debate;
    size_t  u, h, p, prev, asker, stances, said[PG_SCRIPT_MAX_HOSTS];

    stances = 0;

    for (u = 0; u < g->nunits; u++) {
        stances += pg_gen_unit_has(g, u, PG_UNIT_STANCE);
    }

    debate = stances >= 2;

    for (h = 0; h < PG_SCRIPT_MAX_HOSTS; h++) {
        said[h] = PG_NOBODY;
    }

    pg_gen_intro(g, "I'm %n, and with me today is %t.",
                 "I'm %n, and with me today are %t.",
                 debate ? "Today we're debating %t, taking turns on each "
                          "side."
                        : "Today we're discussing %t. The source doesn't "
                          "argue much either way, so this is a discussion "
                          "more than a debate.");
    pg_gen_say(g, 0);
    pg_gen_greetings(g, pg_db_greetings, PG_NELEMS(pg_db_greetings));

    p = 1 % g->nhosts;

    if (g->nhosts > 1) {
        asker = p != 0 ? 0 : pg_gen_other(g, p, p, 0);
        pg_gen_ask(g, "%n, why don't you open?", asker, p);
        pg_gen_say(g, asker);
    }

    prev = PG_NOBODY;

    for (u = 0; u < g->nunits; u++) {
        pg_gen_section(g, u);

        p = (u + 1) % g->nhosts;

        if (g->nhosts == 1) {
            if (pg_gen_unit_has(g, u, PG_UNIT_STANCE)) {
                pg_gen_phrase(g, u % 2 ? "On the other side." : "One side of "
                              "it.", NULL, NULL);
            }

        } else if (u == 0) {
            pg_gen_phrase(g, "Let me open with this.", NULL, NULL);

        } else if (debate && pg_gen_unit_has(g, u, PG_UNIT_STANCE)) {
            pg_gen_phrase(g, PG_PICK(g, pg_db_counters),
                          prev != p ? pg_gen_name(g, prev) : NULL, NULL);

        } else {
            pg_gen_phrase(g, PG_PICK(g, pg_db_contexts),
                          prev != p ? pg_gen_name(g, prev) : NULL, NULL);
        }

        pg_gen_unit(g, u);
        pg_gen_say(g, p);
        said[p] = u;
        prev = p;
    }

    pg_gen_phrase(g, g->compact ? "Let's wrap up."
                                : (g->nhosts == 1
                                   ? "Let's wrap up, and here is where I "
                                     "land."
                                   : "Let's wrap up. Where does each of us "
                                     "land?"),
                  NULL, NULL);
    pg_gen_say(g, 0);

    for (h = 1; h < g->nhosts; h++) {
        pg_gen_position(g, h, said[h], debate);
        pg_gen_say(g, h);
    }

    pg_gen_position(g, 0, said[0], debate);
    pg_gen_outro(g, NULL, "Thanks for listening.");
}


/* Interview: host 0 asks, the others answer in turn, from the source. */
static void
pg_gen_interview(pg_gen_t *g)
{
    size_t       u, guest;
    uint32_t     sec, prev;
    const char  *q, *t, *title;

    pg_gen_intro(g, "I'm %n, and today I'm talking with %t.",
                 "I'm %n, and today I'm talking with %t.",
                 "We're discussing %t.");
    pg_gen_say(g, 0);
    pg_gen_greetings(g, pg_iv_greetings, PG_NELEMS(pg_iv_greetings));

    prev = 0;

    for (u = 0; u < g->nunits; u++) {
        pg_gen_section(g, u);

        guest = g->nhosts > 1 ? 1 + u % (g->nhosts - 1) : 0;
        t = pg_gen_unit_term(g, u, 1);

        /* a titled section of the document: asked about by its title */

        sec = g->sents[g->picked[g->units[u].first]].section;
        title = (sec != prev) ? pg_gen_section_title(g, sec) : NULL;
        prev = sec;

        if (title != NULL) {
            /* the document's own title names the chapter */
            pg_gen_chapter(g, title, strlen(title));
        }

        if (title) {
            t = title;
        }

        if (g->nhosts == 1) {

            /* no guest: the host tells it, without asking themself */

            if (u > 0 && t) {
                pg_gen_phrase(g, PG_PICK(g, pg_solo_sections), NULL, t);
            }

            pg_gen_unit(g, u);
            pg_gen_say(g, 0);
            continue;
        }

        if (u == 0) {
            q = t ? "%n, let's start at the beginning. What should people "
                    "know about %t?"
                  : "%n, let's start at the beginning. What should people "
                    "know first?";

        } else if (title) {
            q = "%n, let's turn to %t. What should people know?";

        } else if (u + 1 == g->nunits && g->nunits > 2) {
            q = "%n, one last question. What should listeners take away?";

        } else {
            q = t ? PG_PICK(g, pg_iv_asks) : PG_PICK(g, pg_iv_questions);
        }

        pg_gen_phrase(g, q, pg_gen_name(g, guest), t);
        pg_gen_say(g, 0);

        pg_gen_phrase(g, PG_PICK(g, pg_answers), NULL, NULL);
        pg_gen_unit(g, u);
        pg_gen_say(g, guest);
    }

    pg_gen_outro(g, "That's all we have time for. Thank you, %t, and "
                 "thanks for listening.",
                 "That's all we have time for. Thanks for listening.");
}


/*
 * Critique: the first half of the picked sentences as strengths, the
 * second half as claims to question, then each host's verdict.
 */
static void
pg_gen_critique(pg_gen_t *g)
{
    size_t        u, h, p, prev, asker, strengths;
    const char  **verdicts;

    pg_gen_intro(g, "I'm %n, and with me today is %t.",
                 "I'm %n, and with me today are %t.",
                 "Today we're reviewing %t: what works, what doesn't, and "
                 "our verdict.");
    pg_gen_say(g, 0);
    pg_gen_greetings(g, pg_greetings, PG_NELEMS(pg_greetings));

    strengths = (g->nunits + 1) / 2;
    prev = PG_NOBODY;

    for (u = 0; u < g->nunits; u++) {
        pg_gen_section(g, u);

        p = (u + 1) % g->nhosts;

        if (u == 0) {
            asker = (g->last != PG_NOBODY && g->last != p)
                    ? g->last : pg_gen_other(g, p, p, 0);

            pg_gen_ask(g, g->nhosts == 1
                          ? "Let's start with the strengths, with what works."
                          : "%n, let's start with the strengths. What works?",
                       asker, p);
            pg_gen_say(g, asker);

        } else if (u == strengths) {
            pg_gen_ask(g, g->nhosts == 1
                          ? "Now for the weak spots: the claims that give me "
                            "pause."
                          : "Now for the weak spots. %n, which claims give "
                            "you pause?", prev, p);
            pg_gen_say(g, prev);

            pg_gen_phrase(g, PG_PICK(g, pg_cr_claims), NULL, NULL);

        } else if (u < strengths) {
            pg_gen_phrase(g, PG_PICK(g, pg_cr_strengths),
                          prev != p ? pg_gen_name(g, prev) : NULL, NULL);

        } else if (!pg_gen_unit_has(g, u - 1, PG_UNIT_CLAIM)) {

            /* a description, a definition, a memory: nothing to doubt */

            pg_gen_phrase(g, PG_PICK(g, pg_cr_plain),
                          prev != p ? pg_gen_name(g, prev) : NULL, NULL);

        } else {
            pg_gen_phrase(g, g->nhosts == 1 ? PG_PICK(g, pg_cr_solo_doubts)
                                            : PG_PICK(g, pg_cr_doubts),
                          prev != p ? pg_gen_name(g, prev) : NULL, NULL);
        }

        pg_gen_unit(g, u);
        pg_gen_say(g, p);
        prev = p;
    }

    pg_gen_phrase(g, "Time for a verdict.", NULL, NULL);
    pg_gen_say(g, 0);

    /* one verdict each, no two the same (there are more than hosts) */

    verdicts = g->compact ? pg_cr_short_verdicts : pg_cr_verdicts;

    for (h = 1; h <= g->nhosts; h++) {
        pg_gen_phrase(g, verdicts[(g->seed + h) % PG_NELEMS(pg_cr_verdicts)],
                      NULL, NULL);

        if (h < g->nhosts) {
            pg_gen_say(g, h);
        }
    }

    pg_gen_outro(g, NULL, "Thanks for listening.");
}


/*
 * No source to quote: an outline, said to be one, of questions about the
 * topic for the hosts to explore; no answers, since there are no facts.
 */
static void
pg_gen_outline(pg_gen_t *g)
{
    size_t       i, n;
    const char  *q[PG_NELEMS(pg_outline_questions) + 1], *extra;

    pg_gen_intro(g, "I'm %n, and with me today is %t.",
                 "I'm %n, and with me today are %t.", NULL);

    if (g->req->source_text) {
        pg_gen_phrase(g, "The source text we were given had no sentences "
                      "we could use, so this episode is an outline, not a "
                      "summary.", NULL, NULL);

    } else {
        pg_gen_phrase(g, "No source material was given for this episode, "
                      "so this is an outline, not a summary.", NULL, NULL);
    }

    pg_gen_phrase(g, "Here are some questions about %t for us to explore.",
                  NULL, g->subject);
    pg_gen_say(g, 0);

    switch (g->req->style) {

    case PG_STYLE_DEBATE:
        extra = "What are the strongest arguments for and against it?";
        break;

    case PG_STYLE_INTERVIEW:
        extra = "Who would be the best expert to ask about it?";
        break;

    case PG_STYLE_CRITIQUE:
        extra = "Which claims about it deserve the most scrutiny?";
        break;

    default:
        extra = NULL;
        break;
    }

    n = 0;

    for (i = 0; i < PG_NELEMS(pg_outline_questions); i++) {

        if (g->req->style == PG_STYLE_BRIEF && (i == 2 || i == 3)) {
            continue;
        }

        if (i + 1 == PG_NELEMS(pg_outline_questions) && extra) {
            q[n++] = extra;
        }

        q[n++] = pg_outline_questions[i];
    }

    for (i = 0; i < n; i++) {
        pg_gen_phrase(g, q[i], NULL, g->subject);
        pg_gen_say(g, (i + 1) % g->nhosts);
    }

    pg_gen_phrase(g, "That's the outline. With source material, we could "
                  "answer these questions properly. Thanks for listening.",
                  NULL, NULL);
    pg_gen_say(g, 0);
}
