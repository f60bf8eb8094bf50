/*
 * podgen core: the SSRF guard of URL fetching (plain C, no nginx).
 *
 * An address podgen may connect to for a source URL: by default no
 * loopback, private (RFC 1918, IPv6 ULA), link-local, CGNAT (100.64/10),
 * multicast, broadcast, unspecified, reserved or documentation address,
 * IPv4 or IPv6, IPv4-mapped (::ffff:a.b.c.d), -compatible and NAT64
 * (64:ff9b::/96) forms judged by the IPv4 address they carry; ranges
 * given with podgen_fetch_allow open exactly those.
 */

#ifndef PG_NETGUARD_H
#define PG_NETGUARD_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>


typedef struct {
    int       family;           /* AF_INET, AF_INET6 */
    uint8_t   addr[16];         /* network byte order */
    unsigned  prefix;           /* bits */
} pg_cidr_t;


/* "127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8", "1.2.3.4" (a /32).
 * 0 or -1. */
int pg_cidr_parse(const char *s, size_t len, pg_cidr_t *out);

/*
 * 1 when the address may be fetched from: public, or inside one of the
 * allow ranges; 0 when not (or not IPv4/IPv6).
 */
int pg_addr_allowed(const struct sockaddr *sa, const pg_cidr_t *allow,
    size_t nallow);

#endif /* PG_NETGUARD_H */
