/* fuzz_frame.c - libFuzzer target: one WebSocket text message from a device.
 *
 * The input is the message's text, as ws.c hands it to device.c. Like device.c's
 * on_message(), it is parsed, given to the driver's reply_of() (any frame may be a typed
 * reply; that hook must take anything), checked with is_snapshot(), and merged
 * (p2m_entity_merge_frame, with the caps of entity.h: depth 8, strings and names 256
 * bytes, members per root, stored bytes) into a device state:
 *  - into a device that has not reported yet, as the first frame of a connection: a
 *    whole snapshot (driver snapshot_is_whole);
 *  - into one realistic state (fuzz_device.h; chosen by the input's length, so it is
 *    deterministic), whole or not (the same way).
 * Then the driver's events from the state before and after (each must be declared), the
 * published state with its raw report, and discovery are built, and checked:
 *  - what is kept of the device stays within p2m_entity_max_stored(): a frame of small
 *    values takes far more memory than its text, and a whole snapshot must not let a
 *    device grow its state either;
 *  - after a whole snapshot, no scalar its roots leave out is kept in them;
 *  - nothing secret is published (fuzz_check_secrets, fuzz_check_report);
 *  - discovery: equal inputs (p2m_ha_discovery_inputs, which device_publish.c compares to
 *    skip rebuilding it) give an equal payload;
 *  - the [safety] off command still switches a heating device off.
 * The same text is also taken as a PTalk message (a request/reply family that dials in):
 * the driver's message() turns it into a frame, which is merged, bounded, published and
 * named (device_id) the same way, as the handshake of a new device and as the answer to
 * a request of a known one. */
#include "fuzz_device.h"

static struct fuzz_fixtures fx;
static const struct p2m_safety safety = FUZZ_SAFETY;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_fixtures_load(&fx, &safety);
	return 0;
}

static void check_bound(const struct fuzz_dev *d)
{
	size_t held = p2m_entity_stored_bytes(d->dev), max = p2m_entity_max_stored(d->drv);

	if (held > max)
		fuzz_fail("%s: the state holds %zu bytes, bound %zu", d->drv->name, held, max);
}

/* After a whole snapshot, a stored root holds no scalar that the frame's root (the last
 * of that name, which wins) leaves out. */
static void check_whole(const struct fuzz_dev *d, const cJSON *frame)
{
	const cJSON *root, *later, *m;

	cJSON_ArrayForEach(root, frame)
	{
		bool last = true;

		for (later = root->next; later && last; later = later->next)
			last = strcmp(later->string, root->string) != 0;
		if (!last || !cJSON_IsObject(root) || !fuzz_known_root(d->drv, root->string))
			continue;
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(d->dev, root->string))
		{
			if (!cJSON_IsObject(m) && !cJSON_IsArray(m) &&
			    !cJSON_GetObjectItemCaseSensitive(root, m->string))
				fuzz_fail("a whole snapshot without %s.%s leaves it stored",
					  root->string, m->string);
		}
	}
}

/* What one application of the input is. */
struct run {
	const struct fuzz_base *base;
	const cJSON *frame;
	bool whole;
	const cJSON *local, *local_rot;
	bool disc; /* discovery was built */
};

/* The same as apply() below with every secret of the base, the held values and the frame
 * rotated: what is published then. */
static void rerun_rotated(void *ud, struct fuzz_text *out)
{
	const struct run *r = ud;
	struct fuzz_dev d = r->base->d;
	cJSON *frame = cJSON_Duplicate(r->frame, true);
	char *disc = NULL;

	d.dev = cJSON_Duplicate(r->base->rot, true);
	d.local = r->local_rot;
	fuzz_taint(d.drv, frame, NULL, NULL);
	(void)fuzz_take_frame(&d, frame, r->whole);
	free(fuzz_render(&d, out, NULL, true, r->disc ? &disc : NULL));
	cJSON_free(disc);
	cJSON_Delete(frame);
	cJSON_Delete(d.dev);
}

/* r->frame taken into a copy of r->base as device.c takes a frame, then published and
 * checked. */
static void apply(struct run *r, const uint8_t *data, size_t size)
{
	const struct fuzz_base *base = r->base;
	const struct p2m_driver *drv = base->d.drv;
	struct fuzz_dev d = fuzz_dev_copy(base, r->local, &safety);
	struct fuzz_text out = {0};
	struct fuzz_strs secrets = {0}, held = {0}, clean = {0};
	const struct fuzz_strs *lists[] = {&base->secrets, &secrets, &fx.local_secrets[0]};
	const char *fw = drv->fw_version(d.dev);
	char *fw_old = fw ? strdup(fw) : NULL, *inputs, *disc = NULL;
	int rc;

	rc = fuzz_take_frame(&d, r->frame, r->whole);
	check_bound(&d);
	if (r->whole && drv->snapshot_is_whole && rc >= 0)
		check_whole(&d, r->frame);
	/* device.c compares the firmware before and after, and logs a change */
	fw = drv->fw_version(d.dev);
	if (fw && fw_old)
		(void)strcmp(fw, fw_old);
	free(fw_old);

	/* discovery as device_publish.c builds it: when its inputs changed; and for one
	 * input in 16 also when not, to check that equal inputs give an equal payload */
	inputs = fuzz_render(&d, &out, base->inputs, fuzz_hash(data, size) % 16 == 0, &disc);
	r->disc = disc != NULL;
	if (disc && strcmp(inputs, base->inputs) == 0 && strcmp(disc, base->disc) != 0)
		fuzz_fail(
		    "%s: discovery changed, but not its inputs (p2m_ha_discovery_inputs): '%s'",
		    drv->name, inputs);
	fuzz_taint(drv, (cJSON *)r->frame, &secrets, NULL);
	fuzz_taint(drv, d.dev, &held, &clean);
	fuzz_check_secrets(drv->name, &out, lists, r->local ? 3 : 2, &clean, rerun_rotated, r, data,
			   size);
	fuzz_check_safety_off(&d, fx.off);

	free(secrets.v);
	free(held.v);
	free(clean.v);
	fuzz_text_free(&out);
	free(inputs);
	cJSON_free(disc);
	cJSON_Delete(d.dev);
}

/* A PTalk message: message() turns it into the frame to merge, as device_send.c's
 * p2m_device_take_message does; the first message of a connection (base: a new device)
 * and the answer to the status request are the whole state. */
static void apply_ptalk(const struct fuzz_base *base, const cJSON *msg, const char *request,
			const uint8_t *data, size_t size)
{
	const struct p2m_driver *drv = base->d.drv;
	bool first = base == &fx.pt[0];
	cJSON *frame = NULL;
	enum p2m_reply reply;
	struct run r;

	(void)drv->is_snapshot(msg);
	reply = drv->message(msg, first ? NULL : request, &frame, fuzz_emit, (void *)drv);
	if (!frame)
		return;
	r = (struct run){.base = base,
			 .frame = frame,
			 .whole = first || (reply == P2M_REPLY_OK && request &&
					    strcmp(request, "request_status") == 0)};
	apply(&r, data, size);
	cJSON_Delete(frame);
}

/* Any frame may be a typed reply ({"response":{"type":T,"ok":N}}): device_send.c asks
 * reply_of() of every one, and turns a failure into a command_failed event. */
static void check_reply(const cJSON *frame)
{
	const struct p2m_driver *drv = &p2m_driver_panda_breath;
	const char *type = NULL;
	bool ok = true;

	if (!drv->reply_of(frame, &type, &ok))
		return;
	if (!type)
		fuzz_fail("reply_of says reply but gives no type");
	(void)strlen(type);
	if (!ok && !p2m_event_declared(drv, p2m_event_name(P2M_EV_COMMAND_FAILED)))
		fuzz_fail("a refused reply's command_failed is not declared");
}

static void apply_pb(const struct fuzz_base *base, const cJSON *frame, bool whole,
		     const uint8_t *data, size_t size)
{
	struct run r = {base, frame, whole, fx.local[0], fx.local_rot[0], false};

	apply(&r, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const requests[] = {NULL, "request_status", "set_volume", "request_ota"};
	cJSON *frame = cJSON_ParseWithLength((const char *)data, size);
	size_t k = size % (FUZZ_N_BASES - 1);

	if (!frame)
		return 0; /* device.c logs and drops text that is not JSON */
	check_reply(frame);
	(void)p2m_driver_panda_breath.is_snapshot(frame);
	apply_pb(&fx.pb[0], frame, true, data, size);
	apply_pb(&fx.pb[1 + k], frame, (size / (FUZZ_N_BASES - 1)) % 2 == 1, data, size);
	apply_ptalk(&fx.pt[0], frame, NULL, data, size);
	apply_ptalk(&fx.pt[1], frame, requests[size % 4], data, size);
	cJSON_Delete(frame);
	return 0;
}
