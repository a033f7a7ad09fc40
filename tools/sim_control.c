/* sim_control.c - the simulator's control channel: the tests' commands on stdin.
 *
 * Owns: reading stdin on the event loop (a duplicate of fd 0, so that lws closing it at
 * EOF leaves fd 0 alone), splitting it into lines (a final line without a newline counts
 * at EOF; an over-long line is refused whole), each command and its "ok CMD" or
 * "error CMD: WHY" reply on stdout: set, push, pushbin, pushbig, pushfrag, freeze, thaw,
 * drop, reboot, ignore, fault, pin, refuse, noreply, clients, mdns, quit (--help has the
 * list). Commands change the device as its buttons would, or bend it as a test needs
 * (sim.ignored / refused / silent, heater_fault, chamber_pinned); they do not own what
 * those change: the state and model (sim_device.c), the writes' rules (sim_writes.c),
 * sending (sim_server.c), the announcement (sim_mdns.c). */
#include "sim.h"
#include "sim_mdns.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PUSH_MAX       (64u * 1024 * 1024) /* largest pushbin / pushbig */
#define LINE_MAX_BYTES (16u * 1024 * 1024) /* longest control line */
#define PUSHBIG_MIN    23		   /* strlen("{\"settings\":{\"pad\":\"\"}}") */

static struct {
	struct lws *stdin_wsi;
	int stdin_fd;
	char *line;
	size_t line_len, line_cap;
	bool line_discard; /* skipping the rest of an over-long line */
} C = {.stdin_fd = -1};

static bool parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > PUSH_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

/* set ROOT.FIELD JSON: a change made on the device itself (buttons, its web UI). */
static const char *control_set(char *arg, size_t arg_len)
{
	char *sp = memchr(arg, ' ', arg_len), *dot;
	const char *key;
	const char *end = NULL;
	cJSON *v, *obj;
	long n;

	if (!sp)
		return "usage: set ROOT.FIELD JSON";
	*sp = '\0';
	dot = strchr(arg, '.');
	if (!dot || dot == arg || !dot[1])
		return "usage: set ROOT.FIELD JSON";
	*dot = '\0';
	key = dot + 1;
	/* the line is NUL-terminated; cJSON wants the NUL inside the length */
	v = cJSON_ParseWithLengthOpts(sp + 1, arg_len - (size_t)(sp + 1 - arg) + 1, &end, 1);
	if (!v)
		return "bad JSON value";
	obj = sim_root(arg);
	if (!obj) {
		sim_say("control: new root %s", arg);
		obj = cJSON_AddObjectToObject(sim.state, arg);
	}
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(v);
		return "not an object root";
	}
	if (!strcmp(arg, "settings")) {
		if (!strcmp(key, "work_on") && (cJSON_IsBool(v) || cJSON_IsNumber(v))) {
			bool on = cJSON_IsBool(v) ? cJSON_IsTrue(v) : v->valuedouble != 0;

			cJSON_Delete(v);
			v = cJSON_CreateBool(on);
		} else if (!strcmp(key, "set_temp") || !strcmp(key, "temp")) {
			key = sim_target_key();
		} else if (!strcmp(key, "cal_warehouse_temp") || !strcmp(key, "warehouse_temper")) {
			if (!cJSON_IsNumber(v)) {
				cJSON_Delete(v);
				return "a temperature must be a number";
			}
			sim.chamber =
			    v->valuedouble - (key[0] == 'w' && sim.doc ? SIM_RAW_OFFSET : 0);
			cJSON_Delete(v);
			return NULL;
		} else if (!strcmp(key, "cal_ptc_temp")) {
			cJSON_Delete(v);
			return "cal_ptc_temp follows the model (set cal_warehouse_temp)";
		} else if (!strcmp(key, "reset") || !strcmp(key, "factory_reset")) {
			cJSON_Delete(v);
			return "not a state field (use the reboot command)";
		} else if (!strcmp(key, "isrunning") && sim_json_int(v, &n) && (n == 0 || n == 1)) {
			cJSON_Delete(v);
			if (n == 0)
				sim_drying_stop("control");
			else if (!sim_drying())
				sim_drying_start();
			return NULL;
		} else if (!strcmp(key, "filament_drying_mode") && sim_json_int(v, &n) && n >= 1 &&
			   n <= 3) {
			cJSON_Delete(v);
			sim_drying_mode(n);
			return NULL;
		}
	}
	sim_put(obj, key, v);
	return NULL;
}

static void control_pushfrag(const char *txt, size_t len)
{
	struct sim_msg *m = sim_msg_new(SIM_MSG_CONTROL);
	size_t a = len / 3, b = (len - a) / 2;

	sim_msg_add(m, txt, a, LWS_WRITE_TEXT | LWS_WRITE_NO_FIN);
	sim_msg_add(m, txt + a, b, LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN);
	sim_msg_add(m, txt + a + b, len - a - b, LWS_WRITE_CONTINUATION);
	sim_say("control: pushfrag %zu bytes (%zu+%zu+%zu) to %u client(s)", len, a, b, len - a - b,
		sim_broadcast(m));
}

/* "heater [CODE]": a heater fault, as the device reports one: settings.ptc_heater_status
 * (the page's "PTC Heater Abnormal" [RE]) pushed to every client and kept in snapshots;
 * the element stays off. "clear": gone (as after a repair and a restart). */
static const char *control_fault(const char *arg)
{
	long code = 1;
	char *end;
	cJSON *o;

	if (!strcmp(arg, "clear")) {
		sim.heater_fault = false;
		cJSON_DeleteItemFromObjectCaseSensitive(sim_settings(), "ptc_heater_status");
		if (sim.doc)
			sim_put_num("ptc_heater_status", 0);
		sim_say("control: heater fault cleared");
		return NULL;
	}
	if (strncmp(arg, "heater", 6) || (arg[6] && arg[6] != ' '))
		return "usage: fault heater [CODE] | fault clear";
	if (arg[6]) {
		code = strtol(arg + 7, &end, 10);
		if (end == arg + 7 || *end)
			return "usage: fault heater [CODE] | fault clear";
	}
	sim.heater_fault = true;
	sim.heating = false;
	sim_put_num("ptc_heater_status", (double)code);
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "ptc_heater_status", (double)code);
	sim_push_root("settings", o);
	sim_say("control: heater fault %ld", code);
	return NULL;
}

static void control_line(char *line, size_t len)
{
	char *cmd = line, *arg, *sp;
	const char *err = NULL;
	size_t arg_len, n;

	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (!len)
		return;
	sp = memchr(line, ' ', len);
	if (sp) {
		*sp = '\0';
		arg = sp + 1;
		arg_len = len - (size_t)(arg - line);
	} else {
		arg = line + len;
		arg_len = 0;
	}
	sim_debug("control: %s", cmd);

	if (!strcmp(cmd, "set")) {
		err = control_set(arg, arg_len);
	} else if (!strcmp(cmd, "push")) {
		sim_say("control: push %zu bytes to %u client(s)", arg_len,
			sim_broadcast_text(SIM_MSG_CONTROL, arg, arg_len));
	} else if (!strcmp(cmd, "pushbin")) {
		if (!parse_size(arg, &n)) {
			err = "usage: pushbin N (0-67108864)";
		} else {
			struct sim_msg *m = sim_msg_new(SIM_MSG_CONTROL);
			unsigned char *p;
			size_t i;

			p = sim_msg_add(m, NULL, n, LWS_WRITE_BINARY);
			for (i = 0; i < n; i++)
				p[i] = (unsigned char)i;
			sim_say("control: pushbin %zu bytes to %u client(s)", n, sim_broadcast(m));
		}
	} else if (!strcmp(cmd, "pushbig")) {
		if (!parse_size(arg, &n) || n < PUSHBIG_MIN) {
			err = "usage: pushbig N (23-67108864)";
		} else {
			char *txt = sim_xmalloc(n);
			size_t pad = n - PUSHBIG_MIN;

			memcpy(txt, "{\"settings\":{\"pad\":\"", 20);
			memset(txt + 20, 'x', pad);
			memcpy(txt + 20 + pad, "\"}}", 3);
			sim_say("control: pushbig %zu bytes to %u client(s)", n,
				sim_broadcast_text(SIM_MSG_CONTROL, txt, n));
			free(txt);
		}
	} else if (!strcmp(cmd, "pushfrag")) {
		control_pushfrag(arg, arg_len);
	} else if (!strcmp(cmd, "freeze")) {
		sim.frozen = true;
		sim_say("control: frozen: sending nothing");
	} else if (!strcmp(cmd, "thaw")) {
		sim_thaw();
		sim_say("control: thawed");
	} else if (!strcmp(cmd, "drop")) {
		sim_say("control: dropping %u client(s)", sim_drop_all(false));
	} else if (!strcmp(cmd, "reboot")) {
		sim_reboot("control");
	} else if (!strcmp(cmd, "ignore")) {
		if (!arg_len || !memchr(arg, '.', arg_len)) {
			err = "usage: ignore ROOT.FIELD";
		} else {
			if (!sim.ignored)
				sim.ignored = cJSON_CreateArray();
			cJSON_AddItemToArray(sim.ignored, cJSON_CreateString(arg));
			sim_say("control: ignoring writes to %s", arg);
		}
	} else if (!strcmp(cmd, "fault")) {
		err = control_fault(arg);
	} else if (!strcmp(cmd, "pin")) {
		if (strcmp(arg, "on") && strcmp(arg, "off")) {
			err = "usage: pin on|off";
		} else {
			sim.chamber_pinned = !strcmp(arg, "on");
			sim_say("control: chamber %s", sim.chamber_pinned ? "pinned" : "free");
		}
	} else if (!strcmp(cmd, "refuse") || !strcmp(cmd, "noreply")) {
		cJSON **list = cmd[0] == 'r' ? &sim.refused : &sim.silent;

		if (!arg_len || strchr(arg, ' ')) {
			err = cmd[0] == 'r' ? "usage: refuse TYPE" : "usage: noreply TYPE";
		} else {
			if (!*list)
				*list = cJSON_CreateArray();
			cJSON_AddItemToArray(*list, cJSON_CreateString(arg));
			sim_say("control: %s %s", cmd, arg);
		}
	} else if (!strcmp(cmd, "clients")) {
		sim_reply("ok clients %u", sim_client_count());
		return;
	} else if (!strcmp(cmd, "mdns")) {
		if (strcmp(arg, "on") && strcmp(arg, "off")) {
			err = "usage: mdns on|off";
		} else if (!sim.mdns_name) {
			err = "not announcing (no --mdns)";
		} else {
			sim_mdns_set_published(!strcmp(arg, "on"));
			sim_reply("ok mdns %s", arg);
			return;
		}
	} else if (!strcmp(cmd, "quit")) {
		sim.quit = true;
	} else {
		err = "unknown command";
	}
	if (err) {
		sim_say("control: %s: %s", cmd, err);
		sim_reply("error %s: %s", cmd, err);
	} else {
		sim_reply("ok %s", cmd);
	}
}

/* Split what stdin gave into lines; a final line without a newline counts at EOF. */
static void control_feed(const char *data, size_t n, bool eof)
{
	char *nl;
	size_t used;

	if (C.line_len + n + 1 > C.line_cap) {
		size_t cap = C.line_cap ? C.line_cap : 4096;
		char *p;

		while (cap < C.line_len + n + 1)
			cap *= 2;
		p = realloc(C.line, cap);
		if (!p) {
			fprintf(stderr, SIM_NAME ": out of memory\n");
			abort();
		}
		C.line = p;
		C.line_cap = cap;
	}
	if (n)
		memcpy(C.line + C.line_len, data, n);
	C.line_len += n;

	while (!sim.quit && (nl = memchr(C.line, '\n', C.line_len))) {
		*nl = '\0';
		used = (size_t)(nl - C.line) + 1;
		if (C.line_discard)
			C.line_discard = false;
		else
			control_line(C.line, used - 1);
		memmove(C.line, C.line + used, C.line_len - used);
		C.line_len -= used;
	}
	if (sim.quit)
		return;
	if (eof && C.line_len && !C.line_discard) {
		C.line[C.line_len] = '\0';
		control_line(C.line, C.line_len);
		C.line_len = 0;
	} else if (C.line_len > LINE_MAX_BYTES) {
		if (!C.line_discard)
			sim_reply("error line too long");
		C.line_discard = true;
		C.line_len = 0;
	}
}

/* Read what is left on stdin without blocking: lws may report a hang-up (and close) while
 * the last lines are still unread. */
static void control_drain(void)
{
	struct pollfd pfd = {.fd = C.stdin_fd, .events = POLLIN};
	char buf[16384];
	ssize_t n;

	while (!sim.quit && poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP))) {
		n = read(C.stdin_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		control_feed(buf, (size_t)n, false);
	}
}

int sim_control_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	char buf[16384];
	ssize_t n;

	(void)wsi;
	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		n = read(C.stdin_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return 0;
		if (n < 0)
			sim_say("stdin: %s", strerror(errno));
		if (n <= 0)
			return -1; /* EOF: handled in RAW_CLOSE_FILE */
		control_feed(buf, (size_t)n, false);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		/* EOF, hang-up, error or exit; lws closes the descriptor after this */
		if (!sim.exiting && C.stdin_fd >= 0) {
			control_drain();
			if (!sim.quit) {
				control_feed(NULL, 0, true);
				sim_say("stdin closed: control channel off, still serving");
			}
		}
		C.stdin_wsi = NULL;
		C.stdin_fd = -1;
		return 0;
	default:
		return 0;
	}
}

void sim_control_open(void)
{
	lws_sock_file_fd_type u;

	/* a duplicate, so that lws closing it at EOF leaves fd 0 alone */
	C.stdin_fd = dup(STDIN_FILENO);
	if (C.stdin_fd < 0) {
		sim_say("no stdin (%s): control channel off", strerror(errno));
		return;
	}
	u.filefd = C.stdin_fd;
	C.stdin_wsi =
	    lws_adopt_descriptor_vhost(sim.vh, LWS_ADOPT_RAW_FILE_DESC, u, "sim-control", NULL);
	if (!C.stdin_wsi) { /* lws closed the descriptor */
		sim_say("cannot watch stdin: control channel off");
		C.stdin_fd = -1;
	}
}

void sim_control_free(void)
{
	free(C.line);
	C.line = NULL;
	cJSON_Delete(sim.ignored);
	cJSON_Delete(sim.refused);
	cJSON_Delete(sim.silent);
	sim.ignored = sim.refused = sim.silent = NULL;
}
