/*
 * podgen core: text normalization and sentence splitting for TTS.
 *
 * Everything here is O(n) in the input and never reads out of bounds, even
 * on invalid UTF-8 or on text that was not normalized: the HTTP side
 * validates its input, but these functions are the last line of defence in
 * front of flite.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg_text.h"


#define PG_TEXT_NO_LIMIT  ((size_t) -1)


/* Output of the normalizer: a growable string plus the whitespace state. */
typedef struct {
    char      *data;
    size_t     len;
    size_t     cap;

    unsigned   failed:1;       /* out of memory */
    unsigned   space:1;        /* whitespace is pending */
    unsigned   word:1;         /* last text was a spoken symbol ("percent") */
    unsigned   line_first:1;   /* the first token of a line is being output */
    unsigned   newlines:2;     /* newlines pending, saturates at 2 */

    size_t     line_start;     /* where the current line's text starts */
    size_t     line_sep;       /* the " " a single newline became, or -1 */
} pg_text_out_t;


/* State of the splitter. */
typedef struct {
    const unsigned char  *text;
    size_t                len;
    size_t                max_len;
    size_t                first_max;

    pg_span_t            *spans;
    size_t                nspans;
    size_t                cap;
    size_t                last_alnum;   /* alnum count of spans[nspans - 1] */
    int                   failed;
} pg_text_split_t;


static size_t pg_utf8_decode(const unsigned char *p, size_t len,
    uint32_t *cp);

static void pg_text_out_grow(pg_text_out_t *o, size_t extra);
static void pg_text_out_line_first(pg_text_out_t *o);
static void pg_text_out_char(pg_text_out_t *o, unsigned char c);
static void pg_text_out_str(pg_text_out_t *o, const char *s);
static void pg_text_out_ascii(pg_text_out_t *o, unsigned char c);
static void pg_text_out_code_point(pg_text_out_t *o, uint32_t cp);

static int pg_text_is_space(unsigned char c);
static int pg_text_is_alnum(unsigned char c);
static int pg_text_is_alpha(unsigned char c);
static int pg_text_is_digit(unsigned char c);
static int pg_text_is_closer(unsigned char c);
static int pg_text_no_break(const unsigned char *t, size_t start, size_t dot,
    size_t next, size_t len);
static int pg_text_is_abbreviation(const unsigned char *w, size_t n,
    int number_follows);
static void pg_text_sentence(pg_text_split_t *sp, size_t start, size_t end);
static size_t pg_text_cut(const unsigned char *t, size_t start,
    size_t limit);
static void pg_text_piece(pg_text_split_t *sp, size_t start, size_t end);


/*
 * Latin-1 supplement, U+00A0..U+00FF.  A leading space marks a symbol that
 * is spoken as a word ("5£" -> "5 pounds"); "" drops the character without
 * a trace (the soft hyphen sits inside words).
 */
static const char  *pg_text_latin1[96] = {
    " ", " ", " cents", " pounds", " ", " yen", " ", " section",      /* A0 */
    " ", " copyright", "a", "\"", " ", "", " ", " ",                  /* A8 */
    " degrees", " plus or minus", "2", "3", "'", "u", " ", " ",       /* B0 */
    " ", "1", "o", "\"", " 1/4", " 1/2", " 3/4", " ",                 /* B8 */
    "A", "A", "A", "A", "A", "A", "AE", "C",                          /* C0 */
    "E", "E", "E", "E", "I", "I", "I", "I",                           /* C8 */
    "D", "N", "O", "O", "O", "O", "O", " times",                      /* D0 */
    "O", "U", "U", "U", "U", "Y", "Th", "ss",                         /* D8 */
    "a", "a", "a", "a", "a", "a", "ae", "c",                          /* E0 */
    "e", "e", "e", "e", "i", "i", "i", "i",                           /* E8 */
    "d", "n", "o", "o", "o", "o", "o", " divided by",                 /* F0 */
    "o", "u", "u", "u", "u", "y", "th", "y"                           /* F8 */
};


/* Latin Extended-A, U+0100..U+017F: the base letter, '*' when it is two. */
static const char  pg_text_latin_a[] =
    "AaAaAaCcCcCcCcDd"      /* 0100 */
    "DdEeEeEeEeEeGgGg"      /* 0110 */
    "GgGgHhHhIiIiIiIi"      /* 0120 */
    "Ii**JjKkkLlLlLlL"      /* 0130 */
    "lLlNnNnNnnNnOoOo"      /* 0140 */
    "Oo**RrRrRrSsSsSs"      /* 0150 */
    "SsTtTtTtUuUuUuUu"      /* 0160 */
    "UuUuWwYyYZzZzZzs";     /* 0170 */


/*
 * Abbreviations after which a "." does not end a sentence, lower case.
 * The ones marked with a "#" only count before a number: "No. 5" but
 * "I said no. Then I left."  Dotted ones ("e.g.", "U.S.") and single
 * capitals ("J. R. R. Tolkien") are recognized by their shape.
 */
static const char  *pg_text_abbreviations[] = {
    "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "ft",
    "vs", "etc", "inc", "ltd", "co", "corp", "bros", "dept", "univ",
    "gen", "col", "capt", "lt", "sgt", "rev", "hon", "gov", "sen", "rep",
    "ave", "blvd", "rd", "approx", "est", "cf", "al", "viz", "ca",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec",
    "#no", "#nos", "#fig", "#figs", "#vol", "#ch", "#pp", "#p", "#s",
    "#ss", "#sec", "#art", "#para", "#eq", "#nr", "#pt", "#pg", "#ed",
    NULL
};


int
pg_utf8_valid(const char *s, size_t len)
{
    size_t                n;
    uint32_t              cp;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {

        if (*p < 0x80) {
            p++;
            continue;
        }

        n = pg_utf8_decode(p, (size_t) (end - p), &cp);
        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


size_t
pg_utf8_length(const char *s, size_t len)
{
    size_t                n, count;
    uint32_t              cp;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;
    count = 0;

    while (p < end) {
        n = pg_utf8_decode(p, (size_t) (end - p), &cp);

        /* an invalid byte counts as one (replacement) character */
        p += n ? n : 1;
        count++;
    }

    return count;
}


/*
 * Decodes one code point, returns its length in bytes, or 0 when p does not
 * start a valid sequence (RFC 3629: the second byte ranges rule out
 * overlongs, surrogates and code points above U+10FFFF).
 */
static size_t
pg_utf8_decode(const unsigned char *p, size_t len, uint32_t *cp)
{
    size_t         n, i;
    unsigned char  c, lo, hi;

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        *cp = c & 0x1f;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        *cp = c & 0x0f;

        if (c == 0xe0) {
            lo = 0xa0;              /* overlong */

        } else if (c == 0xed) {
            hi = 0x9f;              /* surrogates */
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        *cp = c & 0x07;

        if (c == 0xf0) {
            lo = 0x90;              /* overlong */

        } else if (c == 0xf4) {
            hi = 0x8f;              /* above U+10FFFF */
        }

    } else {
        /* a continuation byte, C0, C1 (always overlong) or F5..FF */
        return 0;
    }

    if (len < n) {
        return 0;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        *cp = (*cp << 6) | (p[i] & 0x3f);
    }

    return n;
}


char *
pg_text_normalize(const char *in, size_t len, size_t *out_len)
{
    size_t                n;
    uint32_t              cp;
    pg_text_out_t         o;
    const unsigned char  *p, *end;

    memset(&o, 0, sizeof(o));
    o.line_first = 1;
    o.line_sep = (size_t) -1;

    /* most text shrinks or stays the same; the buffer grows when not */
    pg_text_out_grow(&o, len < 64 ? 64 : len + len / 8);

    p = (const unsigned char *) in;
    end = p + len;

    while (p < end && !o.failed) {

        if (*p < 0x80) {

            if (*p == '\r' && p + 1 < end && p[1] == '\n') {
                /* CRLF is one newline */
                p++;
                continue;
            }

            pg_text_out_ascii(&o, *p);
            p++;
            continue;
        }

        n = pg_utf8_decode(p, (size_t) (end - p), &cp);

        if (n == 0) {
            /* invalid UTF-8: callers should not let it in, but be safe */
            o.space = 1;
            p++;
            continue;
        }

        pg_text_out_code_point(&o, cp);
        p += n;
    }

    /* pending whitespace is simply not output: the end is trimmed */

    if (!o.failed) {
        pg_text_out_grow(&o, 1);
    }

    if (o.failed) {
        free(o.data);
        return NULL;
    }

    o.data[o.len] = '\0';

    if (out_len) {
        *out_len = o.len;
    }

    return o.data;
}


/* Makes room for extra more bytes; sets o->failed when out of memory. */
static void
pg_text_out_grow(pg_text_out_t *o, size_t extra)
{
    char    *p;
    size_t   cap;

    if (o->failed || o->cap - o->len >= extra) {
        return;
    }

    if (extra > ((size_t) -1) / 4 - o->len) {
        o->failed = 1;
        return;
    }

    cap = o->cap ? o->cap : 64;

    while (cap - o->len < extra) {
        cap *= 2;
    }

    p = realloc(o->data, cap);
    if (p == NULL) {
        o->failed = 1;
        return;
    }

    o->data = p;
    o->cap = cap;
}


/*
 * Called when the first token of a line is complete.  A line that starts
 * with a bullet ("- ", "* ", "1. ") is a new sentence, so the space a
 * single newline became is turned back into a newline.  flite reads "*"
 * as "asterisk", hence a "*" bullet becomes "-".
 */
static void
pg_text_out_line_first(pg_text_out_t *o)
{
    size_t       n, i;
    int          bullet;
    const char  *t;

    o->line_first = 0;

    t = o->data + o->line_start;
    n = o->len - o->line_start;
    bullet = 0;

    if (n == 1 && (t[0] == '-' || t[0] == '*')) {
        bullet = 1;

        if (t[0] == '*') {
            o->data[o->line_start] = '-';
        }

    } else if (n >= 2 && n <= 4 && (t[n - 1] == '.' || t[n - 1] == ')')) {
        bullet = 1;

        for (i = 0; i < n - 1; i++) {
            if (!pg_text_is_digit((unsigned char) t[i])) {
                bullet = 0;
                break;
            }
        }
    }

    if (bullet && o->line_sep != (size_t) -1) {
        o->data[o->line_sep] = '\n';
    }
}


/* Outputs one printable non-space character after pending whitespace. */
static void
pg_text_out_char(pg_text_out_t *o, unsigned char c)
{
    pg_text_out_grow(o, 2);

    if (o->failed) {
        return;
    }

    if (o->len == 0) {
        /* leading whitespace is trimmed */
        o->newlines = 0;
        o->space = 0;

    } else if (o->newlines || o->space) {

        if (o->line_first) {
            pg_text_out_line_first(o);
        }

        if (o->newlines >= 2) {
            /* a blank line: a paragraph break */
            o->data[o->len++] = '\n';
            o->line_first = 1;
            o->line_start = o->len;
            o->line_sep = (size_t) -1;

        } else {
            o->data[o->len++] = ' ';

            if (o->newlines == 1) {
                o->line_first = 1;
                o->line_start = o->len;
                o->line_sep = o->len - 1;
            }
        }

        o->newlines = 0;
        o->space = 0;

    } else if (o->word && pg_text_is_alnum(c)) {
        /* "%5" -> "percent 5", not "percent5" */
        o->data[o->len++] = ' ';
    }

    o->data[o->len++] = (char) c;
    o->word = 0;
}


/*
 * Outputs a replacement: ' ' is whitespace, '\n' a newline.  One that
 * starts with a space is a word standing for a symbol and must be kept
 * apart from a following letter or digit.
 */
static void
pg_text_out_str(pg_text_out_t *o, const char *s)
{
    const char  *p;

    for (p = s; *p; p++) {

        if (*p == ' ') {
            o->space = 1;

        } else if (*p == '\n') {
            if (o->newlines < 2) {
                o->newlines++;
            }

        } else {
            pg_text_out_char(o, (unsigned char) *p);
        }
    }

    if (s[0] == ' ' && s[1] != '\0') {
        o->word = 1;
    }
}


static void
pg_text_out_ascii(pg_text_out_t *o, unsigned char c)
{
    switch (c) {

    case '\n':
    case '\r':
        /* a lone CR is an old Mac newline; CRLF was folded before */
        pg_text_out_str(o, "\n");
        return;

    case '&':
        pg_text_out_str(o, " and");
        return;

    case '%':
        pg_text_out_str(o, " percent");
        return;

    case '@':
        pg_text_out_str(o, " at");
        return;

    default:
        break;
    }

    if (c <= ' ' || c >= 0x7f) {
        /* space, tab, NUL and other control characters */
        o->space = 1;
        return;
    }

    pg_text_out_char(o, c);
}


static void
pg_text_out_code_point(pg_text_out_t *o, uint32_t cp)
{
    char         two[3];
    const char  *s;

    if (cp < 0x80) {
        pg_text_out_ascii(o, (unsigned char) cp);
        return;
    }

    if (cp < 0xa0) {
        /* C1 controls; NEL is a newline */
        pg_text_out_str(o, cp == 0x85 ? "\n" : " ");
        return;
    }

    if (cp < 0x100) {
        pg_text_out_str(o, pg_text_latin1[cp - 0xa0]);
        return;
    }

    if (cp < 0x180) {
        two[0] = pg_text_latin_a[cp - 0x100];
        two[1] = '\0';

        if (two[0] == '*') {
            /* the ligatures IJ ij OE oe */
            two[0] = cp >= 0x150 ? 'O' : 'I';
            two[1] = cp >= 0x150 ? 'E' : 'J';
            two[2] = '\0';

            if (cp & 1) {
                two[0] += 'a' - 'A';
                two[1] += 'a' - 'A';
            }
        }

        pg_text_out_str(o, two);
        return;
    }

    if (cp >= 0xff01 && cp <= 0xff5e) {
        /* fullwidth ASCII */
        pg_text_out_ascii(o, (unsigned char) (cp - 0xfee0));
        return;
    }

    if (cp >= 0x2000 && cp <= 0x200a) {
        /* en quad .. hair space */
        o->space = 1;
        return;
    }

    if ((cp >= 0x0300 && cp <= 0x036f) || (cp >= 0xfe00 && cp <= 0xfe0f)) {
        /* combining marks and variation selectors: "e\u0301" is "e" */
        return;
    }

    switch (cp) {

    /* invisible: zero width (non-)joiners and spaces, marks, BOM */
    case 0x200b: case 0x200c: case 0x200d: case 0x200e: case 0x200f:
    case 0x2060: case 0xfeff:
        return;

    /* Latin Extended-B that shows up in European names */
    case 0x0192: s = "f"; break;
    case 0x0218: s = "S"; break;
    case 0x0219: s = "s"; break;
    case 0x021a: s = "T"; break;
    case 0x021b: s = "t"; break;

    /* hyphens and dashes: ranges keep "-", breaks in a phrase get spaces */
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2212:
        s = "-";
        break;

    case 0x2014: case 0x2015:
        s = " - ";
        break;

    case 0x2018: case 0x2019: case 0x201a: case 0x201b:
    case 0x2032: case 0x2039: case 0x203a:
        s = "'";
        break;

    case 0x201c: case 0x201d: case 0x201e: case 0x201f: case 0x2033:
        s = "\"";
        break;

    /* bullets */
    case 0x2022: case 0x2023: case 0x2043: case 0x2219: case 0x25aa:
    case 0x25cf: case 0x25e6:
        s = "-";
        break;

    case 0x2024: s = "."; break;
    case 0x2025: s = ".."; break;
    case 0x2026: s = "..."; break;
    case 0x203c: s = "!!"; break;
    case 0x2047: s = "??"; break;
    case 0x2048: s = "?!"; break;
    case 0x2049: s = "!?"; break;
    case 0x2044: s = "/"; break;
    case 0x2030: s = " per mille"; break;

    case 0x2028: s = "\n"; break;         /* line separator */
    case 0x2029: s = "\n\n"; break;       /* paragraph separator */
    case 0x202f: case 0x205f: case 0x3000:
        s = " ";
        break;

    case 0x20ac: s = " euros"; break;
    case 0x20a4: s = " pounds"; break;
    case 0x20b9: s = " rupees"; break;

    default:
        /* CJK, emoji, other scripts, symbols: nothing flite can say */
        s = " ";
        break;
    }

    pg_text_out_str(o, s);
}


long
pg_text_split(const char *text, size_t len, size_t max_len,
    size_t first_max, pg_span_t **spans)
{
    size_t                i, j, run, start;
    pg_text_split_t       sp;
    const unsigned char  *t;

    *spans = NULL;

    /* a limit of 0 means "no limit"; the first chunk is never longer */
    if (max_len == 0) {
        max_len = PG_TEXT_NO_LIMIT;
    }

    if (first_max == 0 || first_max > max_len) {
        first_max = max_len;
    }

    memset(&sp, 0, sizeof(sp));
    sp.text = (const unsigned char *) text;
    sp.len = len;
    sp.max_len = max_len;
    sp.first_max = first_max;

    t = sp.text;
    start = 0;
    i = 0;

    while (i < len && !sp.failed) {

        if (i == start && t[i] != '\n' && pg_text_is_space(t[i])) {
            /*
             * A sentence starts at its first non-space: pg_text_no_break()
             * looks at the start of the sentence for every dot, and must
             * not walk over the same spaces again and again.
             */
            start++;
            i++;
            continue;
        }

        if (t[i] == '\n') {
            pg_text_sentence(&sp, start, i);
            start = i + 1;
            i++;
            continue;
        }

        if (t[i] != '.' && t[i] != '!' && t[i] != '?') {
            i++;
            continue;
        }

        /* a run like "?!" or "...", then closing quotes or brackets */

        for (j = i; j < len && (t[j] == '.' || t[j] == '!' || t[j] == '?');
             j++)
        {
            /* void */
        }

        run = j - i;

        while (j < len && pg_text_is_closer(t[j])) {
            j++;
        }

        if ((j == len || pg_text_is_space(t[j]))
            && !(run == 1 && t[i] == '.'
                 && pg_text_no_break(t, start, i, j, len)))
        {
            pg_text_sentence(&sp, start, j);
            start = j;
        }

        i = j;
    }

    if (!sp.failed) {
        pg_text_sentence(&sp, start, len);
    }

    if (sp.failed) {
        free(sp.spans);
        return -1;
    }

    if (sp.nspans == 0) {
        free(sp.spans);
        return 0;
    }

    *spans = sp.spans;

    return (long) sp.nspans;
}


static int
pg_text_is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}


/* ASCII only: the C library's versions depend on the locale */
static int
pg_text_is_alnum(unsigned char c)
{
    return pg_text_is_alpha(c) || pg_text_is_digit(c);
}


static int
pg_text_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}


static int
pg_text_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}


static int
pg_text_is_closer(unsigned char c)
{
    return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}';
}


/*
 * A single "." at t[dot] is followed by whitespace at t[next] (or the end);
 * returns 1 when it nevertheless does not end the sentence that started at
 * t[start]: after an abbreviation, an initial or a list number.
 */
static int
pg_text_no_break(const unsigned char *t, size_t start, size_t dot,
    size_t next, size_t len)
{
    size_t  w, n, i;
    int     dotted, number_follows;

    /*
     * "1. Buy milk", "a. First point": a list number or letter that is all
     * the sentence has so far (which starts with no spaces)
     */

    i = start;
    n = dot - start;

    if (n == 1 && pg_text_is_alpha(t[i])) {
        return 1;
    }

    if (n >= 1 && n <= 3) {

        while (i < dot && pg_text_is_digit(t[i])) {
            i++;
        }

        if (i == dot) {
            return 1;
        }
    }

    /* the word before the dot: letters and inner dots, bounded look-back */

    for (w = dot; w > start && dot - w < 16; w--) {
        if (!pg_text_is_alpha(t[w - 1]) && t[w - 1] != '.') {
            break;
        }
    }

    n = dot - w;

    if (n == 0 || t[w] == '.'
        || (w > start && (pg_text_is_alnum(t[w - 1]) || t[w - 1] == '.')))
    {
        /*
         * no word, too long for an abbreviation, glued to a number, or
         * not a plain word ("...Mr.")
         */
        return 0;
    }

    if (n == 1 && t[w] >= 'A' && t[w] <= 'Z') {
        /* an initial: "J. R. R. Tolkien" */
        return 1;
    }

    /* single letters joined by dots: "e.g", "i.e", "U.S", "a.m", "U.S.A" */

    dotted = (n >= 3 && n % 2 == 1);

    for (i = 0; i < n && dotted; i++) {
        if (i % 2 == 0 ? !pg_text_is_alpha(t[w + i]) : t[w + i] != '.') {
            dotted = 0;
        }
    }

    if (dotted) {
        return 1;
    }

    while (next < len && pg_text_is_space(t[next])) {
        next++;
    }

    number_follows = (next < len && pg_text_is_digit(t[next]));

    return pg_text_is_abbreviation(t + w, n, number_follows);
}


static int
pg_text_is_abbreviation(const unsigned char *w, size_t n, int number_follows)
{
    size_t          i;
    const char    **a, *s;
    unsigned char   c;

    for (a = pg_text_abbreviations; *a; a++) {
        s = *a;

        if (*s == '#') {
            if (!number_follows) {
                continue;
            }

            s++;
        }

        for (i = 0; i < n && s[i]; i++) {
            c = w[i];

            if (c >= 'A' && c <= 'Z') {
                c += 'a' - 'A';
            }

            if (c != (unsigned char) s[i]) {
                break;
            }
        }

        if (i == n && s[i] == '\0') {
            return 1;
        }
    }

    return 0;
}


/*
 * A sentence t[start..end): trimmed, cut into pieces no longer than the
 * limit, pieces passed on.
 */
static void
pg_text_sentence(pg_text_split_t *sp, size_t start, size_t end)
{
    size_t                cut, last, limit;
    const unsigned char  *t;

    t = sp->text;

    while (end > start && pg_text_is_space(t[end - 1])) {
        end--;
    }

    for ( ;; ) {

        while (start < end && pg_text_is_space(t[start])) {
            start++;
        }

        if (start == end || sp->failed) {
            return;
        }

        limit = sp->nspans == 0 ? sp->first_max : sp->max_len;

        if (end - start <= limit) {
            pg_text_piece(sp, start, end);
            return;
        }

        cut = pg_text_cut(t, start, limit);

        /* text that was not normalized may have more spaces before a cut */

        for (last = cut; pg_text_is_space(t[last - 1]); last--) {
            /* void: t[start] is not a space */
        }

        pg_text_piece(sp, start, last);
        start = cut;
    }
}


/*
 * Where to cut a sentence at t[start] that is longer than limit: after the
 * last ", ; :" followed by a space, else at the last space, else hard at
 * the limit, but not inside a UTF-8 sequence if that can be helped.  The
 * piece t[start..cut) is never empty and never longer than limit; t[cut]
 * is still inside the sentence.
 */
static size_t
pg_text_cut(const unsigned char *t, size_t start, size_t limit)
{
    size_t  i, last, space;

    last = start + limit;           /* the piece ends at last at the latest */
    space = 0;

    /*
     * Backwards, so the scan stops at the first punctuation found; the
     * bytes after it are the next piece, which is then long, and so the
     * total work stays linear.
     */

    for (i = last; i > start; i--) {

        if ((t[i - 1] == ',' || t[i - 1] == ';' || t[i - 1] == ':')
            && pg_text_is_space(t[i]))
        {
            return i;
        }

        if (space == 0 && pg_text_is_space(t[i])) {
            space = i;
        }
    }

    if (space) {
        return space;
    }

    /* a UTF-8 sequence is at most 4 bytes: back up at most 3 */

    for (i = last; i > start && last - i < 3 && (t[i] & 0xc0) == 0x80; i--) {
        /* void */
    }

    if (i > start && (t[i] & 0xc0) != 0x80) {
        return i;
    }

    return last;
}


/*
 * A piece t[start..end) without surrounding spaces: dropped when there is
 * nothing to say in it, merged with the previous one when either of them
 * has fewer than 2 letters or digits and the result is not too long,
 * otherwise a span of its own.
 */
static void
pg_text_piece(pg_text_split_t *sp, size_t start, size_t end)
{
    size_t      i, alnum, limit, cap;
    pg_span_t  *last, *p;

    alnum = 0;

    for (i = start; i < end; i++) {
        alnum += (size_t) pg_text_is_alnum(sp->text[i]);
    }

    if (alnum == 0) {
        return;
    }

    if (sp->nspans) {
        last = &sp->spans[sp->nspans - 1];
        limit = sp->nspans == 1 ? sp->first_max : sp->max_len;

        if ((alnum < 2 || sp->last_alnum < 2) && end - last->off <= limit) {
            last->len = end - last->off;
            sp->last_alnum += alnum;
            return;
        }
    }

    if (sp->nspans == sp->cap) {
        cap = sp->cap ? sp->cap * 2 : 16;

        if (cap > ((size_t) -1) / sizeof(pg_span_t)) {
            sp->failed = 1;
            return;
        }

        p = realloc(sp->spans, cap * sizeof(pg_span_t));
        if (p == NULL) {
            sp->failed = 1;
            return;
        }

        sp->spans = p;
        sp->cap = cap;
    }

    sp->spans[sp->nspans].off = start;
    sp->spans[sp->nspans].len = end - start;
    sp->nspans++;
    sp->last_alnum = alnum;
}
