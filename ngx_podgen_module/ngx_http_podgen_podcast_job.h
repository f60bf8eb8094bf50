/*
 * podgen: podcast jobs — the job kind that makes an episode.
 */

#ifndef NGX_HTTP_PODGEN_PODCAST_JOB_H
#define NGX_HTTP_PODGEN_PODCAST_JOB_H

/* Registers the kind with the job runner (init_process). */
void ngx_http_podgen_podcast_job_init(void);

/* podgen_loudness TARGET [peak=P] | off */
char *ngx_http_podgen_podcast_loudness(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

#endif /* NGX_HTTP_PODGEN_PODCAST_JOB_H */
