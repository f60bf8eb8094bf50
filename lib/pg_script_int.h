/*
 * podgen core: what the script code shares inside lib/, not an API (plain
 * C, no nginx): limits, character classes, the default hosts, and the
 * helpers of request parsing (pg_script_request.c) and of the script
 * object (pg_script.c) that the generator and the LLM reply parser
 * (pg_llm.c) use too.
 */

#ifndef PG_SCRIPT_INT_H
#define PG_SCRIPT_INT_H

#include <stddef.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "pg_json.h"
#include "pg_script.h"


#define PG_SCRIPT_WORDS_MIN      50
#define PG_SCRIPT_WORDS_MAX      5000
#define PG_SCRIPT_WORDS_DEFAULT  900

#define PG_SCRIPT_SHORT_MAX      80     /* a title; the topic in the text */

#define PG_LLM_TURNS_MAX         400    /* turns of a script, an LLM's or
                                           one given whole */

#define PG_NELEMS(a)             (sizeof(a) / sizeof((a)[0]))
#define PG_ALPHA(c)              (((c) >= 'a' && (c) <= 'z')                 \
                                  || ((c) >= 'A' && (c) <= 'Z'))
#define PG_ALNUM(c)              (PG_ALPHA(c) || ((c) >= '0' && (c) <= '9'))


/* "Alex" and "Sam": the hosts of a request that names none */
extern const pg_host_t  pg_script_default_host[2];


/* pg_script_request.c */

int pg_script_trimmed_dup(const char *s, size_t len, char **out,
    pg_error_t *err);
int pg_script_parse_hosts(yajl_val obj, pg_script_request_t *req,
    pg_error_t *err);
int pg_script_speakable(const char *s);
int pg_script_has_control(const char *s, size_t len);
int pg_script_same_name(const char *a, const char *b);
void pg_script_oom(pg_error_t *err);
int pg_script_utf8_cut(const char *s, size_t max);
int pg_script_clean_source(const char *raw, char **text, char **title,
    pg_script_section_t **sections, size_t *nsections);

/* pg_script.c */

size_t pg_script_count_words(const char *s, size_t len);
int pg_script_copy_hosts(pg_script_t *script, const pg_host_t *hosts,
    size_t nhosts);
int pg_script_short_text(const char *s, size_t len, size_t max,
    char **out);
void pg_script_title_case(char *s);
int pg_script_gen_string(yajl_gen g, const char *s);

#endif /* PG_SCRIPT_INT_H */
