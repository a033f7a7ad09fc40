/* service.c - see service.h.
 *
 * sd_notify sends one datagram on the AF_UNIX socket systemd gave (NOTIFY_SOCKET): no
 * reply is awaited, so it does not block the loop. The pings come from a GLib timer on
 * the one loop on purpose: they prove that the loop turns, which a thread of their own
 * would not. */
#include "service.h"

#include "panda2mqtt/log.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

#ifdef P2M_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static guint ping_timer;
static char *last_status;

static gboolean on_ping(gpointer data)
{
	(void)data;
	sd_notify(0, "WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

void p2m_service_start(void)
{
	uint64_t usec = 0;

	if (ping_timer || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	/* twice per period: one late turn of the loop is no reason to be killed */
	ping_timer = g_timeout_add(MAX((guint)(usec / 2000), 1u), on_ping, NULL);
	p2m_debug("systemd: watchdog every %llu ms", (unsigned long long)(usec / 2000));
	on_ping(NULL);
}

void p2m_service_ready(const char *status)
{
	g_free(last_status);
	last_status = g_strdup(status);
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void p2m_service_reloading(void)
{
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%lld", (long long)g_get_monotonic_time());
}

void p2m_service_status(const char *status)
{
	if (last_status && strcmp(last_status, status) == 0)
		return;
	g_free(last_status);
	last_status = g_strdup(status);
	sd_notifyf(0, "STATUS=%s", status);
}

void p2m_service_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void p2m_service_stop(void)
{
	if (ping_timer)
		g_source_remove(ping_timer);
	ping_timer = 0;
	g_free(last_status);
	last_status = NULL;
}

#else /* built without libsystemd: nothing to tell anyone */

void p2m_service_start(void)
{
}

void p2m_service_ready(const char *status)
{
	(void)status;
}

void p2m_service_reloading(void)
{
}

void p2m_service_status(const char *status)
{
	(void)status;
}

void p2m_service_stopping(void)
{
}

void p2m_service_stop(void)
{
}

#endif
