/*
 * A tiny TAP producer for the C unit tests of lib/.
 *
 *   ok(cond, "name", ...)   one test point
 *   is_int(got, want, name) / is_str(got, want, name)
 *   done_testing()          prints the plan, returns the exit status
 */

#ifndef PG_UNIT_H
#define PG_UNIT_H

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

#define done_testing()                                                       \
    (printf("1..%d\n", unit_n), unit_failed ? 1 : 0)

#endif /* PG_UNIT_H */
