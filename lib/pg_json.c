/*
 * podgen core: JSON request parsing and the OpenAI-style error model.
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_json.h"
#include "pg_text.h"


static int pg_json_utf8_tree(yajl_val v, int depth);
static void pg_error_utf8(char *s);
static long pg_json_hex4(const char *p);


void
pg_error_set(pg_error_t *err, int status, const char *param,
    const char *code, const char *fmt, ...)
{
    va_list  args;

    err->status = status;
    err->type = "invalid_request_error";
    err->param = param;
    err->code = code;

    if (fmt == NULL) {
        err->message[0] = '\0';
        return;
    }

    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);

    pg_error_utf8(err->message);
}


/*
 * A message quotes what the client sent, cut to a length: a character cut
 * in two (or bytes that were never UTF-8) become '?', so that the JSON
 * error stays valid UTF-8.
 */

static void
pg_error_utf8(char *s)
{
    size_t          i, n, len;
    unsigned char   c;

    len = strlen(s);

    for (i = 0; i < len; i += n) {
        c = (unsigned char) s[i];

        n = (c < 0x80) ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2
            : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;

        if (n == 0 || i + n > len || !pg_utf8_valid(s + i, n)) {
            s[i] = '?';
            n = 1;
        }
    }
}




/*
 * One pass over the raw bytes, aware of strings and escapes, for what yajl
 * would accept but we must not: nesting deeper than max_depth (yajl's own
 * stack is unbounded), raw NUL bytes and "\u0000" escapes (the tree keeps
 * strings NUL-terminated, so they would silently cut text).
 */
static int
pg_json_prescan(const char *p, size_t len, int max_depth, pg_error_t *err)
{
    int          depth, in_string;
    size_t       i;
    const char  *nul = "\\u0000";

    depth = 0;
    in_string = 0;

    for (i = 0; i < len; i++) {

        if (p[i] == '\0') {
            pg_error_set(err, 400, NULL, "invalid_json",
                         "the body contains a NUL byte at offset %zu", i);
            return -1;
        }

        if (in_string) {
            if (p[i] == '\\') {
                if (len - i >= 6 && strncmp(p + i, nul, 6) == 0) {
                    pg_error_set(err, 400, NULL, "invalid_json",
                                 "strings must not contain \\u0000");
                    return -1;
                }

                /* yajl pairs an escaped high surrogate with whatever
                 * escape follows: only a low surrogate may */

                if (len - i >= 6 && p[i + 1] == 'u'
                    && pg_json_hex4(p + i + 2) >= 0xd800
                    && pg_json_hex4(p + i + 2) <= 0xdbff
                    && !(len - i >= 12 && p[i + 6] == '\\'
                         && p[i + 7] == 'u'
                         && pg_json_hex4(p + i + 8) >= 0xdc00
                         && pg_json_hex4(p + i + 8) <= 0xdfff))
                {
                    pg_error_set(err, 400, NULL, "invalid_utf8",
                                 "a \\u escape of a high surrogate must be "
                                 "followed by one of a low surrogate");
                    return -1;
                }

                i++;                       /* skip the escaped character */

            } else if (p[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (p[i]) {

        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > max_depth) {
                pg_error_set(err, 400, NULL, "nesting_too_deep",
                             "JSON nesting is deeper than %d levels",
                             max_depth);
                return -1;
            }
            break;

        case ']':
        case '}':
            depth--;
            break;
        }
    }

    return 0;
}


yajl_val
pg_json_parse_object(const char *body, size_t len, int max_depth,
    pg_error_t *err)
{
    char      *copy, ebuf[128], *nl;
    yajl_val   tree;

    if (len == 0) {
        pg_error_set(err, 400, NULL, "invalid_json",
                     "the request body is empty; a JSON object is expected");
        return NULL;
    }

    if (!pg_utf8_valid(body, len)) {
        pg_error_set(err, 400, NULL, "invalid_utf8",
                     "the request body is not valid UTF-8");
        return NULL;
    }

    if (pg_json_prescan(body, len, max_depth, err) != 0) {
        return NULL;
    }

    /* yajl_tree_parse() wants a NUL-terminated string */

    copy = malloc(len + 1);
    if (copy == NULL) {
        pg_error_set(err, 500, NULL, "server_error", "out of memory");
        err->type = "server_error";
        return NULL;
    }

    memcpy(copy, body, len);
    copy[len] = '\0';

    ebuf[0] = '\0';
    tree = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
    free(copy);

    if (tree == NULL) {
        /* yajl's message spans lines, with a context excerpt: keep line 1 */
        nl = strchr(ebuf, '\n');
        if (nl) {
            *nl = '\0';
        }

        pg_error_set(err, 400, NULL, "invalid_json",
                     "the request body is not valid JSON: %s",
                     ebuf[0] ? ebuf : "parse error");
        return NULL;
    }

    if (!YAJL_IS_OBJECT(tree)) {
        yajl_tree_free(tree);
        pg_error_set(err, 400, NULL, "invalid_json",
                     "the request body must be a JSON object");
        return NULL;
    }

    /* yajl decodes an escaped lone surrogate ("\udc00") into bytes that
     * are not UTF-8: every decoded string is checked again */

    if (!pg_json_utf8_tree(tree, 0)) {
        yajl_tree_free(tree);
        pg_error_set(err, 400, NULL, "invalid_utf8",
                     "the request body has a string that is not valid "
                     "UTF-8 (a lone surrogate escape?)");
        return NULL;
    }

    return tree;
}


static int
pg_json_utf8_tree(yajl_val v, int depth)
{
    size_t  i;

    if (v == NULL || depth > PG_JSON_MAX_DEPTH + 1) {
        return 1;
    }

    if (YAJL_IS_STRING(v)) {
        return pg_utf8_valid(v->u.string, strlen(v->u.string));
    }

    if (YAJL_IS_OBJECT(v)) {
        for (i = 0; i < v->u.object.len; i++) {
            if (!pg_utf8_valid(v->u.object.keys[i],
                               strlen(v->u.object.keys[i]))
                || !pg_json_utf8_tree(v->u.object.values[i], depth + 1))
            {
                return 0;
            }
        }

    } else if (YAJL_IS_ARRAY(v)) {
        for (i = 0; i < v->u.array.len; i++) {
            if (!pg_json_utf8_tree(v->u.array.values[i], depth + 1)) {
                return 0;
            }
        }
    }

    return 1;
}


yajl_val
pg_json_get(yajl_val obj, const char *key)
{
    size_t  i;

    /* the last of duplicate keys wins, as in most JSON parsers */

    for (i = obj->u.object.len; i > 0; i--) {
        if (strcmp(obj->u.object.keys[i - 1], key) == 0) {
            return obj->u.object.values[i - 1];
        }
    }

    return NULL;
}


int
pg_json_get_string(yajl_val obj, const char *key, int required,
    const char **out, pg_error_t *err)
{
    yajl_val  v;

    *out = NULL;

    v = pg_json_get(obj, key);

    if (v == NULL) {
        if (required) {
            pg_error_set(err, 400, key, "missing_required_parameter",
                         "you must provide '%s'", key);
            return -1;
        }

        return 0;
    }

    if (!YAJL_IS_STRING(v)) {
        pg_error_set(err, 400, key, "invalid_type",
                     "'%s' must be a string", key);
        return -1;
    }

    *out = YAJL_GET_STRING(v);

    return 0;
}


int
pg_json_get_number(yajl_val obj, const char *key, double *out,
    int *present, pg_error_t *err)
{
    double    d;
    yajl_val  v;

    *present = 0;

    v = pg_json_get(obj, key);
    if (v == NULL) {
        return 0;
    }

    if (!YAJL_IS_NUMBER(v)) {
        pg_error_set(err, 400, key, "invalid_type",
                     "'%s' must be a number", key);
        return -1;
    }

    if (YAJL_IS_DOUBLE(v)) {
        d = YAJL_GET_DOUBLE(v);

    } else if (YAJL_IS_INTEGER(v)) {
        d = (double) YAJL_GET_INTEGER(v);

    } else {
        /* out of range for both: 1e999, 99999999999999999999 */
        pg_error_set(err, 400, key, "invalid_value",
                     "'%s' is out of range", key);
        return -1;
    }

    if (!isfinite(d)) {
        pg_error_set(err, 400, key, "invalid_value",
                     "'%s' is out of range", key);
        return -1;
    }

    *out = d;
    *present = 1;

    return 0;
}


/* four hex digits -> their value, or -1 */

static long
pg_json_hex4(const char *p)
{
    int   i;
    long  v;
    char  c;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];
        v <<= 4;

        if (c >= '0' && c <= '9') {
            v |= c - '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v |= (c | 0x20) - 'a' + 10;

        } else {
            return -1;
        }
    }

    return v;
}


int
pg_json_gen_buf(yajl_gen g, pg_buf_t *out)
{
    size_t                len;
    const unsigned char  *buf;

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        return -1;
    }

    return pg_buf_append(out, buf, len);
}


int
pg_json_gen_string(yajl_gen g, const char *s)
{
    size_t  len;

    if (s == NULL) {
        return yajl_gen_null(g) != yajl_gen_status_ok;
    }

    len = strlen(s);

    if (!pg_utf8_valid(s, len)) {
        return 1;
    }

    return yajl_gen_string(g, (const unsigned char *) s, len)
           != yajl_gen_status_ok;
}
