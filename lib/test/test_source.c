/*
 * Unit tests of lib/pg_source*.c: documents (t/data/sources/) turned into
 * a title and sections of clean, speakable text, as a listener would
 * judge them: no markup, links, tables or code read aloud, headings as
 * titles and not as sentences, every list item a sentence.
 */

#define _GNU_SOURCE             /* memmem() */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_script.h"
#include "pg_source.h"
#include "pg_text.h"
#include "unit.h"


static char *
read_file(const char *path, size_t *len)
{
    char   *buf;
    long    n;
    FILE   *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        printf("# cannot open %s\n", path);
        exit(1);
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc((size_t) n + 1);
    if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
        exit(1);
    }

    buf[n] = '\0';
    fclose(f);

    if (len) {
        *len = (size_t) n;
    }

    return buf;
}


static int
extract(const char *type, const char *data, size_t len, pg_source_doc_t *doc,
    pg_error_t *err)
{
    char              charset[32];
    pg_source_type_t  t;

    t = pg_source_type(type, strlen(type), charset, sizeof(charset));

    return pg_source_extract(data, len, t, charset, doc, err);
}


static int
extract_file(const char *type, const char *path, pg_source_doc_t *doc)
{
    int          rc;
    char        *data;
    size_t       len;
    pg_error_t   err;

    data = read_file(path, &len);
    rc = extract(type, data, len, doc, &err);
    free(data);

    if (rc != 0) {
        printf("# %s: %d %s %s\n", path, err.status, err.code, err.message);
    }

    return rc;
}


/* The whole text, as the generator gets it. */
static char *
text_of(const pg_source_doc_t *doc)
{
    pg_buf_t  b;

    memset(&b, 0, sizeof(pg_buf_t));

    if (pg_source_doc_text(doc, &b) != 0) {
        return strdup("");
    }

    return (char *) b.data;
}


static const char *
section(const pg_source_doc_t *doc, const char *title)
{
    size_t  i;

    for (i = 0; i < doc->nsections; i++) {
        if (doc->sections[i].title
            && strcmp(doc->sections[i].title, title) == 0)
        {
            return doc->sections[i].text;
        }
    }

    return NULL;
}


/* None of the strings of bad[] is in text; prints the first that is. */
static int
clean_of(const char *text, const char **bad)
{
    for ( /* void */ ; *bad; bad++) {
        if (strstr(text, *bad) != NULL) {
            printf("#   \"%s\" is in the text\n", *bad);
            return 0;
        }
    }

    return 1;
}


/* Every line (list item or paragraph) ends as a sentence. */
static int
lines_end_as_sentences(const char *text)
{
    const char  *p, *nl;
    char         c;

    for (p = text; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (nl == NULL) {
            nl = p + strlen(p);
        }

        if (nl > p) {
            c = nl[-1];

            if (c != '.' && c != '!' && c != '?' && c != '"' && c != ')') {
                printf("#   line does not end a sentence: %.*s\n",
                       (int) (nl - p), p);
                return 0;
            }
        }

        if (*nl == '\0') {
            break;
        }
    }

    return 1;
}


static void
test_meeting(void)
{
    char             *text;
    const char       *s;
    pg_source_doc_t   doc;

    static const char  *bad[] = {
        "#", "[", "]", "http", "|", "```", "Permits", "Contracts",
        "fetch-survey", "--year", "**", "`", "@", "Port authority permit",
        "docs/", "References", NULL
    };

    if (extract_file("text/markdown", "t/data/sources/meeting.md", &doc)
        != 0)
    {
        ok(0, "meeting.md extracted");
        return;
    }

    is_str(doc.title, "Harbour Project: Weekly Sync",
           "meeting: the # heading is the title");

    ok(section(&doc, "Agenda") != NULL, "meeting: an Agenda section");
    ok(section(&doc, "Notes") != NULL, "meeting: a Notes section");
    ok(section(&doc, "References") == NULL, "meeting: no References");

    s = section(&doc, "Action items");
    ok(s != NULL, "meeting: an Action items section");

    if (s) {
        is_str(s, "Send the permit copies to the board.\n"
                  "Book the crane for week 48.\n"
                  "Ask the council about night work; they meet on "
                  "Thursday.\n"
                  "Update the project page.",
               "meeting: checkboxes and bullets gone, each item a "
               "sentence, the link said as its text");
    }

    s = section(&doc, "Agenda");
    if (s) {
        is_str(s, "Review the dredging schedule.\nBudget update.\n"
                  "Open questions.", "meeting: a numbered list");
    }

    text = text_of(&doc);

    ok(clean_of(text, bad), "meeting: no markup, table, code, citation, "
       "reference read aloud");
    ok(lines_end_as_sentences(text), "meeting: every line ends a sentence");
    ok(strstr(text, "(see harbour.example.org)") != NULL,
       "meeting: a bare URL is said as its host");
    ok(strstr(text, "ana.lopez at example.org") != NULL,
       "meeting: an e-mail address is said as a person would");
    ok(strstr(text, "the survey results are in survey-2026.pdf") != NULL,
       "meeting: a path is said as its file name");
    ok(strstr(text, "port authority, and") != NULL,
       "meeting: the [1] citation gone without a trace");

    ok(doc.word_count > 50 && doc.word_count < 90,
       "meeting: %zu words", doc.word_count);

    free(text);
    pg_source_doc_free(&doc);
}


static void
test_article(void)
{
    long              n;
    char             *text, *norm;
    size_t            len, i;
    pg_span_t        *spans;
    pg_source_doc_t   doc;
    int               found;

    static const char  *bad[] = {
        "See also", "lights.example.com", "[12]", "Lighthouse lists",
        "Introduction", "Automation", NULL
    };

    if (extract_file("text/plain", "t/data/sources/article.txt", &doc) != 0)
    {
        ok(0, "article.txt extracted");
        return;
    }

    is_str(doc.title, "THE LIGHTHOUSE KEEPERS",
           "article: the ALL CAPS line is the title");
    is_int(doc.nsections, 3, "article: three sections (See also left out)");

    if (doc.nsections == 3) {
        is_str(doc.sections[0].title, "Introduction",
               "article: a short line alone is a heading");
        is_str(doc.sections[1].title, "A Day on the Rock",
               "article: a short line before a longer one is a heading");
        is_str(doc.sections[2].title, "Automation", "article: third");
    }

    text = text_of(&doc);
    ok(clean_of(text, bad), "article: titles are not sentences, See also "
       "and citations gone");

    /* the splitter: "No. 7", "s. 3", "Vol. 2, p. 41" do not end one */

    norm = pg_text_normalize(text, strlen(text), &len);
    n = pg_text_split(norm, len, 0, 0, &spans);
    found = 0;

    for (i = 0; i < (size_t) n; i++) {
        if (spans[i].len == strlen("See No. 7 in the register, and the "
                                   "account in s. 3 of the report.")
            && memcmp(norm + spans[i].off, "See No. 7", 9) == 0)
        {
            found++;
        }

        if (memcmp(norm + spans[i].off, "The last keeper", 15) == 0
            && norm[spans[i].off + spans[i].len - 1] == '.'
            && memmem(norm + spans[i].off, spans[i].len, "p. 41).", 7))
        {
            found++;
        }
    }

    is_int(found, 2, "article: no cut after No., s., Vol., p. before a "
           "number");

    free(spans);
    free(norm);
    free(text);
    pg_source_doc_free(&doc);
}


static void
test_readme(void)
{
    char             *text;
    pg_source_doc_t   doc;

    static const char  *bad[] = {
        "sudo", "apt-get", "toml", "*", "Older hubs", "diagram", "docs",
        "Getting started", ">", "~", NULL
    };

    if (extract_file("text/markdown", "t/data/sources/readme.md", &doc) != 0)
    {
        ok(0, "readme.md extracted");
        return;
    }

    is_str(doc.title, "Garden Sensors", "readme: the setext = title");
    ok(section(&doc, "Getting started") != NULL,
       "readme: a setext - section");
    ok(section(&doc, "Troubleshooting") != NULL, "readme: a ### section");

    text = text_of(&doc);
    ok(clean_of(text, bad), "readme: code, images, footnotes, emphasis, "
       "quote markers gone");
    ok(strstr(text, "for three seconds. The hub blinks twice") != NULL,
       "readme: emphasis kept as words");
    ok(strstr(text, "Logs are in hub.log.") != NULL,
       "readme: ~/.garden/logs/hub.log said as hub.log");
    ok(strstr(text, "Tip: keep sensors away from metal fences.") != NULL,
       "readme: a block quote is text");
    ok(lines_end_as_sentences(text), "readme: every line ends a sentence");

    free(text);
    pg_source_doc_free(&doc);
}


static void
expect_text(const char *type, const char *in, const char *title,
    const char *want, const char *name)
{
    char             *text;
    pg_error_t        err;
    pg_source_doc_t   doc;

    if (extract(type, in, strlen(in), &doc, &err) != 0) {
        ok(0, "%s: extracted (%s)", name, err.message);
        return;
    }

    text = text_of(&doc);
    is_str(text, want, "%s", name);

    if (title) {
        is_str(doc.title, title, "%s: title", name);
    }

    free(text);
    pg_source_doc_free(&doc);
}


static void
expect_error(const char *type, const char *in, size_t len, int status,
    const char *code, const char *name)
{
    int               rc;
    pg_error_t        err;
    pg_source_doc_t   doc;

    memset(&err, 0, sizeof(pg_error_t));
    rc = extract(type, in, len, &doc, &err);

    ok(rc == -1 && err.status == status && err.code
       && strcmp(err.code, code) == 0, "%s: %d %s", name, status, code);

    if (rc == 0) {
        pg_source_doc_free(&doc);
    }
}


static void
test_inline(void)
{
    expect_text("text/plain", "As shown before [1, 2], the lake froze "
                "[^3] early [citation needed].",
                NULL, "As shown before, the lake froze early.",
                "citations of every shape go");
    expect_text("text/plain", "Visit https://www.example.com/a/b?c=1. "
                "Or www.example.net!",
                NULL, "Visit example.com. Or example.net!",
                "URLs are said as their hosts");
    expect_text("text/plain", "The file is C:\\Users\\ana\\report.docx and "
                "the script ./run.sh runs it.",
                NULL, "The file is report.docx and the script run.sh runs "
                "it.", "Windows and relative paths");
    expect_text("text/plain", "Use either and/or both, 24/7.", NULL,
                "Use either and/or both, 24/7.",
                "\"and/or\" and \"24/7\" are not paths");
    expect_text("text/markdown", "Call `make build`, not `rm -rf /`; "
                "then read the [guide][g] and <https://x.example>.",
                NULL, "Call make build, not; then read the guide and.",
                "code spans: words said, code not");
    expect_text("text/plain", "Fish &amp; chips &#8212; &lt;3", NULL,
                "Fish & chips \xe2\x80\x94 <3.", "HTML entities (a one-line "
                "heading-like document is its text)");
    expect_text("text/plain", "snake_case and __bold__ and _it_", NULL,
                "snake case and bold and it.", "underscores");
    expect_text("text/plain", "Groceries\n\n1) Milk\n2) Eggs,\n"
                "3) Bread:\n", "Groceries", "Milk.\nEggs.\nBread.",
                "numbered items end as sentences");
    expect_text("text/plain", "Plan\n====\n\nWe go.\n\nSee Also\n--------\n\n"
                "Other plans.\n\nLater\n-----\n\nWe return.", "Plan",
                "We go.\n\nWe return.", "See Also left out until the next "
                "heading");
    expect_text("text/plain", "We went to the shore\nand then we went home.",
                NULL, "We went to the shore and then we went home.",
                "a wrapped line is not a heading");
    expect_text("text/plain", "---\ntitle: \"Front Matter\"\ndate: 2026\n"
                "---\nBody text here.", "Front Matter", "Body text here.",
                "YAML front matter: its title");
    expect_text("text/plain", "<!-- a comment\nover lines -->\nShown.",
                NULL, "Shown.", "HTML comments");
}


static void
test_errors(void)
{
    char              charset[32];
    pg_error_t        err;
    pg_source_doc_t   doc;

    expect_error("text/plain", "caf\xe9 au lait", 12, 400,
                 "invalid_document", "Latin-1 bytes without a charset");
    expect_error("text/plain", "a\0b", 3, 400, "invalid_document",
                 "a NUL byte");
    expect_error("text/markdown", "```\nint x;\n```\n", 15, 422, "no_text",
                 "only code");
    expect_error("text/plain", "", 0, 422, "no_text", "empty");
    expect_text("text/plain", "https://example.com/x/y/z", NULL,
                "example.com.", "a lone URL is its host");
    expect_error("image/png", "x", 1, 415, "unsupported_media_type",
                 "another type");

    ok(extract("text/plain; charset=ISO-8859-1", "caf\xe9 au lait", 12,
               &doc, &err) == 0
       && strcmp(doc.sections[0].text, "caf\xc3\xa9 au lait.") == 0,
       "Latin-1 with its charset");
    pg_source_doc_free(&doc);

    is_int(pg_source_type(" Text/HTML ; charset=\"UTF-8\"", 28, charset,
                          sizeof(charset)), PG_SOURCE_HTML, "type: html");
    is_str(charset, "utf-8", "type: charset lower case");
    is_int(pg_source_type("application/xhtml+xml", 21, charset,
                          sizeof(charset)), PG_SOURCE_HTML, "type: xhtml");
    is_str(charset, "", "type: no charset");
    is_int(pg_source_type("application/json", 16, NULL, 0),
           PG_SOURCE_UNKNOWN, "type: json is not a source");
}


static void
test_json(void)
{
    pg_buf_t          b;
    pg_source_doc_t   doc, back;

    memset(&b, 0, sizeof(pg_buf_t));

    if (extract_file("text/markdown", "t/data/sources/meeting.md", &doc)
        != 0)
    {
        ok(0, "json: extracted");
        return;
    }

    ok(pg_source_to_json(&doc, "src_ab", "text/markdown", NULL, &b) == 0,
       "json: written");
    ok(memmem(b.data, b.len, "\"url\"", 5) == NULL, "json: no url");
    ok(memmem(b.data, b.len, "\"object\":\"source\"", 17) != NULL,
       "json: object source");

    ok(pg_source_from_json((char *) b.data, b.len, &back) == 0,
       "json: read back");
    is_str(back.title, doc.title, "json: the title again");
    is_int(back.nsections, doc.nsections, "json: the sections again");
    is_int(back.word_count, doc.word_count, "json: the word count again");

    if (back.nsections == doc.nsections && doc.nsections > 1) {
        is_str(back.sections[1].text, doc.sections[1].text,
               "json: a section's text again");
        is_str(back.sections[1].title, doc.sections[1].title,
               "json: a section's title again");
    }

    pg_source_doc_free(&back);

    ok(pg_source_from_json("{\"sections\":3}", 14, &back) == -1,
       "json: a wrong record is refused");

    pg_source_doc_free(&doc);
    pg_buf_free(&b);
}


/* source_text of a script request gets the same cleaning */
static void
test_script_source(void)
{
    char                 *md, *body, *p;
    size_t                len, i, k;
    yajl_val              tree;
    pg_error_t            err;
    pg_script_t           s;
    pg_script_request_t   req;
    int                   clean;

    md = read_file("t/data/sources/meeting.md", &len);

    /* the document as a JSON string */

    body = malloc(len * 6 + 64);
    p = body + sprintf(body, "{\"engine\":\"builtin\",\"source_text\":\"");

    for (i = 0; i < len; i++) {
        if (md[i] == '"' || md[i] == '\\') {
            *p++ = '\\';
            *p++ = md[i];

        } else if (md[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = md[i];
        }
    }

    strcpy(p, "\"}");

    tree = pg_json_parse_object(body, strlen(body), PG_JSON_MAX_DEPTH, &err);
    ok(tree != NULL, "script: the body parses");

    if (tree == NULL
        || pg_script_request_from_json(tree, 1 << 20, &req, &err) != 0)
    {
        ok(0, "script: request accepted");
        goto done;
    }

    is_str(req.source_title, "Harbour Project: Weekly Sync",
           "script: the request knows the document's title");
    ok(strstr(req.source_text, "](") == NULL
       && strstr(req.source_text, "- [x]") == NULL,
       "script: source_text is cleaned");

    if (pg_script_generate(&req, &s) != 0) {
        ok(0, "script: generated");
        pg_script_request_free(&req);
        goto done;
    }

    is_str(s.title, "Harbour Project: Weekly Sync",
           "script: the title is the document's heading");

    clean = 1;

    for (k = 0; k < s.nsegments; k++) {
        static const char  *bad[] = {
            "#", "http", "[", "|", "`", "Agenda", NULL
        };

        if (!clean_of(s.segments[k].text, bad)) {
            clean = 0;
        }
    }

    ok(clean, "script: no segment reads markup, URLs or a heading aloud");

    pg_script_free(&s);
    pg_script_request_free(&req);

done:

    if (tree) {
        yajl_tree_free(tree);
    }

    free(body);
    free(md);
}


static void
test_big(void)
{
    char             *big, *text;
    size_t            i, n;
    pg_error_t        err;
    pg_source_doc_t   doc;

    /* 2 MB of hostile lines: brackets, backticks, fences, links */

    static const char  *lines[] = {
        "[[[[[[[[[[", "``````` `", "- [x] [a](b(c(d(e", "# # # #",
        "| a | b |", "http://", "<<<<<<", "&#99999999;", "_*_*_*_*",
        "    x = y;", "Plain words here.", "~~~", "a@b.c /x/y.z [^1]"
    };

    n = 2 * 1024 * 1024;
    big = malloc(n + 64);

    for (i = 0; i < n; ) {
        const char  *l = lines[(i * 7 + i / 13) % 13];

        memcpy(big + i, l, strlen(l));
        i += strlen(l);
        big[i++] = '\n';
    }

    ok(extract("text/markdown", big, i, &doc, &err) == 0
       || err.status == 422, "hostile 2 MB: an answer");

    if (doc.nsections) {
        text = text_of(&doc);
        ok(pg_utf8_valid(text, strlen(text)), "hostile 2 MB: UTF-8 out");
        free(text);
        pg_source_doc_free(&doc);
    }

    free(big);
}


static void
test_html(void)
{
    char             *text, *deep;
    size_t            i;
    pg_error_t        err;
    pg_source_doc_t   doc;

    static const char  *bad[] = {
        "Coastal Notes", "News", "Archive", "Advertisement", "Share on",
        "tracking", "font-family", "Hidden text", "North Rock", "flash(",
        "Lamps and fuels", "Popular", "beaches", "Great article",
        "Copyright", "Subscribe", "Photo:", "[1]", "By Ana Lopez", NULL
    };

    if (extract_file("text/html; charset=utf-8", "t/data/sources/article.html",
                     &doc) != 0)
    {
        ok(0, "article.html extracted");
        return;
    }

    is_str(doc.title, "How Lighthouse Lenses Work", "html: the <h1> title");
    is_int(doc.nsections, 3, "html: the intro and two <h2> sections "
           "(See also left out)");
    ok(section(&doc, "Orders of lenses") != NULL, "html: <h2> a section");
    ok(section(&doc, "Rotation and signals") != NULL, "html: second <h2>");

    text = text_of(&doc);
    ok(clean_of(text, bad), "html: navigation, ads, scripts, styles, "
       "hidden, table, code, aside, comments, footer, form gone");
    ok(strstr(text, "designed by Augustin Fresnel in 1822.\n") != NULL,
       "html: the citation link gone");
    ok(strstr(text, "First order: major coastal lights.\nFourth order")
       != NULL, "html: list items are sentences");
    ok(lines_end_as_sentences(text), "html: every line ends a sentence");
    free(text);
    pg_source_doc_free(&doc);

    if (extract_file("text/html", "t/data/sources/nomain.html", &doc) == 0) {
        is_str(doc.title, "Field Notes", "html: <title> without the site");
        text = text_of(&doc);
        ok(strstr(text, "The first swallows") == text
           && strstr(text, "Home") == NULL && strstr(text, "Links") == NULL,
           "html: no <article>: the block with the most paragraph text");
        free(text);
        pg_source_doc_free(&doc);

    } else {
        ok(0, "nomain.html extracted");
    }

    if (extract_file("text/html", "t/data/sources/latin1.html", &doc) == 0) {
        is_str(doc.sections[0].text, "Le caf\xc3\xa9 est tr\xc3\xa8s bon.",
               "html: <meta charset=iso-8859-1> read");
        pg_source_doc_free(&doc);

    } else {
        ok(0, "latin1.html extracted");
    }

    expect_error("text/html", "<html><body><script>var x;</script>"
                 "<nav>Home</nav></body></html>", 63, 422, "no_text",
                 "html: only scripts and navigation");

    /* 200,000 nested elements: refused before the parser sees them */

    deep = malloc(5 * 200000 + 16);

    for (i = 0; i < 200000; i++) {
        memcpy(deep + i * 5, "<div>", 5);
    }

    memcpy(deep + i * 5, "text", 4);
    expect_error("text/html", deep, i * 5 + 4, 400, "invalid_document",
                 "html: nested 200,000 deep (at once)");

    for (i = 0; i < 200000; i++) {
        memcpy(deep + i * 5, "<p>x ", 5);
    }

    ok(extract("text/html", deep, i * 5, &doc, &err) == 0,
       "html: 200,000 paragraphs (implied ends) are not nesting");
    pg_source_doc_free(&doc);

    expect_error("text/html", "\xff\xfe<\0p\0>\0", 8, 422, "no_text",
                 "html: binary garbage");

    free(deep);
}


/* A PDF of n empty pages, written by hand (a "page bomb"). */
static char *
pdf_pages(size_t n, size_t *len)
{
    char    *b, *p;
    size_t   i, *off, xref;

    b = malloc(n * 80 + n * 20 + 4096);
    off = malloc((n + 3) * sizeof(size_t));
    p = b;

    p += sprintf(p, "%%PDF-1.4\n");
    off[1] = (size_t) (p - b);
    p += sprintf(p, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
    off[2] = (size_t) (p - b);
    p += sprintf(p, "2 0 obj << /Type /Pages /Count %zu /Kids [", n);

    for (i = 0; i < n; i++) {
        p += sprintf(p, "%zu 0 R ", i + 3);
    }

    p += sprintf(p, "] >> endobj\n");

    for (i = 0; i < n; i++) {
        off[i + 3] = (size_t) (p - b);
        p += sprintf(p, "%zu 0 obj << /Type /Page /Parent 2 0 R /MediaBox "
                     "[0 0 10 10] >> endobj\n", i + 3);
    }

    xref = (size_t) (p - b);
    p += sprintf(p, "xref\n0 %zu\n0000000000 65535 f \n", n + 3);

    for (i = 1; i < n + 3; i++) {
        p += sprintf(p, "%010zu 00000 n \n", off[i]);
    }

    p += sprintf(p, "trailer << /Size %zu /Root 1 0 R >>\nstartxref\n%zu\n"
                 "%%%%EOF\n", n + 3, xref);

    free(off);
    *len = (size_t) (p - b);

    return b;
}


static void
test_pdf(void)
{
    char             *text, *pdf;
    size_t            len;
    pg_error_t        err;
    pg_source_doc_t   doc;

    static const char  *bad[] = {
        "Harbour Research Group", "Page ", "of 4", "bal- ance", "spe- cial",
        "Tidal Energy on the Northern Coast", NULL
    };

    if (extract_file("application/pdf", "t/data/sources/report.pdf", &doc)
        != 0)
    {
        ok(0, "report.pdf extracted");
        return;
    }

    is_str(doc.title, "Tidal Energy on the Northern Coast", "pdf: title");
    is_int(doc.nsections, 4, "pdf: four sections from the headings");

    if (doc.nsections == 4) {
        is_str(doc.sections[0].title, "Introduction", "pdf: first heading");
        is_str(doc.sections[3].title, "Conclusion", "pdf: last heading");
    }

    text = text_of(&doc);
    ok(clean_of(text, bad), "pdf: running header, page numbers, the title "
       "line and hyphens at line ends gone");
    ok(strstr(text, "who must balance supply and demand.") != NULL
       && strstr(text, "a special vessel") != NULL,
       "pdf: hyphenated words joined");
    ok(strstr(text, "and read them every ten minutes.") != NULL,
       "pdf: lines joined into paragraphs");
    free(text);
    pg_source_doc_free(&doc);

    /* no text layer, corrupt, too many pages */

    text = read_file("t/data/sources/scan.pdf", &len);
    expect_error("application/pdf", text, len, 422, "no_text",
                 "pdf: a scan");
    expect_error("application/pdf", text, len / 2, 400, "invalid_document",
                 "pdf: cut in half");
    free(text);

    text = read_file("t/data/sources/report.pdf", &len);
    text[len / 3] ^= 0x55;
    text[len / 2] ^= 0x55;
    memset(text + 200, 'x', 400);
    ok(extract("application/pdf", text, len, &doc, &err) == 0
       || err.status == 400 || err.status == 422,
       "pdf: damaged bytes: a document or a 4xx");
    pg_source_doc_free(&doc);
    free(text);

    expect_error("application/pdf", "not a pdf", 9, 400, "invalid_document",
                 "pdf: not a PDF");

    pdf = pdf_pages(PG_SOURCE_PAGES_MAX + 1, &len);
    expect_error("application/pdf", pdf, len, 400, "invalid_document",
                 "pdf: more pages than allowed");
    free(pdf);

    pdf = pdf_pages(50, &len);
    expect_error("application/pdf", pdf, len, 422, "no_text",
                 "pdf: 50 empty pages");
    free(pdf);
}


static const char  *lookup_json;

static int
lookup(void *data, const char *id, const char **json, size_t *len)
{
    if (strcmp(id, "src_1") != 0) {
        return -1;
    }

    *json = lookup_json;
    *len = strlen(lookup_json);

    return 0;
}


static yajl_val
parse(const char *json)
{
    pg_error_t  err;
    yajl_val    v;

    v = pg_json_parse_object(json, strlen(json), PG_JSON_MAX_DEPTH, &err);
    if (v == NULL) {
        printf("# cannot parse %s\n", json);
        exit(1);
    }

    return v;
}


static void
test_expand(void)
{
    int                   rc;
    pg_buf_t              b, out;
    yajl_val              tree, v;
    pg_error_t            err;
    pg_source_doc_t       doc;
    pg_script_request_t   req;

    memset(&b, 0, sizeof(pg_buf_t));
    memset(&out, 0, sizeof(pg_buf_t));

    if (extract_file("text/markdown", "t/data/sources/meeting.md", &doc)
        != 0)
    {
        ok(0, "expand: extracted");
        return;
    }

    pg_source_to_json(&doc, "src_1", "text/markdown", NULL, &b);
    pg_buf_append(&b, "", 1);
    lookup_json = (const char *) b.data;

    tree = parse("{\"source_ids\":[\"src_1\",\"src_1\"],\"style\":\"brief\","
                 "\"source_text\":\"And one more thing.\"}");
    rc = pg_source_expand(tree, 1 << 20, lookup, NULL, &out, &err);
    is_int(rc, 1, "expand: done");
    yajl_tree_free(tree);

    tree = rc == 1 ? pg_json_parse_object((char *) out.data, out.len,
                                          PG_JSON_MAX_DEPTH, &err) : NULL;
    v = tree ? pg_json_get(tree, "style") : NULL;
    ok(tree && pg_json_get(tree, "source_ids") == NULL
       && v && YAJL_IS_STRING(v) && v->u.string
       && strcmp(v->u.string, "brief") == 0,
       "expand: source_ids gone, other fields kept");

    if (tree && pg_script_request_from_json(tree, 1 << 20, &req, &err) == 0) {
        is_str(req.source_title, "Harbour Project: Weekly Sync",
               "expand: the first source's title is the request's");
        ok(strstr(req.source_text, "Book the crane for week 48.") != NULL
           && strstr(req.source_text, "And one more thing.") != NULL
           && strstr(req.source_text, "Agenda") == NULL
           && strstr(req.source_text, "#") == NULL,
           "expand: the sources' texts, then source_text, no titles read");
        pg_script_request_free(&req);

    } else {
        ok(0, "expand: the new request parses");
    }

    if (tree) {
        yajl_tree_free(tree);
    }

    tree = parse("{\"source_ids\":[\"src_1\",\"src_2\"]}");
    rc = pg_source_expand(tree, 1 << 20, lookup, NULL, &out, &err);
    ok(rc == -1 && err.status == 404 && strcmp(err.param, "source_ids[1]") == 0,
       "expand: an unknown id: 404 source_ids[1]");
    yajl_tree_free(tree);

    tree = parse("{\"source_ids\":[\"src_1\"]}");
    rc = pg_source_expand(tree, 100, lookup, NULL, &out, &err);
    ok(rc == -1 && strcmp(err.code, "string_above_max_length") == 0,
       "expand: past max_source");
    yajl_tree_free(tree);

    tree = parse("{\"topic\":\"x\"}");
    is_int(pg_source_expand(tree, 0, lookup, NULL, &out, &err), 0,
           "expand: no source_ids, nothing to do");
    yajl_tree_free(tree);

    pg_buf_free(&out);
    pg_buf_free(&b);
    pg_source_doc_free(&doc);
}


int
main(void)
{
    test_meeting();
    test_article();
    test_readme();
    test_inline();
    test_errors();
    test_html();
    test_pdf();
    test_json();
    test_script_source();
    test_expand();
    test_big();

    return done_testing();
}
