/*
 * podgen core: the script object: the entry point of the built-in
 * generator, pg_script_free(), the speaking time, the JSON form (yajl
 * gen) and back, scripts given whole (edited segments), and the text
 * helpers the generator and the LLM reply parser share (word count,
 * hosts, short text, title case).
 *
 * The built-in generator is extractive (pg_analysis.c picks the sentences,
 * pg_dialogue.c writes the framing around them): every sentence of
 * content in a script is a sentence of the (normalized) source, verbatim,
 * so nothing is made up.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "pg_buf.h"
#include "pg_gen.h"
#include "pg_json.h"
#include "pg_script.h"
#include "pg_script_int.h"
#include "pg_text.h"


#define PG_WORDS_PER_MINUTE      150.0


static void pg_gen_free(pg_gen_t *g);


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

    if (rc == 0) {
        pg_script_set_budget(script, req, 1);
        script->target_words = g.target;

        /* what the hosts can speak of it: the cleaned text's words */
        if (req->source_text && g.text) {
            script->source_words = pg_script_count_words(g.text,
                                                         g.text_len);
        }

        script->source_exhausted = script->word_count * 5 < g.target * 4;
    }

    pg_gen_free(&g);

    return rc;
}


void
pg_script_set_budget(pg_script_t *script, const pg_script_request_t *req,
    int builtin)
{
    script->target_words = req->target_words;
    script->source_words = req->source_text
                           ? pg_script_count_words(req->source_text,
                                                   strlen(req->source_text))
                           : 0;

    script->source_exhausted = script->word_count * 5
                               < script->target_words * 4
                               && (builtin
                                   || script->source_words
                                      < script->target_words);
}


static void
pg_gen_free(pg_gen_t *g)
{
    size_t  i;

    free(g->text);
    free(g->source_title);

    for (i = 0; i < g->nsections; i++) {
        free(g->sections[i].title);
    }

    free(g->sections);
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
        free(g->segs[i].chapter);
    }

    free(g->chapter);

    free(g->segs);
    pg_buf_free(&g->line);
    pg_buf_free(&g->tmp);
    pg_buf_free(&g->term);
    pg_buf_free(&g->tmp2);
}


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
        free(script->segments[i].chapter);
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
             || (script->segments[i].chapter
                 && (PG_KEY("chapter")
                     || pg_script_gen_string(g,
                                             script->segments[i].chapter)))
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
         || yajl_gen_number(g, num, (size_t) n) != yajl_gen_status_ok;

    if (script->target_words) {
        rc = rc
             || PG_KEY("target_words")
             || yajl_gen_integer(g, (long long) script->target_words)
                != yajl_gen_status_ok
             || PG_KEY("source_words")
             || yajl_gen_integer(g, (long long) script->source_words)
                != yajl_gen_status_ok
             || PG_KEY("source_exhausted")
             || yajl_gen_bool(g, script->source_exhausted)
                != yajl_gen_status_ok;
    }

    rc = rc
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || pg_json_gen_buf(g, out) != 0;

#undef PG_KEY

    yajl_gen_free(g);

    return rc ? -1 : 0;
}


/* A string, or null for NULL; 0 or 1 on failure (to chain with ||). */
int
pg_script_gen_string(yajl_gen g, const char *s)
{
    if (s == NULL) {
        return yajl_gen_null(g) != yajl_gen_status_ok;
    }

    return yajl_gen_string(g, (const unsigned char *) s, strlen(s))
           != yajl_gen_status_ok;
}


/*
 * Words as a voice says them: runs of non-space bytes with a letter or a
 * digit in them (or any non-ASCII byte, which is a letter of a name); a
 * lone dash is not a word.
 */
size_t
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


int
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
int
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


void
pg_script_title_case(char *s)
{
    if (s[0] >= 'a' && s[0] <= 'z') {
        s[0] -= 'a' - 'A';
    }
}


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
    yajl_val             v, seg, sp, tx, vo, ch;
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

        ch = pg_json_get(seg, "chapter");

        if (ch != NULL && !YAJL_IS_NULL(ch)) {
            snprintf(param, sizeof(param), "segments[%zu].chapter", i);

            if (!YAJL_IS_STRING(ch)) {
                pg_error_set(err, 400, NULL, "invalid_type",
                             "'%s' must be a string", param);
                goto failed_param;
            }

            t = YAJL_GET_STRING(ch);
            len = strlen(t);

            if (len == 0 || len > PG_SCRIPT_CHAPTER_MAX
                || pg_script_has_control(t, len))
            {
                pg_error_set(err, 400, NULL, "invalid_value",
                             "'%s' must be 1 to %d bytes on one line",
                             param, PG_SCRIPT_CHAPTER_MAX);
                goto failed_param;
            }
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

        if (ch != NULL && YAJL_IS_STRING(ch)) {
            script->segments[i].chapter = strdup(ch->u.string);

            if (script->segments[i].chapter == NULL) {
                goto oom;
            }
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

    v = pg_json_get(tree, "target_words");
    if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0) {
        script->target_words = (size_t) YAJL_GET_INTEGER(v);

        v = pg_json_get(tree, "source_words");
        if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
            script->source_words = (size_t) YAJL_GET_INTEGER(v);
        }

        v = pg_json_get(tree, "source_exhausted");
        script->source_exhausted = v && YAJL_IS_TRUE(v);
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

        f = pg_json_get(item, "chapter");

        if (f != NULL && YAJL_IS_STRING(f)) {
            script->segments[i].chapter = strdup(f->u.string);

            if (script->segments[i].chapter == NULL) {
                goto failed;
            }
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
