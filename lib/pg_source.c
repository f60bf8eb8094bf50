/*
 * podgen core: sources.  The block builder shared by every extractor, the
 * inline cleaning of a block's text, and the Markdown / plain text reader.
 */

#define _GNU_SOURCE             /* memmem() */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "pg_buf.h"
#include "pg_json.h"
#include "pg_script_int.h"
#include "pg_source.h"
#include "pg_text.h"


#define PG_SOURCE_LINK_MAX     2048     /* look-ahead for "](...)" */
#define PG_SOURCE_HEADING_MAX  80       /* bytes of a plain text heading */


typedef struct {
    const char  *s;
    size_t       len;
} pg_source_line_t;


static void pg_source_inline(pg_source_builder_t *b, const char *s,
    size_t len, pg_buf_t *out);
static void pg_source_inline_run(pg_source_builder_t *b, const char *s,
    size_t len, pg_buf_t *out, int depth);
static size_t pg_source_token(pg_source_builder_t *b, const char *s,
    size_t len, pg_buf_t *out);
static size_t pg_source_bracket(pg_source_builder_t *b, const char *s,
    size_t len, pg_buf_t *out, int depth);
static void pg_source_file_name(const char *s, size_t len, pg_buf_t *out);
static size_t pg_source_entity(const char *s, size_t len, pg_buf_t *out);
static void pg_source_tidy(pg_buf_t *out);
static void pg_source_put(pg_buf_t *out, const char *s, size_t len);
static void pg_source_end_sentence(pg_buf_t *out);
static int pg_source_is_reference(const char *s, size_t len);
static void pg_source_flush(pg_source_builder_t *b);
static char *pg_source_dup(const char *s, size_t len, size_t max);

static int pg_source_markdown(const char *data, size_t len,
    pg_source_type_t type, const char *title, pg_source_doc_t *doc,
    pg_error_t *err);
static size_t pg_source_indent(const char *s, size_t len);
static int pg_source_fence(const char *s, size_t len);
static int pg_source_rule(const char *s, size_t len, char *c);
static int pg_source_item_marker(const char *s, size_t len, size_t *skip);
static int pg_source_plain_heading(const pg_source_line_t *line,
    const pg_source_line_t *next);
static int pg_source_codeish(const char *s, size_t len);
static int pg_source_is_space(unsigned char c);


/* Sections that are lists of links or of other works, not content. */
static const char  *pg_source_reference_titles[] = {
    "references", "see also", "bibliography", "further reading",
    "external links", "footnotes", "citations", "works cited",
    "sources", "notes and references", "references and notes",
    "related articles", "related", "literature", NULL
};


pg_source_type_t
pg_source_type(const char *value, size_t len, char *charset, size_t cap)
{
    size_t             i, n;
    const char        *p, *end, *v;
    pg_source_type_t   type;

    static const struct {
        const char        *name;
        pg_source_type_t   type;
    } types[] = {
        { "text/plain", PG_SOURCE_TEXT },
        { "text/markdown", PG_SOURCE_MARKDOWN },
        { "text/x-markdown", PG_SOURCE_MARKDOWN },
        { "text/html", PG_SOURCE_HTML },
        { "application/xhtml+xml", PG_SOURCE_HTML },
        { "application/pdf", PG_SOURCE_PDF },
        { NULL, PG_SOURCE_UNKNOWN }
    };

    if (charset && cap) {
        charset[0] = '\0';
    }

    if (value == NULL) {
        return PG_SOURCE_UNKNOWN;
    }

    p = value;
    end = value + len;

    while (p < end && pg_source_is_space((unsigned char) *p)) {
        p++;
    }

    for (v = p; v < end && *v != ';' && !pg_source_is_space((unsigned char) *v);
         v++)
    {
        /* void */
    }

    n = (size_t) (v - p);
    type = PG_SOURCE_UNKNOWN;

    for (i = 0; types[i].name; i++) {
        if (strlen(types[i].name) == n
            && strncasecmp(p, types[i].name, n) == 0)
        {
            type = types[i].type;
            break;
        }
    }

    /* parameters: "; charset=UTF-8" */

    while (v < end && charset && cap) {

        while (v < end && (*v == ';' || pg_source_is_space((unsigned char) *v)))
        {
            v++;
        }

        if ((size_t) (end - v) > 8 && strncasecmp(v, "charset=", 8) == 0) {
            v += 8;

            if (v < end && *v == '"') {
                v++;
            }

            for (i = 0; v < end && i + 1 < cap && *v != ';' && *v != '"'
                        && !pg_source_is_space((unsigned char) *v); i++, v++)
            {
                charset[i] = (*v >= 'A' && *v <= 'Z') ? *v + 'a' - 'A' : *v;
            }

            charset[i] = '\0';
            break;
        }

        while (v < end && *v != ';') {
            v++;
        }
    }

    return type;
}


const char *
pg_source_type_name(pg_source_type_t type)
{
    switch (type) {
    case PG_SOURCE_TEXT:
        return "text/plain";
    case PG_SOURCE_MARKDOWN:
        return "text/markdown";
    case PG_SOURCE_HTML:
        return "text/html";
    case PG_SOURCE_PDF:
        return "application/pdf";
    default:
        return "application/octet-stream";
    }
}


int
pg_source_extract(const char *data, size_t len, pg_source_type_t type,
    const char *charset, pg_source_doc_t *doc, pg_error_t *err)
{
    int       rc;
    char     *latin;
    size_t    i, n;
    pg_buf_t  b;

    memset(doc, 0, sizeof(pg_source_doc_t));

    switch (type) {

    case PG_SOURCE_HTML:
        return pg_source_html(data, len, charset, doc, err);

    case PG_SOURCE_PDF:
        return pg_source_pdf(data, len, doc, err);

    case PG_SOURCE_TEXT:
    case PG_SOURCE_MARKDOWN:

        if (pg_utf8_valid(data, len) && memchr(data, '\0', len) == NULL) {
            return pg_source_markdown(data, len, type, NULL, doc, err);
        }

        if (charset && (strcmp(charset, "iso-8859-1") == 0
                        || strcmp(charset, "latin1") == 0
                        || strcmp(charset, "windows-1252") == 0))
        {
            memset(&b, 0, sizeof(pg_buf_t));

            for (i = 0; i < len; i++) {
                unsigned char  c = (unsigned char) data[i], u[2];

                if (c < 0x80) {
                    n = pg_buf_append(&b, c ? &data[i] : " ", 1);

                } else {
                    u[0] = (unsigned char) (0xc0 | (c >> 6));
                    u[1] = (unsigned char) (0x80 | (c & 0x3f));
                    n = pg_buf_append(&b, u, 2);
                }

                if (n != 0) {
                    pg_buf_free(&b);
                    pg_script_oom(err);
                    return -1;
                }
            }

            latin = (char *) b.data;
            rc = pg_source_markdown(latin ? latin : "", b.len, type, NULL, doc,
                                    err);
            pg_buf_free(&b);
            return rc;
        }

        pg_error_set(err, 400, NULL, "invalid_document",
                     "the text is not valid UTF-8 (or has a NUL byte); "
                     "send UTF-8 or name the charset in Content-Type");
        return -1;

    default:
        pg_error_set(err, 415, "Content-Type", "unsupported_media_type",
                     "a source is text/html, application/xhtml+xml, "
                     "application/pdf, text/markdown or text/plain");
        return -1;
    }
}


int
pg_source_doc_text(const pg_source_doc_t *doc, pg_buf_t *out)
{
    size_t  i, start;

    start = out->len;

    for (i = 0; i < doc->nsections; i++) {
        if (out->len > start && pg_buf_append(out, "\n\n", 2) != 0) {
            return -1;
        }

        if (pg_buf_append_str(out, doc->sections[i].text) != 0) {
            return -1;
        }
    }

    /* NUL-terminated, the NUL not counted */

    if (pg_buf_append(out, "", 1) != 0) {
        return -1;
    }

    out->len--;

    return 0;
}


void
pg_source_doc_free(pg_source_doc_t *doc)
{
    size_t  i;

    for (i = 0; i < doc->nsections; i++) {
        free(doc->sections[i].title);
        free(doc->sections[i].text);
    }

    free(doc->sections);
    free(doc->title);
    memset(doc, 0, sizeof(pg_source_doc_t));
}


#define PG_SOURCE_KEY(k)                                                     \
    (yajl_gen_string(g, (const unsigned char *) k, sizeof(k) - 1)            \
     != yajl_gen_status_ok)

int
pg_source_to_json(const pg_source_doc_t *doc, const char *id,
    const char *content_type, const char *url, pg_buf_t *out)
{
    int       rc;
    size_t    i;
    yajl_gen  g;
    pg_buf_t  text;

    memset(&text, 0, sizeof(pg_buf_t));

    if (pg_source_doc_text(doc, &text) != 0) {
        pg_buf_free(&text);
        return -1;
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        pg_buf_free(&text);
        return -1;
    }

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_SOURCE_KEY("id") || pg_json_gen_string(g, id)
         || PG_SOURCE_KEY("object") || pg_json_gen_string(g, "source")
         || PG_SOURCE_KEY("title") || pg_json_gen_string(g, doc->title)
         || PG_SOURCE_KEY("content_type")
         || pg_json_gen_string(g, content_type);

    if (!rc && url) {
        rc = PG_SOURCE_KEY("url") || pg_json_gen_string(g, url);
    }

    rc = rc || PG_SOURCE_KEY("word_count")
         || yajl_gen_integer(g, (long long) doc->word_count)
            != yajl_gen_status_ok
         || PG_SOURCE_KEY("text")
         || pg_json_gen_string(g, (const char *) text.data)
         || PG_SOURCE_KEY("sections")
         || yajl_gen_array_open(g) != yajl_gen_status_ok;

    for (i = 0; !rc && i < doc->nsections; i++) {
        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || PG_SOURCE_KEY("title")
             || pg_json_gen_string(g, doc->sections[i].title)
             || PG_SOURCE_KEY("text")
             || pg_json_gen_string(g, doc->sections[i].text)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    rc = rc || yajl_gen_array_close(g) != yajl_gen_status_ok
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || pg_json_gen_buf(g, out) != 0;

    yajl_gen_free(g);
    pg_buf_free(&text);

    return rc ? -1 : 0;
}


int
pg_source_from_json(const char *json, size_t len, pg_source_doc_t *doc)
{
    char        *s;
    size_t       i, n;
    yajl_val     tree, v, a, t;
    pg_error_t   err;

    memset(doc, 0, sizeof(pg_source_doc_t));

    tree = pg_json_parse_object(json, len, PG_JSON_MAX_DEPTH, &err);
    if (tree == NULL) {
        return -1;
    }

    v = pg_json_get(tree, "title");
    if (v && YAJL_IS_STRING(v) && (s = YAJL_GET_STRING(v)) != NULL) {
        doc->title = strdup(s);
        if (doc->title == NULL) {
            goto failed;
        }
    }

    v = pg_json_get(tree, "word_count");
    if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
        doc->word_count = (size_t) YAJL_GET_INTEGER(v);
    }

    a = pg_json_get(tree, "sections");
    if (a == NULL || !YAJL_IS_ARRAY(a)) {
        goto failed;
    }

    n = a->u.array.len;
    doc->sections = calloc(n ? n : 1, sizeof(pg_source_section_t));
    if (doc->sections == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        v = a->u.array.values[i];
        t = pg_json_get(v, "text");

        if (!YAJL_IS_OBJECT(v) || t == NULL || !YAJL_IS_STRING(t)
            || (s = YAJL_GET_STRING(t)) == NULL)
        {
            goto failed;
        }

        s = strdup(s);
        if (s == NULL) {
            goto failed;
        }

        doc->sections[doc->nsections].text = s;
        doc->nsections++;

        t = pg_json_get(v, "title");
        if (t && YAJL_IS_STRING(t) && (s = YAJL_GET_STRING(t)) != NULL) {
            doc->sections[doc->nsections - 1].title = strdup(s);

            if (doc->sections[doc->nsections - 1].title == NULL) {
                goto failed;
            }
        }
    }

    yajl_tree_free(tree);
    return 0;

failed:

    yajl_tree_free(tree);
    pg_source_doc_free(doc);
    return -1;
}


/* ---- source_ids in requests -------------------------------------------- */


static int
pg_source_gen(yajl_gen g, yajl_val v, int depth)
{
    size_t  i;

    if (depth > PG_JSON_MAX_DEPTH) {
        return -1;
    }

    switch (v->type) {

    case yajl_t_string:
        return pg_json_gen_string(g, v->u.string) ? -1 : 0;

    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r))
               == yajl_gen_status_ok ? 0 : -1;

    case yajl_t_object:
        if (yajl_gen_map_open(g) != yajl_gen_status_ok) {
            return -1;
        }

        for (i = 0; i < v->u.object.len; i++) {
            if (pg_json_gen_string(g, v->u.object.keys[i])
                || pg_source_gen(g, v->u.object.values[i], depth + 1) != 0)
            {
                return -1;
            }
        }

        return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;

    case yajl_t_array:
        if (yajl_gen_array_open(g) != yajl_gen_status_ok) {
            return -1;
        }

        for (i = 0; i < v->u.array.len; i++) {
            if (pg_source_gen(g, v->u.array.values[i], depth + 1) != 0) {
                return -1;
            }
        }

        return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;

    case yajl_t_true:
        return yajl_gen_bool(g, 1) == yajl_gen_status_ok ? 0 : -1;

    case yajl_t_false:
        return yajl_gen_bool(g, 0) == yajl_gen_status_ok ? 0 : -1;

    default:
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    }
}


/* err->param must outlive the call */
static const char  *pg_source_id_params[PG_SOURCE_IDS_MAX] = {
    "source_ids[0]", "source_ids[1]", "source_ids[2]", "source_ids[3]",
    "source_ids[4]", "source_ids[5]", "source_ids[6]", "source_ids[7]",
    "source_ids[8]", "source_ids[9]", "source_ids[10]", "source_ids[11]",
    "source_ids[12]", "source_ids[13]", "source_ids[14]", "source_ids[15]"
};


int
pg_source_expand(yajl_val obj, size_t max_source,
    pg_source_lookup_pt lookup, void *data, pg_buf_t *out, pg_error_t *err)
{
    int               rc;
    size_t            i, k, n, len;
    yajl_gen          g;
    yajl_val          ids, v, text;
    pg_buf_t          md;
    const char       *json, *id;
    pg_source_doc_t   doc;

    ids = pg_json_get(obj, "source_ids");
    if (ids == NULL) {
        return 0;
    }

    if (!YAJL_IS_ARRAY(ids)) {
        pg_error_set(err, 400, "source_ids", "invalid_type",
                     "'source_ids' must be an array of source ids");
        return -1;
    }

    n = ids->u.array.len;

    if (n == 0 || n > PG_SOURCE_IDS_MAX) {
        pg_error_set(err, 400, "source_ids", "invalid_value",
                     "'source_ids' holds 1 to %d ids", PG_SOURCE_IDS_MAX);
        return -1;
    }

    text = pg_json_get(obj, "source_text");

    if (text && !YAJL_IS_STRING(text)) {
        pg_error_set(err, 400, "source_text", "invalid_type",
                     "'source_text' must be a string");
        return -1;
    }

    memset(&md, 0, sizeof(pg_buf_t));

    for (i = 0; i < n; i++) {
        v = ids->u.array.values[i];

        if (!YAJL_IS_STRING(v) || (id = YAJL_GET_STRING(v)) == NULL) {
            pg_error_set(err, 400, pg_source_id_params[i], "invalid_type",
                         "a source id is a string (\"src_...\")");
            goto failed;
        }

        if (lookup(data, id, &json, &len) != 0) {
            pg_error_set(err, 404, pg_source_id_params[i], "source_not_found",
                         "no source '%.80s' here: POST /v1/sources first "
                         "(sources are kept as long as the caches keep "
                         "them)", id);
            goto failed;
        }

        if (pg_source_from_json(json, len, &doc) != 0) {
            pg_error_set(err, 500, NULL, "server_error",
                         "a stored source is unreadable");
            err->type = "server_error";
            goto failed;
        }

        rc = 0;

        /* one line titles: "#" and "##" headings read back as such */

        if (doc.title) {
            rc = pg_buf_append_str(&md, md.len ? "\n\n# " : "# ")
                 || pg_buf_append_str(&md, doc.title);
        }

        for (k = 0; k < doc.nsections && rc == 0; k++) {
            if (doc.sections[k].title) {
                rc = pg_buf_append_str(&md, md.len ? "\n\n## " : "## ")
                     || pg_buf_append_str(&md, doc.sections[k].title);
            }

            rc = rc || pg_buf_append_str(&md, md.len ? "\n\n" : "")
                 || pg_buf_append_str(&md, doc.sections[k].text);
        }

        pg_source_doc_free(&doc);

        if (rc != 0) {
            goto oom;
        }
    }

    if (text && YAJL_GET_STRING(text)[0]
        && (pg_buf_append_str(&md, "\n\n") != 0
            || pg_buf_append_str(&md, YAJL_GET_STRING(text)) != 0))
    {
        goto oom;
    }

    if (max_source && md.len > max_source) {
        pg_error_set(err, 400, "source_ids", "string_above_max_length",
                     "the sources are %zu bytes together; the maximum is "
                     "%zu (podgen_max_source)", md.len, max_source);
        goto failed;
    }

    if (pg_buf_append(&md, "", 1) != 0) {
        goto oom;
    }

    /* the request again, source_text the sources' */

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        goto oom;
    }

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok;

    for (i = 0; i < obj->u.object.len && rc == 0; i++) {
        if (strcmp(obj->u.object.keys[i], "source_ids") == 0
            || strcmp(obj->u.object.keys[i], "source_text") == 0)
        {
            continue;
        }

        rc = pg_json_gen_string(g, obj->u.object.keys[i])
             || pg_source_gen(g, obj->u.object.values[i], 1) != 0;
    }

    rc = rc || pg_json_gen_string(g, "source_text")
         || pg_json_gen_string(g, (const char *) md.data)
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || pg_json_gen_buf(g, out) != 0;

    yajl_gen_free(g);
    pg_buf_free(&md);

    if (rc) {
        pg_script_oom(err);
        return -1;
    }

    return 1;

oom:

    pg_script_oom(err);

failed:

    pg_buf_free(&md);
    return -1;
}


/* ---- the builder ------------------------------------------------------- */


void
pg_source_builder_init(pg_source_builder_t *b, pg_source_doc_t *doc,
    int markdown)
{
    memset(b, 0, sizeof(pg_source_builder_t));
    b->doc = doc;
    b->markdown = markdown ? 1 : 0;
}


void
pg_source_heading(pg_source_builder_t *b, int level, const char *s,
    size_t len)
{
    char    *t;
    size_t   n;

    if (b->failed) {
        return;
    }

    pg_buf_reset(&b->tmp);
    pg_source_inline(b, s, len, &b->tmp);

    if (b->failed) {
        return;
    }

    /* "Agenda:" is a title "Agenda" */

    n = b->tmp.len;

    while (n && (b->tmp.data[n - 1] == ':' || b->tmp.data[n - 1] == '.'
                 || b->tmp.data[n - 1] == ' ' || b->tmp.data[n - 1] == '#'))
    {
        n--;
    }

    if (pg_script_count_words((const char *) b->tmp.data, n) == 0) {
        return;
    }

    if (b->skip_level) {
        if (level > b->skip_level) {
            return;
        }

        b->skip_level = 0;
    }

    if (pg_source_is_reference((const char *) b->tmp.data, n)) {
        pg_source_flush(b);
        b->skip_level = level;
        b->in_items = 0;
        return;
    }

    t = pg_source_dup((const char *) b->tmp.data, n, PG_SOURCE_TITLE_MAX);
    if (t == NULL) {
        b->failed = 1;
        return;
    }

    if (!b->body && b->doc->nsections == 0 && b->section_title == NULL) {

        if (b->doc->title == NULL) {
            b->doc->title = t;
            return;
        }

        if (strcasecmp(b->doc->title, t) == 0) {
            /* the title, known already, as the first heading */
            free(t);
            return;
        }
    }

    pg_source_flush(b);

    free(b->section_title);
    b->section_title = t;
    b->in_items = 0;
}


void
pg_source_paragraph(pg_source_builder_t *b, const char *s, size_t len)
{
    size_t  start;

    if (b->failed || b->skip_level) {
        return;
    }

    start = b->text.len;

    if (start && pg_buf_append(&b->text, "\n\n", 2) != 0) {
        b->failed = 1;
        return;
    }

    pg_source_inline(b, s, len, &b->text);
    pg_source_end_sentence(&b->text);

    if (pg_script_count_words((const char *) b->text.data + start,
                              b->text.len - start) == 0)
    {
        /* nothing said: the separator goes too */
        b->text.len = start;
        return;
    }

    b->body = 1;
    b->in_items = 0;
}


void
pg_source_item(pg_source_builder_t *b, const char *s, size_t len)
{
    size_t  start;

    if (b->failed || b->skip_level) {
        return;
    }

    start = b->text.len;

    if (start && pg_buf_append(&b->text, b->in_items ? "\n" : "\n\n",
                               b->in_items ? 1 : 2) != 0)
    {
        b->failed = 1;
        return;
    }

    pg_source_inline(b, s, len, &b->text);
    pg_source_end_sentence(&b->text);

    if (pg_script_count_words((const char *) b->text.data + start,
                              b->text.len - start) == 0)
    {
        b->text.len = start;
        return;
    }

    b->body = 1;
    b->in_items = 1;
}


void
pg_source_set_title(pg_source_builder_t *b, const char *s, size_t len)
{
    size_t  n;

    if (b->failed || b->doc->title) {
        return;
    }

    pg_buf_reset(&b->tmp);
    pg_source_inline(b, s, len, &b->tmp);

    n = b->tmp.len;

    if (b->failed || pg_script_count_words((const char *) b->tmp.data, n) == 0)
    {
        return;
    }

    b->doc->title = pg_source_dup((const char *) b->tmp.data, n,
                                  PG_SOURCE_TITLE_MAX);
    if (b->doc->title == NULL) {
        b->failed = 1;
    }
}


int
pg_source_builder_finish(pg_source_builder_t *b, pg_error_t *err)
{
    size_t  i;

    if (!b->failed && !b->body && b->doc->nsections == 0 && b->doc->title) {
        /* a document of one line that looked like a heading: it is text */
        pg_source_paragraph(b, b->doc->title, strlen(b->doc->title));
    }

    pg_source_flush(b);

    free(b->section_title);
    pg_buf_free(&b->text);
    pg_buf_free(&b->tmp);

    if (b->failed) {
        pg_source_doc_free(b->doc);
        pg_script_oom(err);
        return -1;
    }

    b->doc->word_count = 0;

    for (i = 0; i < b->doc->nsections; i++) {
        b->doc->word_count += pg_script_count_words(b->doc->sections[i].text,
                                          strlen(b->doc->sections[i].text));
    }

    if (b->doc->word_count == 0) {
        pg_source_doc_free(b->doc);
        pg_error_set(err, 422, NULL, "no_text",
                     "the document has no text that can be spoken");
        return -1;
    }

    return 0;
}


/* The current section, when it has text, becomes a section of the doc. */
static void
pg_source_flush(pg_source_builder_t *b)
{
    char                 *text;
    pg_source_section_t  *s;

    if (b->failed || b->text.len == 0) {
        return;
    }

    text = pg_source_dup((const char *) b->text.data, b->text.len, 0);
    if (text == NULL) {
        b->failed = 1;
        return;
    }

    s = realloc(b->doc->sections,
                (b->doc->nsections + 1) * sizeof(pg_source_section_t));
    if (s == NULL) {
        free(text);
        b->failed = 1;
        return;
    }

    b->doc->sections = s;
    s[b->doc->nsections].title = b->section_title;
    s[b->doc->nsections].text = text;
    b->doc->nsections++;

    b->section_title = NULL;
    pg_buf_reset(&b->text);
}


/* A copy, at most max bytes (0: no limit) cut at a character boundary. */
static char *
pg_source_dup(const char *s, size_t len, size_t max)
{
    char  *p;

    if (max && len > max) {
        len = max;

        while (len && ((unsigned char) s[len] & 0xc0) == 0x80) {
            len--;
        }

        while (len && s[len - 1] == ' ') {
            len--;
        }
    }

    p = malloc(len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


static int
pg_source_is_reference(const char *s, size_t len)
{
    size_t        i;
    const char  **r;

    for (r = pg_source_reference_titles; *r; r++) {
        i = strlen(*r);

        if (i == len && strncasecmp(s, *r, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/* A block ends as a sentence: "Buy milk" -> "Buy milk.", "Items:" -> "." */
static void
pg_source_end_sentence(pg_buf_t *out)
{
    size_t          n;
    unsigned char   c;

    n = out->len;

    while (n && out->data[n - 1] == ' ') {
        n--;
    }

    out->len = n;

    /* past closing quotes and brackets */

    while (n && (out->data[n - 1] == '"' || out->data[n - 1] == '\''
                 || out->data[n - 1] == ')' || out->data[n - 1] == ']'))
    {
        n--;
    }

    if (n == 0) {
        return;
    }

    c = out->data[n - 1];

    if (c == '.' || c == '!' || c == '?') {
        return;
    }

    if (n == out->len && (c == ',' || c == ';' || c == ':' || c == '-')) {
        out->data[n - 1] = '.';
        return;
    }

    pg_source_put(out, ".", 1);
}


/* ---- inline cleaning --------------------------------------------------- */


static void
pg_source_put(pg_buf_t *out, const char *s, size_t len)
{
    (void) pg_buf_append(out, s, len);
}


/* Appends the clean form of s[0..len) to out, on one line. */
static void
pg_source_inline(pg_source_builder_t *b, const char *s, size_t len,
    pg_buf_t *out)
{
    size_t  start;

    start = out->len;

    if (pg_buf_reserve(out, len + 16) != 0) {
        b->failed = 1;
        return;
    }

    pg_source_inline_run(b, s, len, out, 0);

    if (out->len < start) {
        out->len = start;
    }

    /* tidy only what was added */

    {
        pg_buf_t  part;

        part.data = out->data + start;
        part.len = out->len - start;
        part.cap = out->cap - start;
        pg_source_tidy(&part);
        out->len = start + part.len;
    }

    if (pg_buf_reserve(out, 2) != 0) {
        b->failed = 1;
    }
}


static void
pg_source_inline_run(pg_source_builder_t *b, const char *s, size_t len,
    pg_buf_t *out, int depth)
{
    size_t          i, n, k;
    uint32_t        cp;
    unsigned char   c;
    int             boundary;

    i = 0;
    boundary = 1;

    while (i < len && !b->failed) {
        c = (unsigned char) s[i];

        if (pg_source_is_space(c) || c < 0x20 || c == 0x7f) {
            pg_source_put(out, " ", 1);
            boundary = 1;
            i++;
            continue;
        }

        if (boundary) {
            n = pg_source_token(b, s + i, len - i, out);
            if (n) {
                i += n;
                continue;
            }
        }

        boundary = (c == '(' || c == '"' || c == '\'');

        if (c >= 0x80) {
            n = 0;

            /* invalid UTF-8 goes, valid is copied */

            if (pg_utf8_valid(s + i, 1)) {
                n = 1;

            } else {
                for (k = 2; k <= 4 && i + k <= len; k++) {
                    if (pg_utf8_valid(s + i, k)) {
                        n = k;
                        break;
                    }
                }
            }

            if (n == 0) {
                pg_source_put(out, " ", 1);
                i++;
                continue;
            }

            cp = (uint32_t) c;

            /* U+FFFD (a parser's replacement for bad bytes) is nothing */
            if (n == 3 && cp == 0xef && (unsigned char) s[i + 1] == 0xbf
                && (unsigned char) s[i + 2] == 0xbd)
            {
                pg_source_put(out, " ", 1);
                i += n;
                continue;
            }

            /* bullets inside a line ("a • b") are a pause */
            if (n == 3 && cp == 0xe2 && (unsigned char) s[i + 1] == 0x80
                && (unsigned char) s[i + 2] == 0xa2)
            {
                pg_source_put(out, ",", 1);

            } else {
                pg_source_put(out, s + i, n);
            }

            i += n;
            continue;
        }

        switch (c) {

        case '\\':
            if (b->markdown && i + 1 < len
                && strchr("\\`*_{}[]()#+-.!|<>~", s[i + 1]) != NULL)
            {
                pg_source_put(out, s + i + 1, 1);
                i += 2;
                continue;
            }

            pg_source_put(out, " ", 1);
            i++;
            continue;

        case '*':
        case '|':
            /* emphasis, table remains: nothing to say */
            pg_source_put(out, c == '|' ? ", " : "", c == '|' ? 2 : 0);
            i++;
            continue;

        case '~':
            if (i + 1 < len && s[i + 1] == '~') {
                i += 2;
                continue;
            }

            break;

        case '_':
            /* __bold__ and _emphasis_ go; snake_case is two words */
            if (i == 0 || i + 1 == len || !PG_ALNUM(s[i - 1])
                || !PG_ALNUM(s[i + 1]))
            {
                i++;
                continue;
            }

            pg_source_put(out, " ", 1);
            i++;
            continue;

        case '`':
            for (k = i; k < len && s[k] == '`'; k++) {
                /* void */
            }

            n = k - i;      /* the run opens a code span */

            {
                const char  *e;
                size_t       j, code;
                int          plain;

                e = NULL;

                for (j = k; j + n <= len && j < k + 512; j++) {
                    if (s[j] == '`') {
                        size_t  m = j;

                        while (m < len && s[m] == '`') {
                            m++;
                        }

                        if (m - j == n) {
                            e = s + j;
                            break;
                        }

                        j = m;
                    }
                }

                if (e == NULL) {
                    i = k;
                    continue;
                }

                /* a word or two is said ("run `make`"), code is not */

                code = (size_t) (e - (s + k));
                plain = code <= 40;

                for (j = k; j < k + code && plain; j++) {
                    c = (unsigned char) s[j];

                    if (!(PG_ALNUM(c) || c == ' ' || c == '-' || c == '.'
                          || c == '\''))
                    {
                        plain = 0;
                    }
                }

                if (plain) {
                    pg_source_put(out, s + k, code);

                } else if (code <= 80 && memchr(s + k, ' ', code) == NULL
                           && depth < 4)
                {
                    /* one token: a path is said as its file name */
                    pg_source_inline_run(b, s + k, code, out, depth + 1);
                }

                i = (size_t) (e - s) + n;
            }

            continue;

        case '!':
            if (i + 1 < len && s[i + 1] == '[') {
                /* an image: its alt text is not a sentence */
                n = pg_source_bracket(b, s + i + 1, len - i - 1, NULL,
                                      depth);
                if (n) {
                    i += 1 + n;
                    continue;
                }
            }

            break;

        case '[':
            n = pg_source_bracket(b, s + i, len - i, out, depth);
            if (n) {
                i += n;
                continue;
            }

            i++;
            continue;

        case ']':
            i++;
            continue;

        case '<':
            /* a tag or an autolink: <br>, <https://...>, <a@b.c> */
            for (k = i + 1; k < len && k < i + 512 && s[k] != '>'
                            && s[k] != '<'; k++)
            {
                /* void */
            }

            if (k < len && s[k] == '>' && k > i + 1
                && (PG_ALPHA(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!'))
            {
                pg_source_put(out, " ", 1);
                i = k + 1;
                continue;
            }

            break;

        case '&':
            n = pg_source_entity(s + i, len - i, out);
            if (n) {
                i += n;
                continue;
            }

            break;

        default:
            break;
        }

        pg_source_put(out, s + i, 1);
        i++;
    }
}


/*
 * At the start of a word: a URL (said as its host), an e-mail address or
 * a file path (dropped).  Returns the bytes consumed, 0 for an ordinary
 * word.
 */
static size_t
pg_source_token(pg_source_builder_t *b, const char *s, size_t len,
    pg_buf_t *out)
{
    size_t       n, end, i, h, at, slashes, dot;
    const char  *host;

    if (s[0] == '[' || s[0] == '!' || s[0] == '(' || s[0] == '`'
        || s[0] == '<' || s[0] == '*' || s[0] == '_')
    {
        /* markup first; the word inside comes back here */
        return 0;
    }

    for (n = 0; n < len && !pg_source_is_space((unsigned char) s[n])
                && s[n] != '<' && s[n] != '>' && s[n] != '"'; n++)
    {
        /* void */
    }

    /* trailing punctuation belongs to the sentence */

    end = n;

    while (end && strchr(".,;:!?)]'*_", s[end - 1]) != NULL) {
        end--;
    }

    if (end == 0) {
        return 0;
    }

    /* a markdown link's target "(https://...)" is handled by the link */

    if ((end > 7 && strncasecmp(s, "http://", 7) == 0)
        || (end > 8 && strncasecmp(s, "https://", 8) == 0)
        || (end > 6 && strncasecmp(s, "ftp://", 6) == 0)
        || (end > 4 && strncasecmp(s, "www.", 4) == 0))
    {
        host = memchr(s, '/', end);
        host = (host && host + 1 < s + end && host[1] == '/') ? host + 2 : s;

        if ((size_t) (s + end - host) > 4 && strncasecmp(host, "www.", 4) == 0)
        {
            host += 4;
        }

        for (h = 0; host + h < s + end && (PG_ALNUM(host[h]) || host[h] == '.'
                                           || host[h] == '-'); h++)
        {
            /* void */
        }

        while (h && host[h - 1] == '.') {
            h--;
        }

        if (h) {
            pg_source_put(out, host, h);
        }

        return end;
    }

    if (end > 7 && strncasecmp(s, "mailto:", 7) == 0) {
        return end;
    }

    /* user@host.tld */

    at = 0;
    dot = 0;
    slashes = 0;

    for (i = 0; i < end; i++) {
        if (s[i] == '@' && at == 0 && i > 0) {
            at = i;

        } else if (s[i] == '.' && at) {
            dot = i;

        } else if (s[i] == '/' || s[i] == '\\') {
            slashes++;
        }
    }

    if (at && dot > at + 1 && dot + 2 < end + 1 && slashes == 0) {
        /* said as a person would: "ana.lopez at example.org" */
        pg_source_put(out, s, at);
        pg_source_put(out, " at ", 4);
        pg_source_put(out, s + at + 1, end - at - 1);
        return end;
    }

    (void) b;

    /* /usr/lib/x, ~/notes.txt, ./run.sh, C:\dir, src/main.c */

    if ((s[0] == '/' && end > 1 && (PG_ALNUM(s[1]) || s[1] == '.')
         && (slashes >= 2 || memchr(s, '.', end) != NULL))
        || (end > 2 && s[0] == '~' && s[1] == '/')
        || (end > 2 && s[0] == '.' && s[1] == '/')
        || (end > 3 && s[0] == '.' && s[1] == '.' && s[2] == '/')
        || (end > 3 && PG_ALPHA(s[0]) && s[1] == ':' && s[2] == '\\')
        || (slashes >= 3 && memchr(s, ':', end) == NULL))
    {
        pg_source_file_name(s, end, out);
        return end;
    }

    if (slashes >= 1 && end > 4) {
        /* a relative path to a file: "docs/setup.md" */

        for (i = end; i > 0 && PG_ALNUM(s[i - 1]); i--) {
            /* void */
        }

        if (i > 1 && s[i - 1] == '.' && end - i >= 1 && end - i <= 5
            && PG_ALPHA(s[i]) && memchr(s, '/', i) != NULL)
        {
            pg_source_file_name(s, end, out);
            return end;
        }
    }

    return 0;
}


/* A path is said as its file name ("hub.log"), when it names a file. */
static void
pg_source_file_name(const char *s, size_t len, pg_buf_t *out)
{
    size_t  i, dot;

    for (i = len; i > 0 && s[i - 1] != '/' && s[i - 1] != '\\'; i--) {
        /* void */
    }

    for (dot = len; dot > i && s[dot - 1] != '.'; dot--) {
        /* void */
    }

    if (dot > i + 1 && dot < len && PG_ALNUM(s[i]) && PG_ALPHA(s[dot])) {
        pg_source_put(out, s + i, len - i);
    }
}


/*
 * At "[": a citation "[12]", "[3, 4]", "[^1]", "[citation needed]" goes;
 * a checkbox "[x]" goes; a link "[text](url)" or "[text][ref]" is its
 * text; other brackets are their text.  out NULL: drop all (an image).
 * Returns the bytes consumed, 0 when s[0] is a lone "[".
 */
static size_t
pg_source_bracket(pg_source_builder_t *b, const char *s, size_t len,
    pg_buf_t *out, int depth)
{
    size_t  i, close, end, nest;
    int     cite;

    for (i = 1; i < len && i < PG_SOURCE_LINK_MAX && s[i] != ']'
                && s[i] != '['; i++)
    {
        /* void */
    }

    if (i >= len || s[i] != ']') {
        return 0;
    }

    close = i;

    /* citations and checkboxes */

    cite = close > 1;

    for (i = 1; i < close && cite; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == ',' || s[i] == ' '
              || s[i] == '-' || (i == 1 && s[i] == '^')
              || (s[1] == '^' && PG_ALNUM(s[i]))))
        {
            cite = 0;
        }
    }

    if (cite
        || (close == 2 && (s[1] == ' ' || s[1] == 'x' || s[1] == 'X'))
        || (close - 1 == 15 && strncasecmp(s + 1, "citation needed", 15) == 0)
        || (close - 1 == 4 && strncasecmp(s + 1, "edit", 4) == 0))
    {
        return close + 1;
    }

    end = close + 1;

    if (end < len && s[end] == '(') {
        /* the target, with one level of nested parentheses */

        nest = 0;

        for (i = end + 1; i < len && i < end + PG_SOURCE_LINK_MAX; i++) {
            if (s[i] == '(') {
                nest++;

            } else if (s[i] == ')') {
                if (nest == 0) {
                    break;
                }

                nest--;
            }
        }

        if (i < len && s[i] == ')') {
            end = i + 1;
        }

    } else if (end < len && s[end] == '[') {
        for (i = end + 1; i < len && i < end + 256 && s[i] != ']'; i++) {
            /* void */
        }

        if (i < len && s[i] == ']') {
            end = i + 1;
        }
    }

    if (out && depth < 4) {
        pg_source_inline_run(b, s + 1, close - 1, out, depth + 1);
    }

    return end;
}


/* "&amp;", "&#233;", "&#x2014;": decoded; 0 when not an entity. */
static size_t
pg_source_entity(const char *s, size_t len, pg_buf_t *out)
{
    size_t          i, k;
    uint32_t        cp;
    unsigned char   u[4];

    static const struct {
        const char  *name;
        const char  *text;
    } entities[] = {
        { "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" },
        { "apos", "'" }, { "nbsp", " " }, { "mdash", "\xe2\x80\x94" },
        { "ndash", "\xe2\x80\x93" }, { "hellip", "\xe2\x80\xa6" },
        { "rsquo", "'" }, { "lsquo", "'" }, { "ldquo", "\"" },
        { "rdquo", "\"" }, { "copy", "\xc2\xa9" }, { NULL, NULL }
    };

    for (i = 1; i < len && i < 12 && (PG_ALNUM(s[i]) || s[i] == '#'); i++) {
        /* void */
    }

    if (i >= len || s[i] != ';' || i < 2) {
        return 0;
    }

    if (s[1] == '#') {
        cp = 0;

        if (s[2] == 'x' || s[2] == 'X') {
            for (k = 3; k < i; k++) {
                char  c = s[k];

                cp = cp * 16 + (uint32_t) (c >= '0' && c <= '9' ? c - '0'
                                           : (c | 0x20) - 'a' + 10);
                if (cp > 0x10ffff) {
                    return 0;
                }
            }

        } else {
            for (k = 2; k < i; k++) {
                if (s[k] < '0' || s[k] > '9') {
                    return 0;
                }

                cp = cp * 10 + (uint32_t) (s[k] - '0');
                if (cp > 0x10ffff) {
                    return 0;
                }
            }
        }

        if (cp < 0x20 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
            pg_source_put(out, " ", 1);

        } else if (cp < 0x80) {
            u[0] = (unsigned char) cp;
            pg_source_put(out, (char *) u, 1);

        } else if (cp < 0x800) {
            u[0] = (unsigned char) (0xc0 | (cp >> 6));
            u[1] = (unsigned char) (0x80 | (cp & 0x3f));
            pg_source_put(out, (char *) u, 2);

        } else if (cp < 0x10000) {
            u[0] = (unsigned char) (0xe0 | (cp >> 12));
            u[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
            u[2] = (unsigned char) (0x80 | (cp & 0x3f));
            pg_source_put(out, (char *) u, 3);

        } else {
            u[0] = (unsigned char) (0xf0 | (cp >> 18));
            u[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
            u[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
            u[3] = (unsigned char) (0x80 | (cp & 0x3f));
            pg_source_put(out, (char *) u, 4);
        }

        return i + 1;
    }

    for (k = 0; entities[k].name; k++) {
        if (strlen(entities[k].name) == i - 1
            && strncmp(s + 1, entities[k].name, i - 1) == 0)
        {
            pg_source_put(out, entities[k].text, strlen(entities[k].text));
            return i + 1;
        }
    }

    return 0;
}


/*
 * One space at most between words, none at the ends, none before ".,;:!?)"
 * or after "("; empty brackets and repeated commas go.
 */
static void
pg_source_tidy(pg_buf_t *out)
{
    size_t          i, o;
    unsigned char  *d, c;

    d = out->data;
    o = 0;

    for (i = 0; i < out->len; i++) {
        c = d[i];

        if (c == ' ') {
            if (o == 0 || d[o - 1] == ' ' || d[o - 1] == '(') {
                continue;
            }

            d[o++] = c;
            continue;
        }

        if (c == '.' || c == ',' || c == ';' || c == ':' || c == '!'
            || c == '?' || c == ')')
        {
            while (o && d[o - 1] == ' ') {
                o--;
            }

            if (c == ')' && o && d[o - 1] == '(') {
                /* "()" left by a dropped link or URL */
                o--;
                continue;
            }

            if (c == ',' && (o == 0 || d[o - 1] == ',' || d[o - 1] == '('
                             || d[o - 1] == '.' || d[o - 1] == ':'
                             || d[o - 1] == ';'))
            {
                continue;
            }

            if ((c == '.' || c == ';' || c == ':') && o && d[o - 1] == ',') {
                o--;
            }

            if (o == 0 && c != ')') {
                continue;
            }
        }

        d[o++] = c;
    }

    while (o && (d[o - 1] == ' ' || d[o - 1] == ',')) {
        o--;
    }

    out->len = o;
}


/* ---- Markdown and plain text ------------------------------------------- */


int
pg_source_plain(const char *data, size_t len, const char *title,
    pg_source_doc_t *doc, pg_error_t *err)
{
    memset(doc, 0, sizeof(pg_source_doc_t));

    if (!pg_utf8_valid(data, len) || memchr(data, '\0', len) != NULL) {
        pg_error_set(err, 400, NULL, "invalid_document",
                     "the document's text is not valid UTF-8");
        return -1;
    }

    return pg_source_markdown(data, len, PG_SOURCE_TEXT, title, doc, err);
}


static int
pg_source_markdown(const char *data, size_t len, pg_source_type_t type,
    const char *title, pg_source_doc_t *doc, pg_error_t *err)
{
    int                   level, in_fence, in_code, in_comment, prev_blank,
                          item;
    char                  rc;
    size_t                i, n, nlines, start, indent, skip, para_lines;
    const char           *s, *e;
    pg_buf_t              para;
    pg_source_line_t     *lines, *line, *next;
    pg_source_builder_t   b;

    memset(&para, 0, sizeof(pg_buf_t));

    /* the lines, without their line ends and trailing spaces */

    nlines = 0;

    for (i = 0; i < len; i++) {
        nlines += (data[i] == '\n');
    }

    lines = malloc((nlines + 2) * sizeof(pg_source_line_t));
    if (lines == NULL) {
        pg_script_oom(err);
        return -1;
    }

    nlines = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n') {
            continue;
        }

        n = i - start;

        while (n && pg_source_is_space((unsigned char) data[start + n - 1])) {
            n--;
        }

        lines[nlines].s = data + start;
        lines[nlines].len = n;
        nlines++;
        start = i + 1;
    }

    pg_source_builder_init(&b, doc, 1);

    if (title) {
        pg_source_set_title(&b, title, strlen(title));
    }

    in_fence = 0;
    in_code = 0;
    in_comment = 0;
    prev_blank = 1;
    item = 0;
    para_lines = 0;
    i = 0;

    /* YAML front matter: its title is the document's */

    if (nlines > 2 && lines[0].len == 3 && memcmp(lines[0].s, "---", 3) == 0) {
        for (n = 1; n < nlines && n < 100; n++) {
            if (lines[n].len == 3 && memcmp(lines[n].s, "---", 3) == 0) {
                break;
            }
        }

        if (n < nlines && n < 100) {
            for (start = 1; start < n; start++) {
                s = lines[start].s;

                if (lines[start].len > 6 && memcmp(s, "title:", 6) == 0) {
                    e = s + lines[start].len;
                    s += 6;

                    while (s < e && (*s == ' ' || *s == '"' || *s == '\'')) {
                        s++;
                    }

                    while (e > s && (e[-1] == '"' || e[-1] == '\'')) {
                        e--;
                    }

                    pg_source_set_title(&b, s, (size_t) (e - s));
                }
            }

            i = n + 1;
        }
    }

#define PG_SOURCE_FLUSH()                                                    \
    do {                                                                     \
        if (para.len) {                                                      \
            if (item) {                                                      \
                pg_source_item(&b, (const char *) para.data, para.len);      \
            } else {                                                         \
                pg_source_paragraph(&b, (const char *) para.data, para.len); \
            }                                                                \
        }                                                                    \
        pg_buf_reset(&para);                                                 \
        para_lines = 0;                                                      \
    } while (0)

    for ( /* void */ ; i < nlines && !b.failed; i++) {
        line = &lines[i];
        next = i + 1 < nlines ? &lines[i + 1] : NULL;
        s = line->s;
        n = line->len;

        if (in_comment) {
            if (n >= 3 && memmem(s, n, "-->", 3) != NULL) {
                in_comment = 0;
            }

            continue;
        }

        if (pg_source_fence(s, n)) {
            PG_SOURCE_FLUSH();
            in_fence = !in_fence;
            prev_blank = 1;
            continue;
        }

        if (in_fence) {
            continue;
        }

        indent = pg_source_indent(s, n);

        if (indent == n) {
            PG_SOURCE_FLUSH();
            prev_blank = 1;
            in_code = 0;
            continue;
        }

        if (n - indent >= 4 && memcmp(s + indent, "<!--", 4) == 0) {
            PG_SOURCE_FLUSH();
            in_comment = memmem(s + indent, n - indent, "-->", 3) == NULL;
            prev_blank = 1;
            continue;
        }

        /* indented code: after a blank line, not in a list, code-like */

        if ((indent >= 4 || (indent && s[0] == '\t')) && !item
            && (in_code || prev_blank)
            && (type == PG_SOURCE_MARKDOWN
                || pg_source_codeish(s + indent, n - indent)))
        {
            PG_SOURCE_FLUSH();
            in_code = 1;
            continue;
        }

        if (in_code && (indent >= 4 || (indent && s[0] == '\t'))) {
            continue;
        }

        in_code = 0;

        /* block quotes: the markers go */

        while (indent < n && s[indent] == '>') {
            indent++;

            while (indent < n && s[indent] == ' ') {
                indent++;
            }
        }

        if (indent == n) {
            PG_SOURCE_FLUSH();
            prev_blank = 1;
            continue;
        }

        s += indent;
        n -= indent;

        /* setext underlines, rules */

        if (pg_source_rule(s, n, &rc)) {

            if ((rc == '=' || rc == '-') && para_lines == 1 && !item
                && indent < 4)
            {
                pg_source_heading(&b, rc == '=' ? 1 : 2,
                                  (const char *) para.data, para.len);
                pg_buf_reset(&para);
                para_lines = 0;

            } else {
                PG_SOURCE_FLUSH();
            }

            prev_blank = 1;
            continue;
        }

        /* ATX headings */

        for (level = 0; level < (int) n && s[level] == '#'; level++) {
            /* void */
        }

        if (level >= 1 && level <= 6 && indent < 4
            && ((size_t) level == n || s[level] == ' ' || s[level] == '\t'))
        {
            PG_SOURCE_FLUSH();
            item = 0;
            pg_source_heading(&b, level, s + level, n - (size_t) level);
            prev_blank = 1;
            continue;
        }

        /* tables: rows with two or more "|" */

        {
            size_t  j, bars;

            for (j = 0, bars = 0; j < n; j++) {
                bars += (s[j] == '|');
            }

            if (bars >= 2 || (s[0] == '|' && bars >= 1)) {
                PG_SOURCE_FLUSH();
                item = 0;
                prev_blank = 1;
                continue;
            }
        }

        /* link and footnote definitions: "[1]: https://..." */

        if (s[0] == '[') {
            e = memchr(s, ']', n);

            if (e && (size_t) (e - s) + 1 < n && e[1] == ':') {
                PG_SOURCE_FLUSH();
                prev_blank = 1;
                continue;
            }
        }

        /* list items */

        if (pg_source_item_marker(s, n, &skip)) {
            PG_SOURCE_FLUSH();
            item = 1;
            s += skip;
            n -= skip;

            /* a checkbox */

            if (n >= 3 && s[0] == '[' && s[2] == ']'
                && (s[1] == ' ' || s[1] == 'x' || s[1] == 'X'))
            {
                s += 3;
                n -= 3;
            }

            (void) pg_buf_append(&para, s, n);
            para_lines = 1;
            prev_blank = 0;
            continue;
        }

        if (item && (prev_blank && indent < 2)) {
            /* a paragraph after a list */
            item = 0;
        }

        /* **A bold line** alone is a heading */

        if (prev_blank && n > 4
            && ((s[0] == '*' && s[1] == '*' && s[n - 1] == '*'
                 && s[n - 2] == '*')
                || (s[0] == '_' && s[1] == '_' && s[n - 1] == '_'
                    && s[n - 2] == '_'))
            && (next == NULL || pg_source_indent(next->s, next->len)
                                == next->len))
        {
            PG_SOURCE_FLUSH();
            item = 0;
            pg_source_heading(&b, 3, s + 2, n - 4);
            continue;
        }

        /* plain text headings: short unpunctuated lines, ALL CAPS lines */

        if (prev_blank && !item) {
            pg_source_line_t  l, nl;

            l.s = s;
            l.len = n;

            if (next) {
                nl = *next;
                nl.s += pg_source_indent(next->s, next->len);
                nl.len -= (size_t) (nl.s - next->s);
            }

            level = pg_source_plain_heading(&l, next ? &nl : NULL);

            if (level) {
                PG_SOURCE_FLUSH();
                pg_source_heading(&b, level, s, n);
                prev_blank = 1;
                continue;
            }
        }

        if (para.len) {
            /* "exam-\nple" stays as it is: a dash may be meant */
            (void) pg_buf_append(&para, " ", 1);
        }

        if (pg_buf_append(&para, s, n) != 0) {
            b.failed = 1;
        }

        para_lines++;
        prev_blank = 0;
    }

    PG_SOURCE_FLUSH();

#undef PG_SOURCE_FLUSH

    pg_buf_free(&para);
    free(lines);

    return pg_source_builder_finish(&b, err);
}


static size_t
pg_source_indent(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len && (s[i] == ' ' || s[i] == '\t'); i++) {
        /* void */
    }

    return i;
}


/* ``` or ~~~ (at least three, up to three spaces of indentation) */
static int
pg_source_fence(const char *s, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len && i < 3 && s[i] == ' '; i++) {
        /* void */
    }

    if (i == len || (s[i] != '`' && s[i] != '~')) {
        return 0;
    }

    for (n = i; n < len && s[n] == s[i]; n++) {
        /* void */
    }

    return n - i >= 3;
}


/* "---", "***", "___", "===" (spaces between allowed); *c the character */
static int
pg_source_rule(const char *s, size_t len, char *c)
{
    size_t  i, n;

    if (len == 0 || (s[0] != '-' && s[0] != '*' && s[0] != '_'
                     && s[0] != '='))
    {
        return 0;
    }

    for (i = 0, n = 0; i < len; i++) {
        if (s[i] == s[0]) {
            n++;

        } else if (s[i] != ' ') {
            return 0;
        }
    }

    *c = s[0];

    return n >= 3 || (s[0] == '=' && n >= 1) || (s[0] == '-' && n >= 2);
}


/*
 * "- ", "* ", "+ ", "• ", "1. ", "12) ", "a) ", "b. ": a list item; *skip
 * is the length of the marker with its spaces.
 */
static int
pg_source_item_marker(const char *s, size_t len, size_t *skip)
{
    size_t  i;

    i = 0;

    if (len >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+')) {
        i = 1;

    } else if (len >= 4 && (unsigned char) s[0] == 0xe2
               && (unsigned char) s[1] == 0x80 && (unsigned char) s[2] == 0xa2)
    {
        i = 3;

    } else {
        while (i < len && i < 3 && s[i] >= '0' && s[i] <= '9') {
            i++;
        }

        if (i == 0 && len >= 3 && ((s[0] >= 'a' && s[0] <= 'z')
                                   || (s[0] >= 'A' && s[0] <= 'Z'
                                       && s[1] == ')')))
        {
            i = 1;
        }

        if (i == 0 || i >= len || (s[i] != '.' && s[i] != ')')) {
            return 0;
        }

        i++;
    }

    if (i >= len || (s[i] != ' ' && s[i] != '\t')) {
        return 0;
    }

    while (i < len && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }

    if (i == len) {
        return 0;
    }

    *skip = i;

    return 1;
}


/*
 * A line of plain text after a blank line that is a heading: in ALL CAPS
 * (level 1 when it is the first), or short, unpunctuated, starting with a
 * capital or a digit, and followed by a blank line or by a longer line
 * that starts a sentence.  Returns the level (2), or 0.
 */
static int
pg_source_plain_heading(const pg_source_line_t *line,
    const pg_source_line_t *next)
{
    size_t          i, upper, lower, words, commas;
    unsigned char   c, last;

    upper = 0;
    lower = 0;
    words = 0;
    commas = 0;

    if (line->len > 120) {
        return 0;
    }

    for (i = 0; i < line->len; i++) {
        c = (unsigned char) line->s[i];

        upper += (c >= 'A' && c <= 'Z');
        lower += (c >= 'a' && c <= 'z') || c >= 0x80;
        commas += (c == ',');

        if (i == 0 || (line->s[i - 1] == ' ' && c != ' ')) {
            words++;
        }
    }

    last = (unsigned char) line->s[line->len - 1];

    if (upper >= 2 && lower == 0 && last != ',') {
        return 2;
    }

    c = (unsigned char) line->s[0];

    if (line->len > PG_SOURCE_HEADING_MAX || words > 10 || commas
        || !((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
    {
        return 0;
    }

    if (strchr(".!?,;:\"'-", last) != NULL) {
        return 0;
    }

    if (next == NULL || next->len == 0) {
        return 2;
    }

    c = (unsigned char) next->s[0];

    if (pg_source_rule(next->s, next->len, (char *) &last)) {
        /* a setext heading: the underline makes it one */
        return 0;
    }

    if (((c >= 'A' && c <= 'Z') || c == '-' || c == '*')
        && next->len > line->len + 10)
    {
        return 2;
    }

    return 0;
}


/* A line that reads as code rather than prose. */
static int
pg_source_codeish(const char *s, size_t len)
{
    size_t  i, sym;

    sym = 0;

    for (i = 0; i < len; i++) {
        sym += strchr("{}[]();=<>$_/\\|&*#", s[i]) != NULL;
    }

    return sym * 12 >= len || s[len - 1] == ';' || s[len - 1] == '{'
           || s[len - 1] == '}' || memmem(s, len, " --", 3) != NULL
           || (len > 2 && s[0] == '$' && s[1] == ' ')
           || (len > 5 && memcmp(s, "sudo ", 5) == 0);
}


static int
pg_source_is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}
