/*
 * podgen core: sources, documents turned into clean, structured,
 * speakable text (plain C, no nginx).
 *
 *   bytes + content type -> { title, sections [{ title, text }] }
 *
 * Markdown and plain text are cleaned here (pg_source.c), HTML with gumbo
 * (pg_source_html.c), PDF with poppler (pg_source_pdf.c).  Headings become
 * section titles, never sentences; list and checkbox markers go and each
 * item ends as a sentence; tables, code, URLs (a bare one is said as its
 * host), e-mail addresses, file paths and "[n]" citations are dropped;
 * "References", "See also" and the like are left out.  The text of a
 * section is UTF-8, paragraphs separated by a blank line, list items by a
 * newline.
 *
 * Everything is linear in the input (HTML: gumbo's own parse, then one
 * walk with bounded depth; PDF: a page limit).
 */

#ifndef PG_SOURCE_H
#define PG_SOURCE_H

#include <stddef.h>

#include "pg_buf.h"
#include "pg_json.h"


#define PG_SOURCE_TITLE_MAX   200       /* bytes of a title */
#define PG_SOURCE_PAGES_MAX   2000      /* pages of a PDF */
#define PG_SOURCE_DEPTH_MAX   512       /* HTML elements nested */


typedef enum {
    PG_SOURCE_UNKNOWN = 0,
    PG_SOURCE_TEXT,             /* text/plain */
    PG_SOURCE_MARKDOWN,         /* text/markdown, text/x-markdown */
    PG_SOURCE_HTML,             /* text/html, application/xhtml+xml */
    PG_SOURCE_PDF               /* application/pdf */
} pg_source_type_t;


typedef struct {
    char                 *title;        /* NULL: the part before any heading */
    char                 *text;
} pg_source_section_t;


typedef struct {
    char                 *title;        /* NULL when the document has none */
    size_t                nsections;
    pg_source_section_t  *sections;
    size_t                word_count;
} pg_source_doc_t;


/*
 * The type of a Content-Type header value ("text/html; charset=utf-8"),
 * and its charset parameter (lower case, copied to charset[0..cap), ""
 * when absent).  PG_SOURCE_UNKNOWN for anything else.
 */
pg_source_type_t pg_source_type(const char *value, size_t len,
    char *charset, size_t cap);

/* "text/plain", "text/markdown", "text/html", "application/pdf". */
const char *pg_source_type_name(pg_source_type_t type);

/*
 * Extracts a document.  charset: from the HTTP header, "" or NULL when
 * none (HTML also reads <meta charset>; text must be UTF-8, or it is read
 * as Latin-1 when the charset says so).  Errors: 400 invalid_document
 * (a corrupt file, text that is not UTF-8), 422 no_text (nothing that can
 * be spoken: a scanned PDF, a page of scripts), 500 on out of memory.
 * Returns 0 or -1 with *err set.  doc is freed on failure.
 */
int pg_source_extract(const char *data, size_t len, pg_source_type_t type,
    const char *charset, pg_source_doc_t *doc, pg_error_t *err);

/*
 * The text of a document to speak or to write about: the sections' texts
 * in order, separated by blank lines (their titles are not sentences and
 * are left out).  Appends to out.  0 or -1.
 */
int pg_source_doc_text(const pg_source_doc_t *doc, pg_buf_t *out);

void pg_source_doc_free(pg_source_doc_t *doc);

/*
 * The source object: {"id","object":"source","title","content_type",
 * "url" (only when url is not NULL),"word_count","text","sections":[{
 * "title","text"}]}.  0 or -1.
 */
int pg_source_to_json(const pg_source_doc_t *doc, const char *id,
    const char *content_type, const char *url, pg_buf_t *out);

/* A source object as pg_source_to_json() wrote it (title and sections
 * only are read back).  0 or -1. */
int pg_source_from_json(const char *json, size_t len, pg_source_doc_t *doc);


/*
 * "source_ids": [...] of a script, podcast or batch item request: each
 * source (found by lookup(data, id, &json, &len), 0 or -1 when unknown)
 * is written as Markdown ("# title", "## section", text), in order, into
 * "source_text" (after them, a source_text given too), so that the
 * request goes on as one with source_text (which is cleaned, and takes
 * the first source's title).  Returns 1 and the new request JSON in out,
 * 0 when obj has no source_ids, -1 with err (400 invalid_type,
 * invalid_value, string_above_max_length past max_source; 404
 * source_not_found), params "source_ids[i]".
 */
typedef int (*pg_source_lookup_pt)(void *data, const char *id,
    const char **json, size_t *len);

#define PG_SOURCE_IDS_MAX  16

int pg_source_expand(yajl_val obj, size_t max_source,
    pg_source_lookup_pt lookup, void *data, pg_buf_t *out, pg_error_t *err);


/*
 * What the extractors share (pg_source_html.c, pg_source_pdf.c): a
 * builder fed with blocks in reading order.  Each block is cleaned of
 * inline markup (markdown: also *emphasis*, `code`, [links](...)).
 */

typedef struct {
    pg_source_doc_t   *doc;
    pg_buf_t           text;            /* the current section's text */
    pg_buf_t           tmp;
    char              *section_title;
    int                skip_level;      /* > 0: in "References" */
    unsigned           markdown:1;
    unsigned           body:1;          /* body text seen */
    unsigned           in_items:1;      /* the last block was an item */
    unsigned           failed:1;
} pg_source_builder_t;

void pg_source_builder_init(pg_source_builder_t *b, pg_source_doc_t *doc,
    int markdown);
/* level 1..6; the first heading before any text is the title */
void pg_source_heading(pg_source_builder_t *b, int level, const char *s,
    size_t len);
void pg_source_paragraph(pg_source_builder_t *b, const char *s, size_t len);
void pg_source_item(pg_source_builder_t *b, const char *s, size_t len);
/* a title known from elsewhere (<title>, PDF info, front matter) */
void pg_source_set_title(pg_source_builder_t *b, const char *s, size_t len);
/* 0, or -1 with err (no_text, out of memory); frees the builder */
int pg_source_builder_finish(pg_source_builder_t *b, pg_error_t *err);

int pg_source_html(const char *data, size_t len, const char *charset,
    pg_source_doc_t *doc, pg_error_t *err);
int pg_source_pdf(const char *data, size_t len, pg_source_doc_t *doc,
    pg_error_t *err);
/* text as the plain text reader sees it, with a title known already */
int pg_source_plain(const char *data, size_t len, const char *title,
    pg_source_doc_t *doc, pg_error_t *err);

#endif /* PG_SOURCE_H */
