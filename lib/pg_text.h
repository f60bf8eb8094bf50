/*
 * podgen core: text normalization and sentence splitting for TTS
 * (plain C, no nginx).
 *
 * flite must never see hostile input (its error path longjmps through a
 * global jmp_buf), so every text goes through pg_text_normalize() first.
 */

#ifndef PG_TEXT_H
#define PG_TEXT_H

#include <stddef.h>


/* A piece of a text: [off, off + len). */
typedef struct {
    size_t  off;
    size_t  len;
} pg_span_t;


/*
 * Returns 1 when s[0..len) is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else 0.
 */
int pg_utf8_valid(const char *s, size_t len);

/* Number of code points of valid UTF-8 text. */
size_t pg_utf8_length(const char *s, size_t len);

/*
 * Turns valid UTF-8 into plain printable ASCII that flite reads well:
 *   - typographic quotes, dashes, ellipsis, bullets, NBSP and other spaces
 *     become their ASCII forms; Latin letters with diacritics lose them
 *     (é -> e, ß -> ss, æ -> ae); a few symbols become words (& -> and,
 *     % -> percent, € -> euros, £ -> pounds, @ -> at);
 *   - other code points (CJK, emoji, ...) and control characters are
 *     dropped or become a space;
 *   - runs of whitespace collapse to one space, a blank line (paragraph
 *     break) is kept as "\n";
 *   - leading/trailing whitespace is removed.
 * Returns a malloc'd NUL-terminated string (caller frees) and its length in
 * *out_len, or NULL when out of memory.  The result may be empty.
 */
char *pg_text_normalize(const char *in, size_t len, size_t *out_len);

/*
 * Splits normalized text into chunks to synthesize one by one, in order:
 * sentences (ending with . ! ? or a paragraph break, but not after
 * abbreviations like "Dr." "e.g." "U.S." or inside decimals like "3.14"),
 * where a sentence longer than max_len is cut at the last ", ; :" or
 * space before max_len, and the first chunk is at most first_max long
 * (cut the same way) so that the first audio is ready quickly.  Chunks
 * shorter than 2 non-space characters of letters/digits are merged into
 * a neighbour; no chunk contains only punctuation or spaces; leading and
 * trailing spaces are not part of a chunk.
 *
 * Returns the number of spans, stored in a malloc'd array *spans (caller
 * frees), 0 with *spans == NULL for text with nothing to say, or -1 when
 * out of memory.
 */
long pg_text_split(const char *text, size_t len, size_t max_len,
    size_t first_max, pg_span_t **spans);

#endif /* PG_TEXT_H */
