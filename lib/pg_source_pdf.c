/*
 * podgen core: PDF sources, read with poppler (its GLib interface).
 *
 *   - the text of every page in reading order (poppler's own layout
 *     analysis), at most PG_SOURCE_PAGES_MAX pages;
 *   - running headers and footers (a line at the top or the bottom of
 *     most pages, digits aside) and page numbers go;
 *   - a word hyphenated at a line end is joined again ("mea- / surements");
 *   - lines become paragraphs (a short line that ends a sentence ends
 *     one), and the paragraphs go through the plain text reader, whose
 *     headings become sections;
 *   - the title is the document's (its info dictionary) when it looks
 *     like one, else the first page's largest line.
 *
 * A PDF without a text layer (a scan) is 422 no_text; one poppler cannot
 * open is 400 invalid_document.
 */

#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <poppler.h>

#include "pg_buf.h"
#include "pg_json.h"
#include "pg_script_int.h"
#include "pg_source.h"
#include "pg_text.h"


#define PG_PDF_EDGE  2          /* lines at each end of a page that may be
                                   a running header or footer */


typedef struct {
    char    *text;              /* the page's text, g_malloc'd */
    char   **lines;             /* into text, NUL-terminated */
    size_t   nlines;
} pg_pdf_page_t;


static int pg_pdf_split_lines(pg_pdf_page_t *page);
static void pg_pdf_shape(const char *s, char *out, size_t cap);
static int pg_pdf_page_number(const char *s);
static int pg_pdf_running(pg_pdf_page_t *pages, size_t npages, size_t p,
    size_t l);
static char *pg_pdf_largest_line(PopplerPage *page, const char *text);
static int pg_pdf_good_title(const char *t);
static void pg_pdf_trim(const char **s, size_t *len);


int
pg_source_pdf(const char *data, size_t len, pg_source_doc_t *doc,
    pg_error_t *err)
{
    int               n, rc;
    char             *title, *info;
    size_t            p, l, i, maxlen, linelen;
    GBytes           *bytes;
    GError           *gerr;
    pg_buf_t          text;
    const char       *s, *next;
    PopplerPage      *page;
    pg_pdf_page_t    *pages;
    PopplerDocument  *pdf;

    memset(doc, 0, sizeof(pg_source_doc_t));

    if (len < 5 || memcmp(data, "%PDF-", 5) != 0 || len > (size_t) G_MAXINT) {
        pg_error_set(err, 400, NULL, "invalid_document",
                     "the body is not a PDF (no %%PDF- header)");
        return -1;
    }

    gerr = NULL;
    bytes = g_bytes_new_static(data, len);
    pdf = poppler_document_new_from_bytes(bytes, NULL, &gerr);

    if (pdf == NULL) {
        pg_error_set(err, 400, NULL, "invalid_document",
                     "the PDF cannot be read: %.160s",
                     gerr && gerr->message ? gerr->message : "damaged");
        if (gerr) {
            g_error_free(gerr);
        }

        g_bytes_unref(bytes);
        return -1;
    }

    n = poppler_document_get_n_pages(pdf);

    if (n <= 0 || n > PG_SOURCE_PAGES_MAX) {
        if (n <= 0) {
            pg_error_set(err, 400, NULL, "invalid_document",
                         "the PDF has no pages");
        } else {
            pg_error_set(err, 400, NULL, "invalid_document",
                         "the PDF has %d pages; the maximum is %d", n,
                         PG_SOURCE_PAGES_MAX);
        }

        g_object_unref(pdf);
        g_bytes_unref(bytes);
        return -1;
    }

    pages = calloc((size_t) n, sizeof(pg_pdf_page_t));
    if (pages == NULL) {
        g_object_unref(pdf);
        g_bytes_unref(bytes);
        pg_script_oom(err);
        return -1;
    }

    title = NULL;
    rc = 0;

    for (p = 0; p < (size_t) n && rc == 0; p++) {
        page = poppler_document_get_page(pdf, (int) p);
        if (page == NULL) {
            continue;
        }

        pages[p].text = poppler_page_get_text(page);

        if (pages[p].text && pg_pdf_split_lines(&pages[p]) != 0) {
            rc = -1;
        }

        if (title == NULL && pages[p].text && pages[p].nlines) {
            title = pg_pdf_largest_line(page, pages[p].text);
        }

        g_object_unref(page);
    }

    info = poppler_document_get_title(pdf);

    /* the text: paragraphs separated by blank lines */

    memset(&text, 0, sizeof(pg_buf_t));

    for (p = 0; p < (size_t) n && rc == 0; p++) {

        maxlen = 0;

        for (l = 0; l < pages[p].nlines; l++) {
            linelen = strlen(pages[p].lines[l]);
            maxlen = linelen > maxlen ? linelen : maxlen;
        }

        for (l = 0; l < pages[p].nlines && rc == 0; l++) {
            s = pages[p].lines[l];
            linelen = strlen(s);

            pg_pdf_trim(&s, &linelen);

            if (linelen == 0) {
                rc = pg_buf_append(&text, "\n\n", 2);
                continue;
            }

            if (pg_pdf_page_number(s)
                || pg_pdf_running(pages, (size_t) n, p, l))
            {
                continue;
            }

            /* "mea-" + "surements": one word again */

            next = NULL;

            if (l + 1 < pages[p].nlines) {
                next = pages[p].lines[l + 1];

            } else if (p + 1 < (size_t) n && pages[p + 1].nlines) {
                next = pages[p + 1].lines[0];
            }

            while (next && (*next == ' ' || *next == '\t')) {
                next++;
            }

            if (linelen > 2 && s[linelen - 1] == '-' && PG_ALPHA(s[linelen - 2])
                && next && *next >= 'a' && *next <= 'z')
            {
                rc = pg_buf_append(&text, s, linelen - 1);
                continue;
            }

            /* a short line on its own, a heading perhaps, stands alone */

            if (linelen <= 60 && linelen * 5 < maxlen * 3
                && strchr(".,;:!?-", s[linelen - 1]) == NULL
                && ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0'
                                                     && s[0] <= '9'))
                && (text.len == 0 || text.data[text.len - 1] == '\n'))
            {
                if (text.len && (text.len < 2
                                 || text.data[text.len - 2] != '\n'))
                {
                    rc = pg_buf_append(&text, "\n", 1);
                }

                if (rc == 0) {
                    rc = pg_buf_append(&text, s, linelen);
                }

                if (rc == 0) {
                    rc = pg_buf_append(&text, "\n\n", 2);
                }

                continue;
            }

            rc = pg_buf_append(&text, s, linelen);

            /* a short line that ends a sentence ends a paragraph */

            i = linelen;

            while (i && (s[i - 1] == '"' || s[i - 1] == ')'
                         || s[i - 1] == '\''))
            {
                i--;
            }

            if (rc == 0) {
                if (i && (s[i - 1] == '.' || s[i - 1] == '!'
                          || s[i - 1] == '?' || s[i - 1] == ':')
                    && linelen * 4 < maxlen * 3)
                {
                    rc = pg_buf_append(&text, "\n\n", 2);

                } else {
                    rc = pg_buf_append(&text, "\n", 1);
                }
            }
        }

        /* a page ends a paragraph only when its last line ends one */
    }

    for (p = 0; p < (size_t) n; p++) {
        free(pages[p].lines);
        g_free(pages[p].text);
    }

    free(pages);
    g_object_unref(pdf);
    g_bytes_unref(bytes);

    if (rc != 0) {
        g_free(info);
        free(title);
        pg_buf_free(&text);
        pg_script_oom(err);
        return -1;
    }

    if (info && pg_pdf_good_title(info)) {
        free(title);
        title = strdup(info);
    }

    g_free(info);

    rc = pg_source_plain(text.data ? (const char *) text.data : "", text.len,
                         title, doc, err);

    if (rc != 0 && err->status == 422) {
        pg_error_set(err, 422, NULL, "no_text",
                     "the PDF has no text layer (a scan?); podgen does "
                     "not read images");
    }

    free(title);
    pg_buf_free(&text);

    return rc;
}


/* The page's text as lines (poppler ends them with "\n"). */
static int
pg_pdf_split_lines(pg_pdf_page_t *page)
{
    char    *s;
    size_t   n, i;

    n = 1;

    for (s = page->text; *s; s++) {
        n += (*s == '\n');
    }

    page->lines = malloc(n * sizeof(char *));
    if (page->lines == NULL) {
        return -1;
    }

    i = 0;
    s = page->text;
    page->lines[i++] = s;

    for ( /* void */ ; *s; s++) {
        if (*s == '\n') {
            *s = '\0';
            page->lines[i++] = s + 1;
        }
    }

    /* no empty last line */

    while (i && page->lines[i - 1][0] == '\0') {
        i--;
    }

    page->nlines = i;

    return 0;
}


/* A line's shape: digits as "#", spaces trimmed, at most cap - 1 bytes. */
static void
pg_pdf_shape(const char *s, char *out, size_t cap)
{
    size_t  n;

    while (*s == ' ' || *s == '\t') {
        s++;
    }

    for (n = 0; *s && n + 1 < cap; s++) {
        out[n++] = (*s >= '0' && *s <= '9') ? '#' : *s;
    }

    while (n && out[n - 1] == ' ') {
        n--;
    }

    out[n] = '\0';
}


/* "12", "- 12 -", "Page 3", "3 of 10", "3/10", "iv": a page number. */
static int
pg_pdf_page_number(const char *s)
{
    size_t  i, digits, roman, other;

    if (strncasecmp(s, "page ", 5) == 0) {
        s += 5;
    }

    digits = 0;
    roman = 0;
    other = 0;

    for (i = 0; s[i]; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            digits++;

        } else if (strchr("ivxlcIVXLC", s[i]) != NULL) {
            roman++;

        } else if (s[i] == ' ' || s[i] == '-' || s[i] == '/'
                   || s[i] == '|' || s[i] == '.')
        {
            /* void */

        } else if (strncmp(s + i, "of", 2) == 0) {
            i++;

        } else {
            other++;
        }
    }

    if (other) {
        return 0;
    }

    return (digits && digits <= 8 && roman == 0) || (!digits && roman
                                                     && roman <= 6);
}


/*
 * The line l of page p is a running header or footer: among the first or
 * last PG_PDF_EDGE lines, and a line of the same shape is there on at
 * least half of the pages (and on three at least).
 */
static int
pg_pdf_running(pg_pdf_page_t *pages, size_t npages, size_t p, size_t l)
{
    char    a[128], b[128];
    size_t  q, k, same, top;

    if (npages < 3) {
        return 0;
    }

    top = l < PG_PDF_EDGE;

    if (!top && l + PG_PDF_EDGE < pages[p].nlines) {
        return 0;
    }

    pg_pdf_shape(pages[p].lines[l], a, sizeof(a));

    if (a[0] == '\0') {
        return 0;
    }

    same = 0;

    for (q = 0; q < npages; q++) {
        for (k = 0; k < PG_PDF_EDGE && k < pages[q].nlines; k++) {
            pg_pdf_shape(pages[q].lines[top ? k : pages[q].nlines - 1 - k],
                         b, sizeof(b));

            if (strcmp(a, b) == 0) {
                same++;
                break;
            }
        }
    }

    return same >= 3 && same * 2 >= npages;
}


/* The line of the first page set in the largest type: the title. */
static char *
pg_pdf_largest_line(PopplerPage *page, const char *text)
{
    char                    *t;
    GList                   *attrs, *a;
    double                   best, sum;
    size_t                   i, n, count;
    const char              *start, *end, *p;
    PopplerTextAttributes   *at, *top;

    attrs = poppler_page_get_text_attributes(page);
    if (attrs == NULL) {
        return NULL;
    }

    best = 0;
    top = NULL;
    sum = 0;
    count = 0;

    for (a = attrs; a; a = a->next) {
        at = a->data;
        sum += at->font_size * (at->end_index - at->start_index + 1);
        count += (size_t) (at->end_index - at->start_index + 1);

        if (at->font_size > best + 0.5) {
            best = at->font_size;
            top = at;
        }
    }

    t = NULL;

    /* only a line clearly larger than the text is a title */

    if (top && count && best > 1.2 * sum / (double) count) {
        n = strlen(text);
        i = (size_t) g_utf8_strlen(text, (gssize) n);

        if ((size_t) top->start_index < i) {
            start = g_utf8_offset_to_pointer(text, top->start_index);

            /* the whole line it is on */

            while (start > text && start[-1] != '\n') {
                start--;
            }

            end = strchr(start, '\n');
            if (end == NULL) {
                end = text + n;
            }

            p = start;
            n = (size_t) (end - start);
            pg_pdf_trim(&p, &n);

            if (n && n <= PG_SOURCE_TITLE_MAX) {
                t = strndup(p, n);
            }
        }
    }

    poppler_page_free_text_attributes(attrs);

    return t;
}


/* Not "Microsoft Word - report.docx", "untitled", "document1". */
static int
pg_pdf_good_title(const char *t)
{
    size_t  n;

    n = strlen(t);

    if (n < 3 || n > PG_SOURCE_TITLE_MAX || !pg_utf8_valid(t, n)
        || pg_script_count_words(t, n) == 0)
    {
        return 0;
    }

    if (strncasecmp(t, "microsoft", 9) == 0 || strncasecmp(t, "untitled", 8) == 0
        || strncasecmp(t, "document", 8) == 0 || strstr(t, ".doc") != NULL
        || strstr(t, ".pdf") != NULL || strstr(t, ".tex") != NULL)
    {
        return 0;
    }

    return 1;
}


static void
pg_pdf_trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t' || **s == '\f')) {
        (*s)++;
        (*len)--;
    }

    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'
                    || (*s)[*len - 1] == '\f' || (*s)[*len - 1] == '\r'))
    {
        (*len)--;
    }
}
