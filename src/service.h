/* service.h - telling the service manager how the daemon is doing (sd_notify(3)).
 *
 * Owns: READY=1 once the configuration is loaded and the loop runs; RELOADING=1 and
 * READY=1 again around a reload; STOPPING=1; a STATUS= line (devices online of total,
 * the broker); and the watchdog: WATCHDOG=1 from a timer on the loop every half of the
 * unit's WatchdogSec (sd_watchdog_enabled), so that a loop that hangs stops the pings
 * and systemd restarts the daemon.
 * Does not own: what the status says (gateway.c writes it).
 * Without NOTIFY_SOCKET (run by hand, by the add-on's s6, by tests) or when built
 * without libsystemd (CMake P2M_SYSTEMD off), every call does nothing. */
#ifndef PANDA2MQTT_SERVICE_H
#define PANDA2MQTT_SERVICE_H

/* Start the watchdog pings when the service manager asks for them. */
void p2m_service_start(void);
void p2m_service_ready(const char *status);
void p2m_service_reloading(void);
/* Sent only when it differs from the last one sent. */
void p2m_service_status(const char *status);
void p2m_service_stopping(void);
/* Stop the pings (shutdown). */
void p2m_service_stop(void);

#endif
