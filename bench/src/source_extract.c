/*
 * Source extraction throughput: writes a long HTML page (an article of
 * every text of t/data, with navigation, scripts, ads and a footer around
 * it) and a long PDF (the same text set by cairo, running header, page
 * numbers) to DIR, then extracts each with pg_source_extract() for about
 * 3 s on this thread and prints "html|pdf MB bytes runs seconds MB/s".
 *
 *   source_extract DIR t/data/source-*.txt
 */

#define _GNU_SOURCE             /* memmem() */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cairo.h>
#include <cairo-pdf.h>

#include "pg_buf.h"
#include "pg_source.h"


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static char *
slurp(const char *path, size_t *len)
{
    char  *b;
    long   n;
    FILE  *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc(n + 1);
    if (fread(b, 1, n, f) != (size_t) n) {
        exit(1);
    }

    b[n] = '\0';
    fclose(f);
    *len = n;

    return b;
}


static void
bench(const char *name, const char *path, pg_source_type_t type)
{
    char             *data;
    size_t            len, runs;
    double            t0, t;
    pg_error_t        err;
    pg_source_doc_t   doc;

    data = slurp(path, &len);
    runs = 0;
    t0 = now();

    do {
        if (pg_source_extract(data, len, type, "", &doc, &err) != 0) {
            fprintf(stderr, "%s: %s\n", name, err.message);
            exit(1);
        }

        pg_source_doc_free(&doc);
        runs++;
        t = now() - t0;
    } while (t < 3.0);

    printf("%s %zu %zu %.3f %.2f\n", name, len, runs, t,
           (double) len * runs / t / 1e6);
    free(data);
}


int
main(int argc, char **argv)
{
    int               i, k, page, y, started;
    char             *text, path[512], line[96];
    size_t            len, n, w, col;
    FILE             *f;
    cairo_t          *cr;
    cairo_surface_t  *s;
    pg_buf_t          all;

    if (argc < 3) {
        fprintf(stderr, "usage: source_extract DIR TEXT...\n");
        return 2;
    }

    memset(&all, 0, sizeof(pg_buf_t));

    for (k = 0; k < 8; k++) {
        for (i = 2; i < argc; i++) {
            text = slurp(argv[i], &len);
            pg_buf_append(&all, text, len);
            pg_buf_append(&all, "\n\n", 2);
            free(text);
        }
    }

    /* the page: each paragraph a <p>, every tenth a heading */

    snprintf(path, sizeof(path), "%s/long.html", argv[1]);
    f = fopen(path, "w");
    fprintf(f, "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            "<title>A long read | Bench Site</title><script>var a = 1;"
            "</script><style>p { margin: 0 }</style></head><body>"
            "<header><nav><a href=\"/\">Home</a> <a href=\"/x\">Archive</a>"
            "</nav></header><div class=\"ad-slot\">Buy now</div><main>"
            "<article><h1>A long read</h1>\n");

    for (n = 0, k = 0; n < all.len; k++) {
        char  *e = memmem(all.data + n, all.len - n, "\n\n", 2);
        size_t m = e ? (size_t) (e - (char *) all.data) - n : all.len - n;

        if (m) {
            if (k % 10 == 0) {
                fprintf(f, "<h2>Part %d</h2>\n", k / 10 + 1);
            }

            fprintf(f, "<p>%.*s</p>\n", (int) m, (char *) all.data + n);
        }

        n += m + 2;
    }

    fprintf(f, "</article></main><aside>Popular posts</aside><footer>"
            "Copyright</footer></body></html>\n");
    fclose(f);

    /* the PDF: the same text in 80-column lines, 50 lines a page */

    snprintf(path, sizeof(path), "%s/long.pdf", argv[1]);
    s = cairo_pdf_surface_create(path, 595, 842);
    cr = cairo_create(s);
    page = 1;
    y = 800;
    started = 0;
    col = 0;
    w = 0;

    for (n = 0; n <= all.len; n++) {
        char  c = n < all.len ? (char) all.data[n] : '\n';

        if (y > 780) {
            if (started) {
                snprintf(line, sizeof(line), "Page %d", page);
                cairo_move_to(cr, 280, 820);
                cairo_show_text(cr, line);
                cairo_show_page(cr);
                page++;
            }

            cairo_select_font_face(cr, "serif", CAIRO_FONT_SLANT_NORMAL,
                                   CAIRO_FONT_WEIGHT_NORMAL);
            cairo_set_font_size(cr, 9);
            cairo_move_to(cr, 72, 40);
            cairo_show_text(cr, "Bench Report - a long read");
            y = 70;
            started = 1;
        }

        if (c == '\n' || (c == ' ' && col > 80) || col >= sizeof(line) - 1) {
            line[col] = '\0';
            cairo_move_to(cr, 60, y);
            cairo_show_text(cr, line);
            y += 14;
            col = 0;
            w++;

            if (c == '\n' && n + 1 < all.len && all.data[n + 1] == '\n') {
                y += 8;
                n++;
            }

            continue;
        }

        line[col++] = c;
    }

    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    pg_buf_free(&all);

    snprintf(path, sizeof(path), "%s/long.html", argv[1]);
    bench("html", path, PG_SOURCE_HTML);
    snprintf(path, sizeof(path), "%s/long.pdf", argv[1]);
    bench("pdf", path, PG_SOURCE_PDF);

    return 0;
}
