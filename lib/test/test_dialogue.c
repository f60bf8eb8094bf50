/*
 * Unit tests of the built-in generator's dialogue (pg_dialogue.c and the
 * sentence cues of pg_analysis.c) as a listener hears it: styles that pick
 * their own material, questions the next turn answers, a framing that
 * does not repeat itself, a monologue for one host, one greeting for a
 * panel, pronoun-led sentences kept with the one before them, doubts only
 * where there is a claim.
 */

#define _GNU_SOURCE             /* strcasestr() */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "pg_json.h"
#include "pg_script.h"
#include "pg_text.h"


static char *
read_file(const char *path)
{
    long   n;
    char  *p;
    FILE  *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        printf("# cannot open %s (run from the repository root)\n", path);
        exit(1);
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    p = malloc((size_t) n + 1);
    if (p == NULL || fread(p, 1, (size_t) n, f) != (size_t) n) {
        exit(1);
    }

    p[n] = '\0';
    fclose(f);

    return p;
}


static int
make(const char *source, pg_style_t style, size_t words, size_t nhosts,
    pg_script_t *s)
{
    static char          *names[] = { "Ava", "Ben", "Cleo", "Dev", "Eli",
                                      "Fay" };
    size_t                i;
    pg_script_request_t   req;

    memset(&req, 0, sizeof(pg_script_request_t));
    req.source_text = (char *) source;
    req.language = "en";
    req.style = style;
    req.target_words = words;
    req.nhosts = nhosts;

    for (i = 0; i < nhosts; i++) {
        req.hosts[i].name = names[i];
    }

    return pg_script_generate(&req, s);
}


/* The sentences of a script, split at . ! ? followed by a space. */
typedef struct {
    char    *text[2048];
    size_t   seg[2048];
    size_t   n;
} sentences_t;


static void
split(const pg_script_t *s, sentences_t *out)
{
    char        *p, *q, *t;
    size_t       i;

    out->n = 0;

    for (i = 0; i < s->nsegments; i++) {
        t = strdup(s->segments[i].text);

        for (p = t; *p && out->n < 2048; p = q) {
            for (q = p; *q; q++) {
                if ((*q == '.' || *q == '!' || *q == '?') && q[1] == ' ') {
                    q++;
                    break;
                }
            }

            out->text[out->n] = strndup(p, q - p);
            out->seg[out->n] = i;
            out->n++;

            while (*q == ' ') {
                q++;
            }
        }

        free(t);
    }
}


static void
split_free(sentences_t *out)
{
    size_t  i;

    for (i = 0; i < out->n; i++) {
        free(out->text[i]);
    }

    out->n = 0;
}


/* A sentence of the source, quoted: long and found verbatim. */
static int
quoted(const char *norm, const char *sentence)
{
    return strlen(sentence) > 40 && strstr(norm, sentence) != NULL;
}


static double
overlap(const char *source, const char *norm, pg_style_t style, size_t words)
{
    size_t        i, j, n, same;
    pg_script_t   a, b;
    sentences_t  *sa, *sb;

    sa = calloc(1, sizeof(sentences_t));
    sb = calloc(1, sizeof(sentences_t));

    make(source, PG_STYLE_DEEP_DIVE, words, 2, &a);
    make(source, style, words, 2, &b);
    split(&a, sa);
    split(&b, sb);

    n = 0;
    same = 0;

    for (i = 0; i < sb->n; i++) {
        if (!quoted(norm, sb->text[i])) {
            continue;
        }

        n++;

        for (j = 0; j < sa->n; j++) {
            if (strcmp(sa->text[j], sb->text[i]) == 0) {
                same++;
                break;
            }
        }
    }

    split_free(sa);
    split_free(sb);
    free(sa);
    free(sb);
    pg_script_free(&a);
    pg_script_free(&b);

    return n ? (double) same / n : 1.0;
}


static void
test_styles_select(const char *all, const char *norm)
{
    double  d, c;
    size_t  w;

    for (w = 300; w <= 600; w += 300) {
        d = overlap(all, norm, PG_STYLE_DEBATE, w);
        c = overlap(all, norm, PG_STYLE_CRITIQUE, w);

        ok(d < 0.5, "debate, %zu words: its own material (%.2f of its "
           "quotes also in the deep dive)", w, d);
        ok(c < 0.5, "critique, %zu words: its own material (%.2f)", w, c);
    }
}


/* The framing: what is left of a script once the quotes are taken out. */
static size_t
max_framing_4gram(const pg_script_t *s, const char *norm)
{
    char         *words[8192], *p, *w;
    size_t        i, j, n, best, count;
    sentences_t  *ss;

    ss = calloc(1, sizeof(sentences_t));
    split(s, ss);
    n = 0;

    for (i = 0; i < ss->n; i++) {
        if (quoted(norm, ss->text[i]) || strstr(norm, ss->text[i])) {
            continue;
        }

        for (p = ss->text[i]; (w = strtok(p, " ,.?!")) && n < 8192;
             p = NULL)
        {
            words[n++] = w;
        }

        /* a sentence boundary breaks a 4-gram */
        if (n < 8192) {
            words[n++] = "|";
        }
    }

    best = 0;

    for (i = 0; i + 3 < n; i++) {
        if (strcmp(words[i], "|") == 0 || strcmp(words[i + 1], "|") == 0
            || strcmp(words[i + 2], "|") == 0
            || strcmp(words[i + 3], "|") == 0)
        {
            continue;
        }

        count = 0;

        for (j = 0; j + 3 < n; j++) {
            count += strcmp(words[i], words[j]) == 0
                     && strcmp(words[i + 1], words[j + 1]) == 0
                     && strcmp(words[i + 2], words[j + 2]) == 0
                     && strcmp(words[i + 3], words[j + 3]) == 0;
        }

        if (count > best) {
            best = count;
        }
    }

    split_free(ss);
    free(ss);

    return best;
}


static void
test_framing(const char *all, const char *norm)
{
    size_t       k, m;
    pg_script_t  s;

    for (k = 0; k < 5; k++) {
        make(all, (pg_style_t) k, 900, 2, &s);
        m = max_framing_4gram(&s, norm);
        ok(m <= 3, "style %zu, 900 words: no 4-gram of the framing more "
           "than 3 times (at most %zu)", k, m);
        pg_script_free(&s);
    }
}


/* The term a question asks about: "what about the brain?" -> "brain". */
static int
question_term(const char *q, char *term, size_t size)
{
    size_t       n;
    const char  *p, *e;

    p = strstr(q, " about ");
    if (p) {
        p += 7;

    } else if ((p = strstr(q, "story with ")) != NULL) {
        p += 11;

    } else {
        return 0;
    }

    if (strncmp(p, "the ", 4) == 0) {
        p += 4;
    }

    for (e = p; *e && (isalpha((unsigned char) *e) || *e == '-'); e++) {
        /* void */
    }

    n = e - p;

    if (n == 0 || n >= size) {
        return 0;
    }

    memcpy(term, p, n);
    term[n] = '\0';

    return 1;
}


static void
test_questions(const char *source, const char *name)
{
    char          term[64], *next;
    size_t        i, k, asked, answered, sures, real;
    pg_script_t   s;
    pg_style_t    styles[] = { PG_STYLE_DEEP_DIVE, PG_STYLE_INTERVIEW };

    for (k = 0; k < 2; k++) {
        make(source, styles[k], 900, 2, &s);
        asked = 0;
        answered = 0;
        sures = 0;
        real = 0;

        for (i = 0; i + 1 < s.nsegments; i++) {
            next = s.segments[i + 1].text;

            if (strncmp(next, "Sure.", 5) == 0
                || strncmp(next, "Good question.", 14) == 0)
            {
                sures++;
                real += strchr(s.segments[i].text, '?') != NULL
                        || strstr(s.segments[i].text, "Tell me about")
                           != NULL;
            }

            if ((strchr(s.segments[i].text, '?') == NULL
                 && strstr(s.segments[i].text, "Tell me about") == NULL)
                || !question_term(s.segments[i].text, term, sizeof(term)))
            {
                continue;
            }

            asked++;

            if (strcasestr(next, term) != NULL) {
                answered++;
            }
        }

        ok(asked >= 3, "%s, %s: questions about what comes next (%zu)",
           name, k ? "interview" : "deep dive", asked);
        is_int(answered, asked, "%s, %s: each answered by a turn about it",
               name, k ? "interview" : "deep dive");
        is_int(real, sures, "%s, %s: \"Sure.\" only after a question",
               name, k ? "interview" : "deep dive");
        pg_script_free(&s);
    }
}


static void
test_monologue(const char *source)
{
    size_t       k, i, q;
    pg_script_t  s;

    for (k = 0; k < 5; k++) {
        make(source, (pg_style_t) k, 600, 1, &s);
        q = 0;

        for (i = 0; i < s.nsegments; i++) {
            q += strstr(s.segments[i].text, "? ") != NULL
                 || s.segments[i].text[strlen(s.segments[i].text) - 1]
                    == '?';
            q += strstr(s.segments[i].text, "Good question") != NULL
                 || strstr(s.segments[i].text, "Can you") != NULL;
        }

        is_int(q, 0, "style %zu, one host: no questions to themself", k);
        pg_script_free(&s);
    }
}


static void
test_panel(const char *source)
{
    size_t       k, i, greet;
    pg_script_t  s;

    for (k = 0; k < 5; k++) {

        /* a brief has no greetings: its points go round the panel */

        if (k == PG_STYLE_BRIEF) {
            continue;
        }

        make(source, (pg_style_t) k, 600, 6, &s);
        greet = 0;

        /* the turns between the welcome and the first host's next one */

        for (i = 1; i < s.nsegments && s.segments[i].speaker != 0; i++) {
            greet++;
        }

        is_int(greet, 1, "style %zu, six hosts: one greeting", k);
        ok(s.segments[2].speaker == 0,
           "style %zu, six hosts: the first host leads (segment 2 by %s)", k,
           s.hosts[s.segments[2].speaker].name);
        pg_script_free(&s);
    }
}


static void
test_discussion(void)
{
    pg_script_t  s;

    static const char  src[] =
        "The lighthouse stands on a granite ledge at the mouth of the "
        "harbour. Its tower is forty metres tall and painted white. The "
        "lamp room holds a large Fresnel lens made of glass prisms. "
        "Keepers climbed one hundred and twelve steps to reach the lamp. "
        "The light was converted to electricity in the last century. "
        "Today a small crew maintains the building and the fog signal. "
        "Visitors can tour the tower on summer weekends. The keeper's "
        "cottage is now a small museum about life on the ledge.";

    static const char  argued[] =
        "Supporters argued that the new bridge would bring trade to the "
        "town. Critics objected that the cost was far higher than "
        "promised. However, the council approved the plan in a close "
        "vote. Opponents warned that traffic would double on the old "
        "streets. The mayor insisted that the bridge would pay for "
        "itself within ten years. Yet independent engineers disputed "
        "the figures the council had used.";

    make(src, PG_STYLE_DEBATE, 300, 2, &s);
    ok(strstr(s.segments[0].text, "discussion") != NULL,
       "a source that takes no sides: said to be a discussion (%.200s)",
       s.segments[0].text);
    ok(strstr(s.segments[0].text, "debating") == NULL, "... not a debate");
    pg_script_free(&s);

    make(argued, PG_STYLE_DEBATE, 300, 2, &s);
    ok(strstr(s.segments[0].text, "debating") != NULL,
       "a source with sides: a debate");
    pg_script_free(&s);
}


static void
test_anaphora(void)
{
    size_t        i, j, bad;
    pg_script_t   s;
    sentences_t  *ss;

    static const char  src[] =
        "Marie Curie was born in Warsaw in 1867 and moved to Paris to "
        "study physics. She shared the Nobel Prize in Physics in 1903 "
        "with Pierre Curie and Henri Becquerel. The radium institute "
        "opened in Paris in 1914 with laboratories for physics and "
        "medicine. It trained many researchers who later led their own "
        "laboratories. Polonium was named after the country of her "
        "birth. This choice drew attention to a nation without a state "
        "of its own at the time. Radioactivity became a field of its "
        "own within a few decades of the first discoveries.";

    ss = calloc(1, sizeof(sentences_t));
    make(src, PG_STYLE_DEEP_DIVE, 120, 2, &s);
    split(&s, ss);
    bad = 0;

    for (i = 0; i < ss->n; i++) {
        if (strncmp(ss->text[i], "She ", 4) != 0
            && strncmp(ss->text[i], "It ", 3) != 0
            && strncmp(ss->text[i], "This ", 5) != 0)
        {
            continue;
        }

        /* the sentence before it in the script is the one before it in
         * the source, in the same turn */

        j = i - 1;

        if (i == 0 || ss->seg[j] != ss->seg[i]
            || strstr(src, ss->text[j]) == NULL
            || strstr(src, ss->text[j]) + strlen(ss->text[j]) + 1
               != strstr(src, ss->text[i]))
        {
            printf("# alone: %s\n", ss->text[i]);
            bad++;
        }
    }

    is_int(bad, 0, "a pronoun-led sentence comes with the one before it");
    split_free(ss);
    free(ss);
    pg_script_free(&s);
}


static void
test_critique_doubts(void)
{
    size_t       i, bad, doubts;
    pg_script_t  s;

    static const char  src[] =
        "I remember the first time I saw the harbour from the hill. "
        "My grandfather worked on the fishing boats for forty years. "
        "A breakwater is a wall built out into the sea to shelter a "
        "harbour. We used to walk along it on Sunday afternoons. "
        "The new terminal will double the number of ferries by 2030. "
        "It is the largest project the port has ever undertaken. "
        "Officials expect tourism to grow by thirty percent. "
        "The old fish market is the best preserved building in town.";

    make(src, PG_STYLE_CRITIQUE, 300, 2, &s);
    bad = 0;
    doubts = 0;

    for (i = 1; i < s.nsegments; i++) {
        if (strstr(s.segments[i].text, "evidence for that") == NULL
            && strstr(s.segments[i].text, "hold up without") == NULL
            && strstr(s.segments[i].text, "too broad") == NULL
            && strstr(s.segments[i].text, "Who would disagree") == NULL)
        {
            continue;
        }

        doubts++;

        /* what is doubted is the turn before */
        if (strstr(s.segments[i - 1].text, "I remember")
            || strstr(s.segments[i - 1].text, "My grandfather")
            || strstr(s.segments[i - 1].text, "We used to")
            || strstr(s.segments[i - 1].text, "A breakwater is"))
        {
            printf("# doubted: %s\n", s.segments[i - 1].text);
            bad++;
        }
    }

    is_int(bad, 0, "critique: no doubt cast on a memory or a definition "
           "(%zu doubts)", doubts);
    pg_script_free(&s);
}


static void
test_quotes_and_voices(void)
{
    int          whole, attributed, k;
    size_t       i;
    const char  *t, *q;
    pg_script_t  s;

    static const char  src[] =
        "The council met on Tuesday to discuss the harbour wall. \"We "
        "cannot wait another winter. The wall is failing,\" said Mayor "
        "Whitfield. She added that repairs would cost four million "
        "pounds.\n\nI grew up in the harbour town and walked along the "
        "wall every Sunday. My father worked on the boats for forty "
        "years.\n\nEngineers warned that the north section could "
        "collapse within two years. However, critics argued that the "
        "estimate was exaggerated. The council approved an emergency "
        "survey.";

    for (k = 0; k < 5; k++) {
        make(src, (pg_style_t) k, 250, 2, &s);
        whole = 0;
        attributed = 1;

        for (i = 0; i < s.nsegments; i++) {
            t = s.segments[i].text;

            if (strstr(t, "We cannot wait another winter.")) {
                whole = strstr(t, "The wall is failing,\" said Mayor "
                               "Whitfield.") != NULL;
            }

            q = strstr(t, "I grew up in the harbour town");

            if (q && !(q - t >= 20 && (strstr(t, "author") != NULL)
                       && strstr(t, "author") < q))
            {
                attributed = 0;
            }
        }

        ok(whole, "style %d: a quotation of two sentences stays whole, "
           "with its \"said\"", k);
        ok(attributed, "style %d: the author's first person is said to be "
           "the author's", k);
        pg_script_free(&s);
    }
}


static void
test_key_terms(void)
{
    size_t       i;
    int          bad;
    pg_script_t  s;

    static const char  src[] =
        "Prices rose 12 percent in 2024, and rents rose 9 percent. "
        "In 2024 the city said that rents rose fastest near the station. "
        "The council said that wages rose 3 percent in 2024. "
        "Tenants said that the rents rose again in the spring. "
        "The station district said that the rents rose most in 2024. "
        "Officials said the council would review the rents in 2025.";

    make(src, PG_STYLE_DEEP_DIVE, 200, 2, &s);
    bad = 0;

    for (i = 0; s.title[i]; i++) {
        bad += s.title[i] >= '0' && s.title[i] <= '9';
    }

    ok(bad == 0 && strstr(s.title, "percent") == NULL
       && strstr(s.title, "said") == NULL && strstr(s.title, "rose") == NULL,
       "key terms are things, not numbers or verbs (title \"%s\")",
       s.title);
    pg_script_free(&s);
}


static void
test_sections(void)
{
    int                   k;
    char                 *body, *all, *q;
    size_t                i, n;
    yajl_val              tree;
    pg_error_t            err;
    pg_script_t           s;
    pg_script_request_t   req;

    static const char  *styles[] = { "deep-dive", "interview" };
    static const char   src[] =
        "# The Lift Shaft Report\n\n"
        "## Background\n\n"
        "The old lift shaft was built in 1931 for a goods lift. It ran "
        "through all six floors of the warehouse.\n\n"
        "## The Incident Review\n\n"
        "In March a cable snapped while the cabin was empty. The brake "
        "held the cabin two metres above the basement floor.\n\n"
        "## Repairs\n\n"
        "Engineers replaced every cable and the brake assembly. The lift "
        "reopened in June after a full load test.\n";

    for (k = 0; k < 2; k++) {
        n = strlen(src) * 2 + 256;
        body = malloc(n);
        all = body;
        all += sprintf(all, "{\"style\":\"%s\",\"target_words\":300,"
                       "\"source_text\":\"", styles[k]);

        for (i = 0; src[i]; i++) {
            if (src[i] == '\n') {
                *all++ = '\\';
                *all++ = 'n';

            } else {
                *all++ = src[i];
            }
        }

        strcpy(all, "\"}");

        tree = pg_json_parse_object(body, strlen(body), PG_JSON_MAX_DEPTH,
                                    &err);
        memset(&req, 0, sizeof(req));
        ok(tree && pg_script_request_from_json(tree, 100000, &req, &err)
                   == 0, "%s with sections: parsed", styles[k]);
        is_int(req.nsections, 3, "%s: three titled sections kept",
               styles[k]);
        ok(pg_script_generate(&req, &s) == 0, "%s: generated", styles[k]);

        n = 0;

        for (i = 0; i < s.nsegments; i++) {
            n += strlen(s.segments[i].text) + 1;
        }

        all = calloc(1, n + 1);

        for (i = 0; i < s.nsegments; i++) {
            strcat(all, s.segments[i].text);
            strcat(all, "\n");
        }

        q = strstr(all, "The Incident Review");
        ok(q && q < strstr(all, "In March a cable snapped"),
           "%s: the section is handed over to by its title before its "
           "first sentence", styles[k]);
        q = strstr(all, "Repairs");
        ok(q && q < strstr(all, "Engineers replaced every cable"),
           "%s: and the next", styles[k]);
        ok(strstr(s.segments[0].text, "The Lift Shaft Report") != NULL,
           "%s: the intro names the document (%.160s)", styles[k],
           s.segments[0].text);
        ok(strstr(all, "## ") == NULL && strstr(all, "# The") == NULL,
           "%s: no heading marker is read out", styles[k]);

        free(all);
        free(body);
        pg_script_free(&s);
        pg_script_request_free(&req);
        yajl_tree_free(tree);
    }
}


int
main(void)
{
    char    *history, *sleep_text, *bread, *all, *norm;
    size_t   n, len;

    history = read_file("t/data/source-history.txt");
    sleep_text = read_file("t/data/source-sleep.txt");
    bread = read_file("t/data/source-bread.txt");

    n = strlen(history) + strlen(sleep_text) + strlen(bread) + 8;
    all = malloc(n);
    snprintf(all, n, "%s\n\n%s\n\n%s", history, sleep_text, bread);
    norm = pg_text_normalize(all, strlen(all), &len);

    test_styles_select(all, norm);
    test_framing(all, norm);
    test_questions(history, "history");
    test_questions(sleep_text, "sleep");
    test_questions(bread, "bread");
    test_monologue(history);
    test_panel(sleep_text);
    test_discussion();
    test_anaphora();
    test_critique_doubts();
    test_quotes_and_voices();
    test_key_terms();
    test_sections();

    free(history);
    free(sleep_text);
    free(bread);
    free(all);
    free(norm);

    return done_testing();
}
