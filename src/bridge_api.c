/* bridge_api.c - see bridge_api.h.
 *
 * A request is input from the broker like a command: whoever may publish there may send
 * anything, as often as they like. Every request gets one response (unless its topic
 * is too long to answer on); a refused one also a log line, at most one per kind of
 * refusal every few seconds. Nothing in a response comes from the configuration's
 * secrets: health lists counters, ids and the link errors only. */
#include "bridge_api.h"

#include "panda2mqtt/api.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/log.h"

#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REFUSAL_PERIOD_S 10.0

struct p2m_bridge_api {
	struct p2m_bridge_api_env env;
	char *prefix; /* "<base>/bridge/request/" */
	size_t prefix_len;
	char *response_prefix;
	gint64 started; /* monotonic us */
};

struct p2m_bridge_api *p2m_bridge_api_new(const struct p2m_bridge_api_env *env)
{
	struct p2m_bridge_api *api = g_new0(struct p2m_bridge_api, 1);
	char *sub;

	api->env = *env;
	api->prefix = g_strdup_printf("%s/bridge/request/", env->cfg->mqtt.base_topic);
	api->prefix_len = strlen(api->prefix);
	api->response_prefix = g_strdup_printf("%s/bridge/response/", env->cfg->mqtt.base_topic);
	api->started = g_get_monotonic_time();
	sub = g_strdup_printf("%s#", api->prefix);
	p2m_mqtt_add_subscription(env->mqtt, sub);
	g_free(sub);
	return api;
}

void p2m_bridge_api_free(struct p2m_bridge_api *api)
{
	if (!api)
		return;
	g_free(api->prefix);
	g_free(api->response_prefix);
	g_free(api);
}

/* Resident memory from /proc/self/statm (pages), in KiB; -1 when unreadable. */
static long rss_kib(void)
{
	char buf[128];
	long pages_total, pages_rss;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%ld %ld", &pages_total, &pages_rss) != 2)
		return -1;
	return pages_rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static cJSON *health(const struct p2m_bridge_api *api)
{
	cJSON *h = cJSON_CreateObject(), *mem, *mqtt, *devs;
	struct p2m_registry *reg = api->env.reg;
	gint64 uptime_s = (g_get_monotonic_time() - api->started) / G_USEC_PER_SEC; /* whole */

	cJSON_AddStringToObject(h, "version", P2M_VERSION);
	cJSON_AddNumberToObject(h, "uptime_s", (double)uptime_s);
	mem = cJSON_AddObjectToObject(h, "memory");
	cJSON_AddNumberToObject(mem, "rss_kib", (double)rss_kib());
	cJSON_AddStringToObject(h, "log_level", p2m_log_level_name(p2m_log_get_level()));
	mqtt = cJSON_AddObjectToObject(h, "mqtt");
	cJSON_AddBoolToObject(mqtt, "connected", p2m_mqtt_connected(api->env.mqtt));
	devs = cJSON_AddArrayToObject(h, "devices");
	for (size_t i = 0; i < p2m_registry_count(reg); i++)
		cJSON_AddItemToArray(devs, p2m_device_health(p2m_registry_at(reg, i)));
	cJSON_AddItemToObject(h, "gone", p2m_registry_gone(reg));
	return h;
}

/* Carry out a checked request: 0 with *data, or -1 with why in err. */
static int run(struct p2m_bridge_api *api, const struct p2m_api_request *req, cJSON **data,
	       char *err, size_t errlen)
{
	switch (req->verb) {
	case P2M_API_DEVICE_REMOVE:
		if (p2m_registry_forget(api->env.reg, req->id, err, errlen) != 0)
			return -1;
		*data = cJSON_CreateObject();
		cJSON_AddStringToObject(*data, "id", req->id);
		return 0;
	case P2M_API_RELOAD:
		return api->env.reload(api->env.ud, data, err, errlen);
	case P2M_API_HEALTH:
		*data = health(api);
		return 0;
	case P2M_API_LOG_LEVEL:
		p2m_bridge_set_log_level(api->env.bridge, req->level);
		*data = cJSON_CreateObject();
		cJSON_AddStringToObject(*data, "value", p2m_log_level_name(req->level));
		return 0;
	case P2M_API_MDNS_BROWSE:
		return p2m_registry_rebrowse(api->env.reg, err, errlen);
	case P2M_API_UNKNOWN:
		break;
	}
	g_strlcpy(err, "unknown request", errlen);
	return -1;
}

/* The verb for a log line: what is not printable ASCII shown as '?'. */
static void printable(const char *in, char *out, size_t len)
{
	size_t i = 0;

	for (; in[i] && i + 1 < len; i++)
		out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
	out[i] = '\0';
}

bool p2m_bridge_api_on_message(struct p2m_bridge_api *api, const char *topic, const char *payload,
			       size_t len, bool retained)
{
	const char *verb = topic + api->prefix_len;
	struct p2m_api_request req;
	cJSON *data = NULL;
	char err[160], shown[P2M_API_MAX_VERB + 1];
	int rc;

	if (strncmp(topic, api->prefix, api->prefix_len) != 0)
		return false;
	printable(verb, shown, sizeof(shown));
	rc = p2m_api_parse(verb, payload, len, retained, &req, err, sizeof(err));
	if (rc == 0) {
		p2m_debug("bridge: request %s", p2m_api_verb_name(req.verb));
		rc = run(api, &req, &data, err, sizeof(err));
	}
	if (rc != 0) {
		char key[224];
		unsigned held = 0;

		snprintf(key, sizeof(key), "bridge request\x1f%s", err);
		if (p2m_log_ratelimit(key, REFUSAL_PERIOD_S, &held)) {
			char more[64] = "";

			if (held)
				snprintf(more, sizeof(more), " (and %u more like it, not logged)",
					 held);
			p2m_warn("bridge: request %s%s refused: %s%s", shown,
				 strlen(verb) > P2M_API_MAX_VERB ? "..." : "", err, more);
		}
	}
	/* a verb too long is not answered: the response topic would be as long */
	if (strlen(verb) <= P2M_API_MAX_VERB) {
		cJSON *response = p2m_api_response(&req, data, rc == 0 ? NULL : err);
		char *rtopic = g_strdup_printf("%s%s", api->response_prefix, verb);
		char *s = p2m_json_print(response);

		data = NULL; /* taken by the response */
		p2m_mqtt_publish(api->env.mqtt, rtopic, s, false);
		cJSON_free(s);
		g_free(rtopic);
		cJSON_Delete(response);
	}
	cJSON_Delete(data);
	p2m_api_request_clear(&req);
	return true;
}
