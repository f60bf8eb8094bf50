/*
 * podgen core: podcast scripts (plain C, no nginx).
 *
 *   - the request of POST /v1/scripts: parsing and validation;
 *   - the built-in generator: deterministic and extractive, it picks the
 *     most salient sentences of the source text and writes a multi-host
 *     dialogue around them in one of five styles;
 *   - the script itself and its JSON form (yajl gen).
 *
 * A script written by an LLM is parsed by pg_script_from_llm_json(), in
 * pg_llm.h.
 */

#ifndef PG_SCRIPT_H
#define PG_SCRIPT_H

#include <stddef.h>

#include "pg_buf.h"
#include "pg_json.h"


#define PG_SCRIPT_MAX_HOSTS    6
#define PG_SCRIPT_NAME_MAX     64       /* bytes of a host name */


typedef enum {
    PG_STYLE_DEEP_DIVE = 0,
    PG_STYLE_BRIEF,
    PG_STYLE_DEBATE,
    PG_STYLE_INTERVIEW,
    PG_STYLE_CRITIQUE
} pg_style_t;

typedef enum {
    PG_ENGINE_DEFAULT = 0,      /* not given: llm when configured */
    PG_ENGINE_BUILTIN,
    PG_ENGINE_LLM
} pg_engine_t;


typedef struct {
    char        *name;
    char        *voice;         /* as given; NULL = the server picks */
    char        *role;          /* "host", "expert", "guest"...; may be NULL */
} pg_host_t;


/* A titled section of a source: where it starts, in paragraphs. */
typedef struct {
    char        *title;
    size_t       paragraph;     /* blank-line breaks before it */
} pg_script_section_t;


#define PG_SCRIPT_SECTIONS_MAX  64


typedef struct {
    char        *topic;         /* NULL when absent */
    char        *source_text;   /* NULL when absent; as given */
    char        *focus;         /* NULL when absent */
    char        *language;      /* "en" by default */
    pg_style_t   style;
    size_t       target_words;  /* from length (300/900/2000) or given */
    pg_engine_t  engine;
    size_t       nhosts;
    pg_host_t    hosts[PG_SCRIPT_MAX_HOSTS];
} pg_script_request_t;


typedef struct {
    size_t       speaker;       /* index into hosts */
    char        *text;
    char        *chapter;       /* the title of a section that starts
                                   here; NULL: the one before goes on */
} pg_segment_t;

#define PG_SCRIPT_CHAPTER_MAX  200  /* bytes of a chapter's title */


typedef struct {
    char          *title;
    size_t         nhosts;
    pg_host_t      hosts[PG_SCRIPT_MAX_HOSTS];
    size_t         nsegments;
    pg_segment_t  *segments;
    size_t         word_count;
    size_t         target_words;    /* asked for; 0: not known (edited) */
    size_t         source_words;    /* of the source text; 0: none */
    unsigned       source_exhausted:1;  /* short because the source is */
} pg_script_t;


/*
 * Parses a JSON object (already checked by pg_json_parse_object) into
 * *req.  Fields: topic (string), source_text (string), at least one of the
 * two non-empty; style (deep-dive|brief|debate|interview|critique,
 * default deep-dive); length (short|medium|long, default medium) or
 * target_words (integer 50..5000, wins over length); language (string,
 * default "en"); focus (string); hosts (array of 1..6 objects {name
 * (required, 1..64 bytes, no control characters), voice (string), role
 * (string)}, names unique; default two hosts "Alex" (voice "alloy", role
 * "host") and "Sam" (voice "echo", role "expert")); engine (builtin|llm).
 * Limits: source_text at most max_source bytes, topic and focus at most
 * 500 characters.  Unknown fields are ignored.  Errors as in pg_json.h with
 * param naming the field ("hosts[2].name" style for nested ones) and codes
 * missing_required_parameter, invalid_type, invalid_value,
 * string_above_max_length.  Returns 0 or -1.
 */
int pg_script_request_from_json(yajl_val obj, size_t max_source,
    pg_script_request_t *req, pg_error_t *err);

void pg_script_request_free(pg_script_request_t *req);

/*
 * The canonical form of a request, for cache keys: a compact JSON string
 * with every field in a fixed order and defaults filled in, so that two
 * requests that mean the same thing give the same bytes.  0 or -1 (ENOMEM).
 */
int pg_script_request_canonical(const pg_script_request_t *req,
    pg_buf_t *out);

/*
 * The built-in generator.  Deterministic: the same request gives the same
 * script, byte for byte.  Returns 0, or -1 when out of memory.
 */
int pg_script_generate(const pg_script_request_t *req, pg_script_t *script);

void pg_script_free(pg_script_t *script);

/*
 * Speaking time of a script at flite's pace (about 150 words a minute),
 * in seconds.
 */
double pg_script_duration(const pg_script_t *script);

/*
 * What a script was asked for and had to work from: target_words and
 * source_words from the request, and source_exhausted when the script
 * falls under 80% of its target because the source (or a topic alone)
 * has no more to give: always so for the built-in generator, for an LLM
 * only when the source is shorter than the target.
 */
void pg_script_set_budget(pg_script_t *script,
    const pg_script_request_t *req, int builtin);

/*
 * Appends the script as JSON: {"title":...,"hosts":[{name,voice,role}],
 * "segments":[{"speaker":name,"text":...}],"word_count":N,
 * "estimated_duration_s":X} and, when target_words is known,
 * "target_words":N,"source_words":N,"source_exhausted":bool.  0 or -1.
 */
int pg_script_to_json(const pg_script_t *script, pg_buf_t *out);

/*
 * An edited script given whole (POST /v1/podcasts "segments", with
 * optional "hosts"); texts at most max_text bytes.  0, or -1 with err
 * naming the field ("segments[3].speaker").
 */
int pg_script_from_segments(yajl_val obj, size_t max_text,
    pg_script_t *script, pg_error_t *err);

/* A script as pg_script_to_json() wrote it.  0 or -1. */
int pg_script_from_json(const char *json, size_t len, pg_script_t *script);

#endif /* PG_SCRIPT_H */
