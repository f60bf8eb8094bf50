/*
 * libFuzzer target for lib/pg_text.c: validate -> normalize -> split, and
 * the promises of each step checked; any violation aborts.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilib \
 *       lib/fuzz/fuzz_text.c lib/pg_text.c -o build/fuzz_text
 *   build/fuzz_text -max_len=4096 t/fuzz/text
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_text.h"


#define check(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_text: %s:%d: %s\n",                        \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


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


/*
 * A second, deliberately different UTF-8 decoder: computes the code point
 * and rejects it afterwards when it is overlong, a surrogate or too big.
 * Returns the number of code points, or -1 when s is not valid UTF-8.
 */
static long
reference_utf8(const unsigned char *s, size_t len)
{
    long      count;
    size_t    i, k, n;
    uint32_t  cp, min;

    count = 0;

    for (i = 0; i < len; i += n, count++) {

        if (s[i] < 0x80) {
            n = 1;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            n = 2; cp = s[i] & 0x1f; min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 3; cp = s[i] & 0x0f; min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 4; cp = s[i] & 0x07; min = 0x10000;

        } else {
            return -1;
        }

        if (len - i < n) {
            return -1;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return -1;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return -1;
        }
    }

    return count;
}


static void
check_normalized(size_t in_len, const char *out, size_t out_len)
{
    size_t         i;
    unsigned char  c, prev;

    check(out[out_len] == '\0');
    check(strlen(out) == out_len);
    check(out_len <= 10 * in_len + 16);
    check(pg_utf8_valid(out, out_len));

    prev = '\n';

    for (i = 0; i < out_len; i++) {
        c = (unsigned char) out[i];

        check(c == '\n' || (c >= 0x20 && c <= 0x7e));

        /* no leading, doubled or mixed whitespace */
        check(!((c == ' ' || c == '\n') && (prev == ' ' || prev == '\n')));

        prev = c;
    }

    /* no trailing whitespace */
    check(out_len == 0 || (prev != ' ' && prev != '\n'));
}


static void
check_split(const char *text, size_t len, size_t max_len, size_t first_max)
{
    long        n, i;
    size_t      end, limit, covered, alnum;
    pg_span_t  *spans, *s;

    spans = (pg_span_t *) &n;               /* must be overwritten */

    n = pg_text_split(text, len, max_len, first_max, &spans);

    if (n < 0) {
        /* out of memory: only possible under a malloc limit */
        check(spans == NULL);
        return;
    }

    if (n == 0) {
        check(spans == NULL);
        check(count_alnum(text, len) == 0);
        return;
    }

    check(spans != NULL);
    check((size_t) n <= len);

    end = 0;
    covered = 0;

    for (i = 0; i < n; i++) {
        s = &spans[i];

        limit = max_len ? max_len : (size_t) -1;

        if (i == 0 && first_max && first_max < limit) {
            limit = first_max;
        }

        check(s->off >= end);
        check(s->len > 0);
        check(s->len <= limit);
        check(s->off <= len && s->len <= len - s->off);
        check(!is_space((unsigned char) text[s->off]));
        check(!is_space((unsigned char) text[s->off + s->len - 1]));

        alnum = count_alnum(text + s->off, s->len);
        check(alnum > 0);

        covered += alnum;
        end = s->off + s->len;
    }

    /* every letter and digit is in exactly one span */
    check(covered == count_alnum(text, len));

    free(spans);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        *out, *again;
    long         ref;
    size_t       out_len, again_len, i;
    const char  *in;

    static const size_t  limits[][2] = {
        { 200, 80 }, { 400, 400 }, { 40, 12 }, { 7, 3 }, { 1, 1 }, { 0, 0 },
        { 10, 50 }
    };

    in = (const char *) data;

    ref = reference_utf8(data, size);

    check(pg_utf8_valid(in, size) == (ref >= 0));

    if (ref >= 0) {
        check(pg_utf8_length(in, size) == (size_t) ref);
    }

    /* the normalizer promises to cope with invalid UTF-8 too */

    out = pg_text_normalize(in, size, &out_len);
    check(out != NULL);

    check_normalized(size, out, out_len);

    /*
     * Normalized text is stable under normalization, except that a "\n"
     * that was a paragraph break is a single newline now, hence a space.
     */

    again = pg_text_normalize(out, out_len, &again_len);
    check(again != NULL);
    check(again_len == out_len);

    for (i = 0; i < out_len; i++) {
        check(again[i] == out[i] || (out[i] == '\n' && again[i] == ' '));
    }

    free(again);

    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        check_split(out, out_len, limits[i][0], limits[i][1]);
    }

    free(out);

    /* and the splitter must survive text that was never normalized */

    check_split(in, size, 200, 80);
    check_split(in, size, 5, 2);

    return 0;
}
