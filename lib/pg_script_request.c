/*
 * podgen core: the request of POST /v1/scripts: parsing and validation of
 * its fields, the default hosts, and its canonical form for cache keys.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "pg_buf.h"
#include "pg_json.h"
#include "pg_script.h"
#include "pg_script_int.h"
#include "pg_source.h"
#include "pg_text.h"


#define PG_SCRIPT_TEXT_MAX       500    /* characters of topic and focus */
#define PG_SCRIPT_FIELD_MAX      64     /* bytes of a voice or a role */
#define PG_SCRIPT_LANG_MAX       35     /* the longest sane BCP 47 tag */


static int pg_script_get_text(yajl_val obj, const char *key,
    size_t max_chars, size_t max_bytes, char **out, int *given,
    pg_error_t *err);
static int pg_script_clean_source(pg_script_request_t *req,
    pg_error_t *err);
static int pg_script_parse_language(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err);
static int pg_script_parse_length(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err);
static int pg_script_parse_host(yajl_val h, size_t i,
    pg_script_request_t *req, pg_error_t *err);
static int pg_script_host_field(yajl_val h, const char *key,
    const char *param, char **out, pg_error_t *err);
static int pg_script_default_hosts(pg_script_request_t *req);
static int pg_script_name_text(yajl_val v, const char *param, size_t max,
    const char **s, size_t *len, pg_error_t *err);


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


const pg_host_t  pg_script_default_host[2] = {
    { "Alex", "alloy", "host" },
    { "Sam", "echo", "expert" }
};


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

    if (req->source_text && pg_script_clean_source(req, err) != 0) {
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
    free(req->source_title);

    for (i = 0; i < req->nsections; i++) {
        free(req->sections[i].title);
    }

    free(req->sections);
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
 * source_text is read as text/plain (pg_source.h): Markdown and plain text
 * headings become the title, markers, tables, code, URLs and citations
 * go.  Text with nothing to say is left as it was, for the caller's
 * check.
 */
static int pg_script_blank(const char *s);
static size_t pg_script_paragraphs(const char *s);
static int pg_script_keep_sections(pg_script_request_t *req,
    const pg_source_doc_t *doc);


static int
pg_script_clean_source(pg_script_request_t *req, pg_error_t *err)
{
    pg_buf_t         text;
    pg_error_t       e;
    pg_source_doc_t  doc;

    if (pg_source_extract(req->source_text, strlen(req->source_text),
                          PG_SOURCE_TEXT, NULL, &doc, &e)
        != 0)
    {
        if (e.status == 422) {
            return 0;
        }

        pg_error_set(err, e.status, "source_text", e.code, "%s", e.message);
        return -1;
    }

    memset(&text, 0, sizeof(pg_buf_t));

    if (pg_source_doc_text(&doc, &text) != 0) {
        pg_buf_free(&text);
        pg_source_doc_free(&doc);
        pg_script_oom(err);
        return -1;
    }

    if (pg_script_keep_sections(req, &doc) != 0) {
        pg_buf_free(&text);
        pg_source_doc_free(&doc);
        pg_script_oom(err);
        return -1;
    }

    free(req->source_text);
    req->source_text = (char *) text.data;
    req->source_title = doc.title;
    doc.title = NULL;

    pg_source_doc_free(&doc);

    return 0;
}


static int
pg_script_blank(const char *s)
{
    for ( /* void */ ; *s; s++) {
        if (!(*s == ' ' || (*s >= '\t' && *s <= '\r'))) {
            return 0;
        }
    }

    return 1;
}


/* Blank-line breaks in s, as pg_text_normalize() keeps them. */
static size_t
pg_script_paragraphs(const char *s)
{
    int     seen;
    size_t  n, nl;

    n = 0;
    seen = 0;

    while (*s) {
        if (*s == ' ' || (*s >= '\t' && *s <= '\r')) {
            nl = 0;

            while (*s == ' ' || (*s >= '\t' && *s <= '\r')) {
                nl += *s++ == '\n';
            }

            /* only between words: the ends are trimmed */
            n += nl >= 2 && seen && *s;
            continue;
        }

        seen = 1;
        s++;
    }

    return n;
}


/*
 * The document's titled sections, with where each starts in the text
 * pg_source_doc_text() writes (sections joined by a blank line): the
 * generator's arc ("Next, the incident review").
 */
static int
pg_script_keep_sections(pg_script_request_t *req, const pg_source_doc_t *doc)
{
    int                   text, blank;
    size_t                i, paragraph, n;
    pg_script_section_t  *sec;

    n = 0;

    for (i = 0; i < doc->nsections; i++) {
        n += doc->sections[i].title != NULL;
    }

    if (n == 0) {
        return 0;
    }

    n = n < PG_SCRIPT_SECTIONS_MAX ? n : PG_SCRIPT_SECTIONS_MAX;

    sec = calloc(n, sizeof(pg_script_section_t));
    if (sec == NULL) {
        return -1;
    }

    req->sections = sec;
    paragraph = 0;
    text = 0;

    for (i = 0; i < doc->nsections; i++) {
        blank = pg_script_blank(doc->sections[i].text);

        if (text && !blank) {
            paragraph++;
        }

        text |= !blank;

        if (doc->sections[i].title && req->nsections < n) {
            sec[req->nsections].title = strdup(doc->sections[i].title);
            sec[req->nsections].paragraph = paragraph;

            if (sec[req->nsections].title == NULL) {
                return -1;
            }

            req->nsections++;
        }

        paragraph += pg_script_paragraphs(doc->sections[i].text);
    }

    return 0;
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
int
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


int
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
int
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
int
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
int
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
int
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


void
pg_script_oom(pg_error_t *err)
{
    pg_error_set(err, 500, NULL, "server_error", "out of memory");
    err->type = "server_error";
}


/* The titled sections, where they start: part of what a script is from. */
static int
pg_script_gen_sections(yajl_gen g, const pg_script_request_t *req)
{
    size_t  i;

    if (req->nsections == 0) {
        return 0;
    }

    if (pg_script_gen_string(g, "sections")
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        return 1;
    }

    for (i = 0; i < req->nsections; i++) {
        if (yajl_gen_array_open(g) != yajl_gen_status_ok
            || yajl_gen_integer(g, (long long) req->sections[i].paragraph)
               != yajl_gen_status_ok
            || pg_script_gen_string(g, req->sections[i].title)
            || yajl_gen_array_close(g) != yajl_gen_status_ok)
        {
            return 1;
        }
    }

    return yajl_gen_array_close(g) != yajl_gen_status_ok;
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
         || (req->source_title
             && (PG_KEY("source_title")
                 || pg_script_gen_string(g, req->source_title)))
         || pg_script_gen_sections(g, req)
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
