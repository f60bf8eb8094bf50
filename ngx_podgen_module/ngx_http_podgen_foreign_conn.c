/*
 * podgen: nginx connections around sockets that a library (curl, hiredis)
 * opens and closes itself.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_podgen_foreign_conn.h"


/*
 * Gives back an nginx connection that wrapped a socket owned by a library
 * (curl, hiredis): the library closes the socket itself.  flags:
 * NGX_CLOSE_EVENT when the socket is already closed (no epoll_ctl then).
 */

void
ngx_http_podgen_free_foreign_connection(ngx_connection_t *c, ngx_uint_t flags)
{
    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
}
