/* http_post.h - one HTTP POST whose body is streamed, on the gateway's one loop.
 *
 * Owns: looking the host up (resolve.h, without blocking), the libwebsockets HTTP client
 * connection, the request's headers (Content-Type, Content-Length, one more of the
 * caller's), writing the body a piece at a time as the socket takes it (the caller hands
 * each piece over when asked: a large file never sits in memory), the response's status,
 * and a bound on time without progress.
 * Does not own: what the body is or means (device_ota.c), retries (there are none: a
 * failed upload is reported, never repeated on its own). */
#ifndef PANDA2MQTT_HTTP_POST_H
#define PANDA2MQTT_HTTP_POST_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct p2m_http_post;

struct p2m_http_post_opts {
	const char *name; /* what log lines start with: "device <id>" */
	const char *host; /* an IPv4 address, or a name looked up first */
	int port;
	const char *path;	  /* "/ota" */
	const char *content_type; /* the Content-Type header's value */
	const char *header;	  /* one more header's name ("OTA-Type"), or NULL */
	const char *header_value;
	uint64_t length;  /* the body's length, sent as Content-Length */
	int idle_timeout; /* seconds without a byte sent or received: the POST fails */
};

struct p2m_http_post_callbacks {
	/* The next piece of the body into buf (at most len bytes): its length, or -1 (the
	 * POST is abandoned: done follows). Asked until `length` bytes have been given. */
	ssize_t (*body)(void *ud, unsigned char *buf, size_t len);
	/* sent bytes of the body are on their way (for progress). */
	void (*progress)(void *ud, uint64_t sent);
	/* The end, called once: body_sent says whether the whole body went out; status is
	 * the response's HTTP status, 0 when none came (why says what happened instead). The
	 * owner may free the POST from here. */
	void (*done)(void *ud, bool body_sent, int status, const char *why);
};

/* The protocol (one lws_protocols entry) the gateway's lws context must list. */
const struct lws_protocols *p2m_http_post_protocol(void);

/* Start at once; NULL when it cannot even start (logged). */
struct p2m_http_post *p2m_http_post_start(struct lws_context *ctx,
					  const struct p2m_http_post_opts *o,
					  const struct p2m_http_post_callbacks *cb, void *ud);
/* Abandon it (the connection is closed; done is not called) and free it. NULL: nothing. */
void p2m_http_post_free(struct p2m_http_post *p);

#endif
