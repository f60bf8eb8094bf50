/*
 * podgen core: what a finished podcast is published as — its transcripts
 * (WebVTT and JSON) and the RSS feed of the library (plain C, no nginx).
 *
 * Everything that comes from a job (titles, names, texts, ids) is escaped
 * for the format it is placed in; invalid UTF-8 becomes U+FFFD.
 */

#ifndef PG_FEED_H
#define PG_FEED_H

#include <stddef.h>

#include "pg_buf.h"
#include "pg_job.h"


#define PG_FEED_DESCRIPTION_MAX  300    /* characters of an item's
                                           description */
#define PG_FEED_TOKEN_LEN        32     /* hex digits of an episode's
                                           token */
#define PG_FEED_ETAG_LEN         32     /* hex digits of a feed's ETag */


/*
 * Appends the WebVTT transcript: "WEBVTT\n\n", then for each segment with
 * start >= 0 a cue
 *
 *   "<n>\nHH:MM:SS.mmm --> HH:MM:SS.mmm\n<v Speaker>text\n\n"
 *
 * numbered from 1 (hours take more digits past 99; an end before the start
 * is the start).  Speaker and text are escaped (& -> &amp; < -> &lt;
 * > -> &gt;), a run of control characters (CR, LF, tab, ...) becomes one
 * space, so neither "-->" nor a blank line can appear in a cue's text (a
 * speaker ending with '-' gets a space before the '>' of its tag).  No <v>
 * tag when the speaker is empty.  Returns 0, or -1 when out of memory.
 */
int pg_vtt_write(const pg_job_t *job, pg_buf_t *out);

/*
 * Appends the Podcasting 2.0 JSON chapters of a job: {"version":"1.2.0",
 * "title","chapters":[{"startTime","title"}]}, a chapter for each rendered
 * segment that starts one (its start; the first at 0), after a chapter at
 * 0 titled as the episode when the first segment starts none.  Returns 0,
 * or -1 when out of memory or when a string is not UTF-8.
 */
int pg_chapters_json(const pg_job_t *job, pg_buf_t *out);

/*
 * Appends the SubRip transcript: cues numbered from 1, "HH:MM:SS,mmm -->
 * HH:MM:SS,mmm", of the rendered segments.  A segment with word timings
 * is cut into captions of at most PG_SRT_CUE_WORDS words or about
 * PG_SRT_CUE_CHARS characters, a sentence's end ending one, each timed
 * from its first word's start to its last word's end; otherwise one cue a
 * segment.  The first cue of a segment starts with "Speaker: ".  Control
 * characters become a space (no blank line inside a cue).  0 or -1.
 */
int pg_srt_write(const pg_job_t *job, pg_buf_t *out);

#define PG_SRT_CUE_WORDS  12
#define PG_SRT_CUE_CHARS  84

/*
 * Appends {"id","title","duration_s","segments":[{"index","speaker",
 * "voice","text","start","end","words":[{"word","start","end"}]}]}:
 * duration_s is null unless the job is completed, start and end are null
 * for a segment not rendered yet (and its words []); a word's times are
 * in the episode, within its segment.
 * Returns 0, or -1 when out of memory or when a string is not UTF-8.
 */
int pg_transcript_json(const pg_job_t *job, pg_buf_t *out);

/*
 * Appends s[0..len) escaped for XML text and attribute values: & < > " '
 * become entities, control characters other than \t \n \r (and U+FFFE,
 * U+FFFF) are dropped, as XML 1.0 forbids them; each byte of invalid UTF-8
 * becomes U+FFFD.  Returns 0, or -1 when out of memory.
 */
int pg_xml_escape(pg_buf_t *out, const char *s, size_t len);


typedef struct {
    const char  *title;         /* the channel's */
    const char  *link;          /* the show's absolute URL, e.g.
                                   "https://pods.example.com" */
    const char  *base;          /* the absolute URL of the podcasts
                                   location ("https://pods.example.com/
                                   v1/podcasts"); NULL: <link>/v1/podcasts */
    const char  *description;
    const char  *author;
    const char  *email;         /* the owner's, or NULL */
    const char  *language;      /* NULL: "en" */
    const char  *category;      /* NULL: "Technology"; "Parent/Sub" */
    int          is_explicit;
    const char  *image;         /* URL of the artwork; NULL:
                                   <base>/artwork.png */
    const char  *token;         /* the feed's secret token (URL-safe), or
                                   NULL: see pg_rss_write() */
} pg_rss_channel_t;


/*
 * The token of an episode's audio link in a feed with a secret token: the
 * first PG_FEED_TOKEN_LEN hex digits of HMAC-SHA256(token, "audio:" id),
 * so that an episode's link opens that episode only.  out gets
 * PG_FEED_TOKEN_LEN + 1 bytes.  Returns 0, or -1.
 */
int pg_feed_episode_token(const char *token, size_t token_len,
    const char *id, char *out);

/*
 * The Podcasting 2.0 podcast:guid of a feed: the UUIDv5 (RFC 4122, SHA-1)
 * of its URL without the scheme ("https://") and trailing slashes, in the
 * namespace ead4c236-bf58-58c6-a2c6-a6b28d128cb6.  out gets 37 bytes,
 * "xxxxxxxx-xxxx-5xxx-yxxx-xxxxxxxxxxxx".  Returns 0, or -1.
 */
int pg_feed_guid(const char *url, size_t len, char *out);

/* whether podcast apps take an episode of this format as an <enclosure>:
 * mp3 and m4a */
int pg_feed_enclosure_format(const char *format);


/*
 * Appends an RSS 2.0 feed (xmlns:itunes, xmlns:podcast, xmlns:atom).  The
 * channel: title, link, description, language, generator, lastBuildDate
 * (the newest updated_ms of its items; none without items), atom:link
 * rel="self" to <base>/feed.xml, itunes:author, itunes:owner (itunes:name
 * the author, itunes:email when set), itunes:image and <image> (the
 * artwork's URL), itunes:category (nested for "Parent/Sub"),
 * itunes:explicit true|false, itunes:type episodic, podcast:guid (of
 * <base>/feed.xml, see pg_feed_guid()), podcast:locked yes (with
 * owner=) when there is an email, else no.  Then one <item> per completed
 * podcast of jobs[0..n), in that order (others are skipped): title (the
 * id when it has none), guid isPermaLink="false" (the id), pubDate (RFC
 * 2822, GMT, from created_ms), description (the first segments' texts, at
 * most 300 characters), for an mp3 or m4a episode an enclosure (url
 * <base>/<id>/audio, length audio_bytes, type the format's MIME type),
 * for another format podcast:alternateEnclosure (type, length,
 * default="true") with its podcast:source uri= and no enclosure,
 * itunes:duration HH:MM:SS, itunes:image, itunes:episodeType full,
 * podcast:transcript (VTT text/vtt, SRT application/x-subrip, JSON
 * application/json) and podcast:chapters (application/json+chapters).
 * With a token, the self link ends with "?token=<token>", each audio url
 * with "?token=<the episode's token>", and transcripts and chapters are
 * left out (a token opens the feed and the audio only).  A NULL channel
 * field is empty; trailing slashes of link and base are not doubled.
 * Returns 0, or -1 when out of memory.
 */
int pg_rss_write(const pg_rss_channel_t *ch, pg_job_t *const *jobs,
    size_t n, pg_buf_t *out);

#endif /* PG_FEED_H */
