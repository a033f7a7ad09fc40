/* events.c - see events.h. */
#include "panda2mqtt/events.h"

#include <string.h>

static const char *const names[P2M_EV_COUNT] = {
    [P2M_EV_COMMAND_REJECTED] = "command_rejected",
    [P2M_EV_COMMAND_REFUSED] = "command_refused",
    [P2M_EV_COMMAND_NOT_APPLIED] = "command_not_applied",
    [P2M_EV_COMMAND_FAILED] = "command_failed",
    [P2M_EV_DEVICE_REBOOTED] = "device_rebooted",
    [P2M_EV_SAFETY_CUTOFF] = "safety_cutoff",
    [P2M_EV_UPDATE_SENT] = "update_sent",
    [P2M_EV_UPDATE_FAILED] = "update_failed",
    [P2M_EV_FIRMWARE_UPDATED] = "firmware_updated",
    [P2M_EV_FIRMWARE_UPDATE_FAILED] = "firmware_update_failed",
};

const char *p2m_event_name(enum p2m_event ev)
{
	return ev < P2M_EV_COUNT ? names[ev] : "";
}

static bool has_platform(const struct p2m_driver *d, enum p2m_platform p)
{
	for (size_t i = 0; i < d->n_entities; i++)
		if (d->entities[i].platform == p)
			return true;
	return false;
}

static bool has_writes(const struct p2m_driver *d)
{
	for (size_t i = 0; i < d->n_entities; i++)
		if (d->entities[i].write)
			return true;
	return false;
}

bool p2m_event_applies(const struct p2m_driver *d, enum p2m_event ev)
{
	bool heats = d->heat_status && d->off_command;

	switch (ev) {
	case P2M_EV_COMMAND_REJECTED:
		return has_writes(d);
	case P2M_EV_COMMAND_REFUSED:
	case P2M_EV_SAFETY_CUTOFF:
		return heats;
	case P2M_EV_COMMAND_NOT_APPLIED:
		return d->verify != NULL;
	case P2M_EV_COMMAND_FAILED:
		return d->reply_of != NULL || d->message != NULL;
	case P2M_EV_DEVICE_REBOOTED:
		return d->restarts != NULL;
	case P2M_EV_UPDATE_SENT:
	case P2M_EV_UPDATE_FAILED:
		return has_platform(d, P2M_UPDATE) && !d->http_update;
	case P2M_EV_FIRMWARE_UPDATED:
	case P2M_EV_FIRMWARE_UPDATE_FAILED:
		return has_platform(d, P2M_UPDATE) && d->http_update;
	case P2M_EV_COUNT:
		break;
	}
	return false;
}

static bool listed(const char *const *list, size_t n, const char *type)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], type) == 0)
			return true;
	return false;
}

const char *const *p2m_event_types(const struct p2m_driver *d, const char **buf, size_t n)
{
	size_t used = 0;

	for (int ev = 0; ev < P2M_EV_COUNT && used + 1 < n; ev++)
		if (p2m_event_applies(d, (enum p2m_event)ev))
			buf[used++] = names[ev];
	for (const char *const *t = d->event_types; t && *t && used + 1 < n; t++)
		if (!listed(buf, used, *t))
			buf[used++] = *t;
	buf[used] = NULL;
	return buf;
}

bool p2m_event_declared(const struct p2m_driver *d, const char *type)
{
	const char *buf[P2M_MAX_EVENT_TYPES];
	const char *const *types = p2m_event_types(d, buf, P2M_MAX_EVENT_TYPES);
	size_t n = 0;

	while (types[n])
		n++;
	return type && listed(types, n, type);
}

cJSON *p2m_event_new(const char *type)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, P2M_EVENT_TYPE_KEY, type);
	return e;
}
