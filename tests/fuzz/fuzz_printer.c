/* fuzz_printer.c - libFuzzer target: the messages of the bound printer's MQTT topics
 * ([printer], printer_source.h): plain values (Home Assistant's statestream), JSON with a
 * dotted path, Bambu reports merged field by field.
 *
 * Input layout: byte 0 picks the [printer] configuration, (byte - '0') modulo 5:
 *   '0' a Bambu report topic only; '1' a plain topic per value (bed, bed target, nozzle,
 *   print state); '2' JSON paths into two topics (OctoPrint-like); '3' a Bambu report and
 *   plain paths into that same topic; '4' every value from one topic, at the path given
 *   by the first record (so the path itself is fuzzed).
 * Then records (at most MAX_MESSAGES) separated by the byte 0x1e (ASCII record
 * separator): each record's first byte picks a topic, (byte - '0') modulo the
 * configuration's topics plus one (the one past them: the source goes quiet and is
 * forgotten, p2m_printer_source_forget), the rest is the payload as it came off the
 * broker.
 * Checked after every message (the published state and Moonraker's answer after the
 * last):
 *  - a feed that says nothing changed changed nothing (else the state goes unpublished);
 *  - what is kept is a Bambu-shaped {"print":{...}} of the table's fields only, each of
 *    the row's type, strings within P2M_MAX_STRING_BYTES: bounded, whatever is sent;
 *  - the status (p2m_printer_source_status) is finite, its print state one of the enum,
 *    its progress in 0..1, and known exactly when something is kept;
 *  - the printer's published state's raw report holds only the table's fields (the
 *    table names no report_fields);
 *  - the virtual Moonraker answers the Panda Breath's own poll
 *    (tests/fixtures/panda_breath/moonraker-request-v1.0.3.json) with the bed temperature
 *    the status holds (0 when unknown: the Auto mode heats on it) and a print state the
 *    firmware knows;
 *  - in configuration '4', p2m_printer_extract of each payload at the path gives a finite
 *    number or a string of at most P2M_MAX_STRING_BYTES, or a reason. */
#include "fuzz_common.h"

#include "panda2mqtt/entity.h"
#include "panda2mqtt/moonraker_rpc.h"
#include "panda2mqtt/printer_source.h"

#include <math.h>

#define RS 0x1e
/* Messages taken of one input: what is kept is at most the table's seven fields, and no
 * effect of a sequence needs more than a few messages; an input of thousands of tiny
 * ones would only make every execution slower. The rest of a longer input is ignored. */
#define MAX_MESSAGES 64

static char *poll; /* the Panda Breath's Moonraker poll, from the fixture */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	poll = fuzz_read_fixture("panda_breath/moonraker-request-v1.0.3.json");
	return 0;
}

/* The configurations: topics of each source, and its path. */
struct conf {
	const char *bambu;
	const char *topic[P2M_SRC_COUNT];
	const char *path[P2M_SRC_COUNT];
};

static const struct conf confs[] = {
    {.bambu = "device/01S00C000000000/report"},
    {.topic = {"homeassistant/sensor/bed/state", "homeassistant/sensor/bed_target/state",
	       "homeassistant/sensor/nozzle/state", "homeassistant/sensor/print/state"}},
    {.topic = {"octoprint/temperature/bed", "octoprint/temperature/bed",
	       "octoprint/temperature/tool0", "octoprint/event/PrinterStateChanged"},
     .path = {"actual", "target", "actual", "state_string"}},
    {.bambu = "printer/report",
     .topic = {"printer/report", "printer/report", NULL, "printer/report"},
     .path = {"print.bed_temper", "print.bed_target_temper", NULL, "print.gcode_state"}},
    {.topic = {"one/topic", "one/topic", "one/topic", "one/topic"}},
};
#define N_CONFS (sizeof(confs) / sizeof(confs[0]))

/* The distinct topics of a configuration. */
static size_t topics_of(const struct p2m_printer_conf *c, const char **out)
{
	size_t n = 0;

	if (c->bambu_report_topic)
		out[n++] = c->bambu_report_topic;
	for (int i = 0; i < P2M_SRC_COUNT; i++) {
		bool dup = !c->src[i].topic;

		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(out[k], c->src[i].topic) == 0;
		if (!dup)
			out[n++] = c->src[i].topic;
	}
	return n;
}

/* Members of the print root: the table's fields, of the rows' types, bounded. */
static void check_kept_fields(const cJSON *print)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, print)
	{
		const struct p2m_entity *e = NULL;

		for (size_t i = 0; i < p2m_printer_driver.n_entities && !e; i++)
			if (strcmp(p2m_printer_driver.entities[i].field, m->string) == 0)
				e = &p2m_printer_driver.entities[i];
		if (!e)
			fuzz_fail("printer: print.%s is kept, which no row reads", m->string);
		if (e->vtype == P2M_V_STRING
			? !cJSON_IsString(m) || strlen(m->valuestring) > P2M_MAX_STRING_BYTES
			: !cJSON_IsNumber(m) || !isfinite(m->valuedouble))
			fuzz_fail("printer: print.%s is kept with a wrong or oversized value",
				  m->string);
	}
}

static void check_kept(const cJSON *report)
{
	const cJSON *print = cJSON_GetObjectItemCaseSensitive(report, "print");

	if (!cJSON_IsObject(report) || cJSON_GetArraySize(report) != 1 || !cJSON_IsObject(print))
		fuzz_fail("printer: what is kept is not {\"print\":{...}}");
	check_kept_fields(print);
}

/* The status; with published (once per input, after its last message: both depend only
 * on what is kept, and any state kept after some message is the last of a shorter
 * input) the printer's published state and the virtual Moonraker's answer too. */
static void check_status(const struct p2m_printer_source *src, bool published)
{
	struct p2m_printer_status s;
	struct p2m_moonraker_view v;
	const cJSON *report = p2m_printer_source_report(src);
	bool known = p2m_printer_source_known(src);
	struct p2m_view view = {.dev = report, .now = 1e6};
	cJSON *state, *reply, *bed, *ps;
	char *out;

	p2m_printer_source_status(src, &s);
	if ((s.has_bed && !isfinite(s.bed)) || (s.has_bed_target && !isfinite(s.bed_target)) ||
	    (s.has_nozzle && !isfinite(s.nozzle)) ||
	    (s.has_nozzle_target && !isfinite(s.nozzle_target)) ||
	    !(s.progress >= 0 && s.progress <= 1) || s.state < P2M_PRINT_UNKNOWN ||
	    s.state > P2M_PRINT_CANCELLED)
		fuzz_fail("printer: a status out of its range");
	if (known != (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(report, "print")) > 0))
		fuzz_fail("printer: known() does not say whether anything is kept");
	(void)p2m_print_state_klipper(s.state);
	(void)p2m_print_state_bambu(s.state);

	if (!published)
		return;
	/* the printer's Home Assistant device */
	state = p2m_entity_state(&p2m_printer_driver, &view);
	check_kept_fields(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(state, "device"), "print"));
	fuzz_consume(state);

	/* the virtual Moonraker's answer to the device's poll */
	v = (struct p2m_moonraker_view){.status = &s, .known = known, .eventtime = 1};
	out = p2m_moonraker_rpc(poll, strlen(poll), &v);
	reply = cJSON_Parse(out);
	bed = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(reply, "result"),
						 "status"),
		"heater_bed"),
	    "temperature");
	ps = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(reply, "result"),
						 "status"),
		"print_stats"),
	    "state");
	/* as printed by cJSON: %1.15g when that reads back within a rounding step */
	if (!cJSON_IsNumber(bed) ||
	    fabs(bed->valuedouble - (s.has_bed ? s.bed : 0)) > 1e-12 * fmax(1, fabs(s.bed)))
		fuzz_fail("printer: Moonraker's heater_bed.temperature is not the bed's: %s", out);
	if (!cJSON_IsString(ps) ||
	    (strcmp(ps->valuestring, "standby") != 0 && strcmp(ps->valuestring, "printing") != 0 &&
	     strcmp(ps->valuestring, "paused") != 0 && strcmp(ps->valuestring, "complete") != 0 &&
	     strcmp(ps->valuestring, "cancelled") != 0))
		fuzz_fail("printer: Moonraker's print_stats.state is not one the firmware knows");
	cJSON_Delete(reply);
	cJSON_free(out);
}

static void check_extract(const char *payload, size_t len, const char *path)
{
	char err[160] = "";
	cJSON *v = p2m_printer_extract(payload, len, path, err, sizeof(err));

	if (!v) {
		if (!err[0])
			fuzz_fail("printer: p2m_printer_extract fails without a reason");
		return;
	}
	if (!(cJSON_IsNumber(v) && isfinite(v->valuedouble)) &&
	    !(cJSON_IsString(v) && strlen(v->valuestring) <= P2M_MAX_STRING_BYTES))
		fuzz_fail("printer: p2m_printer_extract gives neither a finite number nor a "
			  "short string");
	cJSON_Delete(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct conf *c;
	struct p2m_printer_conf pc = {.enabled = true, .id = "printer", .name = "Printer"};
	struct p2m_printer_source *src;
	cJSON *kept;
	const char *topics[P2M_SRC_COUNT + 1];
	const char *p, *end = (const char *)data + size;
	char *path = NULL;
	size_t n;

	if (size < 1)
		return 0;
	c = &confs[(uint8_t)(data[0] - '0') % N_CONFS];
	p = (const char *)data + 1;
	pc.bambu_report_topic = (char *)c->bambu;
	for (int i = 0; i < P2M_SRC_COUNT; i++) {
		pc.src[i].topic = (char *)c->topic[i];
		pc.src[i].path = (char *)c->path[i];
	}
	if (c == &confs[4]) {
		const char *rs = memchr(p, RS, (size_t)(end - p));

		path = strndup(p, rs ? (size_t)(rs - p) : (size_t)(end - p));
		if (!path)
			abort();
		p = rs ? rs + 1 : end;
		for (int i = 0; i < P2M_SRC_COUNT; i++)
			pc.src[i].path = *path ? path : NULL;
	}
	n = topics_of(&pc, topics);
	src = p2m_printer_source_new(&pc);
	for (size_t i = 0; i < n; i++)
		if (!p2m_printer_source_wants(src, topics[i]))
			fuzz_fail("printer: a configured topic is not wanted");
	if (p2m_printer_source_wants(src, "nope/topic"))
		fuzz_fail("printer: a topic nobody configured is wanted");

	kept = cJSON_Duplicate(p2m_printer_source_report(src), true);
	for (size_t m = 0; p < end && m < MAX_MESSAGES; m++) {
		const char *rs = memchr(p, RS, (size_t)(end - p));
		const char *rec_end = rs ? rs : end;
		size_t pick = p < rec_end ? (uint8_t)(*p - '0') % (n + 1) : n;
		const char *payload = p < rec_end ? p + 1 : p;
		size_t len = (size_t)(rec_end - payload);
		bool changed;

		if (pick == n) {
			changed = p2m_printer_source_forget(src);
			if (p2m_printer_source_known(src))
				fuzz_fail("printer: something is known after forget()");
		} else {
			changed = p2m_printer_source_feed(src, topics[pick], payload, len);
		}
		/* kept: what was kept after the last message that said it changed something */
		if (changed) {
			cJSON_Delete(kept);
			kept = cJSON_Duplicate(p2m_printer_source_report(src), true);
		} else if (!cJSON_Compare(kept, p2m_printer_source_report(src), true)) {
			fuzz_fail("printer: a message changed what is kept but says it did not");
		}
		check_kept(p2m_printer_source_report(src));
		check_status(src, false);
		if (path && pick < n)
			check_extract(payload, len, *path ? path : NULL);
		p = rs ? rs + 1 : end;
	}
	check_status(src, true);
	cJSON_Delete(kept);
	p2m_printer_source_free(src);
	free(path);
	return 0;
}
