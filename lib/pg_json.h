/*
 * podgen core: JSON request parsing and the OpenAI-style error model
 * (plain C, no nginx).
 */

#ifndef PG_JSON_H
#define PG_JSON_H

#include <stddef.h>

#include <yajl/yajl_tree.h>
#include <yajl/yajl_gen.h>

#include "pg_buf.h"


#define PG_JSON_MAX_DEPTH  32


/* A request error: becomes {"error":{message,type,param,code}}. */
typedef struct {
    int          status;        /* HTTP status, 400 ... */
    const char  *type;          /* "invalid_request_error" */
    const char  *param;         /* field name, or NULL */
    const char  *code;          /* "invalid_type" ... */
    char         message[256];
} pg_error_t;


void pg_error_set(pg_error_t *err, int status, const char *param,
    const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

/*
 * Parses a request body into a yajl tree after checking what yajl does not:
 * no raw NUL byte, valid UTF-8, nesting at most max_depth, no "\u0000"
 * escape (strings in the tree are NUL-terminated).  The top level must be
 * an object.  Returns the tree (free with yajl_tree_free) or NULL with *err
 * set (400: invalid_json, invalid_utf8, nesting_too_deep).
 */
yajl_val pg_json_parse_object(const char *body, size_t len, int max_depth,
    pg_error_t *err);

/* Finds a member of an object; NULL when absent. */
yajl_val pg_json_get(yajl_val obj, const char *key);


/*
 * Optional string member: returns 0 and *out (NULL when absent), or -1
 * with *err set (invalid_type; or missing_required_parameter if required).
 * A JSON null counts as a wrong type.
 */
int pg_json_get_string(yajl_val obj, const char *key, int required,
    const char **out, pg_error_t *err);

/* Optional number member: 0 and *out (unchanged when absent), or -1. */
int pg_json_get_number(yajl_val obj, const char *key, double *out,
    int *present, pg_error_t *err);

/* Appends what g has generated so far to out.  0 or -1. */
int pg_json_gen_buf(yajl_gen g, pg_buf_t *out);

/*
 * Generates s, or null for NULL.  0, or 1 for a yajl error or for text
 * that is not UTF-8 (yajl_gen's own check lets encoded surrogates pass).
 */
int pg_json_gen_string(yajl_gen g, const char *s);

#endif /* PG_JSON_H */
