/*
 * Writes the PDF samples of t/data/sources/ with cairo (the PDFs are kept
 * in the repository; this is how they were made):
 *
 *   cc -o /tmp/mkpdf t/data/sources/mkpdf.c $(pkg-config --cflags --libs cairo)
 *   /tmp/mkpdf t/data/sources
 *
 * report.pdf: a title in large type, headings, hyphenated line ends, a
 * running header and "Page N of M" footers on four pages; scan.pdf: a
 * page of shapes and no text.
 */

#include <stdio.h>
#include <string.h>

#include <cairo.h>
#include <cairo-pdf.h>


static const char  *body[] = {
    "H:Introduction",
    "Tidal streams along the northern coast carry enormous amounts of",
    "energy twice a day. Unlike wind, the tides are predictable years in",
    "advance, which makes them attractive to grid operators who must bal-",
    "ance supply and demand.",
    "This report summarises three years of measurements at the harbour",
    "mouth, where the channel narrows to four hundred metres.",
    "H:Measurements",
    "We moored two current meters on the sea floor and read them every",
    "ten minutes. The strongest flows came two hours after high water, at",
    "spring tides, when the current reached three metres per second.",
    "The weakest came at neap tides, when the current rarely passed one",
    "metre per second and a turbine would stand idle for hours.",
    "H:Costs",
    "A single turbine of one megawatt costs about as much as three wind",
    "turbines of the same size, because it must survive salt water, sand",
    "and the force of the flow. Maintenance needs calm weather and a spe-",
    "cial vessel, and both are rare in winter.",
    "Even so, the steady output of the tides lowers the cost of storage,",
    "and the harbour could host a small array without blocking shipping.",
    "H:Conclusion",
    "The northern coast has a resource worth developing. We recommend a",
    "pilot array of three turbines, with a full review after two winters.",
    NULL
};


static void
report(const char *dir)
{
    char              path[512], foot[64];
    int               page, npages, y, i;
    cairo_t          *cr;
    cairo_surface_t  *s;

    snprintf(path, sizeof(path), "%s/report.pdf", dir);
    s = cairo_pdf_surface_create(path, 595, 842);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE,
                                   "Tidal Energy on the Northern Coast");
    cr = cairo_create(s);

    npages = 4;
    page = 1;
    i = 0;

    while (page <= npages) {
        cairo_select_font_face(cr, "serif", CAIRO_FONT_SLANT_ITALIC,
                               CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 9);
        cairo_move_to(cr, 72, 40);
        cairo_show_text(cr, "Harbour Research Group - Tidal Energy Report 2026");

        y = 90;

        if (page == 1) {
            cairo_select_font_face(cr, "serif", CAIRO_FONT_SLANT_NORMAL,
                                   CAIRO_FONT_WEIGHT_BOLD);
            cairo_set_font_size(cr, 22);
            cairo_move_to(cr, 72, y);
            cairo_show_text(cr, "Tidal Energy on the Northern Coast");
            y += 50;
        }

        /* six lines of body a page, headings take one */

        for ( ; body[i] && y < 90 + 8 * 24; i++) {
            if (strncmp(body[i], "H:", 2) == 0) {
                cairo_select_font_face(cr, "serif", CAIRO_FONT_SLANT_NORMAL,
                                       CAIRO_FONT_WEIGHT_BOLD);
                cairo_set_font_size(cr, 14);
                y += 10;
                cairo_move_to(cr, 72, y);
                cairo_show_text(cr, body[i] + 2);
                y += 24;
                continue;
            }

            cairo_select_font_face(cr, "serif", CAIRO_FONT_SLANT_NORMAL,
                                   CAIRO_FONT_WEIGHT_NORMAL);
            cairo_set_font_size(cr, 11);
            cairo_move_to(cr, 72, y);
            cairo_show_text(cr, body[i]);
            y += 16;
        }

        cairo_select_font_face(cr, "serif", CAIRO_FONT_SLANT_NORMAL,
                               CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 9);
        snprintf(foot, sizeof(foot), "Page %d of %d", page, npages);
        cairo_move_to(cr, 260, 800);
        cairo_show_text(cr, foot);

        cairo_show_page(cr);
        page++;
    }

    cairo_destroy(cr);
    cairo_surface_destroy(s);
}


static void
scan(const char *dir)
{
    char              path[512];
    int               i;
    cairo_t          *cr;
    cairo_surface_t  *s;

    snprintf(path, sizeof(path), "%s/scan.pdf", dir);
    s = cairo_pdf_surface_create(path, 595, 842);
    cr = cairo_create(s);

    for (i = 0; i < 40; i++) {
        cairo_rectangle(cr, 72, 72 + i * 16, 300 + (i * 37) % 150, 9);
    }

    cairo_fill(cr);
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
}


int
main(int argc, char **argv)
{
    const char  *dir = argc > 1 ? argv[1] : ".";

    report(dir);
    scan(dir);

    return 0;
}
