/*
 * podgen core: podcast scripts.
 *
 * The built-in generator is extractive: every sentence of content in a
 * script is a sentence of the (normalized) source, verbatim, so nothing is
 * made up.  Only the framing is written here (welcome, hand-overs,
 * questions, recap, outro), and it states no facts: it names the hosts,
 * the topic and words that occur in the source.
 *
 * Analysis is linear in the source apart from sorting the sentences by
 * score; the dialogue is then built a few times, from at most a few
 * hundred sentences, until its length meets the word budget.
 */

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "pg_script.h"
#include "pg_text.h"


#define PG_SCRIPT_TEXT_MAX       500    /* characters of topic and focus */
#define PG_SCRIPT_FIELD_MAX      64     /* bytes of a voice or a role */
#define PG_SCRIPT_LANG_MAX       35     /* the longest sane BCP 47 tag */
#define PG_SCRIPT_WORDS_MIN      50
#define PG_SCRIPT_WORDS_MAX      5000
#define PG_SCRIPT_WORDS_DEFAULT  900

#define PG_SCRIPT_SENTENCE_MAX   480    /* bytes; longer sentences are cut */
#define PG_SCRIPT_TERM_MAX       32     /* longer tokens are not terms */
#define PG_SCRIPT_SHORT_MAX      80     /* a title; the topic in the text */
#define PG_SCRIPT_SURFACE_MAX    24     /* a word quoted in the framing */
#define PG_SCRIPT_KEY_TERMS      4      /* words named in a recap */
#define PG_SCRIPT_UNIT_WORDS     50     /* words of one content turn */
#define PG_SCRIPT_SECTION        3      /* content turns of a section */
#define PG_SCRIPT_ROUNDS         6      /* attempts at the word budget */
#define PG_SCRIPT_DUP_WORK       20000000  /* terms compared in a selection */

#define PG_LLM_REPLY_MAX         (4 * 1024 * 1024)
#define PG_LLM_TEXT_MAX          2000
#define PG_LLM_TURNS_MIN         2
#define PG_LLM_TURNS_MAX         400
#define PG_LLM_TITLE_MAX         200

#define PG_WORDS_PER_MINUTE      150.0

#define PG_NELEMS(a)             (sizeof(a) / sizeof((a)[0]))
#define PG_ALPHA(c)              (((c) >= 'a' && (c) <= 'z')                 \
                                  || ((c) >= 'A' && (c) <= 'Z'))
#define PG_ALNUM(c)              (PG_ALPHA(c) || ((c) >= '0' && (c) <= '9'))
#define PG_NOBODY                ((size_t) -1)


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
    unsigned                    phrase;

    /* the script being built */
    pg_segment_t               *segs;
    size_t                      nsegs;
    size_t                      segs_cap;
    size_t                      last;       /* the last speaker */
    pg_buf_t                    line;       /* the turn being written */
    pg_buf_t                    tmp;

    unsigned                    compact:1;  /* short framing: a small
                                               target */
    unsigned                    failed:1;   /* out of memory */
} pg_gen_t;


static int pg_script_trimmed_dup(const char *s, size_t len, char **out,
    pg_error_t *err);
static int pg_script_get_text(yajl_val obj, const char *key,
    size_t max_chars, size_t max_bytes, char **out, int *given,
    pg_error_t *err);
static int pg_script_parse_language(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err);
static int pg_script_parse_length(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err);
static int pg_script_parse_hosts(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err);
static int pg_script_parse_host(yajl_val h, size_t i,
    pg_script_request_t *req, pg_error_t *err);
static int pg_script_host_field(yajl_val h, const char *key,
    const char *param, char **out, pg_error_t *err);
static int pg_script_default_hosts(pg_script_request_t *req);
static int pg_script_speakable(const char *s);
static int pg_script_has_control(const char *s, size_t len);
static int pg_script_name_text(yajl_val v, const char *param, size_t max,
    const char **s, size_t *len, pg_error_t *err);
static int pg_script_same_name(const char *a, const char *b);
static void pg_script_oom(pg_error_t *err);
static int pg_script_utf8_cut(const char *s, size_t max);
static size_t pg_script_count_words(const char *s, size_t len);
static int pg_script_copy_hosts(pg_script_t *script, const pg_host_t *hosts,
    size_t nhosts);
static int pg_script_short_text(const char *s, size_t len, size_t max,
    char **out);
static void pg_script_title_case(char *s);
static int pg_script_gen_string(yajl_gen g, const char *s);

static int pg_gen_analyze(pg_gen_t *g);
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
static void pg_gen_offer(pg_gen_t *g, uint32_t id, int common,
    uint32_t *top, size_t *ntop, size_t k);
static int pg_gen_terms_text(pg_gen_t *g, const uint32_t *ids, size_t n,
    pg_buf_t *b);
static int pg_gen_describe(pg_gen_t *g);
static int pg_gen_near_duplicate(pg_gen_t *g, const pg_sentence_t *a,
    const pg_sentence_t *b);
static void pg_gen_select(pg_gen_t *g, size_t budget);
static void pg_gen_group(pg_gen_t *g);
static int pg_gen_fit(pg_gen_t *g, pg_script_t *script);
static int pg_gen_build(pg_gen_t *g, pg_script_t *script);
static void pg_gen_free(pg_gen_t *g);

static const char *pg_gen_pick(pg_gen_t *g, const char **table, size_t n);
static const char *pg_gen_name(pg_gen_t *g, size_t h);
static void pg_gen_append(pg_gen_t *g, const char *s, size_t n);
static void pg_gen_phrase(pg_gen_t *g, const char *tpl, const char *name,
    const char *text);
static void pg_gen_ask(pg_gen_t *g, const char *tpl, size_t asker,
    size_t target);
static void pg_gen_unit(pg_gen_t *g, size_t u);
static void pg_gen_say(pg_gen_t *g, size_t speaker);
static size_t pg_gen_other(pg_gen_t *g, size_t a, size_t b, size_t k);
static const char *pg_gen_names(pg_gen_t *g, size_t skip, int roles);
static void pg_gen_intro(pg_gen_t *g, const char *with_one,
    const char *with_many, const char *what);
static void pg_gen_greetings(pg_gen_t *g, const char **table, size_t n);
static void pg_gen_position(pg_gen_t *g, size_t h);
static void pg_gen_outro(pg_gen_t *g, const char *with_names,
    const char *solo);
static void pg_gen_deep_dive(pg_gen_t *g);
static void pg_gen_brief(pg_gen_t *g);
static void pg_gen_debate(pg_gen_t *g);
static void pg_gen_interview(pg_gen_t *g);
static void pg_gen_critique(pg_gen_t *g);
static void pg_gen_outline(pg_gen_t *g);

static void pg_llm_unfence(const char **json, size_t *len);
static void pg_llm_error(pg_error_t *err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));


static const char  *pg_script_styles[] = {
    "deep-dive", "brief", "debate", "interview", "critique"
};

static const char  *pg_script_engines[] = {
    "default", "builtin", "llm"
};


/* err->param must outlive the call: the names of nested fields */
static const char  *pg_script_host_params[PG_SCRIPT_MAX_HOSTS][4] = {
    { "hosts[0]", "hosts[0].name", "hosts[0].voice", "hosts[0].role" },
    { "hosts[1]", "hosts[1].name", "hosts[1].voice", "hosts[1].role" },
    { "hosts[2]", "hosts[2].name", "hosts[2].voice", "hosts[2].role" },
    { "hosts[3]", "hosts[3].name", "hosts[3].voice", "hosts[3].role" },
    { "hosts[4]", "hosts[4].name", "hosts[4].voice", "hosts[4].role" },
    { "hosts[5]", "hosts[5].name", "hosts[5].voice", "hosts[5].role" }
};


static const pg_host_t  pg_script_default_host[2] = {
    { "Alex", "alloy", "host" },
    { "Sam", "echo", "expert" }
};


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

static const char  *pg_dd_follow[] = {
    "%n, why does that matter?",
    "Can you unpack that a bit, %n?",
    "%n, what does that mean in practice?",
    "How does that fit the bigger picture, %n?",
    "%n, can you say more?",
    "And what follows from that, %n?"
};

static const char  *pg_reactions[] = {
    "", "Interesting.", "Okay.", "", "I see.", "Huh."
};

static const char  *pg_answers[] = {
    "", "Sure.", "Well.", "", "Right.", "Good question."
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

static const char  *pg_db_positions[][2] = {
    { "My position: the points about %t carry the most weight.",
      "My position: the source makes a stronger case than it first seems." },
    { "My position: the case around %t is weaker than it looks.",
      "My position: the source leaves too many questions open." }
};

static const char  *pg_iv_greetings[] = {
    "Thanks for having me, %n.",
    "Glad to be here, %n.",
    "Happy to be here."
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


/* ---- the request ------------------------------------------------------ */


int
pg_script_request_from_json(yajl_val obj, size_t max_source,
    pg_script_request_t *req, pg_error_t *err)
{
    size_t       i;
    int          topic_given, source_given, focus_given;
    const char  *style, *engine;

    memset(req, 0, sizeof(pg_script_request_t));
    req->style = PG_STYLE_DEEP_DIVE;
    req->target_words = PG_SCRIPT_WORDS_DEFAULT;

    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        pg_error_set(err, 400, NULL, "invalid_json",
                     "the request body must be a JSON object");
        return -1;
    }

    if (pg_script_get_text(obj, "topic", PG_SCRIPT_TEXT_MAX, 0,
                           &req->topic, &topic_given, err) != 0
        || pg_script_get_text(obj, "source_text", 0, max_source,
                              &req->source_text, &source_given, err) != 0)
    {
        goto failed;
    }

    if (req->topic == NULL && req->source_text == NULL) {

        if (source_given) {
            pg_error_set(err, 400, "source_text", "invalid_value",
                         "'source_text' is empty");

        } else if (topic_given) {
            pg_error_set(err, 400, "topic", "invalid_value",
                         "'topic' is empty");

        } else {
            pg_error_set(err, 400, "topic", "missing_required_parameter",
                         "you must provide 'topic' or 'source_text'");
        }

        goto failed;
    }

    if (req->topic == NULL && !pg_script_speakable(req->source_text)) {
        pg_error_set(err, 400, "source_text", "invalid_value",
                     "'source_text' has nothing that can be spoken");
        goto failed;
    }

    if (pg_script_get_text(obj, "focus", PG_SCRIPT_TEXT_MAX, 0,
                           &req->focus, &focus_given, err) != 0)
    {
        goto failed;
    }

    if (pg_json_get_string(obj, "style", 0, &style, err) != 0) {
        goto failed;
    }

    if (style) {
        for (i = 0; i < PG_NELEMS(pg_script_styles); i++) {
            if (strcmp(style, pg_script_styles[i]) == 0) {
                break;
            }
        }

        if (i == PG_NELEMS(pg_script_styles)) {
            pg_error_set(err, 400, "style", "invalid_value",
                         "unknown style '%.*s'; use deep-dive, brief, "
                         "debate, interview or critique",
                         pg_script_utf8_cut(style, 32), style);
            goto failed;
        }

        req->style = (pg_style_t) i;
    }

    if (pg_script_parse_length(obj, req, err) != 0
        || pg_script_parse_language(obj, req, err) != 0)
    {
        goto failed;
    }

    if (pg_json_get_string(obj, "engine", 0, &engine, err) != 0) {
        goto failed;
    }

    if (engine) {
        if (strcmp(engine, "builtin") == 0) {
            req->engine = PG_ENGINE_BUILTIN;

        } else if (strcmp(engine, "llm") == 0) {
            req->engine = PG_ENGINE_LLM;

        } else {
            pg_error_set(err, 400, "engine", "invalid_value",
                         "unknown engine '%.*s'; use builtin or llm",
                         pg_script_utf8_cut(engine, 32), engine);
            goto failed;
        }
    }

    if (pg_script_parse_hosts(obj, req, err) != 0) {
        goto failed;
    }

    return 0;

failed:

    pg_script_request_free(req);

    return -1;
}


void
pg_script_request_free(pg_script_request_t *req)
{
    size_t  i;

    free(req->topic);
    free(req->source_text);
    free(req->focus);
    free(req->language);

    for (i = 0; i < req->nhosts && i < PG_SCRIPT_MAX_HOSTS; i++) {
        free(req->hosts[i].name);
        free(req->hosts[i].voice);
        free(req->hosts[i].role);
    }

    memset(req, 0, sizeof(pg_script_request_t));
}


/*
 * An optional string member: checked, trimmed, NULL when absent or blank
 * (*given tells them apart).  Limits in characters or bytes, 0 for none.
 */
static int
pg_script_get_text(yajl_val obj, const char *key, size_t max_chars,
    size_t max_bytes, char **out, int *given, pg_error_t *err)
{
    size_t       len, n;
    const char  *s;

    *out = NULL;
    *given = 0;

    if (pg_json_get_string(obj, key, 0, &s, err) != 0) {
        return -1;
    }

    if (s == NULL) {
        return 0;
    }

    *given = 1;
    len = strlen(s);

    /* the body was valid UTF-8, but an escape may have made it less so */

    if (!pg_utf8_valid(s, len)) {
        pg_error_set(err, 400, key, "invalid_value",
                     "'%s' is not valid UTF-8 text", key);
        return -1;
    }

    if (max_bytes && len > max_bytes) {
        pg_error_set(err, 400, key, "string_above_max_length",
                     "'%s' is %zu bytes long; the maximum is %zu",
                     key, len, max_bytes);
        return -1;
    }

    if (max_chars) {
        n = pg_utf8_length(s, len);

        if (n > max_chars) {
            pg_error_set(err, 400, key, "string_above_max_length",
                         "'%s' is %zu characters long; the maximum is %zu",
                         key, n, max_chars);
            return -1;
        }
    }

    return pg_script_trimmed_dup(s, len, out, err);
}


/* A copy without surrounding ASCII whitespace; NULL when nothing is left. */
static int
pg_script_trimmed_dup(const char *s, size_t len, char **out, pg_error_t *err)
{
    char  *p;

    while (len && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) {
        s++;
        len--;
    }

    while (len && (s[len - 1] == ' '
                   || (s[len - 1] >= '\t' && s[len - 1] <= '\r')))
    {
        len--;
    }

    *out = NULL;

    if (len == 0) {
        return 0;
    }

    p = malloc(len + 1);
    if (p == NULL) {
        pg_script_oom(err);
        return -1;
    }

    memcpy(p, s, len);
    p[len] = '\0';
    *out = p;

    return 0;
}


static int
pg_script_parse_length(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err)
{
    int          present;
    double       d;
    const char  *length;

    if (pg_json_get_string(obj, "length", 0, &length, err) != 0) {
        return -1;
    }

    if (length) {
        if (strcmp(length, "short") == 0) {
            req->target_words = 300;

        } else if (strcmp(length, "medium") == 0) {
            req->target_words = 900;

        } else if (strcmp(length, "long") == 0) {
            req->target_words = 2000;

        } else {
            pg_error_set(err, 400, "length", "invalid_value",
                         "unknown length '%.*s'; use short, medium or "
                         "long", pg_script_utf8_cut(length, 32), length);
            return -1;
        }
    }

    if (pg_json_get_number(obj, "target_words", &d, &present, err) != 0) {
        return -1;
    }

    if (!present) {
        return 0;
    }

    if (d != floor(d)) {
        pg_error_set(err, 400, "target_words", "invalid_value",
                     "'target_words' must be an integer");
        return -1;
    }

    if (d < PG_SCRIPT_WORDS_MIN || d > PG_SCRIPT_WORDS_MAX) {
        pg_error_set(err, 400, "target_words", "invalid_value",
                     "'target_words' must be between %d and %d",
                     PG_SCRIPT_WORDS_MIN, PG_SCRIPT_WORDS_MAX);
        return -1;
    }

    req->target_words = (size_t) d;

    return 0;
}


/*
 * A language tag, "en", "pt-BR": letters, digits and dashes, stored in
 * lower case since tags are case-insensitive and the canonical form must
 * not tell "EN" from "en".
 */
static int
pg_script_parse_language(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err)
{
    char        *p;
    size_t       len, i;
    const char  *lang;

    if (pg_json_get_string(obj, "language", 0, &lang, err) != 0) {
        return -1;
    }

    if (lang == NULL) {
        lang = "en";
    }

    len = strlen(lang);

    for (i = 0; i < len; i++) {
        if (!((lang[i] >= 'a' && lang[i] <= 'z')
              || (lang[i] >= 'A' && lang[i] <= 'Z')
              || (lang[i] >= '0' && lang[i] <= '9')
              || (lang[i] == '-' && i > 0)))
        {
            break;
        }
    }

    if (len == 0 || len > PG_SCRIPT_LANG_MAX || i < len) {
        pg_error_set(err, 400, "language", "invalid_value",
                     "'language' must be a language tag such as \"en\"");
        return -1;
    }

    p = malloc(len + 1);
    if (p == NULL) {
        pg_script_oom(err);
        return -1;
    }

    for (i = 0; i <= len; i++) {
        p[i] = (lang[i] >= 'A' && lang[i] <= 'Z') ? lang[i] + ('a' - 'A')
                                                  : lang[i];
    }

    req->language = p;

    return 0;
}


static int
pg_script_parse_hosts(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err)
{
    size_t    i, n;
    yajl_val  v;

    v = pg_json_get(obj, "hosts");

    if (v == NULL) {
        if (pg_script_default_hosts(req) != 0) {
            pg_script_oom(err);
            return -1;
        }

        return 0;
    }

    if (!YAJL_IS_ARRAY(v)) {
        pg_error_set(err, 400, "hosts", "invalid_type",
                     "'hosts' must be an array of objects");
        return -1;
    }

    n = v->u.array.len;

    if (n == 0 || n > PG_SCRIPT_MAX_HOSTS) {
        pg_error_set(err, 400, "hosts", "invalid_value",
                     "'hosts' must have 1 to %d entries; it has %zu",
                     PG_SCRIPT_MAX_HOSTS, n);
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (pg_script_parse_host(v->u.array.values[i], i, req, err) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
pg_script_parse_host(yajl_val h, size_t i, pg_script_request_t *req,
    pg_error_t *err)
{
    size_t        j, len;
    yajl_val      v;
    const char   *name, *param, **params;
    pg_host_t    *host;

    params = pg_script_host_params[i];

    if (!YAJL_IS_OBJECT(h)) {
        pg_error_set(err, 400, params[0], "invalid_type",
                     "'%s' must be an object", params[0]);
        return -1;
    }

    param = params[1];
    v = pg_json_get(h, "name");

    if (v == NULL) {
        pg_error_set(err, 400, param, "missing_required_parameter",
                     "you must provide '%s'", param);
        return -1;
    }

    if (pg_script_name_text(v, param, PG_SCRIPT_NAME_MAX, &name, &len, err)
        != 0)
    {
        return -1;
    }

    /* the host is counted now so that a failure below frees it */

    host = &req->hosts[i];
    req->nhosts = i + 1;

    if (pg_script_trimmed_dup(name, len, &host->name, err) != 0) {
        return -1;
    }

    if (host->name == NULL) {
        pg_error_set(err, 400, param, "invalid_value",
                     "'%s' is empty", param);
        return -1;
    }

    /* an LLM's speakers are matched regardless of case */

    for (j = 0; j < i; j++) {
        if (pg_script_same_name(req->hosts[j].name, host->name)) {
            pg_error_set(err, 400, param, "invalid_value",
                         "host names must be unique; '%s' is used twice",
                         host->name);
            return -1;
        }
    }

    if (pg_script_host_field(h, "voice", params[2], &host->voice, err) != 0
        || pg_script_host_field(h, "role", params[3], &host->role, err) != 0)
    {
        return -1;
    }

    return 0;
}


/*
 * A name, voice or role: a string of at most max bytes of UTF-8 without
 * control characters.  0 (*s, *len set) or -1.
 */
static int
pg_script_name_text(yajl_val v, const char *param, size_t max,
    const char **s, size_t *len, pg_error_t *err)
{
    if (!YAJL_IS_STRING(v)) {
        pg_error_set(err, 400, param, "invalid_type",
                     "'%s' must be a string", param);
        return -1;
    }

    *s = YAJL_GET_STRING(v);
    *len = strlen(*s);

    if (*len > max) {
        pg_error_set(err, 400, param, "string_above_max_length",
                     "'%s' is %zu bytes long; the maximum is %d",
                     param, *len, (int) max);
        return -1;
    }

    if (!pg_utf8_valid(*s, *len) || pg_script_has_control(*s, *len)) {
        pg_error_set(err, 400, param, "invalid_value",
                     "'%s' must be UTF-8 text without control characters",
                     param);
        return -1;
    }

    return 0;
}


/* An optional voice or role: 1..64 bytes of UTF-8 without controls. */
static int
pg_script_host_field(yajl_val h, const char *key, const char *param,
    char **out, pg_error_t *err)
{
    size_t       len;
    yajl_val     v;
    const char  *s;

    *out = NULL;

    v = pg_json_get(h, key);
    if (v == NULL) {
        return 0;
    }

    if (pg_script_name_text(v, param, PG_SCRIPT_FIELD_MAX, &s, &len, err)
        != 0)
    {
        return -1;
    }

    if (pg_script_trimmed_dup(s, len, out, err) != 0) {
        return -1;
    }

    if (*out == NULL) {
        pg_error_set(err, 400, param, "invalid_value",
                     "'%s' is empty", param);
        return -1;
    }

    return 0;
}


static int
pg_script_default_hosts(pg_script_request_t *req)
{
    size_t  i;

    for (i = 0; i < PG_NELEMS(pg_script_default_host); i++) {
        req->nhosts = i + 1;

        req->hosts[i].name = strdup(pg_script_default_host[i].name);
        req->hosts[i].voice = strdup(pg_script_default_host[i].voice);
        req->hosts[i].role = strdup(pg_script_default_host[i].role);

        if (req->hosts[i].name == NULL || req->hosts[i].voice == NULL
            || req->hosts[i].role == NULL)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * Whether text has anything a voice could say: a letter or digit now, or
 * after normalization (accented letters).  The slow path is taken only by
 * text without a single ASCII letter or digit.
 */
static int
pg_script_speakable(const char *s)
{
    int      found;
    char    *norm;
    size_t   i, len;

    for (i = 0; s[i]; i++) {
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
            || (s[i] >= '0' && s[i] <= '9'))
        {
            return 1;
        }
    }

    norm = pg_text_normalize(s, i, &len);
    if (norm == NULL) {
        /* out of memory: let the generator deal with it */
        return 1;
    }

    found = 0;

    for (i = 0; i < len && !found; i++) {
        found = (norm[i] >= 'a' && norm[i] <= 'z')
                || (norm[i] >= 'A' && norm[i] <= 'Z')
                || (norm[i] >= '0' && norm[i] <= '9');
    }

    free(norm);

    return found;
}


/* C0 controls, DEL, and C1 controls (U+0080..U+009F, "\xc2\x80".."\x9f") */
static int
pg_script_has_control(const char *s, size_t len)
{
    size_t               i;
    const unsigned char  *p;

    p = (const unsigned char *) s;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f
            || (p[i] == 0xc2 && i + 1 < len && p[i + 1] < 0xa0))
        {
            return 1;
        }
    }

    return 0;
}


/* ASCII case-insensitive equality; the C library's depends on the locale */
static int
pg_script_same_name(const char *a, const char *b)
{
    unsigned char  ca, cb;

    for ( ;; ) {
        ca = (unsigned char) *a++;
        cb = (unsigned char) *b++;

        if (ca >= 'A' && ca <= 'Z') {
            ca += 'a' - 'A';
        }

        if (cb >= 'A' && cb <= 'Z') {
            cb += 'a' - 'A';
        }

        if (ca != cb) {
            return 0;
        }

        if (ca == '\0') {
            return 1;
        }
    }
}


/*
 * How much of s to quote in a message, at most max bytes, not cutting a
 * UTF-8 sequence: messages end up in JSON.
 */
static int
pg_script_utf8_cut(const char *s, size_t max)
{
    size_t  n;

    n = strlen(s);

    if (n <= max) {
        return (int) n;
    }

    for (n = max; n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80; n--) {
        /* void */
    }

    return (int) n;
}


static void
pg_script_oom(pg_error_t *err)
{
    pg_error_set(err, 500, NULL, "server_error", "out of memory");
    err->type = "server_error";
}


int
pg_script_request_canonical(const pg_script_request_t *req, pg_buf_t *out)
{
    int       rc;
    size_t    i, n;
    yajl_gen  g;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    n = req->nhosts < PG_SCRIPT_MAX_HOSTS ? req->nhosts : PG_SCRIPT_MAX_HOSTS;

#define PG_KEY(k)  pg_script_gen_string(g, k)

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_KEY("topic") || pg_script_gen_string(g, req->topic)
         || PG_KEY("source_text") || pg_script_gen_string(g, req->source_text)
         || PG_KEY("focus") || pg_script_gen_string(g, req->focus)
         || PG_KEY("language")
         || pg_script_gen_string(g, req->language ? req->language : "en")
         || PG_KEY("style")
         || pg_script_gen_string(g, pg_script_styles[req->style
                                   < PG_NELEMS(pg_script_styles)
                                   ? req->style : 0])
         || PG_KEY("target_words")
         || yajl_gen_integer(g, (long long) req->target_words)
            != yajl_gen_status_ok
         || PG_KEY("engine")
         || pg_script_gen_string(g, pg_script_engines[req->engine
                                   < PG_NELEMS(pg_script_engines)
                                   ? req->engine : 0])
         || PG_KEY("hosts")
         || yajl_gen_array_open(g) != yajl_gen_status_ok;

    for (i = 0; i < n && !rc; i++) {
        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || PG_KEY("name") || pg_script_gen_string(g, req->hosts[i].name)
             || PG_KEY("voice") || pg_script_gen_string(g, req->hosts[i].voice)
             || PG_KEY("role") || pg_script_gen_string(g, req->hosts[i].role)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

#undef PG_KEY

    rc = rc
         || yajl_gen_array_close(g) != yajl_gen_status_ok
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || pg_json_gen_buf(g, out) != 0;

    yajl_gen_free(g);

    return rc ? -1 : 0;
}


/* A string, or null for NULL; 0 or 1 on failure (to chain with ||). */
static int
pg_script_gen_string(yajl_gen g, const char *s)
{
    if (s == NULL) {
        return yajl_gen_null(g) != yajl_gen_status_ok;
    }

    return yajl_gen_string(g, (const unsigned char *) s, strlen(s))
           != yajl_gen_status_ok;
}


/* ---- the generator: analysis ------------------------------------------- */


int
pg_script_generate(const pg_script_request_t *req, pg_script_t *script)
{
    int       rc;
    pg_gen_t  g;

    memset(script, 0, sizeof(pg_script_t));
    memset(&g, 0, sizeof(pg_gen_t));

    g.req = req;

    /* a request that did not come from the parser gets the defaults */

    if (req->nhosts == 0) {
        g.hosts = pg_script_default_host;
        g.nhosts = PG_NELEMS(pg_script_default_host);

    } else {
        g.hosts = req->hosts;
        g.nhosts = req->nhosts < PG_SCRIPT_MAX_HOSTS ? req->nhosts
                                                     : PG_SCRIPT_MAX_HOSTS;
    }

    g.target = req->target_words;

    if (g.target < PG_SCRIPT_WORDS_MIN || g.target > PG_SCRIPT_WORDS_MAX) {
        g.target = PG_SCRIPT_WORDS_DEFAULT;
    }

    rc = -1;

    if (pg_gen_analyze(&g) == 0 && pg_gen_describe(&g) == 0) {
        rc = pg_gen_fit(&g, script);
    }

    pg_gen_free(&g);

    return rc;
}


static int
pg_gen_analyze(pg_gen_t *g)
{
    long        n;
    size_t      i, nfocus, ntopic;
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
static void
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
static int
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
static int
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
static void
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
static int
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


static void
pg_gen_free(pg_gen_t *g)
{
    size_t  i;

    free(g->text);
    free(g->sents);
    free(g->ids);
    free(g->terms);
    free(g->slots);
    free(g->arena);
    free(g->ranks);
    free(g->picked);
    free(g->units);
    free(g->title);
    free(g->subject);
    free(g->focus);

    for (i = 0; i < g->nsegs; i++) {
        free(g->segs[i].text);
    }

    free(g->segs);
    pg_buf_free(&g->line);
    pg_buf_free(&g->tmp);
}


/* ---- the generator: the dialogue --------------------------------------- */


static int
pg_gen_build(pg_gen_t *g, pg_script_t *script)
{
    char           *t;
    size_t          i, j;
    pg_sentence_t  *s;

    memset(script, 0, sizeof(pg_script_t));

    g->nsegs = 0;
    g->last = PG_NOBODY;
    g->phrase = 0;
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


/* A variant of a phrase: varies along the script and between sources. */
static const char *
pg_gen_pick(pg_gen_t *g, const char **table, size_t n)
{
    return table[(g->seed + g->phrase++) % n];
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

    for (i = unit->first; i < unit->first + unit->n; i++) {
        s = &g->sents[g->picked[i]];

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


/* Host 0 welcomes the listeners, names the others and the subject. */
static void
pg_gen_intro(pg_gen_t *g, const char *with_one, const char *with_many,
    const char *what)
{
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

    for (h = 1; h < g->nhosts; h++) {
        pg_gen_phrase(g, pg_gen_pick(g, table, n), pg_gen_name(g, 0), NULL);
        pg_gen_say(g, h);
    }
}


/* Host 0 says goodbye, thanking the others by name. */
static void
pg_gen_outro(pg_gen_t *g, const char *with_names, const char *solo)
{
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
    size_t  u, p, asker, r;

    pg_gen_intro(g, "I'm %n, and with me today is %t.",
                 "I'm %n, and with me today are %t.",
                 "Today we're taking a deep dive into %t.");
    pg_gen_say(g, 0);
    pg_gen_greetings(g, pg_greetings, PG_NELEMS(pg_greetings));

    p = 0;

    for (u = 0; u < g->nunits; u++) {

        if (u % PG_SCRIPT_SECTION == 0) {
            p = (1 + u / PG_SCRIPT_SECTION) % g->nhosts;

            asker = (g->last != PG_NOBODY && g->last != p)
                    ? g->last : pg_gen_other(g, p, p, u);

            pg_gen_ask(g, u == 0 ? PG_PICK(g, pg_dd_first)
                                 : PG_PICK(g, pg_dd_next),
                       asker, p);
            pg_gen_say(g, asker);

        } else {
            asker = pg_gen_other(g, p, PG_NOBODY, u);

            if (asker != p) {
                pg_gen_phrase(g, PG_PICK(g, pg_reactions), NULL, NULL);
            }

            pg_gen_ask(g, PG_PICK(g, pg_dd_follow), asker, p);
            pg_gen_say(g, asker);

            pg_gen_phrase(g, PG_PICK(g, pg_answers), NULL, NULL);
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


/* A host's closing position in a debate, for a side by turns. */
static void
pg_gen_position(pg_gen_t *g, size_t h)
{
    pg_term_t    *t;
    const char  **tpl;

    if (g->compact) {
        pg_gen_phrase(g, h % 2 ? "I'm not convinced." : "I'm convinced.",
                      NULL, NULL);
        return;
    }

    tpl = pg_db_positions[h % 2];

    if (g->nkey_terms == 0) {
        pg_gen_phrase(g, tpl[1], NULL, NULL);
        return;
    }

    t = &g->terms[g->key_terms[h % g->nkey_terms]];

    g->tmp.len = 0;

    if (pg_buf_append(&g->tmp, g->text + t->surface, t->surface_len) != 0
        || pg_buf_append(&g->tmp, "", 1) != 0)
    {
        g->failed = 1;
        return;
    }

    pg_gen_phrase(g, tpl[0], NULL, (const char *) g->tmp.data);
}


/*
 * Debate: each turn answers the one before from the other side ("I'd push
 * back on that, Sam"), and each host closes with a position.
 */
static void
pg_gen_debate(pg_gen_t *g)
{
    size_t  u, h, p, prev, asker;

    pg_gen_intro(g, "I'm %n, and with me today is %t.",
                 "I'm %n, and with me today are %t.",
                 "Today we're debating %t, taking turns on each side.");
    pg_gen_say(g, 0);
    pg_gen_greetings(g, pg_db_greetings, PG_NELEMS(pg_db_greetings));

    p = 1 % g->nhosts;
    asker = (g->last != PG_NOBODY && g->last != p)
            ? g->last : pg_gen_other(g, p, p, 0);

    pg_gen_ask(g, "%n, why don't you open?", asker, p);
    pg_gen_say(g, asker);

    prev = PG_NOBODY;

    for (u = 0; u < g->nunits; u++) {
        p = (u + 1) % g->nhosts;

        if (u == 0) {
            pg_gen_phrase(g, "Let me open with this.", NULL, NULL);

        } else {
            pg_gen_phrase(g, PG_PICK(g, pg_db_counters),
                          prev != p ? pg_gen_name(g, prev) : NULL, NULL);
        }

        pg_gen_unit(g, u);
        pg_gen_say(g, p);
        prev = p;
    }

    pg_gen_phrase(g, g->compact ? "Let's wrap up."
                                : "Let's wrap up. Where does each of us land?",
                  NULL, NULL);
    pg_gen_say(g, 0);

    for (h = 1; h < g->nhosts; h++) {
        pg_gen_position(g, h);
        pg_gen_say(g, h);
    }

    pg_gen_position(g, 0);
    pg_gen_outro(g, NULL, "Thanks for listening.");
}


/* Interview: host 0 asks, the others answer in turn, from the source. */
static void
pg_gen_interview(pg_gen_t *g)
{
    size_t       u, guest;
    const char  *q;

    pg_gen_intro(g, "I'm %n, and today I'm talking with %t.",
                 "I'm %n, and today I'm talking with %t.",
                 "We're discussing %t.");
    pg_gen_say(g, 0);
    pg_gen_greetings(g, pg_iv_greetings, PG_NELEMS(pg_iv_greetings));

    for (u = 0; u < g->nunits; u++) {
        guest = g->nhosts > 1 ? 1 + u % (g->nhosts - 1) : 0;

        if (u == 0) {
            q = "%n, let's start at the beginning. What should people know "
                "first?";

        } else if (u + 1 == g->nunits && g->nunits > 2) {
            q = "%n, one last question. What should listeners take away?";

        } else {
            q = PG_PICK(g, pg_iv_questions);
        }

        pg_gen_ask(g, q, 0, guest);
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
        p = (u + 1) % g->nhosts;

        if (u == 0) {
            asker = (g->last != PG_NOBODY && g->last != p)
                    ? g->last : pg_gen_other(g, p, p, 0);

            pg_gen_ask(g, "%n, let's start with the strengths. What works?",
                       asker, p);
            pg_gen_say(g, asker);

        } else if (u == strengths) {
            pg_gen_ask(g, "Now for the weak spots. %n, which claims give "
                       "you pause?", prev, p);
            pg_gen_say(g, prev);

            pg_gen_phrase(g, PG_PICK(g, pg_cr_claims), NULL, NULL);

        } else {
            pg_gen_phrase(g, u < strengths ? PG_PICK(g, pg_cr_strengths)
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


/* ---- the script --------------------------------------------------------- */


void
pg_script_free(pg_script_t *script)
{
    size_t  i;

    free(script->title);

    for (i = 0; i < script->nhosts && i < PG_SCRIPT_MAX_HOSTS; i++) {
        free(script->hosts[i].name);
        free(script->hosts[i].voice);
        free(script->hosts[i].role);
    }

    for (i = 0; i < script->nsegments; i++) {
        free(script->segments[i].text);
    }

    free(script->segments);

    memset(script, 0, sizeof(pg_script_t));
}


double
pg_script_duration(const pg_script_t *script)
{
    double  s;

    s = (double) script->word_count * 60.0 / PG_WORDS_PER_MINUTE;

    return floor(s * 10.0 + 0.5) / 10.0;
}


int
pg_script_to_json(const pg_script_t *script, pg_buf_t *out)
{
    int               rc, n;
    char              num[64];
    size_t            i;
    yajl_gen          g;
    const pg_host_t  *h;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    /* never emit what is not UTF-8, whatever got into the script */
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);

#define PG_KEY(k)  pg_script_gen_string(g, k)

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_KEY("title") || pg_script_gen_string(g, script->title)
         || PG_KEY("hosts")
         || yajl_gen_array_open(g) != yajl_gen_status_ok;

    for (i = 0; i < script->nhosts && !rc; i++) {
        h = &script->hosts[i];

        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || PG_KEY("name") || pg_script_gen_string(g, h->name)
             || PG_KEY("voice") || pg_script_gen_string(g, h->voice)
             || PG_KEY("role") || pg_script_gen_string(g, h->role)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    rc = rc
         || yajl_gen_array_close(g) != yajl_gen_status_ok
         || PG_KEY("segments")
         || yajl_gen_array_open(g) != yajl_gen_status_ok;

    for (i = 0; i < script->nsegments && !rc; i++) {
        if (script->segments[i].speaker >= script->nhosts) {
            rc = 1;
            break;
        }

        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || PG_KEY("speaker")
             || pg_script_gen_string(g,
                    script->hosts[script->segments[i].speaker].name)
             || PG_KEY("text")
             || pg_script_gen_string(g, script->segments[i].text)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    /* "%.1f", not yajl's "%.17g" that would print 12.000000000000002 */

    n = snprintf(num, sizeof(num), "%.1f", pg_script_duration(script));

    rc = rc
         || yajl_gen_array_close(g) != yajl_gen_status_ok
         || PG_KEY("word_count")
         || yajl_gen_integer(g, (long long) script->word_count)
            != yajl_gen_status_ok
         || PG_KEY("estimated_duration_s")
         || yajl_gen_number(g, num, (size_t) n) != yajl_gen_status_ok
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || pg_json_gen_buf(g, out) != 0;

#undef PG_KEY

    yajl_gen_free(g);

    return rc ? -1 : 0;
}


/*
 * Words as a voice says them: runs of non-space bytes with a letter or a
 * digit in them (or any non-ASCII byte, which is a letter of a name); a
 * lone dash is not a word.
 */
static size_t
pg_script_count_words(const char *s, size_t len)
{
    int            in, spoken;
    size_t         i, n;
    unsigned char  c;

    n = 0;
    in = 0;
    spoken = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == ' ' || (c >= '\t' && c <= '\r')) {
            n += spoken;
            in = 0;
            spoken = 0;
            continue;
        }

        in = 1;

        if (PG_ALNUM(c) || c >= 0x80) {
            spoken = 1;
        }
    }

    return n + (in && spoken);
}


static int
pg_script_copy_hosts(pg_script_t *script, const pg_host_t *hosts,
    size_t nhosts)
{
    size_t      i;
    pg_host_t  *h;

    for (i = 0; i < nhosts; i++) {
        h = &script->hosts[i];
        script->nhosts = i + 1;

        h->name = strdup(hosts[i].name ? hosts[i].name : "Host");
        h->voice = hosts[i].voice ? strdup(hosts[i].voice) : NULL;
        h->role = hosts[i].role ? strdup(hosts[i].role) : NULL;

        if (h->name == NULL || (hosts[i].voice && h->voice == NULL)
            || (hosts[i].role && h->role == NULL))
        {
            return -1;
        }
    }

    return 0;
}


/*
 * Text for a title or for the framing, from what a user wrote: on one
 * line (whitespace and control characters become single spaces), valid
 * UTF-8 (stray bytes are dropped), at most max bytes cut at a space when
 * there is one, without trailing punctuation that reads badly
 * mid-sentence.  It is not normalized: accents and other scripts stay for
 * display, and the voice normalizes the text later.  *out is NULL when
 * nothing is left.  Returns -1 when out of memory.
 */
static int
pg_script_short_text(const char *s, size_t len, size_t max, char **out)
{
    int            space, full;
    char          *p;
    size_t         i, k, n, cut;
    unsigned char  c;

    *out = NULL;

    if (s == NULL) {
        return 0;
    }

    p = malloc(max + 1);
    if (p == NULL) {
        return -1;
    }

    n = 0;
    cut = 0;
    space = 0;
    full = 0;

    for (i = 0; i < len; i += k) {
        c = (unsigned char) s[i];
        k = c < 0x80 ? 1 : (c >= 0xf0 ? 4 : (c >= 0xe0 ? 3 : 2));

        if (k > len - i || !pg_utf8_valid(s + i, k)) {
            k = 1;
            continue;
        }

        if (c <= ' ' || c == 0x7f
            || (c == 0xc2 && (unsigned char) s[i + 1] < 0xa0))
        {
            space = (n > 0);
            continue;
        }

        if (n + space + k > max) {
            full = 1;
            break;
        }

        if (space) {
            cut = n;
            p[n++] = ' ';
            space = 0;
        }

        memcpy(p + n, s + i, k);
        n += k;
    }

    if (full && cut) {
        n = cut;
    }

    while (n && (p[n - 1] == ' ' || p[n - 1] == ',' || p[n - 1] == ';'
                 || p[n - 1] == ':' || p[n - 1] == '-' || p[n - 1] == '.'))
    {
        n--;
    }

    if (n == 0) {
        free(p);
        return 0;
    }

    p[n] = '\0';
    *out = p;

    return 0;
}


static void
pg_script_title_case(char *s)
{
    if (s[0] >= 'a' && s[0] <= 'z') {
        s[0] -= 'a' - 'A';
    }
}


/* ---- scripts written by an LLM ----------------------------------------- */


int
pg_script_from_llm_json(const char *json, size_t len,
    const pg_script_request_t *req, pg_script_t *script, pg_error_t *err)
{
    char              *text, *name;
    size_t             i, h, n, nhosts, tlen;
    yajl_val           tree, v, item, sp, tx;
    const char        *t;
    const pg_host_t   *hosts;

    memset(script, 0, sizeof(pg_script_t));

    if (json == NULL || len == 0) {
        pg_llm_error(err, "the LLM reply is empty");
        return -1;
    }

    if (len > PG_LLM_REPLY_MAX) {
        pg_llm_error(err, "the LLM reply is too long (%zu bytes)", len);
        return -1;
    }

    if (req->nhosts == 0) {
        hosts = pg_script_default_host;
        nhosts = PG_NELEMS(pg_script_default_host);

    } else {
        hosts = req->hosts;
        nhosts = req->nhosts < PG_SCRIPT_MAX_HOSTS ? req->nhosts
                                                   : PG_SCRIPT_MAX_HOSTS;
    }

    pg_llm_unfence(&json, &len);

    tree = pg_json_parse_object(json, len, PG_JSON_MAX_DEPTH, err);
    if (tree == NULL) {
        char  msg[sizeof(err->message)];

        memcpy(msg, err->message, sizeof(msg));
        pg_llm_error(err, "the LLM reply is not a script: %.200s", msg);
        return -1;
    }

    /* the title */

    v = pg_json_get(tree, "title");

    if (v != NULL && !YAJL_IS_NULL(v)) {

        if (!YAJL_IS_STRING(v)) {
            pg_llm_error(err, "the LLM reply's title is not a string");
            goto failed;
        }

        t = YAJL_GET_STRING(v);

        if (pg_script_trimmed_dup(t, strlen(t), &script->title, err) != 0) {
            goto failed;
        }

        tlen = script->title ? strlen(script->title) : 0;

        if (tlen == 0 || tlen > PG_LLM_TITLE_MAX
            || !pg_utf8_valid(script->title, tlen))
        {
            pg_llm_error(err, "the LLM reply's title must be 1 to %d bytes "
                         "of text", PG_LLM_TITLE_MAX);
            goto failed;
        }

        /* a title is one line */

        for (i = 0; i < tlen; i++) {
            if ((unsigned char) script->title[i] < 0x20) {
                script->title[i] = ' ';
            }
        }

    } else {
        t = req->topic ? req->topic : req->source_text;

        if (pg_script_short_text(t, t ? (strlen(t) < 400 ? strlen(t) : 400)
                                      : 0,
                                 PG_SCRIPT_SHORT_MAX, &script->title) != 0)
        {
            pg_script_oom(err);
            goto failed;
        }

        if (script->title == NULL) {
            script->title = strdup("A podcast");

            if (script->title == NULL) {
                pg_script_oom(err);
                goto failed;
            }
        }

        pg_script_title_case(script->title);
    }

    /* the dialogue */

    v = pg_json_get(tree, "dialogue");

    if (v == NULL || !YAJL_IS_ARRAY(v)) {
        pg_llm_error(err, "the LLM reply has no 'dialogue' array");
        goto failed;
    }

    n = v->u.array.len;

    if (n < PG_LLM_TURNS_MIN || n > PG_LLM_TURNS_MAX) {
        pg_llm_error(err, "the LLM reply has %zu turns; %d to %d are "
                     "expected", n, PG_LLM_TURNS_MIN, PG_LLM_TURNS_MAX);
        goto failed;
    }

    script->segments = calloc(n, sizeof(pg_segment_t));
    if (script->segments == NULL) {
        pg_script_oom(err);
        goto failed;
    }

    for (i = 0; i < n; i++) {
        item = v->u.array.values[i];

        if (!YAJL_IS_OBJECT(item)) {
            pg_llm_error(err, "dialogue[%zu] is not an object", i);
            goto failed;
        }

        sp = pg_json_get(item, "speaker");
        tx = pg_json_get(item, "text");

        if (sp == NULL || !YAJL_IS_STRING(sp)) {
            pg_llm_error(err, "dialogue[%zu] has no speaker", i);
            goto failed;
        }

        if (tx == NULL || !YAJL_IS_STRING(tx)) {
            pg_llm_error(err, "dialogue[%zu] has no text", i);
            goto failed;
        }

        t = YAJL_GET_STRING(sp);

        if (pg_script_trimmed_dup(t, strlen(t), &name, err) != 0) {
            goto failed;
        }

        for (h = 0; name && h < nhosts; h++) {
            if (pg_script_same_name(name, hosts[h].name)) {
                break;
            }
        }

        if (name == NULL || h == nhosts) {
            free(name);
            pg_llm_error(err, "dialogue[%zu]: the speaker '%.*s' is not "
                         "one of the hosts", i, pg_script_utf8_cut(t, 64), t);
            goto failed;
        }

        free(name);

        t = YAJL_GET_STRING(tx);

        if (pg_script_trimmed_dup(t, strlen(t), &text, err) != 0) {
            goto failed;
        }

        if (text == NULL) {
            pg_llm_error(err, "dialogue[%zu]: the text is empty", i);
            goto failed;
        }

        script->segments[i].speaker = h;
        script->segments[i].text = text;
        script->nsegments = i + 1;

        tlen = strlen(text);

        if (tlen > PG_LLM_TEXT_MAX) {
            pg_llm_error(err, "dialogue[%zu]: the text is %zu bytes long; "
                         "the maximum is %d", i, tlen, PG_LLM_TEXT_MAX);
            goto failed;
        }

        if (!pg_utf8_valid(text, tlen)) {
            pg_llm_error(err, "dialogue[%zu]: the text is not UTF-8", i);
            goto failed;
        }

        script->word_count += pg_script_count_words(text, tlen);
    }

    if (pg_script_copy_hosts(script, hosts, nhosts) != 0) {
        pg_script_oom(err);
        goto failed;
    }

    yajl_tree_free(tree);

    return 0;

failed:

    yajl_tree_free(tree);
    pg_script_free(script);

    return -1;
}


/*
 * LLMs like to wrap JSON in a Markdown fence, sometimes after a line of
 * prose: "Here is the script:\n```json\n{...}\n```".  Narrows the reply
 * to what is inside; a reply that starts with "{" is left alone.
 */
static void
pg_llm_unfence(const char **json, size_t *len)
{
    const char  *s, *e, *p, *nl;

    s = *json;
    e = s + *len;

    while (s < e && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) {
        s++;
    }

    while (e > s && (e[-1] == ' ' || (e[-1] >= '\t' && e[-1] <= '\r'))) {
        e--;
    }

    if (s == e || *s == '{') {
        return;
    }

    for (p = s; e - p >= 3 && memcmp(p, "```", 3) != 0; p++) {
        /* void */
    }

    if (e - p < 3) {
        return;
    }

    /* the info string ("json") runs to the end of the fence's line */

    nl = memchr(p, '\n', (size_t) (e - p));
    if (nl == NULL) {
        return;
    }

    s = nl + 1;

    /* the last fence closes: the JSON itself may contain ``` in a string */

    for (p = e - 3; p >= s; p--) {
        if (memcmp(p, "```", 3) == 0) {
            e = p;
            break;
        }
    }

    *json = s;
    *len = (size_t) (e - s);
}


static void
pg_llm_error(pg_error_t *err, const char *fmt, ...)
{
    va_list  args;

    /* the upstream failed, not the client: a 502 */

    err->status = 502;
    err->type = "server_error";
    err->param = NULL;
    err->code = "invalid_llm_reply";

    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);
}


/* ---- scripts given whole ------------------------------------------------ */


/*
 * An edited script in a podcast request: "segments" (1..400 objects
 * {speaker, text}) with the hosts of "hosts" (speakers must be among
 * them), or, without "hosts", hosts made of the distinct speakers in order
 * of appearance (at most 6), each taking the "voice" of its first segment
 * that names one.  "title": 1..200 bytes, one line.
 */

int
pg_script_from_segments(yajl_val obj, size_t max_text, pg_script_t *script,
    pg_error_t *err)
{
    char                 param[48];
    size_t               i, h, n, len;
    yajl_val             v, seg, sp, tx, vo;
    const char          *t;
    pg_script_request_t  req;

    memset(script, 0, sizeof(pg_script_t));
    memset(&req, 0, sizeof(pg_script_request_t));

    v = pg_json_get(obj, "segments");

    if (v == NULL || !YAJL_IS_ARRAY(v)) {
        pg_error_set(err, 400, "segments", "invalid_type",
                     "'segments' must be an array of {speaker, text}");
        return -1;
    }

    n = v->u.array.len;

    if (n == 0 || n > PG_LLM_TURNS_MAX) {
        pg_error_set(err, 400, "segments", "invalid_value",
                     "'segments' must have 1 to %d entries; it has %zu",
                     PG_LLM_TURNS_MAX, n);
        return -1;
    }

    if (pg_json_get(obj, "hosts") != NULL) {
        if (pg_script_parse_hosts(obj, &req, err) != 0) {
            goto failed;
        }

        if (pg_script_copy_hosts(script, req.hosts, req.nhosts) != 0) {
            goto oom;
        }
    }

    script->segments = calloc(n, sizeof(pg_segment_t));
    if (script->segments == NULL) {
        goto oom;
    }

    for (i = 0; i < n; i++) {
        seg = v->u.array.values[i];

        if (!YAJL_IS_OBJECT(seg)) {
            snprintf(param, sizeof(param), "segments[%zu]", i);
            pg_error_set(err, 400, NULL, "invalid_type",
                         "'%s' must be an object {speaker, text}", param);
            goto failed_param;
        }

        sp = pg_json_get(seg, "speaker");
        tx = pg_json_get(seg, "text");
        vo = pg_json_get(seg, "voice");

        if (sp == NULL || !YAJL_IS_STRING(sp)) {
            snprintf(param, sizeof(param), "segments[%zu].speaker", i);
            pg_error_set(err, 400, NULL, sp ? "invalid_type"
                                            : "missing_required_parameter",
                         "'%s' must be a string", param);
            goto failed_param;
        }

        if (tx == NULL || !YAJL_IS_STRING(tx)) {
            snprintf(param, sizeof(param), "segments[%zu].text", i);
            pg_error_set(err, 400, NULL, tx ? "invalid_type"
                                            : "missing_required_parameter",
                         "'%s' must be a string", param);
            goto failed_param;
        }

        if (vo != NULL && !YAJL_IS_STRING(vo)) {
            snprintf(param, sizeof(param), "segments[%zu].voice", i);
            pg_error_set(err, 400, NULL, "invalid_type",
                         "'%s' must be a string", param);
            goto failed_param;
        }

        t = YAJL_GET_STRING(sp);
        len = strlen(t);

        if (len == 0 || len > PG_SCRIPT_NAME_MAX
            || pg_script_has_control(t, len))
        {
            snprintf(param, sizeof(param), "segments[%zu].speaker", i);
            pg_error_set(err, 400, NULL, "invalid_value",
                         "'%s' must be a name of 1 to %d bytes without "
                         "control characters", param, PG_SCRIPT_NAME_MAX);
            goto failed_param;
        }

        for (h = 0; h < script->nhosts; h++) {
            if (pg_script_same_name(script->hosts[h].name, t)) {
                break;
            }
        }

        if (h == script->nhosts) {

            if (req.nhosts) {
                snprintf(param, sizeof(param), "segments[%zu].speaker", i);
                pg_error_set(err, 400, NULL, "invalid_value",
                             "'%s' is '%.*s', who is not one of 'hosts'",
                             param, pg_script_utf8_cut(t, 64), t);
                goto failed_param;
            }

            if (h == PG_SCRIPT_MAX_HOSTS) {
                snprintf(param, sizeof(param), "segments[%zu].speaker", i);
                pg_error_set(err, 400, NULL, "invalid_value",
                             "'segments' name more than %d speakers",
                             PG_SCRIPT_MAX_HOSTS);
                goto failed_param;
            }

            script->hosts[h].name = strdup(t);
            script->nhosts = h + 1;

            if (script->hosts[h].name == NULL) {
                goto oom;
            }
        }

        if (vo && script->hosts[h].voice == NULL && req.nhosts == 0) {
            script->hosts[h].voice = strdup(vo->u.string);
            if (script->hosts[h].voice == NULL) {
                goto oom;
            }
        }

        t = YAJL_GET_STRING(tx);
        len = strlen(t);

        if (len > max_text) {
            snprintf(param, sizeof(param), "segments[%zu].text", i);
            pg_error_set(err, 400, NULL, "string_above_max_length",
                         "'%s' is longer than %zu bytes", param, max_text);
            goto failed_param;
        }

        if (!pg_script_speakable(t)) {
            snprintf(param, sizeof(param), "segments[%zu].text", i);
            pg_error_set(err, 400, NULL, "invalid_value",
                         "'%s' has nothing that can be spoken", param);
            goto failed_param;
        }

        script->segments[i].speaker = h;
        script->segments[i].text = strdup(t);
        script->nsegments = i + 1;

        if (script->segments[i].text == NULL) {
            goto oom;
        }

        script->word_count += pg_script_count_words(t, len);
    }

    pg_script_request_free(&req);

    return 0;

failed_param:

    /* err->param must outlive this call */
    {
        static __thread char  saved[48];

        memcpy(saved, param, sizeof(saved));
        err->param = saved;
    }

    goto failed;

oom:

    pg_script_oom(err);

failed:

    pg_script_request_free(&req);
    pg_script_free(script);

    return -1;
}


/*
 * A script in the form pg_script_to_json() wrote it (from a cache): the
 * hosts with their voices, and segments naming their speaker.  0 or -1.
 */

int
pg_script_from_json(const char *json, size_t len, pg_script_t *script)
{
    size_t       i, h, n;
    yajl_val     tree, v, item, f;
    pg_error_t   err;
    const char  *name;

    memset(script, 0, sizeof(pg_script_t));

    tree = pg_json_parse_object(json, len, PG_JSON_MAX_DEPTH, &err);
    if (tree == NULL) {
        return -1;
    }

    v = pg_json_get(tree, "title");
    if (v == NULL || !YAJL_IS_STRING(v)) {
        goto failed;
    }

    script->title = strdup(v->u.string);
    if (script->title == NULL) {
        goto failed;
    }

    v = pg_json_get(tree, "hosts");
    if (v == NULL || !YAJL_IS_ARRAY(v) || v->u.array.len == 0
        || v->u.array.len > PG_SCRIPT_MAX_HOSTS)
    {
        goto failed;
    }

    for (i = 0; i < v->u.array.len; i++) {
        item = v->u.array.values[i];
        f = pg_json_get(item, "name");

        if (!YAJL_IS_OBJECT(item) || f == NULL || !YAJL_IS_STRING(f)) {
            goto failed;
        }

        script->nhosts = i + 1;
        script->hosts[i].name = strdup(f->u.string);
        if (script->hosts[i].name == NULL) {
            goto failed;
        }

        f = pg_json_get(item, "voice");
        if (f && YAJL_IS_STRING(f)) {
            script->hosts[i].voice = strdup(f->u.string);
            if (script->hosts[i].voice == NULL) {
                goto failed;
            }
        }

        f = pg_json_get(item, "role");
        if (f && YAJL_IS_STRING(f)) {
            script->hosts[i].role = strdup(f->u.string);
            if (script->hosts[i].role == NULL) {
                goto failed;
            }
        }
    }

    v = pg_json_get(tree, "segments");
    if (v == NULL || !YAJL_IS_ARRAY(v) || v->u.array.len == 0) {
        goto failed;
    }

    n = v->u.array.len;

    script->segments = calloc(n, sizeof(pg_segment_t));
    if (script->segments == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        item = v->u.array.values[i];

        if (!YAJL_IS_OBJECT(item)) {
            goto failed;
        }

        f = pg_json_get(item, "speaker");
        if (f == NULL || !YAJL_IS_STRING(f)) {
            goto failed;
        }

        name = YAJL_GET_STRING(f);

        for (h = 0; h < script->nhosts; h++) {
            if (strcmp(script->hosts[h].name, name) == 0) {
                break;
            }
        }

        f = pg_json_get(item, "text");

        if (h == script->nhosts || f == NULL || !YAJL_IS_STRING(f)) {
            goto failed;
        }

        script->segments[i].speaker = h;
        script->segments[i].text = strdup(f->u.string);
        script->nsegments = i + 1;

        if (script->segments[i].text == NULL) {
            goto failed;
        }

        script->word_count += pg_script_count_words(
                                  script->segments[i].text,
                                  strlen(script->segments[i].text));
    }

    yajl_tree_free(tree);
    return 0;

failed:

    yajl_tree_free(tree);
    pg_script_free(script);
    return -1;
}
