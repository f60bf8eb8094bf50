/*
 * Unit tests of lib/pg_text.c: UTF-8 validation, normalization for flite
 * and sentence splitting.  Needs pg_text.c only.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_text.h"
#include "unit.h"


#define LEN(s)  (sizeof(s) - 1)


static uint64_t  rng_state = 0x9e3779b97f4a7c15ULL;


static uint64_t
rng_next(void)
{
    /* xorshift64: fixed seed, so every run sees the same "random" bytes */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;

    return rng_state;
}


static int
is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}


static int
is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}


static size_t
count_alnum(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        n += is_alnum((unsigned char) s[i]);
    }

    return n;
}


static void
normalizes(const char *in, size_t len, const char *want, const char *name)
{
    char    *out;
    size_t   out_len;

    out_len = (size_t) -1;
    out = pg_text_normalize(in, len, &out_len);

    is_str(out, want, "normalize: %s", name);

    if (out && out_len != strlen(out)) {
        ok(0, "normalize: %s: length %zu", name, out_len);
    }

    free(out);
}

#define norm_is(in, want, name)  normalizes(in, LEN(in), want, name)


/*
 * The normalizer's promises: printable ASCII and "\n" only, whitespace
 * collapsed and trimmed, bounded growth.  Returns 1 when kept.
 */
static int
normalized_ok(const char *in, size_t len, const char *out, size_t out_len)
{
    size_t         i;
    unsigned char  c, prev;

    if (out == NULL || strlen(out) != out_len || out_len > 10 * len + 16) {
        return 0;
    }

    if (!pg_utf8_valid(out, out_len)) {
        return 0;
    }

    prev = '\n';

    for (i = 0; i < out_len; i++) {
        c = (unsigned char) out[i];

        if (c != '\n' && (c < 0x20 || c > 0x7e)) {
            return 0;
        }

        if ((c == ' ' || c == '\n') && (prev == ' ' || prev == '\n')) {
            /* a leading, doubled or mixed whitespace */
            return 0;
        }

        prev = c;
    }

    return prev != ' ' && prev != '\n' ? 1 : out_len == 0;
}


/*
 * The splitter's promises: spans in order, not overlapping, trimmed, no
 * longer than the limit, each with something to say, and every letter or
 * digit of the text in exactly one of them.
 */
static int
split_ok(const char *text, size_t len, size_t max_len, size_t first_max,
    long *count)
{
    long        n, i;
    size_t      end, limit, covered;
    pg_span_t  *spans, *s;

    n = pg_text_split(text, len, max_len, first_max, &spans);

    if (count) {
        *count = n;
    }

    if (n < 0) {
        return 0;
    }

    if (n == 0) {
        return spans == NULL && count_alnum(text, len) == 0;
    }

    end = 0;
    covered = 0;

    for (i = 0; i < n; i++) {
        s = &spans[i];
        limit = max_len ? max_len : (size_t) -1;

        if (i == 0 && first_max && first_max < limit) {
            limit = first_max;
        }

        if (s->off < end || s->len == 0 || s->len > limit
            || s->off + s->len > len
            || is_space((unsigned char) text[s->off])
            || is_space((unsigned char) text[s->off + s->len - 1])
            || count_alnum(text + s->off, s->len) == 0)
        {
            printf("#   bad span %ld: off %zu len %zu (limit %zu): \"%.*s\"\n",
                   i, s->off, s->len, limit, (int) s->len, text + s->off);
            free(spans);
            return 0;
        }

        covered += count_alnum(text + s->off, s->len);
        end = s->off + s->len;
    }

    free(spans);

    return covered == count_alnum(text, len);
}


/* The chunks of text joined by "|", to compare as one string. */
static char *
split_join(const char *text, size_t max_len, size_t first_max)
{
    long        n, i;
    char       *out, *p;
    size_t      len;
    pg_span_t  *spans;

    len = strlen(text);
    n = pg_text_split(text, len, max_len, first_max, &spans);

    if (n < 0) {
        return NULL;
    }

    out = malloc(len + n + 1);
    if (out == NULL) {
        free(spans);
        return NULL;
    }

    p = out;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = '|';
        }

        memcpy(p, text + spans[i].off, spans[i].len);
        p += spans[i].len;
    }

    *p = '\0';
    free(spans);

    return out;
}


static void
splits(const char *text, size_t max_len, size_t first_max, const char *want,
    const char *name)
{
    char  *got;

    got = split_join(text, max_len, first_max);
    is_str(got, want, "split: %s", name);
    ok(split_ok(text, strlen(text), max_len, first_max, NULL),
       "split: %s: invariants", name);
    free(got);
}


/* Normalizes, checks, splits with a few limits, checks. */
static void
hostile(const char *in, size_t len, const char *name)
{
    char     *out;
    size_t    out_len;
    clock_t   t0;

    t0 = clock();

    out = pg_text_normalize(in, len, &out_len);
    ok(normalized_ok(in, len, out, out_len), "%s: normalized", name);

    if (out) {
        ok(split_ok(out, out_len, 200, 80, NULL), "%s: split 200/80", name);
        ok(split_ok(out, out_len, 7, 3, NULL), "%s: split 7/3", name);
    }

    /* the splitter must also survive text that was never normalized */
    ok(split_ok(in, len, 50, 50, NULL), "%s: raw split 50", name);
    ok(split_ok(in, len, 1, 1, NULL), "%s: raw split 1", name);

    printf("#   %s: %zu bytes in %.2f s\n", name, len,
           (double) (clock() - t0) / CLOCKS_PER_SEC);

    free(out);
}


static void
test_utf8(void)
{
    ok(pg_utf8_valid("", 0), "utf8: empty");
    ok(pg_utf8_valid("hello", 5), "utf8: ascii");
    ok(pg_utf8_valid("a\0b", 3), "utf8: NUL is valid");
    ok(pg_utf8_valid("\xc3\xa9\xc3\x9f", 4), "utf8: 2 bytes");
    ok(pg_utf8_valid("\xe2\x82\xac", 3), "utf8: 3 bytes (euro)");
    ok(pg_utf8_valid("\xf0\x9f\x98\x80", 4), "utf8: 4 bytes (emoji)");
    ok(pg_utf8_valid("\xed\x9f\xbf", 3), "utf8: U+D7FF");
    ok(pg_utf8_valid("\xee\x80\x80", 3), "utf8: U+E000");
    ok(pg_utf8_valid("\xf4\x8f\xbf\xbf", 4), "utf8: U+10FFFF");
    ok(pg_utf8_valid("\xe0\xa0\x80", 3), "utf8: U+0800");
    ok(pg_utf8_valid("\xf0\x90\x80\x80", 4), "utf8: U+10000");

    ok(!pg_utf8_valid("\xc0\xaf", 2), "utf8: overlong C0 AF");
    ok(!pg_utf8_valid("\xc1\xbf", 2), "utf8: overlong C1 BF");
    ok(!pg_utf8_valid("\xe0\x80\xaf", 3), "utf8: overlong 3 bytes");
    ok(!pg_utf8_valid("\xe0\x9f\xbf", 3), "utf8: overlong U+07FF");
    ok(!pg_utf8_valid("\xf0\x80\x80\xaf", 4), "utf8: overlong 4 bytes");
    ok(!pg_utf8_valid("\xf0\x8f\xbf\xbf", 4), "utf8: overlong U+FFFF");
    ok(!pg_utf8_valid("\xed\xa0\x80", 3), "utf8: surrogate D800");
    ok(!pg_utf8_valid("\xed\xbf\xbf", 3), "utf8: surrogate DFFF");
    ok(!pg_utf8_valid("\xf4\x90\x80\x80", 4), "utf8: U+110000");
    ok(!pg_utf8_valid("\xf5\x80\x80\x80", 4), "utf8: F5 lead");
    ok(!pg_utf8_valid("\xff", 1), "utf8: FF");
    ok(!pg_utf8_valid("\x80", 1), "utf8: lone continuation");
    ok(!pg_utf8_valid("\xc3", 1), "utf8: truncated 2");
    ok(!pg_utf8_valid("\xe2\x82", 2), "utf8: truncated 3");
    ok(!pg_utf8_valid("\xf0\x9f\x98", 3), "utf8: truncated 4");
    ok(!pg_utf8_valid("abc\xe2", 4), "utf8: truncated at the end");
    ok(!pg_utf8_valid("\xc3\x28", 2), "utf8: bad continuation");
    ok(!pg_utf8_valid("\xe2\x82\xac\xe2\x28\xa1", 6), "utf8: bad after good");

    /* the length must not read past len even if the text goes on */
    ok(pg_utf8_valid("\xc3\xa9", 1) == 0, "utf8: len cuts a sequence");

    is_int(pg_utf8_length("", 0), 0, "utf8 length: empty");
    is_int(pg_utf8_length("abc", 3), 3, "utf8 length: ascii");
    is_int(pg_utf8_length("h\xc3\xa9llo \xe2\x82\xac\xf0\x9f\x98\x80", 14),
           8, "utf8 length: mixed");
    is_int(pg_utf8_length("a\0b", 3), 3, "utf8 length: NUL counts");
}


static void
test_normalize(void)
{
    char    *out;
    size_t   out_len;

    norm_is("\xe2\x80\x9cHello\xe2\x80\x9d \xe2\x80\x94 she said\xe2\x80\xa6",
            "\"Hello\" - she said...", "the example");

    /* letters */
    norm_is("Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e", "Creme brulee", "accents");
    norm_is("na\xc3\xafve fa\xc3\xa7" "ade", "naive facade", "diaeresis");
    norm_is("\xc3\xb1" "and\xc3\xba \xc3\x91", "nandu N", "n tilde");
    norm_is("\xc3\xbc\xc3\xb6\xc3\xa4 \xc3\x9c\xc3\x96\xc3\x84", "uoa UOA",
            "umlauts");
    norm_is("Stra\xc3\x9f" "e", "Strasse", "sharp s");
    norm_is("\xc3\xa6 \xc3\x86", "ae AE", "ae");
    norm_is("\xc3\xb8 \xc3\x98 \xc3\xa5", "o O a", "o slash, a ring");
    norm_is("\xc5\x93uvre \xc5\x92", "oeuvre OE", "oe");
    norm_is("\xc4\xb2ssel \xc4\xb3", "IJssel ij", "ij");
    norm_is("\xc5\x81\xc3\xb3" "d\xc5\xba", "Lodz", "Polish");
    norm_is("Dvo\xc5\x99\xc3\xa1k \xc5\xa0koda \xc5\xbd", "Dvorak Skoda Z",
            "Czech");
    norm_is("\xc4\x9e \xc4\xb1 \xc5\x9f", "G i s", "Turkish");
    norm_is("\xc8\x98\xc8\x9b", "St", "Romanian comma below");
    norm_is("\xc3\xb0\xc3\xbe \xc3\x9e", "dth Th", "eth thorn");
    norm_is("\xc3\xbf\xc3\xbd", "yy", "y");
    norm_is("e\xcc\x81t\xc3\xa9", "ete", "combining acute is dropped");
    norm_is("\xef\xbc\xa8\xef\xbd\x85\xef\xbd\x8c\xef\xbd\x8c\xef\xbd\x8f",
            "Hello", "fullwidth");

    /* symbols read as words */
    norm_is("Tom & Jerry", "Tom and Jerry", "ampersand");
    norm_is("R&D", "R and D", "ampersand glued");
    norm_is("50% off, 50%.", "50 percent off, 50 percent.", "percent");
    norm_is("\xe2\x82\xac" "5 or 5\xe2\x82\xac", "euros 5 or 5 euros", "euro");
    norm_is("\xc2\xa3" "3", "pounds 3", "pound");
    norm_is("bob@example.com", "bob at example.com", "at");
    norm_is("20\xc2\xb0" "C", "20 degrees C", "degrees");
    norm_is("3\xc3\x97" "4", "3 times 4", "times");
    norm_is("1\xc2\xbd cups", "1 1/2 cups", "one half");

    /* punctuation and spaces */
    norm_is("\xe2\x80\x98" "a\xe2\x80\x99 don\xe2\x80\x99t",
            "'a' don't", "single quotes");
    norm_is("\xe2\x80\x9e" "a\xe2\x80\x9c \xc2\xab" "b\xc2\xbb",
            "\"a\" \"b\"", "low and angle quotes");
    norm_is("1990\xe2\x80\x93" "2000", "1990-2000", "en dash");
    norm_is("yes\xe2\x80\x94no", "yes - no", "em dash");
    norm_is("wait\xe2\x80\xa6", "wait...", "ellipsis");
    norm_is("a\xc2\xa0" "b\xe2\x80\x89" "c\xe2\x80\xaf" "d\xe3\x80\x80" "e",
            "a b c d e", "nbsp, thin and other spaces");
    norm_is("co\xc2\xad" "operate", "cooperate", "soft hyphen");
    norm_is("\xef\xbb\xbfzero\xe2\x80\x8bwidth", "zerowidth", "BOM, ZWSP");
    norm_is("\xe2\x88\x92" "5", "-5", "minus sign");
    norm_is("ok\xe2\x80\xbc", "ok!!", "double exclamation");

    /* dropped */
    norm_is("a\xf0\x9f\x98\x80" "b", "a b", "emoji");
    norm_is("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "", "CJK only");
    norm_is("\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xef\xb8\x8f", "", "emoji only");
    norm_is("x \xce\xb1\xce\xb2 y", "x y", "greek");

    /* control characters and whitespace */
    norm_is("a\tb\x01" "c\x7f" "d", "a b c d", "controls");
    norm_is("a\0b", "a b", "NUL");
    norm_is("a\rb", "a b", "lone CR");
    norm_is("a\xffz\xc3", "a z", "invalid bytes");
    norm_is("\xed\xa0\x80x", "x", "surrogate bytes");
    norm_is("  a   b \t ", "a b", "collapse and trim");
    norm_is("a\nb", "a b", "single newline");
    norm_is("a\n\nb", "a\nb", "blank line");
    norm_is("a\n  \t\n\n\nb", "a\nb", "blank line with spaces");
    norm_is("a\r\n\r\nb\r\nc", "a\nb c", "CRLF");
    norm_is("a\xe2\x80\xa9" "b\xe2\x80\xa8" "c", "a\nb c",
            "paragraph and line separators");
    norm_is("\n\n  a\n\n", "a", "trim newlines");
    norm_is("", "", "empty");
    norm_is(" \t\r\n\n ", "", "whitespace only");

    /* bullets */
    norm_is("Items:\n- one\n* two\n\xe2\x80\xa2 three\n1. four\n12) five",
            "Items:\n- one\n- two\n- three\n1. four\n12) five", "bullets");
    norm_is("* first\nrest", "- first rest", "bullet at the start");
    norm_is("a\n-5 b", "a -5 b", "negative number is no bullet");
    norm_is("a\n2024. b", "a 2024. b", "a year is no bullet");
    norm_is("a\n1.5 l", "a 1.5 l", "a decimal is no bullet");
    norm_is("5 * 3", "5 * 3", "star inside a line stays");
    norm_is("a\n- b\nc", "a\n- b c", "bullet line continues");

    out = pg_text_normalize(NULL, 0, &out_len);
    ok(out != NULL && out_len == 0 && out[0] == '\0', "normalize: NULL, 0");
    free(out);
}


/* Every code point, in a word: the output stays clean ASCII. */
static void
test_code_points(void)
{
    char      in[8], *out;
    size_t    n, out_len, bad, letters;
    uint32_t  cp;

    bad = 0;
    letters = 0;

    for (cp = 0; cp <= 0x10ffff; cp++) {

        if (cp >= 0xd800 && cp <= 0xdfff) {
            continue;
        }

        in[0] = 'a';

        if (cp < 0x80) {
            in[1] = (char) cp;
            n = 2;

        } else if (cp < 0x800) {
            in[1] = (char) (0xc0 | (cp >> 6));
            in[2] = (char) (0x80 | (cp & 0x3f));
            n = 3;

        } else if (cp < 0x10000) {
            in[1] = (char) (0xe0 | (cp >> 12));
            in[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
            in[3] = (char) (0x80 | (cp & 0x3f));
            n = 4;

        } else {
            in[1] = (char) (0xf0 | (cp >> 18));
            in[2] = (char) (0x80 | ((cp >> 12) & 0x3f));
            in[3] = (char) (0x80 | ((cp >> 6) & 0x3f));
            in[4] = (char) (0x80 | (cp & 0x3f));
            n = 5;
        }

        in[n++] = 'b';

        if (!pg_utf8_valid(in, n) || pg_utf8_length(in, n) != 3) {
            bad++;
            continue;
        }

        out = pg_text_normalize(in, n, &out_len);

        if (!normalized_ok(in, n, out, out_len)) {
            printf("#   U+%04X\n", (unsigned) cp);
            bad++;
        }

        /* Latin letters become one or two ASCII letters, nothing else */

        if (((cp >= 0xc0 && cp < 0x180) && cp != 0xd7 && cp != 0xf7)
            && out && (out_len == 3 || out_len == 4)
            && count_alnum(out, out_len) == out_len)
        {
            letters++;
        }

        free(out);
    }

    is_int(bad, 0, "code points: every one normalizes cleanly");
    is_int(letters, 0x180 - 0xc0 - 2, "code points: Latin letters");
}


static void
test_split(void)
{
    static const char  *abbr[] = {
        "Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Sr.", "Jr.", "St.", "vs.",
        "etc.", "e.g.", "i.e.", "U.S.", "U.K.", "a.m.", "p.m.", "Inc.",
        "Ltd.", "Co.", "No.", "Fig.", "Jan.", "Feb.", "Mar.", "Apr.",
        "Jun.", "Jul.", "Aug.", "Sep.", "Sept.", "Oct.", "Nov.", "Dec.",
        NULL
    };

    char          buf[128], want[128];
    long          n;
    pg_span_t    *spans;
    const char  **a;

    splits("Hello there. How are you? Fine!", 200, 200,
           "Hello there.|How are you?|Fine!", "sentences");
    splits("Really?! Yes... ok then.", 200, 200,
           "Really?!|Yes...|ok then.", "punctuation runs");
    splits("\"Stop!\" He ran. (It was late.) Then 'so.' End", 200, 200,
           "\"Stop!\"|He ran.|(It was late.)|Then 'so.'|End",
           "closing quotes and brackets");
    splits("Title\nBody text here.", 200, 200, "Title|Body text here.",
           "newline");
    splits("Steps:\n1. Mix it.\n2. Bake it.", 200, 200,
           "Steps:|1. Mix it.|2. Bake it.", "numbered list");
    splits("Pi is 3.14 today. Get v1.2.3 now. It was 1999. Then.", 200, 200,
           "Pi is 3.14 today.|Get v1.2.3 now.|It was 1999.|Then.",
           "decimals, versions");
    splits("J. R. R. Tolkien wrote books. He died.", 200, 200,
           "J. R. R. Tolkien wrote books.|He died.", "initials");
    splits("Visit example.com. It works.", 200, 200,
           "Visit example.com.|It works.", "domain");
    splits("No. I said no. Then", 200, 200, "No.|I said no.|Then",
           "No. as a word");

    for (a = abbr; *a; a++) {
        snprintf(buf, sizeof(buf), "See %s 5 today. Then we left.", *a);
        snprintf(want, sizeof(want), "See %s 5 today.|Then we left.", *a);
        splits(buf, 200, 200, want, *a);
    }

    splits("Mr. Smith met Dr. Jones at 3 p.m. They talked.", 200, 200,
           "Mr. Smith met Dr. Jones at 3 p.m. They talked.",
           "abbreviations are never ends");

    /* long sentences */
    splits("one two three, four five six seven eight", 20, 20,
           "one two three,|four five six seven|eight", "cut at a comma");
    splits("aa bb; cc dd: ee ff gg", 12, 12, "aa bb;|cc dd:|ee ff gg",
           "cut at ; and :");
    splits("one two three four five six", 10, 10,
           "one two|three four|five six", "cut at spaces");
    splits("3,000,000 is a big number", 12, 12, "3,000,000 is|a big number",
           "no cut inside a number");
    splits("abcdefghijklmnop", 5, 5, "abcde|fghij|klmno|p", "hard cut");
    splits("Hello world, this is a test. Short one.", 200, 12,
           "Hello world,|this is a test.|Short one.", "first_max");
    splits("Hello world this is a test.", 20, 11,
           "Hello world|this is a test.", "first_max on a space");
    splits("Hello world this is a test.", 0, 0,
           "Hello world this is a test.", "no limit");
    splits("Hello world this is a test.", 11, 0,
           "Hello world|this is a|test.", "first_max 0 is max_len");
    splits("Hello world this is a test.", 11, 100,
           "Hello world|this is a|test.", "first_max above max_len");
    splits("ab\xc3\xa9" "cd", 3, 3, "ab|\xc3\xa9" "c|d",
           "no cut inside a UTF-8 sequence");

    /* tiny chunks */
    splits("Ok then. X! Yes it is.", 200, 200, "Ok then. X!|Yes it is.",
           "tiny into previous");
    splits("X! Then we go. Now.", 200, 200, "X! Then we go.|Now.",
           "first tiny into next");
    splits("One two. 7! Three four.", 200, 200, "One two. 7!|Three four.",
           "number merged");
    splits("One two. 7. Three four.", 200, 200, "One two.|7. Three four.",
           "list number");
    splits("Hello there. ... !!! Bye now.", 200, 200,
           "Hello there.|Bye now.", "punctuation only dropped");
    splits("abcdefghijklm. Z! abc.", 14, 14, "abcdefghijklm.|Z! abc.",
           "tiny into next when the previous is full");
    splits("abcdefghij. Z! abcdefghij.", 10, 10,
           "abcdefghij|Z!|abcdefghij", "tiny stays when nothing fits");

    spans = (pg_span_t *) buf;
    is_int(pg_text_split("", 0, 200, 200, &spans), 0, "split: empty");
    ok(spans == NULL, "split: empty sets spans to NULL");
    ok(split_ok("", 0, 200, 80, &n) && n == 0, "split: empty, no spans");
    ok(split_ok("   \n\n  ", 8, 200, 80, &n) && n == 0,
       "split: whitespace only");
    ok(split_ok("... ?! -- \"\"", 12, 200, 80, &n) && n == 0,
       "split: punctuation only");
    ok(split_ok("A", 1, 200, 80, &n) && n == 1, "split: one letter");
}


static void
test_hostile(void)
{
    char    *big, *out;
    size_t   i, n, out_len;

    n = 1024 * 1024;

    big = malloc(n);
    if (big == NULL) {
        ok(0, "hostile: malloc");
        return;
    }

    memset(big, 'a', n);
    hostile(big, n, "1 MB of one word");

    for (i = 0; i < n; i++) {
        big[i] = (i % 7 == 6) ? ' ' : 'a' + i % 26;
    }

    hostile(big, n, "1 MB of words, no punctuation");

    memset(big, '.', 100000);
    hostile(big, 100000, "100k dots");

    for (i = 0; i < 100000; i++) {
        big[i] = (i % 2) ? '.' : 'A';
    }

    hostile(big, 100000, "100k initials");

    for (i = 0; i < 100000; i++) {
        big[i] = (i % 3 == 2) ? ' ' : (i % 3 == 1 ? '.' : 'A');
    }

    hostile(big, 100000, "100k spaced initials");

    for (i = 0; i < 100000; i++) {
        big[i] = (i % 5 == 4) ? ' ' : (i % 2 ? '.' : '0' + i % 10);
    }

    hostile(big, 100000, "only numbers");

    for (i = 0; i + 4 <= 400000; i += 4) {
        memcpy(big + i, "\xf0\x9f\x98\x80", 4);
    }

    hostile(big, 400000, "all emoji");

    memset(big, 0, 100000);
    hostile(big, 100000, "NUL bytes");

    memset(big, '%', 100000);
    hostile(big, 100000, "100k percent signs");

    out = pg_text_normalize(big, 100000, &out_len);
    ok(out && out_len <= 8 * 100000, "hostile: percent growth %zu", out_len);
    free(out);

    memset(big, '\n', 100000);
    hostile(big, 100000, "100k newlines");

    for (i = 0; i < 100000; i++) {
        big[i] = "a\n- "[i % 4];
    }

    hostile(big, 100000, "100k bullets");

    for (i = 0; i < 100000; i++) {
        big[i] = "Mr, "[i % 4];
    }

    hostile(big, 100000, "100k commas");

    for (i = 0; i < n; i++) {
        big[i] = i < n / 2 ? ' ' : "E. "[i % 3];
    }

    hostile(big, n, "1 MB of spaces, then dots");

    for (i = 0; i < n; i++) {
        big[i] = (char) rng_next();
    }

    hostile(big, n, "1 MB of random bytes");

    /* many short random texts from a small alphabet that hits every rule */

    for (i = 0; i < 2000; i++) {
        static const char  alpha[] = "aZ9 .!?,;:\n\"')-*%&@\t\xc3\xa9\xe2\x80";
        size_t             j, m, max, first;
        char               txt[300];
        int                good;

        m = rng_next() % sizeof(txt);

        for (j = 0; j < m; j++) {
            txt[j] = alpha[rng_next() % (sizeof(alpha) - 1)];
        }

        max = rng_next() % 40;
        first = rng_next() % 40;

        out = pg_text_normalize(txt, m, &out_len);

        good = normalized_ok(txt, m, out, out_len)
               && split_ok(out, out_len, max, first, NULL)
               && split_ok(txt, m, max, first, NULL);

        free(out);

        if (!good) {
            ok(0, "hostile: random text %zu (max %zu, first %zu)",
               i, max, first);
            break;
        }
    }

    ok(i == 2000, "hostile: 2000 random short texts");

    free(big);
}


int
main(void)
{
    test_utf8();
    test_normalize();
    test_code_points();
    test_split();
    test_hostile();

    return done_testing();
}
