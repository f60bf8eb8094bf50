/*
 * Built-in script generator throughput on one core: scripts per second
 * from a ~5,000-word source (the three texts of t/data joined), medium
 * length, two hosts.  The baseline in the same run is the floor every
 * script pays: normalizing and splitting the same source (pg_text).
 *
 *   bench/src/script_builtin t/data/source-*.txt
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "pg_json.h"
#include "pg_script.h"
#include "pg_text.h"


static double
now(void)
{
    struct timespec  t;

    clock_gettime(CLOCK_MONOTONIC, &t);

    return t.tv_sec + t.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    int                   i, n;
    char                 *src, *body, *text;
    long                  nspans;
    FILE                 *f;
    size_t                len, blen, tlen, words;
    double                t0, gen, base;
    yajl_val              tree;
    yajl_gen              g;
    pg_error_t            err;
    pg_span_t            *spans;
    pg_script_t           script;
    pg_script_request_t   req;
    const unsigned char  *buf;

    src = calloc(1, 1 << 20);
    len = 0;

    for (i = 1; i < argc; i++) {
        f = fopen(argv[i], "r");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }

        len += fread(src + len, 1, (1 << 20) - 1 - len, f);
        src[len++] = '\n';
        fclose(f);
    }

    src[len] = '\0';

    words = 0;
    for (i = 0; i < (int) len; i++) {
        if (src[i] != ' ' && src[i] != '\n' && (i == 0 || src[i - 1] == ' '
                                                || src[i - 1] == '\n'))
        {
            words++;
        }
    }

    g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *) "source_text", 11);
    yajl_gen_string(g, (const unsigned char *) src, len);
    yajl_gen_string(g, (const unsigned char *) "engine", 6);
    yajl_gen_string(g, (const unsigned char *) "builtin", 7);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &blen);
    body = strndup((const char *) buf, blen);
    yajl_gen_free(g);

    tree = pg_json_parse_object(body, blen, PG_JSON_MAX_DEPTH, &err);
    if (tree == NULL
        || pg_script_request_from_json(tree, 1 << 20, &req, &err) != 0)
    {
        fprintf(stderr, "request: %s\n", err.message);
        return 1;
    }

    n = 0;
    t0 = now();

    while (now() - t0 < 3.0) {
        if (pg_script_generate(&req, &script) != 0) {
            return 1;
        }

        pg_script_free(&script);
        n++;
    }

    gen = n / (now() - t0);

    n = 0;
    t0 = now();

    while (now() - t0 < 3.0) {
        text = pg_text_normalize(src, len, &tlen);
        nspans = pg_text_split(text, tlen, 300, 300, &spans);
        free(spans);
        free(text);
        n += (nspans > 0);
    }

    base = n / (now() - t0);

    printf("| %zu | %.0f scripts/s | %.0f /s | %.2fx |\n", words, gen, base,
           gen / base);

    pg_script_request_free(&req);
    yajl_tree_free(tree);
    free(body);
    free(src);

    return 0;
}
