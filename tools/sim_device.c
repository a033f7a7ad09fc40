/* sim_device.c - the simulated Panda Breath itself: its state and what time does to it.
 *
 * Owns: sim.state (the device state, shaped like the snapshot, built by sim_snapshot.c)
 * and the helpers that read and change it; the toy thermal model (the chamber, the heater,
 * warehouse_temper and the doc dialect's cal_* readings); drying (start, stop, presets,
 * the countdown); reboots and the factory reset; the timers: a model step and temperature
 * push every --push-interval, the drying countdown every second. Does not own: what
 * clients write (sim_writes.c), sockets and queues (sim_server.c), the Klipper link that
 * gates Auto mode (sim_klipper.c), the control commands (sim_control.c). */
#include "sim.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>

#define AMBIENT	   22.0 /* degrees C */
#define STEP	   0.5	/* most the chamber moves per push */
#define PTC_OFFSET 30.0 /* PTC element above chamber while heating */

static lws_sorted_usec_list_t sul_push, sul_second, sul_reboot;

/* ---------- the state ---------- */

cJSON *sim_root(const char *root)
{
	return cJSON_GetObjectItemCaseSensitive(sim.state, root);
}

cJSON *sim_settings(void)
{
	return sim_root("settings");
}

void sim_put(cJSON *obj, const char *key, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
	else
		cJSON_AddItemToObject(obj, key, v);
}

void sim_put_num(const char *key, double n)
{
	sim_put(sim_settings(), key, cJSON_CreateNumber(n));
}

bool sim_json_int(const cJSON *v, long *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	if (!(d >= -1e9 && d <= 1e9) || d != (double)(long)d)
		return false;
	*out = (long)d;
	return true;
}

long sim_get_int(const char *key, long dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(sim_settings(), key);

	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	if (cJSON_IsNumber(v))
		return (long)v->valuedouble;
	return dflt;
}

long sim_get_int_in(const char *root, const char *key, long dflt)
{
	long n;

	return sim_json_int(cJSON_GetObjectItemCaseSensitive(sim_root(root), key), &n) ? n : dflt;
}

const char *sim_target_key(void)
{
	return sim.fw == SIM_FW_V100 ? "temp" : "set_temp";
}

double sim_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sta.ip: the listen address when it is one IPv4 address, else loopback. */
static const char *sta_ip(void)
{
	struct in_addr a;

	if (inet_pton(AF_INET, sim.host, &a) == 1 && a.s_addr != htonl(INADDR_ANY))
		return sim.host;
	return "127.0.0.1";
}

static cJSON *state_defaults(void)
{
	const struct sim_identity id = {
	    .fw = sim.fw,
	    .doc = sim.doc,
	    .hostname = sim.hostname,
	    .sta_ip = sta_ip(),
	    .mac = sim.mac,
	    .wifi_ssid = "SimNet",
	    .wifi_password = SIM_SECRET_WIFI_PASSWORD,
	    .ap_password = SIM_SECRET_AP_PASSWORD,
	    .printer_name = "Sim X1C",
	    .printer_sn = "01S00SIM0000001",
	    .access_code = SIM_SECRET_ACCESS_CODE,
	};

	return sim_snapshot_state(&id);
}

/* ---------- thermal model and drying ---------- */

bool sim_drying(void)
{
	return sim_get_int("isrunning", 0) == 1;
}

/* warehouse_temper: the chamber itself on real firmware; the base document has it a
 * little above the calibrated reading. */
static double temp_raw(void)
{
	return sim.doc ? sim.chamber + SIM_RAW_OFFSET : sim.chamber;
}

static double temp_ptc(void)
{
	return sim.heating ? sim.chamber + PTC_OFFSET : sim.chamber;
}

/* What a frame reports now: whole degrees on real units [live], tenths in the base
 * document's examples, which also has the calibrated readings. */
static struct sim_readings readings(void)
{
	return (struct sim_readings){.warehouse = temp_raw(),
				     .decimals = sim.doc ? 1 : 0,
				     .cal = sim.doc,
				     .cal_warehouse = sim.chamber,
				     .cal_ptc = temp_ptc()};
}

/* One push period: the heater runs when work_on is true or drying runs; it heats toward
 * filament_temp while drying, else toward the target; otherwise the chamber cools. */
static void model_step(void)
{
	/* with the Klipper link, Auto mode heats only while the bed is hot enough */
	bool gated = sim.printer_link && sim_get_int("work_mode", 2) == 1 && !sim.auto_hot;
	bool on = !sim.rebooting && !sim.heater_fault &&
		  ((sim_get_int("work_on", 0) != 0 && !gated) || sim_drying());
	double target = AMBIENT, d;

	if (on)
		target = (double)(sim_drying() ? sim_get_int("filament_temp", 60)
					       : sim_get_int(sim_target_key(), 40));
	if (sim.doc && sim.printer_link && (on && sim.chamber < target) != sim.heating) {
		/* with the printer link, the heater's relay is pushed when it changes, so that
		 * Auto mode switching is seen at once */
		cJSON *o = cJSON_CreateObject();

		sim_put_num("ptc_heater_status", on && sim.chamber < target);
		cJSON_AddNumberToObject(o, "ptc_heater_status", on && sim.chamber < target);
		sim.heating = on && sim.chamber < target;
		sim_push_root("settings", o);
	}
	sim.heating = on && sim.chamber < target;
	if (sim.chamber_pinned)
		return;
	d = target - sim.chamber;
	if (d > STEP)
		d = STEP;
	if (d < -STEP)
		d = -STEP;
	sim.chamber += d;
}

void sim_drying_start(void)
{
	long hours = sim_get_int("custom_timer", 12);

	sim_put_num("isrunning", 1);
	sim_put_num("remaining_seconds", (double)(hours > 0 ? hours * 3600 : 0));
	sim_say("drying started: %ld h at %ld C", hours, sim_get_int("filament_temp", 60));
}

void sim_drying_stop(const char *why)
{
	bool was = sim_drying();

	sim_put_num("isrunning", 0);
	sim_put_num("remaining_seconds", 0);
	if (was)
		sim_say("drying stopped (%s)", why);
}

void sim_drying_mode(long mode)
{
	cJSON *s = sim_settings();

	if (mode == 1)
		sim_put_num("filament_temp", 55);
	else if (mode == 2)
		sim_put_num("filament_temp", 60);
	else if (mode == 3) {
		sim_put(s, "custom_temp",
			cJSON_CreateNumber((double)sim_get_int("filament_temp", 60)));
		sim_put(s, "custom_timer",
			cJSON_CreateNumber((double)sim_get_int("filament_timer", 12)));
	}
	sim_put_num("filament_drying_mode", (double)mode);
}

/* ---------- frames ---------- */

char *sim_device_snapshot(void)
{
	struct sim_readings r = readings();

	return sim_snapshot_text(sim.state, sim.fw, &r);
}

static void push_temperatures(void)
{
	struct sim_readings r = readings();
	char txt[160];
	int n = sim_snapshot_push(txt, sizeof(txt), &r);

	sim_debug("push %s", txt);
	sim_broadcast_text(SIM_MSG_TEMP, txt, (size_t)n);
}

/* ---------- reboot ---------- */

static void reboot_end(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	sim.rebooting = false;
	sim_say("reboot complete: accepting connections");
}

void sim_reboot(const char *why)
{
	sim_say("rebooting (%s): closing %u client(s), refusing connections for %.1f s", why,
		sim_drop_all(true), sim.reboot_time);
	sim.rebooting = true;
	sim.heating = false;
	sim_drying_stop("reboot");
	lws_sul_schedule(sim.ctx, 0, &sul_reboot, reboot_end,
			 (lws_usec_t)(sim.reboot_time * LWS_US_PER_SEC));
}

void sim_factory_reset(void)
{
	cJSON_Delete(sim.state);
	sim.state = state_defaults();
	sim_say("factory reset: state back to defaults");
	sim_reboot("factory_reset");
}

/* ---------- timers ---------- */

static void push_tick(lws_sorted_usec_list_t *sul)
{
	model_step();
	if (!sim.frozen && !sim.rebooting)
		push_temperatures();
	lws_sul_schedule(sim.ctx, 0, sul, push_tick,
			 (lws_usec_t)(sim.push_interval * LWS_US_PER_SEC));
}

static void second_tick(lws_sorted_usec_list_t *sul)
{
	long left;

	if (sim_drying()) {
		left = sim_get_int("remaining_seconds", 0) - 1;
		if (left <= 0) {
			sim_put_num("remaining_seconds", 0);
			sim_put_num("isrunning", 0);
			sim_say("drying finished");
		} else {
			sim_put_num("remaining_seconds", (double)left);
		}
	}
	lws_sul_schedule(sim.ctx, 0, sul, second_tick, LWS_US_PER_SEC);
}

void sim_device_init(void)
{
	sim.chamber = AMBIENT;
	sim.state = state_defaults();
}

void sim_device_start(void)
{
	if (sim.push_interval > 0)
		lws_sul_schedule(sim.ctx, 0, &sul_push, push_tick,
				 (lws_usec_t)(sim.push_interval * LWS_US_PER_SEC));
	lws_sul_schedule(sim.ctx, 0, &sul_second, second_tick, LWS_US_PER_SEC);
}

void sim_device_stop(void)
{
	lws_sul_cancel(&sul_push);
	lws_sul_cancel(&sul_second);
	lws_sul_cancel(&sul_reboot);
}

void sim_device_free(void)
{
	cJSON_Delete(sim.state);
	sim.state = NULL;
}
