/*
 * Unit tests of the script code (lib/pg_script_request.c, pg_analysis.c,
 * pg_dialogue.c, pg_script.c, and pg_script_from_llm_json in pg_llm.c):
 * the script request, its canonical form, the built-in generator (shapes,
 * turn-taking, length, extractiveness, determinism, hostile text, speed)
 * and scripts written by an LLM.
 *
 * Runs from the repository root: it reads t/data/source-*.txt.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#include "pg_llm.h"
#include "pg_script.h"
#include "pg_text.h"
#include "unit.h"


#define MAX_SOURCE  (2 * 1024 * 1024)


static uint64_t  rng_state = 0x9e3779b97f4a7c15ULL;


static uint64_t
rng_next(void)
{
    /* xorshift64: fixed seed, so every run sees the same "random" text */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;

    return rng_state;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


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


/* A JSON string literal for s, in a malloc'd buffer (with the quotes). */
static char *
json_quote(const char *s)
{
    char    *out, *p;
    size_t   len;

    len = strlen(s);
    out = malloc(len * 6 + 3);
    p = out;

    *p++ = '"';

    for ( ; *s; s++) {
        unsigned char  c = (unsigned char) *s;

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char) c;

        } else if (c < 0x20) {
            p += sprintf(p, "\\u%04x", c);

        } else {
            *p++ = (char) c;
        }
    }

    *p++ = '"';
    *p = '\0';

    return out;
}


/* "{" + "\"source_text\":" + quoted source + rest */
static char *
body_with_source(const char *source, const char *rest)
{
    char    *q, *body;
    size_t   n;

    q = json_quote(source);
    n = strlen(q) + strlen(rest) + 32;
    body = malloc(n);
    snprintf(body, n, "{\"source_text\":%s%s%s}", q, rest[0] ? "," : "",
             rest);
    free(q);

    return body;
}


/* parses a request body; returns the error code, "ok" on success */
static const char *
parse(const char *body, size_t max_source, pg_script_request_t *req,
    pg_error_t *err)
{
    yajl_val  tree;

    memset(err, 0, sizeof(pg_error_t));

    tree = pg_json_parse_object(body, strlen(body), PG_JSON_MAX_DEPTH, err);
    if (tree == NULL) {
        return err->code;
    }

    if (pg_script_request_from_json(tree, max_source, req, err) != 0) {
        yajl_tree_free(tree);
        return err->code;
    }

    yajl_tree_free(tree);

    return "ok";
}


static void
expect(const char *body, const char *code, const char *param,
    const char *name)
{
    const char           *got;
    pg_error_t            err;
    pg_script_request_t   req;

    got = parse(body, 1000, &req, &err);

    is_str(got, code, "%s: code", name);

    if (strcmp(got, "ok") == 0) {
        pg_script_request_free(&req);
    }

    if (strcmp(code, "ok") == 0 || strcmp(got, code) != 0) {
        return;
    }

    is_int(err.status, 400, "%s: status", name);
    is_str(err.param, param, "%s: param", name);
    ok(err.message[0] != '\0', "%s: message \"%s\"", name, err.message);
}


/* the canonical form of a body */
static char *
canonical(const char *body)
{
    char                 *s;
    pg_buf_t              b;
    pg_error_t            err;
    pg_script_request_t   req;

    if (strcmp(parse(body, MAX_SOURCE, &req, &err), "ok") != 0) {
        printf("# %s: %s\n", body, err.message);
        return strdup("(error)");
    }

    memset(&b, 0, sizeof(pg_buf_t));

    if (pg_script_request_canonical(&req, &b) != 0
        || pg_buf_append(&b, "", 1) != 0)
    {
        pg_script_request_free(&req);
        return strdup("(error)");
    }

    pg_script_request_free(&req);
    s = strdup((char *) b.data);
    pg_buf_free(&b);

    return s;
}


/* generates the script of a body (which must be valid) */
static int
generate(const char *body, pg_script_request_t *req, pg_script_t *script)
{
    pg_error_t  err;

    memset(script, 0, sizeof(pg_script_t));

    if (strcmp(parse(body, MAX_SOURCE, req, &err), "ok") != 0) {
        printf("# request refused: %s\n", err.message);
        return -1;
    }

    if (pg_script_generate(req, script) != 0) {
        pg_script_request_free(req);
        return -1;
    }

    return 0;
}


static char *
to_json(const pg_script_t *script)
{
    char      *s;
    pg_buf_t   b;

    memset(&b, 0, sizeof(pg_buf_t));

    if (pg_script_to_json(script, &b) != 0 || pg_buf_append(&b, "", 1) != 0) {
        pg_buf_free(&b);
        return NULL;
    }

    s = strdup((char *) b.data);
    pg_buf_free(&b);

    return s;
}


static size_t
count_words(const char *s)
{
    int            in, spoken;
    size_t         n;
    unsigned char  c;

    /* as documented: runs of non-spaces with a letter, digit or non-ASCII */

    n = 0;
    in = 0;
    spoken = 0;

    for ( ;; s++) {
        c = (unsigned char) *s;

        if (c == '\0' || c == ' ' || (c >= '\t' && c <= '\r')) {
            n += in && spoken;
            in = 0;
            spoken = 0;

            if (c == '\0') {
                return n;
            }

            continue;
        }

        in = 1;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c >= 0x80)
        {
            spoken = 1;
        }
    }
}


static int
speaks(const pg_script_t *s, size_t h)
{
    size_t  i;

    for (i = 0; i < s->nsegments; i++) {
        if (s->segments[i].speaker == h) {
            return 1;
        }
    }

    return 0;
}


static size_t
count_str(const pg_script_t *s, const char *needle)
{
    size_t       i, n;
    const char  *p;

    n = 0;

    for (i = 0; i < s->nsegments; i++) {
        for (p = s->segments[i].text; (p = strstr(p, needle)) != NULL; p++) {
            n++;
        }
    }

    return n;
}


/*
 * The properties every script has; returns the number that failed (each
 * is reported), so that loops over many scripts stay readable.
 */
static int
check_script(const pg_script_t *s, size_t nhosts, const char *name)
{
    int          bad;
    char        *json;
    size_t       i, words, len;
    yajl_val     tree, v;
    const char  *path[2] = { NULL, NULL };

    bad = 0;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            bad++;                                                           \
            printf("#   %s: ", name);                                        \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

    CHECK(s->title && s->title[0], "a title");
    CHECK(s->title && pg_utf8_valid(s->title, strlen(s->title)),
          "the title is UTF-8");
    CHECK(s->nhosts == nhosts, "%zu hosts", s->nhosts);
    CHECK(s->nsegments > 0, "segments");

    words = 0;

    for (i = 0; i < s->nsegments; i++) {
        len = strlen(s->segments[i].text);

        CHECK(s->segments[i].speaker < s->nhosts, "segment %zu speaker", i);
        CHECK(len > 0, "segment %zu is not empty", i);
        CHECK(pg_utf8_valid(s->segments[i].text, len),
              "segment %zu is UTF-8", i);

        if (i > 0 && nhosts > 1) {
            CHECK(s->segments[i].speaker != s->segments[i - 1].speaker,
                  "segment %zu: the same host twice in a row", i);
        }

        words += count_words(s->segments[i].text);
    }

    CHECK(words == s->word_count, "word_count %zu, counted %zu",
          s->word_count, words);

    json = to_json(s);
    CHECK(json != NULL, "to_json");

    if (json) {
        tree = yajl_tree_parse(json, NULL, 0);
        CHECK(tree != NULL && YAJL_IS_OBJECT(tree), "the JSON parses");

        if (tree) {
            path[0] = "segments";
            v = yajl_tree_get(tree, path, yajl_t_array);
            CHECK(v && v->u.array.len == s->nsegments, "JSON segments");

            path[0] = "word_count";
            v = yajl_tree_get(tree, path, yajl_t_number);
            CHECK(v && YAJL_GET_INTEGER(v) == (long long) s->word_count,
                  "JSON word_count");

            yajl_tree_free(tree);
        }

        free(json);
    }

#undef CHECK

    return bad;
}


/*
 * Extractiveness: every sentence of every segment is either found in the
 * normalized source, verbatim (a piece cut from a run-on sentence may have
 * gained a final period), or framing, which is short.  Returns the words
 * of content; *long_framing counts framing sentences over 30 words.
 */
static size_t
content_words(const pg_script_t *s, const char *norm, size_t *sentences,
    size_t *long_framing)
{
    char        *buf;
    long         n, k;
    size_t       i, words, len;
    pg_span_t   *spans;
    const char  *t;

    words = 0;
    *sentences = 0;
    *long_framing = 0;

    for (i = 0; i < s->nsegments; i++) {
        t = s->segments[i].text;

        n = pg_text_split(t, strlen(t), 0, 0, &spans);

        for (k = 0; k < n; k++) {
            len = spans[k].len;
            buf = malloc(len + 1);
            memcpy(buf, t + spans[k].off, len);
            buf[len] = '\0';

            if (strstr(norm, buf) == NULL && len > 1 && buf[len - 1] == '.') {
                buf[len - 1] = '\0';
            }

            if (strstr(norm, buf) != NULL) {
                words += count_words(buf);
                (*sentences)++;

            } else if (count_words(buf) > 30) {
                (*long_framing)++;
                printf("#   not in the source: %.400s\n", buf);
            }

            free(buf);
        }

        free(spans);
    }

    return words;
}


static char *
normalized(const char *s)
{
    size_t  len;

    return pg_text_normalize(s, strlen(s), &len);
}


static void
test_request(void)
{
    char                 *big;
    size_t                i, n;
    pg_error_t            err;
    pg_script_request_t   req;

    /* defaults */

    is_str(parse("{\"topic\":\"Coffee\"}", 1000, &req, &err), "ok",
           "a topic alone");
    is_str(req.topic, "Coffee", "topic");
    ok(req.source_text == NULL, "no source_text");
    ok(req.focus == NULL, "no focus");
    is_str(req.language, "en", "language en by default");
    is_int(req.style, PG_STYLE_DEEP_DIVE, "deep-dive by default");
    is_int(req.target_words, 900, "medium by default");
    is_int(req.engine, PG_ENGINE_DEFAULT, "engine default");
    is_int(req.nhosts, 2, "two hosts by default");
    is_str(req.hosts[0].name, "Alex", "host 0 Alex");
    is_str(req.hosts[0].voice, "alloy", "Alex's voice alloy");
    is_str(req.hosts[0].role, "host", "Alex's role host");
    is_str(req.hosts[1].name, "Sam", "host 1 Sam");
    is_str(req.hosts[1].voice, "echo", "Sam's voice echo");
    is_str(req.hosts[1].role, "expert", "Sam's role expert");
    pg_script_request_free(&req);

    /* every field */

    is_str(parse("{\"topic\":\"  Tea \\n\",\"source_text\":\" Tea is good. \","
                 "\"style\":\"critique\",\"length\":\"long\","
                 "\"language\":\"EN-gb\",\"focus\":\" taste \","
                 "\"engine\":\"builtin\",\"extra\":[1,{\"a\":2}],"
                 "\"hosts\":[{\"name\":\" Kim \",\"voice\":\"nova\","
                 "\"role\":\"guest\"},{\"name\":\"Lee\"}]}", 1000, &req,
                 &err),
           "ok", "every field, unknown ones ignored");
    is_str(req.topic, "Tea", "topic trimmed");
    is_str(req.source_text, "Tea is good.", "source_text trimmed");
    is_str(req.focus, "taste", "focus trimmed");
    is_str(req.language, "en-gb", "language in lower case");
    is_int(req.style, PG_STYLE_CRITIQUE, "critique");
    is_int(req.target_words, 2000, "long: 2000 words");
    is_int(req.engine, PG_ENGINE_BUILTIN, "builtin");
    is_int(req.nhosts, 2, "two hosts");
    is_str(req.hosts[0].name, "Kim", "name trimmed");
    is_str(req.hosts[0].voice, "nova", "voice");
    is_str(req.hosts[0].role, "guest", "role");
    ok(req.hosts[1].voice == NULL && req.hosts[1].role == NULL,
       "no voice, no role");
    pg_script_request_free(&req);

    is_str(parse("{\"topic\":\"x\",\"length\":\"short\"}", 1000, &req, &err),
           "ok", "short");
    is_int(req.target_words, 300, "short: 300 words");
    pg_script_request_free(&req);

    is_str(parse("{\"topic\":\"x\",\"length\":\"short\",\"target_words\":1234,"
                 "\"engine\":\"llm\",\"style\":\"interview\"}", 1000, &req,
                 &err),
           "ok", "target_words and length");
    is_int(req.target_words, 1234, "target_words wins over length");
    is_int(req.engine, PG_ENGINE_LLM, "llm");
    is_int(req.style, PG_STYLE_INTERVIEW, "interview");
    pg_script_request_free(&req);

    expect("{\"topic\":\"x\",\"style\":\"brief\"}", "ok", NULL, "brief");
    expect("{\"topic\":\"x\",\"style\":\"debate\"}", "ok", NULL, "debate");
    expect("{\"topic\":\"x\",\"style\":\"deep-dive\"}", "ok", NULL,
           "deep-dive");
    expect("{\"source_text\":\"Only a source.\"}", "ok", NULL,
           "a source alone");
    expect("{\"topic\":\"x\",\"source_text\":\"\\ud83d\\ude00\"}", "ok", NULL,
           "a topic and an unspeakable source");
    expect("{\"source_text\":\"Caf\xc3\xa9\"}", "ok", NULL,
           "a source of non-ASCII letters");

    /* topic and source_text */

    expect("{}", "missing_required_parameter", "topic", "neither");
    expect("{\"style\":\"brief\"}", "missing_required_parameter", "topic",
           "neither, other fields");
    expect("{\"topic\":\"\"}", "invalid_value", "topic", "empty topic");
    expect("{\"topic\":\" \\t\\n \"}", "invalid_value", "topic",
           "blank topic");
    expect("{\"source_text\":\"  \"}", "invalid_value", "source_text",
           "blank source");
    expect("{\"topic\":\"\",\"source_text\":\"\"}", "invalid_value",
           "source_text", "both empty");
    expect("{\"topic\":5}", "invalid_type", "topic", "topic number");
    expect("{\"topic\":null}", "invalid_type", "topic", "topic null");
    expect("{\"source_text\":[\"a\"]}", "invalid_type", "source_text",
           "source array");
    expect("{\"source_text\":\"\xf0\x9f\x98\x80 \xe2\x80\x94 \\u0007\"}",
           "invalid_value", "source_text", "nothing speakable");

    big = malloc(4096);

    n = sprintf(big, "{\"topic\":\"");
    for (i = 0; i < 500; i++) {
        n += sprintf(big + n, "\xc3\xa9");
    }
    sprintf(big + n, "\"}");
    expect(big, "ok", NULL, "a topic of 500 characters (1000 bytes)");

    n = sprintf(big, "{\"topic\":\"");
    for (i = 0; i < 501; i++) {
        big[n++] = 'a';
    }
    sprintf(big + n, "\"}");
    expect(big, "string_above_max_length", "topic", "topic of 501");

    n = sprintf(big, "{\"topic\":\"x\",\"focus\":\"");
    for (i = 0; i < 501; i++) {
        big[n++] = 'a';
    }
    sprintf(big + n, "\"}");
    expect(big, "string_above_max_length", "focus", "focus of 501");

    n = sprintf(big, "{\"source_text\":\"");
    for (i = 0; i < 1000; i++) {
        big[n++] = 'a';
    }
    sprintf(big + n, "\"}");
    expect(big, "ok", NULL, "source_text at max_source bytes");

    n = sprintf(big, "{\"source_text\":\"");
    for (i = 0; i < 999; i++) {
        big[n++] = 'a';
    }
    sprintf(big + n, "\xc3\xa9\"}");
    expect(big, "string_above_max_length", "source_text",
           "source_text a byte over (the limit is in bytes)");

    /* the other fields */

    expect("{\"topic\":\"x\",\"focus\":7}", "invalid_type", "focus",
           "focus number");
    expect("{\"topic\":\"x\",\"focus\":\"\"}", "ok", NULL, "empty focus");
    expect("{\"topic\":\"x\",\"style\":\"podcast\"}", "invalid_value", "style",
           "unknown style");
    expect("{\"topic\":\"x\",\"style\":\"Deep-Dive\"}", "invalid_value",
           "style", "style is case-sensitive");
    expect("{\"topic\":\"x\",\"style\":1}", "invalid_type", "style",
           "style number");
    expect("{\"topic\":\"x\",\"length\":\"huge\"}", "invalid_value", "length",
           "unknown length");
    expect("{\"topic\":\"x\",\"length\":null}", "invalid_type", "length",
           "length null");
    expect("{\"topic\":\"x\",\"target_words\":49}", "invalid_value",
           "target_words", "target_words 49");
    expect("{\"topic\":\"x\",\"target_words\":50}", "ok", NULL,
           "target_words 50");
    expect("{\"topic\":\"x\",\"target_words\":5000}", "ok", NULL,
           "target_words 5000");
    expect("{\"topic\":\"x\",\"target_words\":5001}", "invalid_value",
           "target_words", "target_words 5001");
    expect("{\"topic\":\"x\",\"target_words\":300.5}", "invalid_value",
           "target_words", "target_words 300.5");
    expect("{\"topic\":\"x\",\"target_words\":300.0}", "ok", NULL,
           "target_words 300.0");
    expect("{\"topic\":\"x\",\"target_words\":-300}", "invalid_value",
           "target_words", "target_words negative");
    expect("{\"topic\":\"x\",\"target_words\":1e999}", "invalid_value",
           "target_words", "target_words 1e999");
    expect("{\"topic\":\"x\",\"target_words\":\"300\"}", "invalid_type",
           "target_words", "target_words string");
    expect("{\"topic\":\"x\",\"language\":\"\"}", "invalid_value", "language",
           "empty language");
    expect("{\"topic\":\"x\",\"language\":\"en_US\"}", "invalid_value",
           "language", "language en_US");
    expect("{\"topic\":\"x\",\"language\":\"-en\"}", "invalid_value",
           "language", "language -en");
    expect("{\"topic\":\"x\",\"language\":"
           "\"abcdefghijabcdefghijabcdefghijabcdef\"}", "invalid_value",
           "language", "language of 36");
    expect("{\"topic\":\"x\",\"language\":5}", "invalid_type", "language",
           "language number");
    expect("{\"topic\":\"x\",\"engine\":\"gpt\"}", "invalid_value", "engine",
           "unknown engine");
    expect("{\"topic\":\"x\",\"engine\":null}", "invalid_type", "engine",
           "engine null");

    /* hosts */

    expect("{\"topic\":\"x\",\"hosts\":{}}", "invalid_type", "hosts",
           "hosts object");
    expect("{\"topic\":\"x\",\"hosts\":null}", "invalid_type", "hosts",
           "hosts null");
    expect("{\"topic\":\"x\",\"hosts\":[]}", "invalid_value", "hosts",
           "no hosts");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\"},{\"name\":\"b\"},"
           "{\"name\":\"c\"},{\"name\":\"d\"},{\"name\":\"e\"},"
           "{\"name\":\"f\"}]}", "ok", NULL, "six hosts");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\"},{\"name\":\"b\"},"
           "{\"name\":\"c\"},{\"name\":\"d\"},{\"name\":\"e\"},"
           "{\"name\":\"f\"},{\"name\":\"g\"}]}", "invalid_value", "hosts",
           "seven hosts");
    expect("{\"topic\":\"x\",\"hosts\":[\"Sam\"]}", "invalid_type",
           "hosts[0]", "a host that is a string");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\"},{}]}",
           "missing_required_parameter", "hosts[1].name", "no name");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":5}]}", "invalid_type",
           "hosts[0].name", "name number");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":null}]}", "invalid_type",
           "hosts[0].name", "name null");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"\"}]}", "invalid_value",
           "hosts[0].name", "empty name");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"   \"}]}",
           "invalid_value", "hosts[0].name", "blank name");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\"},{\"name\":\"b\"},"
           "{\"name\":\"bell\\u0007\"}]}", "invalid_value", "hosts[2].name",
           "a control character in a name");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\\u0085b\"}]}",
           "invalid_value", "hosts[0].name", "a C1 control in a name");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"Sam\"},"
           "{\"name\":\"sAM\"}]}", "invalid_value", "hosts[1].name",
           "names are unique, any case");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"Jos\xc3\xa9\"},"
           "{\"name\":\"Dr. Lee\"}]}", "ok", NULL, "names in UTF-8");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":"
           "\"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd"
           "\"}]}", "ok", NULL, "a name of 64 bytes");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":"
           "\"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde"
           "\"}]}", "string_above_max_length", "hosts[0].name",
           "a name of 65 bytes");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\"},{\"name\":\"b\"},"
           "{\"name\":\"c\",\"voice\":5}]}", "invalid_type", "hosts[2].voice",
           "voice number");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\",\"voice\":\"\"}]}",
           "invalid_value", "hosts[0].voice", "empty voice");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\",\"role\":[]}]}",
           "invalid_type", "hosts[0].role", "role array");
    expect("{\"topic\":\"x\",\"hosts\":[{\"name\":\"a\",\"role\":"
           "\"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde"
           "\"}]}", "string_above_max_length", "hosts[0].role",
           "a role of 65 bytes");

    /* a value quoted in a message is cut between characters */

    n = (size_t) sprintf(big, "{\"topic\":\"x\",\"style\":\"x");
    for (i = 0; i < 40; i++) {
        n += (size_t) sprintf(big + n, "\xc3\xa9");
    }
    sprintf(big + n, "\"}");
    is_str(parse(big, 1000, &req, &err), "invalid_value",
           "a long UTF-8 style");
    ok(pg_utf8_valid(err.message, strlen(err.message)),
       "the message is UTF-8: %s", err.message);

    /* a body that is not an object never gets here, but be safe */

    memset(&err, 0, sizeof(err));
    ok(pg_script_request_from_json(NULL, 1000, &req, &err) == -1,
       "no object: refused");

    free(big);
}


static void
test_canonical(void)
{
    size_t       i;
    char        *base, *c;
    yajl_val     tree;

    static const char  *different[] = {
        "{\"topic\":\"Tea\"}",
        "{\"topic\":\"coffee\"}",
        "{\"topic\":\"Coffee\",\"source_text\":\"Coffee is good.\"}",
        "{\"topic\":\"Coffee\",\"focus\":\"beans\"}",
        "{\"topic\":\"Coffee\",\"language\":\"fr\"}",
        "{\"topic\":\"Coffee\",\"style\":\"brief\"}",
        "{\"topic\":\"Coffee\",\"length\":\"short\"}",
        "{\"topic\":\"Coffee\",\"target_words\":901}",
        "{\"topic\":\"Coffee\",\"engine\":\"builtin\"}",
        "{\"topic\":\"Coffee\",\"engine\":\"llm\"}",
        "{\"topic\":\"Coffee\",\"hosts\":[{\"name\":\"Alex\",\"voice\":"
        "\"alloy\",\"role\":\"host\"}]}",
        "{\"topic\":\"Coffee\",\"hosts\":[{\"name\":\"Sam\",\"voice\":\"echo\","
        "\"role\":\"expert\"},{\"name\":\"Alex\",\"voice\":\"alloy\","
        "\"role\":\"host\"}]}",
        "{\"topic\":\"Coffee\",\"hosts\":[{\"name\":\"Alex\",\"voice\":"
        "\"nova\",\"role\":\"host\"},{\"name\":\"Sam\",\"voice\":\"echo\","
        "\"role\":\"expert\"}]}",
        "{\"topic\":\"Coffee\",\"hosts\":[{\"name\":\"Alex\",\"voice\":"
        "\"alloy\"},{\"name\":\"Sam\",\"voice\":\"echo\","
        "\"role\":\"expert\"}]}",
        "{\"topic\":\"Coffee\",\"hosts\":[{\"name\":\"Alexa\",\"voice\":"
        "\"alloy\",\"role\":\"host\"},{\"name\":\"Sam\",\"voice\":\"echo\","
        "\"role\":\"expert\"}]}",
        NULL
    };

    base = canonical("{\"topic\":\"Coffee\"}");

    is_str(base, "{\"topic\":\"Coffee\",\"source_text\":null,\"focus\":null,"
                 "\"language\":\"en\",\"style\":\"deep-dive\","
                 "\"target_words\":900,\"engine\":\"default\",\"hosts\":["
                 "{\"name\":\"Alex\",\"voice\":\"alloy\",\"role\":\"host\"},"
                 "{\"name\":\"Sam\",\"voice\":\"echo\",\"role\":\"expert\"}]}",
           "canonical form: fixed order, defaults, hosts with voices");

    tree = yajl_tree_parse(base, NULL, 0);
    ok(tree != NULL, "canonical form is JSON");
    yajl_tree_free(tree);

    c = canonical("{\"hosts\":[{\"name\":\"Alex\",\"role\":\"host\","
                  "\"voice\":\"alloy\"},{\"voice\":\"echo\",\"name\":\"Sam\","
                  "\"role\":\"expert\"}],\"length\":\"medium\","
                  "\"language\":\"EN\",\"style\":\"deep-dive\","
                  "\"topic\":\"  Coffee \",\"focus\":\" \",\"unknown\":1}");
    is_str(c, base, "an equivalent request: the same bytes");
    free(c);

    c = canonical("{\"topic\":\"Coffee\",\"target_words\":900.0}");
    is_str(c, base, "target_words 900 is medium");
    free(c);

    c = canonical("{\"topic\":\"Coffee\",\"length\":\"long\"}");
    ok(strstr(c, "\"target_words\":2000") != NULL, "long is 2000 words");
    free(c);

    for (i = 0; different[i]; i++) {
        c = canonical(different[i]);
        ok(strcmp(c, base) != 0, "canonical form differs: %s", different[i]);
        free(c);
    }

    c = canonical("{\"topic\":\"a \\\"quoted\\\" \\\\ topic\\u2028\"}");
    tree = yajl_tree_parse(c, NULL, 0);
    ok(tree != NULL, "canonical form escapes: %s", c);
    yajl_tree_free(tree);
    free(c);

    free(base);
}


/* the first segment of the script whose text contains needle, or -1 */
static long
find_segment(const pg_script_t *s, const char *needle)
{
    size_t  i;

    for (i = 0; i < s->nsegments; i++) {
        if (strstr(s->segments[i].text, needle)) {
            return (long) i;
        }
    }

    return -1;
}


static void
test_styles(const char *source, const char *norm)
{
    int                   bad;
    char                 *body, *json[5];
    long                  i, j;
    size_t                k, sentences, framing, words;
    pg_script_t           s;
    pg_script_request_t   req;

    static const char  *styles[] = {
        "deep-dive", "brief", "debate", "interview", "critique"
    };

    for (k = 0; k < 5; k++) {
        char  rest[128];

        snprintf(rest, sizeof(rest),
                 "\"style\":\"%s\",\"hosts\":[{\"name\":\"Alex\"},"
                 "{\"name\":\"Sam\"},{\"name\":\"Jo\"}]", styles[k]);
        body = body_with_source(source, rest);

        ok(generate(body, &req, &s) == 0, "%s: generated", styles[k]);
        bad = check_script(&s, 3, styles[k]);
        is_int(bad, 0, "%s: a valid script", styles[k]);

        json[k] = to_json(&s);

        for (j = 0; j < 3; j++) {
            ok(speaks(&s, (size_t) j), "%s: host %ld speaks", styles[k], j);
        }

        ok(strstr(s.segments[0].text, "elcome to the show") != NULL
           && strstr(s.segments[0].text, "Sam and Jo") != NULL,
           "%s: host 0 welcomes and names the others: %.120s", styles[k],
           s.segments[0].text);
        is_int(s.segments[0].speaker, 0, "%s: host 0 opens", styles[k]);
        is_int(s.segments[s.nsegments - 1].speaker, 0, "%s: host 0 closes",
               styles[k]);
        ok(strstr(s.segments[s.nsegments - 1].text, "listening") != NULL,
           "%s: an outro", styles[k]);

        words = content_words(&s, norm, &sentences, &framing);
        is_int(framing, 0, "%s: every long sentence is from the source",
               styles[k]);
        ok(words * 10 >= s.word_count * 6,
           "%s: mostly content (%zu of %zu words)", styles[k], words,
           s.word_count);

        switch (k) {

        case 0:
            ok(find_segment(&s, "deep dive") == 0, "deep-dive: said so");
            ok(find_segment(&s, "Let's recap.") > 0, "deep-dive: a recap");
            ok(find_segment(&s, "Sam, ") > 0 && find_segment(&s, "Jo, ") > 0
               && count_str(&s, "Alex, ") >= 2,
               "deep-dive: hand-overs by name");
            ok(count_str(&s, "?") >= 6, "deep-dive: follow-up questions");
            break;

        case 1:
            ok(find_segment(&s, "brief") == 0, "brief: said so");
            ok(find_segment(&s, "First.") > 0 && find_segment(&s, "Finally.")
                                                 > 0,
               "brief: key points in order");
            ok(find_segment(&s, "Let's recap.") < 0, "brief: no recap");
            ok(strcmp(s.segments[s.nsegments - 1].text + strlen(
                          s.segments[s.nsegments - 1].text)
                      - strlen("That's the brief. Thanks for listening."),
                      "That's the brief. Thanks for listening.") == 0,
               "brief: a one-line outro");
            break;

        case 2:
            ok(find_segment(&s, "debating") == 0, "debate: said so");
            is_int(count_str(&s, "My position:"), 3,
                   "debate: each host states a position");
            ok(count_str(&s, "push back") + count_str(&s, "differently")
               + count_str(&s, "half the picture") + count_str(&s, "challenge")
               + count_str(&s, "not so sure") + count_str(&s, "but consider")
               >= 3, "debate: counter-points");
            break;

        case 3:
            ok(find_segment(&s, "talking with Sam and Jo") == 0,
               "interview: host 0 interviews the others");

            /* after the greetings: host 0 asks, a guest answers */

            for (i = 3, bad = 0; i + 1 < (long) s.nsegments; i += 2) {
                bad += s.segments[i].speaker != 0
                       || strchr(s.segments[i].text, '?') == NULL
                       || s.segments[i + 1].speaker == 0;
            }

            is_int(bad, 0, "interview: questions then answers");
            break;

        case 4:
            ok(find_segment(&s, "strengths") > 0, "critique: strengths");
            ok(find_segment(&s, "weak spots") > find_segment(&s, "strengths"),
               "critique: then weaknesses");
            ok(find_segment(&s, "Time for a verdict.")
               > find_segment(&s, "weak spots"), "critique: then a verdict");
            is_int(count_str(&s, "My verdict:"), 3,
                   "critique: each host's verdict");
            break;
        }

        pg_script_free(&s);
        pg_script_request_free(&req);
        free(body);
    }

    bad = 0;

    for (i = 0; i < 5; i++) {
        for (j = i + 1; j < 5; j++) {
            bad += json[i] && json[j] && strcmp(json[i], json[j]) == 0;
        }
    }

    is_int(bad, 0, "five styles, five different scripts");

    for (i = 0; i < 5; i++) {
        free(json[i]);
    }
}


static void
test_hosts(const char *source)
{
    int                   bad, all;
    char                 *body, rest[512];
    size_t                n, k, h, len;
    pg_script_t           s;
    pg_script_request_t   req;

    static const char  *names[] = {
        "Alex", "Sam", "Jo", "Kim", "Lee", "Max"
    };

    static const char  *styles[] = {
        "deep-dive", "brief", "debate", "interview", "critique"
    };

    for (k = 0; k < 5; k++) {
        for (n = 1; n <= 6; n++) {
            len = snprintf(rest, sizeof(rest), "\"style\":\"%s\",\"hosts\":[",
                           styles[k]);

            for (h = 0; h < n; h++) {
                len += snprintf(rest + len, sizeof(rest) - len,
                                "%s{\"name\":\"%s\"}", h ? "," : "",
                                names[h]);
            }

            snprintf(rest + len, sizeof(rest) - len, "]");

            body = body_with_source(source, rest);

            if (generate(body, &req, &s) != 0) {
                ok(0, "%s, %zu hosts: generated", styles[k], n);
                free(body);
                continue;
            }

            bad = check_script(&s, n, styles[k]);

            all = 1;

            for (h = 0; h < n; h++) {
                all &= speaks(&s, h);
            }

            ok(bad == 0 && all, "%s, %zu host%s: valid, every host speaks, "
               "no host twice in a row", styles[k], n, n > 1 ? "s" : "");

            pg_script_free(&s);
            pg_script_request_free(&req);
            free(body);
        }
    }
}


static void
test_length(const char *source, const char *norm)
{
    int                   bad;
    char                 *body, rest[128];
    double                dev;
    size_t                k, l, sentences, framing;
    pg_script_t           s;
    pg_script_request_t   req;

    static const char  *styles[] = {
        "deep-dive", "brief", "debate", "interview", "critique"
    };

    static const char  *lengths[] = {
        "\"length\":\"short\"", "\"length\":\"medium\"", "\"length\":\"long\"",
        "\"target_words\":1500", "\"target_words\":600"
    };

    static const size_t  targets[] = { 300, 900, 2000, 1500, 600 };

    for (k = 0; k < 5; k++) {
        for (l = 0; l < 5; l++) {
            snprintf(rest, sizeof(rest), "\"style\":\"%s\",%s%s", styles[k],
                     lengths[l],
                     l == 4 ? ",\"hosts\":[{\"name\":\"Ana\"},"
                              "{\"name\":\"Ben\"},{\"name\":\"Cy\"},"
                              "{\"name\":\"Dee\"}]" : "");
            body = body_with_source(source, rest);

            if (generate(body, &req, &s) != 0) {
                ok(0, "%s %s: generated", styles[k], lengths[l]);
                free(body);
                continue;
            }

            dev = ((double) s.word_count - targets[l]) / targets[l];

            ok(dev >= -0.15 && dev <= 0.15,
               "%s, %s: %zu words for %zu (%+.1f%%)", styles[k], lengths[l],
               s.word_count, targets[l], dev * 100);

            bad = check_script(&s, l == 4 ? 4 : 2, styles[k]);
            content_words(&s, norm, &sentences, &framing);
            is_int(bad + (int) framing, 0, "%s, %s: valid and extractive",
                   styles[k], lengths[l]);

            pg_script_free(&s);
            pg_script_request_free(&req);
            free(body);
        }
    }
}


static void
test_short_source(void)
{
    char                 *body, *norm;
    size_t                words, sentences, framing;
    pg_script_t           s;
    pg_script_request_t   req;

    static const char  *source =
        "Tea was first drunk in China as a medicine. Over centuries it "
        "became an everyday drink. Traders carried it along the Silk Road "
        "to Central Asia. In the seventeenth century Dutch ships brought "
        "it to Europe. Today tea is the most widely consumed drink after "
        "water.";

    body = body_with_source(source, "\"topic\":\"Tea\",\"length\":\"long\"");
    ok(generate(body, &req, &s) == 0, "a short source: generated");
    is_int(check_script(&s, 2, "short source"), 0, "a short source: valid");

    norm = normalized(source);
    words = content_words(&s, norm, &sentences, &framing);

    is_int(sentences, 5, "a short source: all its sentences are used");
    is_int(framing, 0, "a short source: nothing invented");
    ok(s.word_count < 300 && words < s.word_count,
       "a short source: no padding (%zu words for 2000)", s.word_count);
    is_str(s.title, "Tea", "the title is the topic");

    pg_script_free(&s);
    pg_script_request_free(&req);
    free(body);
    free(norm);

    /* a single sentence */

    body = body_with_source("Coffee is great.", "\"topic\":\"Coffee\"");
    ok(generate(body, &req, &s) == 0, "one sentence: generated");
    is_int(check_script(&s, 2, "one sentence"), 0, "one sentence: valid");
    is_int(find_segment(&s, "Coffee is great.") > 0, 1,
           "one sentence: quoted");
    pg_script_free(&s);
    pg_script_request_free(&req);
    free(body);
}


static void
test_outline(void)
{
    size_t                k, n;
    char                  body[256], *body_cjk;
    pg_script_t           s;
    pg_script_request_t   req;

    static const char  *styles[] = {
        "deep-dive", "brief", "debate", "interview", "critique"
    };

    for (k = 0; k < 5; k++) {
        snprintf(body, sizeof(body),
                 "{\"topic\":\"the history of coffee\",\"style\":\"%s\"}",
                 styles[k]);

        ok(generate(body, &req, &s) == 0, "outline %s: generated", styles[k]);
        is_int(check_script(&s, 2, "outline"), 0, "outline %s: valid",
               styles[k]);
        is_str(s.title, "The history of coffee: an outline",
               "outline %s: the title says so", styles[k]);
        ok(strstr(s.segments[0].text, "No source material") != NULL
           && strstr(s.segments[0].text, "outline") != NULL,
           "outline %s: the intro says so", styles[k]);
        ok(find_segment(&s, "What is the history of coffee?") > 0,
           "outline %s: what is it?", styles[k]);
        ok(find_segment(&s, "open questions") > 0,
           "outline %s: open questions", styles[k]);

        n = count_str(&s, "?");
        ok(n >= 3 && s.word_count < 200,
           "outline %s: a short list of questions (%zu, %zu words)",
           styles[k], n, s.word_count);
        ok(speaks(&s, 0) && speaks(&s, 1), "outline %s: both hosts speak",
           styles[k]);

        pg_script_free(&s);
        pg_script_request_free(&req);
    }

    /* a topic is shown as written, on one line, without controls */

    ok(generate("{\"topic\":\"Caf\xc3\xa9\\nculture \\u0007\\t at "
                "\xe6\x97\xa5\xe6\x9c\xac\"}", &req, &s) == 0,
       "a non-ASCII topic: generated");
    is_str(s.title, "Caf\xc3\xa9 culture at \xe6\x97\xa5\xe6\x9c\xac: an "
           "outline", "a non-ASCII topic: the title");
    ok(find_segment(&s, "What is Caf\xc3\xa9 culture at") > 0,
       "a non-ASCII topic: in the questions");
    is_int(check_script(&s, 2, "non-ASCII topic"), 0,
           "a non-ASCII topic: valid");
    pg_script_free(&s);
    pg_script_request_free(&req);

    /* a long topic without spaces is cut between characters */

    body_cjk = malloc(1024);
    n = (size_t) sprintf(body_cjk, "{\"topic\":\"");
    for (k = 0; k < 60; k++) {
        n += (size_t) sprintf(body_cjk + n, "\xe6\x97\xa5");
    }
    sprintf(body_cjk + n, "\",\"style\":\"brief\"}");

    ok(generate(body_cjk, &req, &s) == 0, "a long CJK topic: generated");
    is_int(check_script(&s, 2, "long CJK topic"), 0,
           "a long CJK topic: valid UTF-8 everywhere");
    ok(strlen(s.title) <= 80, "a long CJK topic: a short title (%zu bytes)",
       strlen(s.title));
    pg_script_free(&s);
    pg_script_request_free(&req);
    free(body_cjk);

    /* a long topic is cut for the title */

    ok(generate("{\"topic\":\"an extremely long topic that goes on and on "
                "about many different things and never seems to come to an "
                "end at all\"}", &req, &s) == 0, "a long topic: generated");
    ok(strlen(s.title) <= 80
       && strcmp(s.title + strlen(s.title) - 12, ": an outline") == 0,
       "a long topic: the title is short: %s", s.title);
    pg_script_free(&s);
    pg_script_request_free(&req);
}


static void
test_determinism(const char *source)
{
    size_t                k;
    char                 *body, *a, *b, rest[64];
    pg_script_t           s;
    pg_script_request_t   req;

    static const char  *styles[] = {
        "deep-dive", "brief", "debate", "interview", "critique"
    };

    for (k = 0; k < 5; k++) {
        snprintf(rest, sizeof(rest), "\"style\":\"%s\"", styles[k]);
        body = body_with_source(source, rest);

        a = NULL;
        b = NULL;

        if (generate(body, &req, &s) == 0) {
            a = to_json(&s);
            pg_script_free(&s);
            pg_script_request_free(&req);
        }

        if (generate(body, &req, &s) == 0) {
            b = to_json(&s);
            pg_script_free(&s);
            pg_script_request_free(&req);
        }

        ok(a && b && strcmp(a, b) == 0, "%s: two runs, the same bytes",
           styles[k]);

        free(a);
        free(b);
        free(body);
    }
}


static void
test_focus(const char *source)
{
    char                 *body;
    size_t                plain, focused;
    pg_script_t           s;
    pg_script_request_t   req;

    body = body_with_source(source, "\"length\":\"short\"");
    generate(body, &req, &s);
    plain = count_str(&s, "yeast");
    pg_script_free(&s);
    pg_script_request_free(&req);
    free(body);

    body = body_with_source(source, "\"length\":\"short\","
                            "\"focus\":\"yeasts and bacteria\"");
    generate(body, &req, &s);
    focused = count_str(&s, "yeast");
    ok(find_segment(&s, "attention to yeasts and bacteria") == 0,
       "the intro names the focus");
    pg_script_free(&s);
    pg_script_request_free(&req);
    free(body);

    ok(focused > plain, "the focus picks its sentences (%zu > %zu mentions)",
       focused, plain);
}


static void
test_title(const char *history)
{
    char                 *body;
    pg_script_t           s;
    pg_script_request_t   req;

    body = body_with_source(history, "");
    generate(body, &req, &s);
    ok(s.title && strlen(s.title) <= 80 && s.title[0] >= 'A'
       && s.title[0] <= 'Z', "a title from the source: \"%s\"", s.title);
    ok(strstr(s.segments[0].text, "a text about") != NULL,
       "the intro says what the text is about");
    pg_script_free(&s);
    pg_script_request_free(&req);
    free(body);
}


/* generates from a hostile source, checks the script, returns seconds */
static double
hostile(const char *source, const char *rest, const char *name)
{
    char                 *body;
    double                t;
    pg_script_t           s;
    pg_script_request_t   req;

    body = body_with_source(source, rest);

    t = now();

    if (generate(body, &req, &s) != 0) {
        ok(0, "%s: generated", name);
        free(body);
        return 0;
    }

    t = now() - t;

    is_int(check_script(&s, req.nhosts, name), 0, "%s: a valid script (%zu "
           "words, %.3f s)", name, s.word_count, t);

    pg_script_free(&s);
    pg_script_request_free(&req);
    free(body);

    return t;
}


static void
test_hostile(void)
{
    char    *src, *p, *vocab;
    double   t;
    size_t   i, n;

    static const char  *words[] = {
        "river", "stone", "quickly", "market", "seven", "winter", "paper",
        "under", "signal", "green", "bridge", "the", "and", "of", "a",
        "lantern", "orbit", "copper", "harbor", "velvet"
    };

    n = 1024 * 1024;
    src = malloc(n + 64);
    vocab = malloc(5000 * 12);

    /* a vocabulary of made-up words, then one megabyte of them: one
     * sentence without punctuation */

    for (i = 0; i < 5000; i++) {
        size_t  k, len;

        len = 2 + rng_next() % 8;

        for (k = 0; k < len; k++) {
            vocab[i * 12 + k] = (char) ('a' + rng_next() % 26);
        }

        vocab[i * 12 + len] = '\0';
    }

    for (p = src; p < src + n - 16; ) {
        p += sprintf(p, "%s ", vocab + (rng_next() % 5000) * 12);
    }
    *p = '\0';

    t = hostile(src, "", "1 MB without punctuation");
    ok(t < 1.0, "1 MB without punctuation: well under a second (%.3f s)", t);

    t = hostile(src, "\"style\":\"debate\",\"target_words\":5000",
                "1 MB, debate, 5000 words");
    ok(t < 1.0, "1 MB, 5000 words: well under a second (%.3f s)", t);

    /* one megabyte of sentences with random words */

    for (p = src; p < src + n - 64; ) {
        for (i = rng_next() % 20 + 3; i > 0; i--) {
            p += sprintf(p, "%s ", words[rng_next() % 20]);
        }
        p += sprintf(p, "%s. ", words[rng_next() % 20]);
    }
    *p = '\0';

    t = hostile(src, "\"style\":\"critique\",\"hosts\":[{\"name\":\"a\"},"
                "{\"name\":\"b\"},{\"name\":\"c\"},{\"name\":\"d\"},"
                "{\"name\":\"e\"},{\"name\":\"f\"}]",
                "1 MB of random sentences, 6 hosts");
    ok(t < 1.0, "1 MB of sentences: well under a second (%.3f s)", t);

    /* one megabyte of one letter */

    memset(src, 'a', n);
    src[n] = '\0';
    hostile(src, "", "1 MB of one letter");

    /* the same sentence over and over */

    for (p = src; p < src + n - 64; ) {
        p += sprintf(p, "The cat sat on the mat. ");
    }
    *p = '\0';
    hostile(src, "\"length\":\"long\"", "the same sentence 40000 times");

    /* only numbers */

    for (p = src; p < src + 200000; ) {
        p += sprintf(p, "%u ", (unsigned) (rng_next() % 100000));
        if (rng_next() % 10 == 0) {
            p += sprintf(p, "%u. ", (unsigned) (rng_next() % 100));
        }
    }
    *p = '\0';
    hostile(src, "", "only numbers");

    /* control characters, non-ASCII, emoji, stray bytes as escapes */

    for (p = src, i = 0; i < 20000; i++) {
        switch (rng_next() % 8) {
        case 0: p += sprintf(p, "\x01\x02\x1b"); break;
        case 1: p += sprintf(p, "\xe4\xb8\xad\xe6\x96\x87 "); break;
        case 2: p += sprintf(p, "\xf0\x9f\x98\x80"); break;
        case 3: p += sprintf(p, "caf\xc3\xa9 na\xc3\xafve "); break;
        case 4: p += sprintf(p, "\xe2\x80\x94. "); break;
        case 5: p += sprintf(p, "\x7f\t\r\n"); break;
        case 6: p += sprintf(p, "%s ", words[rng_next() % 20]); break;
        default: p += sprintf(p, "\xc2\x85\xe2\x80\xa8 "); break;
        }
    }
    *p = '\0';
    hostile(src, "\"topic\":\"\\u0007noise\\u001b\"", "controls and non-ASCII");

    /* punctuation only, with a topic */

    hostile("!!!! ???? .... ,,,, ;;;; ----", "\"topic\":\"Punctuation\"",
            "punctuation only");

    /* a URL-like token soup */

    for (p = src, i = 0; i < 2000; i++) {
        p += sprintf(p, "https://example.com/%016llx/%016llx?q=%llu ",
                     (unsigned long long) rng_next(),
                     (unsigned long long) rng_next(),
                     (unsigned long long) rng_next());
    }
    *p = '\0';
    hostile(src, "", "long tokens");

    /* many short bullet lines */

    for (p = src, i = 0; i < 5000; i++) {
        p += sprintf(p, "- %s %s\n", words[rng_next() % 20],
                     words[rng_next() % 20]);
    }
    *p = '\0';
    hostile(src, "\"topic\":\"Lists\",\"style\":\"interview\"", "bullets");

    /* tiny sources */

    hostile("Hi.", "\"topic\":\"Greetings\"", "two letters");
    hostile("Go", "", "one word");
    hostile("A b c d e f g h i j k l m n o p.", "", "letters");

    free(src);
    free(vocab);
}


static const char *
get_string(yajl_val obj, const char *key)
{
    yajl_val     v;
    const char  *path[2];

    path[0] = key;
    path[1] = NULL;

    v = yajl_tree_get(obj, path, yajl_t_string);

    return v ? YAJL_GET_STRING(v) : "(none)";
}


static void
test_json(void)
{
    char                 *json;
    yajl_val              tree, v;
    pg_script_t           s;
    pg_script_request_t   req;
    const char           *path[3] = { NULL, NULL, NULL };

    ok(generate("{\"source_text\":\"He said \\\"hi\\\" \\\\ and left. Then "
                "he came back with a \\\"plan\\\" for all of us.\","
                "\"hosts\":[{\"name\":\"Quote \\\" Man\",\"voice\":\"slt\"},"
                "{\"name\":\"Back\\\\slash\",\"role\":\"guest\"}]}", &req, &s)
       == 0, "quotes and backslashes: generated");

    json = to_json(&s);
    tree = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    ok(tree != NULL, "quotes and backslashes: the JSON parses");

    if (tree) {
        path[0] = "hosts";
        v = yajl_tree_get(tree, path, yajl_t_array);
        ok(v && v->u.array.len == 2
           && strcmp(get_string(v->u.array.values[0], "name"),
                     "Quote \" Man") == 0,
           "a host's name survives");
        ok(v && YAJL_IS_NULL(yajl_tree_get(v->u.array.values[1],
                   (const char *[]) { "voice", NULL }, yajl_t_any)),
           "no voice: null");

        path[0] = "segments";
        v = yajl_tree_get(tree, path, yajl_t_array);
        ok(v && v->u.array.len == s.nsegments
           && strcmp(get_string(v->u.array.values[0], "speaker"),
                     "Quote \" Man") == 0,
           "segments name their speaker");

        path[0] = "estimated_duration_s";
        v = yajl_tree_get(tree, path, yajl_t_number);
        ok(v && YAJL_GET_DOUBLE(v) == pg_script_duration(&s),
           "estimated_duration_s");

        path[0] = "title";
        ok(yajl_tree_get(tree, path, yajl_t_string) != NULL, "a title");

        yajl_tree_free(tree);
    }

    free(json);
    pg_script_free(&s);
    pg_script_request_free(&req);

    memset(&s, 0, sizeof(s));
    s.word_count = 150;
    ok(pg_script_duration(&s) == 60.0, "150 words: 60 s");
    s.word_count = 1;
    ok(pg_script_duration(&s) == 0.4, "1 word: 0.4 s");
    s.word_count = 1001;
    ok(pg_script_duration(&s) == 400.4, "1001 words: 400.4 s");
    s.word_count = 0;
    ok(pg_script_duration(&s) == 0.0, "no words: 0 s");
}


/* parses an LLM reply with the fixed request; "ok" or the error code */
static const char *
llm(const char *reply, size_t len, const pg_script_request_t *req,
    pg_script_t *s, pg_error_t *err)
{
    memset(err, 0, sizeof(pg_error_t));

    if (pg_script_from_llm_json(reply, len, req, s, err) == 0) {
        return "ok";
    }

    return err->code;
}


static void
llm_expect(const char *reply, const pg_script_request_t *req,
    const char *code, const char *name)
{
    const char   *got;
    pg_error_t    err;
    pg_script_t   s;

    got = llm(reply, strlen(reply), req, &s, &err);
    is_str(got, code, "llm %s: %s", name,
           strcmp(got, "ok") ? err.message : "");

    if (strcmp(got, "ok") == 0) {
        is_int(check_script(&s, req->nhosts, name), 0, "llm %s: valid", name);
        pg_script_free(&s);

    } else {
        ok(err.status == 502 && err.message[0], "llm %s: a 502 with a reason",
           name);
    }
}


static void
test_llm(void)
{
    char                 *big, *p;
    size_t                i, n;
    pg_error_t            err;
    pg_script_t           s;
    pg_script_request_t   req;

    ok(strcmp(parse("{\"topic\":\"coffee in the morning\"}", 1000, &req,
                    &err), "ok") == 0, "the LLM's request");

#define TWO  "[{\"speaker\":\"Alex\",\"text\":\"Hi.\"}," \
             "{\"speaker\":\"Sam\",\"text\":\"Hello.\"}]"

    static const char  valid[] =
        "{\"title\":\" Morning Coffee \",\"dialogue\":["
        "{\"speaker\":\"Alex\",\"text\":\"Welcome to the show.\"},"
        "{\"speaker\":\" sam \",\"text\":\"  Glad to be here. \\n\"},"
        "{\"speaker\":\"ALEX\",\"text\":\"Let's talk coffee.\","
        "\"emotion\":\"happy\"}],\"extra\":1}";

    static const char  nul[] =
        "{\"title\":\"T\",\"dialogue\":" TWO "}\0xx";

    is_str(llm(valid, sizeof(valid) - 1, &req, &s, &err), "ok",
           "llm: a valid reply");
    is_str(s.title, "Morning Coffee", "llm: the title, trimmed");
    is_int(s.nsegments, 3, "llm: three turns");
    is_int(s.segments[1].speaker, 1, "llm: speakers match in any case");
    is_int(s.segments[2].speaker, 0, "llm: ALEX is Alex");
    is_str(s.segments[1].text, "Glad to be here.", "llm: text trimmed");
    is_int(s.word_count, 11, "llm: words counted");
    is_int(s.nhosts, 2, "llm: the hosts");
    is_str(s.hosts[1].voice, "echo", "llm: with their voices");
    pg_script_free(&s);

    is_str(llm("{\"dialogue\":" TWO "}", strlen("{\"dialogue\":" TWO "}"),
               &req, &s, &err), "ok", "llm: no title");
    is_str(s.title, "Coffee in the morning", "llm: the title from the topic");
    pg_script_free(&s);

    llm_expect("{\"title\":\"T\",\"dialogue\":" TWO "}", &req, "ok", "minimal");
    llm_expect("```json\n{\"title\":\"T\",\"dialogue\":" TWO "}\n```", &req,
               "ok", "fenced");
    llm_expect("  ```\n{\"title\":\"T\",\"dialogue\":" TWO "}\n```  \n", &req,
               "ok", "fenced without a language");
    llm_expect("Here is your script:\n\n```json\n{\"title\":\"T\","
               "\"dialogue\":" TWO "}\n```\nEnjoy!", &req, "ok",
               "prose around a fence");
    llm_expect("```json\n{\"title\":\"T ``` x\",\"dialogue\":" TWO "}\n```",
               &req, "ok", "a fence inside a string");
    llm_expect("```json\n{\"title\":\"T\",\"dialogue\":" TWO, &req,
               "invalid_llm_reply", "an unclosed fence, truncated JSON");
    llm_expect("```json", &req, "invalid_llm_reply", "only a fence");

    llm_expect("{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Bob\","
               "\"text\":\"Hi.\"},{\"speaker\":\"Sam\",\"text\":\"Yo.\"}]}",
               &req, "invalid_llm_reply", "a wrong speaker");
    llm_expect("{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Alex\","
               "\"text\":\" \\n \"},{\"speaker\":\"Sam\",\"text\":\"Yo.\"}]}",
               &req, "invalid_llm_reply", "an empty text");
    llm_expect("{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Alex\","
               "\"text\":\"Hi.\"},{\"speaker\":\"Sam\"}]}",
               &req, "invalid_llm_reply", "no text");
    llm_expect("{\"title\":\"T\",\"dialogue\":[{\"speaker\":1,"
               "\"text\":\"Hi.\"},{\"speaker\":\"Sam\",\"text\":\"Yo.\"}]}",
               &req, "invalid_llm_reply", "a speaker number");
    llm_expect("{\"title\":\"T\",\"dialogue\":[\"Alex: Hi.\","
               "\"Sam: Yo.\"]}", &req, "invalid_llm_reply", "turns as strings");
    llm_expect("{\"title\":\"T\",\"script\":" TWO "}", &req,
               "invalid_llm_reply", "no dialogue");
    llm_expect("{\"title\":\"T\",\"dialogue\":{\"a\":1}}", &req,
               "invalid_llm_reply", "dialogue an object");
    llm_expect("{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Alex\","
               "\"text\":\"Hi.\"}]}", &req, "invalid_llm_reply", "one turn");
    llm_expect("{\"title\":\"T\",\"dialogue\":[]}", &req, "invalid_llm_reply",
               "no turns");
    llm_expect("{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Alex\","
               "\"text\":\"Hi.\"},{\"speaker\":\"Sam\",\"text\":\"Yo.\"}",
               &req, "invalid_llm_reply", "truncated");
    llm_expect("{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Al", &req,
               "invalid_llm_reply", "truncated mid-string");
    llm_expect("{\"title\":\"\",\"dialogue\":" TWO "}", &req,
               "invalid_llm_reply", "an empty title");
    llm_expect("{\"title\":7,\"dialogue\":" TWO "}", &req,
               "invalid_llm_reply", "a title number");
    llm_expect("{\"title\":null,\"dialogue\":" TWO "}", &req, "ok",
               "a null title is a missing one");
    llm_expect("I'm sorry, I can't do that.", &req, "invalid_llm_reply",
               "prose");
    llm_expect("", &req, "invalid_llm_reply", "empty");
    llm_expect("[1,2,3]", &req, "invalid_llm_reply", "an array");
    llm_expect("{\"title\":\"T\",\"dialogue\":" TWO "} trailing", &req,
               "invalid_llm_reply", "trailing garbage");

    is_str(llm(NULL, 0, &req, &s, &err), "invalid_llm_reply", "llm: NULL");
    is_str(llm(nul, sizeof(nul) - 1, &req, &s, &err), "invalid_llm_reply",
           "llm: a NUL byte");

    /* sizes */

    big = malloc(6 * 1024 * 1024);
    if (big == NULL) {
        exit(1);
    }

    n = sprintf(big, "{\"title\":\"");
    memset(big + n, 'T', 201);
    n += 201;
    n += sprintf(big + n, "\",\"dialogue\":" TWO "}");
    is_str(llm(big, n, &req, &s, &err), "invalid_llm_reply",
           "llm: a title of 201 bytes");

    n = sprintf(big, "{\"title\":\"");
    memset(big + n, 'T', 200);
    n += 200;
    n += sprintf(big + n, "\",\"dialogue\":" TWO "}");
    is_str(llm(big, n, &req, &s, &err), "ok", "llm: a title of 200 bytes");
    pg_script_free(&s);

    n = sprintf(big, "{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Sam\","
                "\"text\":\"");
    memset(big + n, 'w', 2000);
    n += 2000;
    n += sprintf(big + n, "\"},{\"speaker\":\"Alex\",\"text\":\"ok\"}]}");
    is_str(llm(big, n, &req, &s, &err), "ok", "llm: a text of 2000 bytes");
    pg_script_free(&s);

    n = sprintf(big, "{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Sam\","
                "\"text\":\"");
    memset(big + n, 'w', 2001);
    n += 2001;
    n += sprintf(big + n, "\"},{\"speaker\":\"Alex\",\"text\":\"ok\"}]}");
    is_str(llm(big, n, &req, &s, &err), "invalid_llm_reply",
           "llm: a text of 2001 bytes");

    n = sprintf(big, "{\"title\":\"T\",\"dialogue\":[{\"speaker\":\"Sam\","
                "\"text\":\"");
    memset(big + n, 'w', 1024 * 1024);
    n += 1024 * 1024;
    n += sprintf(big + n, "\"},{\"speaker\":\"Alex\",\"text\":\"ok\"}]}");
    is_str(llm(big, n, &req, &s, &err), "invalid_llm_reply",
           "llm: a huge text");

    for (i = 400; i <= 401; i++) {
        size_t  k;

        p = big + sprintf(big, "{\"title\":\"T\",\"dialogue\":[");

        for (k = 0; k < i; k++) {
            p += sprintf(p, "%s{\"speaker\":\"%s\",\"text\":\"Turn %zu.\"}",
                         k ? "," : "", k % 2 ? "Sam" : "Alex", k);
        }

        p += sprintf(p, "]}");

        if (i == 400) {
            is_str(llm(big, (size_t) (p - big), &req, &s, &err), "ok",
                   "llm: 400 turns");
            pg_script_free(&s);

        } else {
            is_str(llm(big, (size_t) (p - big), &req, &s, &err),
                   "invalid_llm_reply", "llm: 401 turns");
        }
    }

    memset(big, ' ', 5 * 1024 * 1024);
    memcpy(big, "{\"title\":\"T\",\"dialogue\":" TWO "}",
           strlen("{\"title\":\"T\",\"dialogue\":" TWO "}"));
    is_str(llm(big, 5 * 1024 * 1024, &req, &s, &err), "invalid_llm_reply",
           "llm: a 5 MB reply");

    memset(big, '[', 100000);
    is_str(llm(big, 100000, &req, &s, &err), "invalid_llm_reply",
           "llm: deep nesting");

    n = sprintf(big, "{\"title\":\"T\",\"dialogue\":[");
    for (i = 0; i < 40; i++) {
        big[n++] = '[';
    }
    for (i = 0; i < 40; i++) {
        big[n++] = ']';
    }
    n += sprintf(big + n, "]}");
    is_str(llm(big, n, &req, &s, &err), "invalid_llm_reply",
           "llm: nesting inside the dialogue");

    /* every prefix of a valid reply: never a crash, never a success */

    n = sprintf(big, "```json\n{\"title\":\"T\",\"dialogue\":" TWO "}\n```");

    for (i = 0, p = NULL; i < n - 4; i++) {
        if (strcmp(llm(big, i, &req, &s, &err), "ok") == 0) {
            pg_script_free(&s);
            p = big;
        }
    }

    ok(p == NULL, "llm: no truncated reply is accepted");

    free(big);
    pg_script_request_free(&req);

#undef TWO
}


static void
test_throughput(const char *source)
{
    char                 *body;
    size_t                n, words;
    double                t, elapsed;
    pg_script_t           s;
    pg_script_request_t   req;
    pg_error_t            err;

    body = body_with_source(source, "");

    if (strcmp(parse(body, MAX_SOURCE, &req, &err), "ok") != 0) {
        ok(0, "throughput: the request");
        free(body);
        return;
    }

    words = count_words(source);
    n = 0;
    elapsed = 1.0;
    t = now();

    do {
        if (pg_script_generate(&req, &s) != 0) {
            break;
        }

        pg_script_free(&s);
        n++;
        elapsed = now() - t;

    } while (elapsed < 1.0);

    ok(n > 0, "throughput: generated");
    printf("# generator throughput: %.0f scripts/s on a %zu-word source, "
           "one core (medium deep-dive%s)\n", n / elapsed, words,
#if defined(__SANITIZE_ADDRESS__)
           ", under ASan"
#else
           ""
#endif
           );

    pg_script_request_free(&req);
    free(body);
}


int
main(void)
{
    char    *history, *sleep_text, *bread, *all, *norm_all;
    size_t   n;

    history = read_file("t/data/source-history.txt");
    sleep_text = read_file("t/data/source-sleep.txt");
    bread = read_file("t/data/source-bread.txt");

    n = strlen(history) + strlen(sleep_text) + strlen(bread) + 8;
    all = malloc(n);
    snprintf(all, n, "%s\n\n%s\n\n%s", history, sleep_text, bread);
    norm_all = normalized(all);

    test_request();
    test_canonical();
    test_styles(history, norm_all);
    test_hosts(sleep_text);
    test_length(all, norm_all);
    test_short_source();
    test_outline();
    test_determinism(bread);
    test_focus(bread);
    test_title(history);
    test_hostile();
    test_json();
    test_llm();
    test_throughput(all);

    free(history);
    free(sleep_text);
    free(bread);
    free(all);
    free(norm_all);

    return done_testing();
}
