/*
 * libFuzzer target for the script code.  Each input is used three ways,
 * and every promise of each step is checked; any violation aborts:
 *
 *   (a) a POST /v1/scripts body: parse -> canonical -> generate (twice,
 *       byte-identical) -> to_json;
 *   (b) an LLM reply for a fixed two-host request: pg_script_from_llm_json
 *       -> to_json;
 *   (c) raw text as source_text (when it is UTF-8 without NUL), with the
 *       style, hosts and length taken from the first bytes: generate.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilib \
 *       lib/fuzz/fuzz_script.c lib/pg_script.c lib/pg_script_request.c \
 *       lib/pg_analysis.c lib/pg_dialogue.c lib/pg_llm.c lib/pg_json.c \
 *       lib/pg_text.c lib/pg_buf.c -lyajl -lm -o build/fuzz_script
 *   build/fuzz_script -max_len=65536 -dict=lib/fuzz/fuzz_script.dict \
 *       t/fuzz/script
 *
 * -DFUZZ_ONLY=1 (request), 2 (LLM reply) or 3 (text) fuzzes one way only.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "pg_llm.h"
#include "pg_script.h"
#include "pg_text.h"


#ifndef FUZZ_ONLY
#define FUZZ_ONLY  0
#endif


#define check(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_script: %s:%d: %s\n",                      \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static size_t
count_words(const char *s)
{
    int            in, spoken;
    size_t         n;
    unsigned char  c;

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


/* the JSON form of a script, checked to parse back; returns it */
static char *
check_json(const pg_script_t *s)
{
    char      *json;
    pg_buf_t   b;
    yajl_val   tree, v;
    const char *path[2] = { "segments", NULL };

    memset(&b, 0, sizeof(pg_buf_t));

    check(pg_script_to_json(s, &b) == 0);
    check(pg_buf_append(&b, "", 1) == 0);

    json = (char *) b.data;

    tree = yajl_tree_parse(json, NULL, 0);
    check(tree != NULL);
    check(YAJL_IS_OBJECT(tree));

    v = yajl_tree_get(tree, path, yajl_t_array);
    check(v != NULL);
    check(v->u.array.len == s->nsegments);

    yajl_tree_free(tree);

    return json;
}


static void
check_script(const pg_script_t *s, size_t nhosts, int generated)
{
    size_t  i, len, words;

    check(s->title != NULL);
    check(s->title[0] != '\0');
    check(pg_utf8_valid(s->title, strlen(s->title)));
    check(s->nhosts == nhosts);
    check(s->nsegments > 0);

    if (generated) {
        check(strlen(s->title) <= 80);
    }

    words = 0;

    for (i = 0; i < s->nsegments; i++) {
        check(s->segments[i].speaker < s->nhosts);
        check(s->segments[i].text != NULL);

        len = strlen(s->segments[i].text);

        check(len > 0);
        check(pg_utf8_valid(s->segments[i].text, len));

        if (generated && nhosts > 1 && i > 0) {
            check(s->segments[i].speaker != s->segments[i - 1].speaker);
        }

        words += count_words(s->segments[i].text);
    }

    check(words == s->word_count);
    check(pg_script_duration(s) >= 0.0);
}


static void
generate_checked(const pg_script_request_t *req)
{
    char         *a, *b;
    size_t        nhosts;
    pg_script_t   s;

    nhosts = req->nhosts ? req->nhosts : 2;

    check(pg_script_generate(req, &s) == 0);
    check_script(&s, nhosts, 1);
    a = check_json(&s);
    pg_script_free(&s);

    /* deterministic */

    check(pg_script_generate(req, &s) == 0);
    b = check_json(&s);
    pg_script_free(&s);

    check(strcmp(a, b) == 0);

    free(a);
    free(b);
}


static void
fuzz_request(const uint8_t *data, size_t size)
{
    pg_buf_t              b;
    yajl_val              tree, canon;
    pg_error_t            err;
    pg_script_request_t   req;

    memset(&err, 0, sizeof(err));

    tree = pg_json_parse_object((const char *) data, size, PG_JSON_MAX_DEPTH,
                                &err);
    if (tree == NULL) {
        check(err.code != NULL && err.message[0] != '\0');
        return;
    }

    if (pg_script_request_from_json(tree, 64 * 1024, &req, &err) != 0) {
        check(err.code != NULL && err.message[0] != '\0');
        check(err.status == 400 || err.status == 500);
        yajl_tree_free(tree);
        return;
    }

    yajl_tree_free(tree);

    check(req.topic != NULL || req.source_text != NULL);
    check(req.nhosts >= 1 && req.nhosts <= PG_SCRIPT_MAX_HOSTS);
    check(req.target_words >= 50 && req.target_words <= 5000);
    check(req.language != NULL);

    memset(&b, 0, sizeof(pg_buf_t));
    check(pg_script_request_canonical(&req, &b) == 0);
    check(pg_buf_append(&b, "", 1) == 0);

    canon = yajl_tree_parse((const char *) b.data, NULL, 0);
    check(canon != NULL);
    yajl_tree_free(canon);
    pg_buf_free(&b);

    generate_checked(&req);

    pg_script_request_free(&req);
}


static void
fuzz_llm(const uint8_t *data, size_t size)
{
    char                        *json;
    size_t                       i;
    yajl_val                     tree;
    pg_error_t                   err;
    pg_script_t                  s;
    static int                   ready;
    static pg_script_request_t   req;

    static const char  body[] =
        "{\"topic\":\"fuzzing\",\"hosts\":[{\"name\":\"Alex\",\"voice\":"
        "\"alloy\"},{\"name\":\"Sam\",\"role\":\"expert\"}]}";

    if (!ready) {
        tree = pg_json_parse_object(body, sizeof(body) - 1,
                                    PG_JSON_MAX_DEPTH, &err);
        check(tree != NULL);
        check(pg_script_request_from_json(tree, 1024, &req, &err) == 0);
        yajl_tree_free(tree);
        ready = 1;
    }

    memset(&err, 0, sizeof(err));

    if (pg_script_from_llm_json((const char *) data, size, &req, &s, &err)
        != 0)
    {
        check(err.code != NULL && strcmp(err.code, "invalid_llm_reply") == 0);
        check(err.message[0] != '\0');
        check(s.segments == NULL && s.title == NULL);
        return;
    }

    check_script(&s, 2, 0);
    check(s.nsegments >= 2 && s.nsegments <= 400);
    check(strlen(s.title) <= 200);

    for (i = 0; i < s.nsegments; i++) {
        check(strlen(s.segments[i].text) <= 2000);
    }

    json = check_json(&s);
    free(json);
    pg_script_free(&s);
}


static void
fuzz_text(const uint8_t *data, size_t size)
{
    char                 *text;
    size_t                i;
    pg_script_request_t   req;

    static char  *names[] = { "Alex", "Sam", "Jo", "Kim", "Lee", "Max" };

    if (size < 3 || memchr(data, '\0', size) != NULL
        || !pg_utf8_valid((const char *) data + 3, size - 3))
    {
        return;
    }

    text = malloc(size - 2);
    check(text != NULL);
    memcpy(text, data + 3, size - 3);
    text[size - 3] = '\0';

    memset(&req, 0, sizeof(req));

    req.source_text = text;
    req.style = (pg_style_t) (data[0] % 5);
    req.nhosts = 1 + data[1] % PG_SCRIPT_MAX_HOSTS;
    req.target_words = 50 + (size_t) data[2] * 19;
    req.topic = (data[0] & 0x80) ? "a fuzzed topic" : NULL;
    req.focus = (data[1] & 0x80) ? text : NULL;
    req.language = "en";

    for (i = 0; i < req.nhosts; i++) {
        req.hosts[i].name = names[i];
    }

    generate_checked(&req);

    free(text);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (FUZZ_ONLY == 0 || FUZZ_ONLY == 1) {
        fuzz_request(data, size);
    }

    if (FUZZ_ONLY == 0 || FUZZ_ONLY == 2) {
        fuzz_llm(data, size);
    }

    if (FUZZ_ONLY == 0 || FUZZ_ONLY == 3) {
        fuzz_text(data, size);
    }

    return 0;
}
