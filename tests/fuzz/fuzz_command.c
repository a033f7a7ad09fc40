/* fuzz_command.c - libFuzzer target: one MQTT command for a device.
 *
 * Input layout (so that any byte string is a valid input):
 *   byte 0, bit 0:  0 = a JSON object on <base>/<id>/set (p2m_command_parse_object),
 *                   1 = a plain payload on <base>/<id>/set/<field> (p2m_command_parse_field)
 *   byte 0, bit 1:  the gateway holds typed secrets (Wi-Fi password, printer access code)
 *                   and a Klipper port for the device (FUZZ_LOCAL_HELD), else only
 *                   selections (FUZZ_LOCAL_PLAIN)
 *   byte 0, bit 2:  strict [safety] (max_target_temp 45, max_drying_hours 24), else the
 *                   defaults (60, 99)
 *   byte 1:         the device state, (byte - '0') modulo 9: '0' a Panda Breath that has
 *                   not reported yet, '1' V1.0.0 off, '2' V1.0.3 heating (the fixture
 *                   first-frame-v1.0.3.json), '3' drying, '4' V1.0.1 Auto off, '5' V1.0.4
 *                   with its own HA link, '6' the document's dialect (cal_* fields), '7' a
 *                   heater fault while heating, '8' a PTalk after its handshake (with a
 *                   firmware image to offer)
 *   the rest:       object mode: the payload; field mode: the field name up to the first
 *                   '\n' (a topic level: no NUL), then the payload.
 * So a readable seed starts "02{...}" (an object for the V1.0.3 heater) or
 * "13mode\nheat" (a plain payload for the drying one).
 * Then, as device_send.c does: p2m_command_plan; a rejection must name no frames and give
 * a reason, which never shows a secret the command carried. A plan is checked against
 * what the driver promises (docs/protocol-panda-breath.md, driver.h): the Panda Breath's
 * frames are one settings field each, work_on a JSON boolean and last of the heating
 * steps, targets and drying runs within the row ranges and the [safety] caps, the frames
 * that restart the device last; a PTalk's are requests, reboot last. Then the values the
 * gateway holds (cmd.local) are merged, the frames are merged into the state as the
 * device would report them back (which must merge without a problem), the state and
 * discovery are rebuilt and checked as in fuzz_frame (no secret published, typed ones
 * included), and the [safety] off command is checked against the new state. */
#include "fuzz_device.h"

static struct fuzz_fixtures fx;
static const struct p2m_safety safety[2] = {FUZZ_SAFETY, FUZZ_SAFETY_STRICT};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_fixtures_load(&fx, &safety[0]);
	return 0;
}

/* One command against one state. */
struct run {
	const struct fuzz_base *base;
	int held; /* which FUZZ_LOCAL_* */
	const struct p2m_safety *safety;
	const cJSON *command;
};

static double number_in(const cJSON *frame, const char *root, const char *field, bool *has)
{
	const cJSON *v = p2m_json_field(frame, root, field);

	*has = v != NULL;
	if (v && !cJSON_IsNumber(v))
		fuzz_fail("planned %s.%s is not a number", root, field);
	return v ? v->valuedouble : 0;
}

static void check_range(const cJSON *frame, const char *field, double min, double max)
{
	bool has;
	double x = number_in(frame, "settings", field, &has);

	if (has && !(x >= min && x <= max && x == (double)(long)x))
		fuzz_fail("planned settings.%s %g, outside %g..%g or not whole", field, x, min,
			  max);
}

/* The Panda Breath's write discipline and caps (panda_breath.c's header); the frames that
 * restart the device come last (a hostname and a restart in one command are two). */
static void check_pb_frames(const struct run *r, const cJSON *frames)
{
	const struct p2m_driver *drv = r->base->d.drv;
	const struct p2m_safety *s = r->safety;
	double max_target = s->max_target_temp;
	bool restarted = false, heat_on = false;
	const cJSON *f, *root;

	cJSON_ArrayForEach(f, frames)
	{
		const cJSON *settings = cJSON_GetObjectItemCaseSensitive(f, "settings");

		if (!cJSON_IsObject(f) || !f->child)
			fuzz_fail("a planned frame is not an object with members");
		if (f->child->string[0] == '@')
			continue;
		if (restarted && !drv->restarts(f))
			fuzz_fail("a frame is planned after one that restarts the device");
		restarted = restarted || drv->restarts(f);
		cJSON_ArrayForEach(root, f)
		{
			if (!fuzz_known_root(drv, root->string) || !cJSON_IsObject(root))
				fuzz_fail("a planned frame has the root '%s'", root->string);
		}
		if (!settings)
			continue;
		if (f->child->next || cJSON_GetArraySize(settings) != 1)
			fuzz_fail("a settings frame is not one field");
		if (heat_on && (p2m_json_field(f, "settings", "work_mode") ||
				p2m_json_field(f, "settings", "set_temp") ||
				p2m_json_field(f, "settings", "temp") ||
				p2m_json_field(f, "settings", "isrunning")))
			fuzz_fail("settings.%s planned after work_on:true",
				  settings->child->string);
		if (p2m_json_field(f, "settings", "work_on")) {
			const cJSON *on = p2m_json_field(f, "settings", "work_on");

			if (!cJSON_IsBool(on))
				fuzz_fail("work_on planned as a non-boolean");
			heat_on = cJSON_IsTrue(on);
		}
		check_range(f, "set_temp", 0, max_target);
		check_range(f, "temp", 0, max_target);
		check_range(f, "filament_temp", 40, max_target < 60 ? max_target : 60);
		check_range(f, "filament_timer", 1,
			    s->max_drying_hours < 99 ? s->max_drying_hours : 99);
		check_range(f, "hotbedtemp", 40, 120);
		check_range(f, "filtertemp", 0, 120);
		check_range(f, "work_mode", 1, 3);
		check_range(f, "filament_drying_mode", 1, 3);
		check_range(f, "isrunning", 0, 1);
	}
}

/* A PTalk's requests (ptalk.c): each names its request; levels 0..100; reboot last. */
static void check_ptalk_frames(const cJSON *frames)
{
	static const char *const levels[] = {"volume", "brightness"};
	bool rebooted = false;
	const cJSON *f;

	cJSON_ArrayForEach(f, frames)
	{
		const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(f, "cmd");

		if (!cJSON_IsObject(f) || !f->child)
			fuzz_fail("a planned frame is not an object with members");
		if (f->child->string[0] == '@')
			continue;
		if (rebooted)
			fuzz_fail("a request is planned after reboot");
		if (!cJSON_IsString(cmd))
			fuzz_fail("a planned request has no cmd");
		rebooted = strcmp(cmd->valuestring, "reboot") == 0;
		for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, levels[i]);

			if (v &&
			    !(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 100))
				fuzz_fail("a planned %s is out of 0..100", levels[i]);
		}
	}
}

/* The strings of a command that are secrets: at a name that looks secret (any depth), or
 * the value of a row that holds a secret (P2M_V_SECRET). Collected, or rotated (out NULL). */
static void command_secrets(const struct p2m_driver *drv, cJSON *command, struct fuzz_strs *out)
{
	cJSON *m;

	cJSON_ArrayForEach(m, command)
	{
		const struct p2m_entity *e = p2m_entity_find(drv, m->string);

		if (fuzz_secret_name(m->string) || (e && e->vtype == P2M_V_SECRET))
			fuzz_mark(m, out);
		else if (cJSON_IsObject(m))
			command_secrets(drv, m, out);
	}
}

/* Plan r->command (rotated: with every secret of it, of the base and of the held values
 * rotated) and publish the result: its strings into out, the rejection's reason too;
 * copies of the strings published as they are into clean (NULL: not collected; the
 * caller frees them). Unless rotated, the plan and the state are checked. Returns 0 when
 * planned. */
static int run(const struct run *r, bool rotated, struct fuzz_text *out, struct fuzz_strs *clean)
{
	const struct fuzz_base *base = r->base;
	const struct p2m_driver *drv = base->d.drv;
	struct fuzz_dev d = fuzz_dev_copy(base, NULL, r->safety);
	cJSON *local = drv->dials_in
			   ? NULL
			   : cJSON_Duplicate((rotated ? fx.local_rot : fx.local)[r->held], true);
	cJSON *command = rotated ? cJSON_Duplicate(r->command, true) : (cJSON *)r->command;
	struct p2m_view view;
	struct p2m_cmd cmd;
	int rc;

	if (rotated) {
		cJSON_Delete(d.dev);
		d.dev = cJSON_Duplicate(base->rot, true);
		command_secrets(drv, command, NULL);
	}
	d.local = local;
	view = fuzz_view(&d);
	cmd = (struct p2m_cmd){.driver = drv, .dev = d.dev, .view = &view, .safety = r->safety};
	rc = p2m_command_plan(&cmd, command);
	if (rc != 0) {
		if (cmd.frames || !cmd.reason[0])
			fuzz_fail("a rejection sends frames or says no reason");
		fuzz_text_add(out, cmd.reason);
	} else {
		char *inputs, *disc = NULL;
		int problems;

		if (!rotated) {
			char *frames = p2m_json_print(cmd.frames);

			cJSON_free(frames);
			if (drv->dials_in)
				check_ptalk_frames(cmd.frames);
			else
				check_pb_frames(r, cmd.frames);
		}
		if (cmd.local && local)
			p2m_json_merge(local, cmd.local);
		/* the device does what it was sent and reports it */
		problems = fuzz_echo_frames(drv, d.dev, cmd.frames);
		if (problems && !drv->dials_in && !rotated) {
			char *f = p2m_json_print(cmd.frames);
			fuzz_fail("the device could not report back what it was sent: %s", f);
		}
		p2m_entity_note_seen(drv, d.dev, d.seen);
		inputs = fuzz_render(&d, out, base->inputs, true, &disc);
		if (!rotated)
			fuzz_check_safety_off(&d, fx.off);
		if (clean) {
			/* copies: the state and the held values are gone when they are used */
			struct fuzz_strs held = {0}, published = {0};
			const cJSON *m;

			fuzz_taint(drv, d.dev, &held, &published);
			/* the selections held are published as they are */
			cJSON_ArrayForEach(m, local)
			{
				if (cJSON_IsString(m) && !fuzz_secret_name(m->string))
					fuzz_strs_add(&published, m->valuestring);
			}
			for (size_t i = 0; i < published.n; i++)
				fuzz_strs_add(clean, strdup(published.v[i]));
			free(held.v);
			free(published.v);
		}
		free(inputs);
		cJSON_free(disc);
	}
	p2m_command_clear(&cmd);
	if (rotated)
		cJSON_Delete(command);
	cJSON_Delete(local);
	cJSON_Delete(d.dev);
	return rc;
}

static void rerun_rotated(void *ud, struct fuzz_text *out)
{
	(void)run(ud, true, out, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *payload;
	size_t len, state;
	char err[256] = "";
	cJSON *command;
	struct run r;
	const struct p2m_driver *drv;
	struct fuzz_text out = {0};
	struct fuzz_strs secrets = {0}, clean = {0};
	const struct fuzz_strs *lists[3];

	if (size < 2)
		return 0;
	state = (uint8_t)(data[1] - '0') % (FUZZ_N_BASES + 1);
	r = (struct run){.base = state < FUZZ_N_BASES ? &fx.pb[state] : &fx.pt[1],
			 .held = (data[0] >> 1) & 1,
			 .safety = &safety[(data[0] >> 2) & 1]};
	drv = r.base->d.drv;
	payload = (const char *)data + 2;
	len = size - 2;
	if (data[0] & 1) {
		const char *nl = memchr(payload, '\n', len);
		size_t flen = nl ? (size_t)(nl - payload) : len;
		char *field;

		if (memchr(payload, '\0', flen))
			return 0; /* MQTT topics cannot hold NUL */
		field = strndup(payload, flen);
		if (!field)
			abort();
		payload = nl ? nl + 1 : payload + len;
		len = nl ? len - flen - 1 : 0;
		command = p2m_command_parse_field(drv, field, payload, len, err, sizeof(err));
		free(field);
	} else {
		command = p2m_command_parse_object(payload, len, err, sizeof(err));
	}
	if (!command) {
		if (!err[0])
			fuzz_fail("a payload refused without a reason");
		return 0;
	}
	r.command = command;
	(void)run(&r, false, &out, &clean);
	command_secrets(drv, command, &secrets);
	lists[0] = &secrets;
	lists[1] = &r.base->secrets;
	lists[2] = drv->dials_in ? NULL : &fx.local_secrets[r.held];
	fuzz_check_secrets(drv->name, &out, lists, 3, &clean, rerun_rotated, &r, data, size);
	free(secrets.v);
	for (size_t i = 0; i < clean.n; i++)
		free((char *)clean.v[i]);
	free(clean.v);
	fuzz_text_free(&out);
	cJSON_Delete(command);
	return 0;
}
