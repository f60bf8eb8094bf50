/*
 * A tiny TAP producer for the C unit tests of lib/.
 *
 *   ok(cond, "name", ...)   one test point
 *   is_int(got, want, name) / is_str(got, want, name)
 *   done_testing()          prints the plan, returns the exit status
 */

#ifndef PG_UNIT_H
#define PG_UNIT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int  unit_n;
static int  unit_failed;

#define ok(cond, ...)                                                        \
    do {                                                                     \
        int  ok_c_ = (cond) ? 1 : 0;                                         \
        unit_n++;                                                            \
        if (!ok_c_) {                                                        \
            unit_failed++;                                                   \
        }                                                                    \
        printf("%s %d - ", ok_c_ ? "ok" : "not ok", unit_n);                 \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        if (!ok_c_) {                                                        \
            printf("#   failed at %s line %d\n", __FILE__, __LINE__);        \
        }                                                                    \
    } while (0)

#define is_int(got, want, ...)                                               \
    do {                                                                     \
        long long  g_ = (long long) (got), w_ = (long long) (want);          \
        ok(g_ == w_, __VA_ARGS__);                                           \
        if (g_ != w_) {                                                      \
            printf("#   got %lld, want %lld\n", g_, w_);                     \
        }                                                                    \
    } while (0)

#define is_str(got, want, ...)                                               \
    do {                                                                     \
        const char  *g_ = (got), *w_ = (want);                               \
        int  same_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;            \
        ok(same_, __VA_ARGS__);                                              \
        if (!same_) {                                                        \
            printf("#   got  \"%s\"\n#   want \"%s\"\n",                     \
                   g_ ? g_ : "(null)", w_ ? w_ : "(null)");                  \
        }                                                                    \
    } while (0)

/* Headers that whole files carry (see pg_enc_create_whole()). */

static inline int
unit_has(const unsigned char *p, size_t len, const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i + n <= len; i++) {
        if (memcmp(p + i, s, n) == 0) {
            return 1;
        }
    }

    return 0;
}

/* "fLaC", a block header, then STREAMINFO: its bits 108..143 are the
 * total samples (-1: no STREAMINFO here) */
static inline long long
unit_flac_total(const unsigned char *f, size_t len)
{
    if (len < 42 || memcmp(f, "fLaC", 4) != 0) {
        return -1;
    }

    return (long long) ((((uint64_t) f[21] & 0x0f) << 32)
                        | ((uint64_t) f[22] << 24) | ((uint64_t) f[23] << 16)
                        | ((uint64_t) f[24] << 8) | f[25]);
}

/* the MD5 that follows: all zero means "not known" */
static inline int
unit_flac_has_md5(const unsigned char *f, size_t len)
{
    size_t  i;

    for (i = 26; i < 42 && i < len; i++) {
        if (f[i] != 0) {
            return 1;
        }
    }

    return 0;
}

/* an mp3 whose first frame is a LAME "Info" tag, not audio */
static inline int
unit_mp3_lame_tag(const unsigned char *m, size_t len)
{
    return len > 256 && m[0] == 0xff && (m[1] & 0xe0) == 0xe0
           && unit_has(m, 64, "Info", 4) && unit_has(m, 256, "LAME", 4);
}

#define done_testing()                                                       \
    (printf("1..%d\n", unit_n), unit_failed ? 1 : 0)

#endif /* PG_UNIT_H */
