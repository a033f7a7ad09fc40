/* device_send.c - commands out to one device, and the device's replies to them
 * (device_priv.h).
 *
 * Owns: checking a command against the family's table (command.c) and sending its
 * frames in order through the device's outbox; the markers between them (a pause, a
 * wait for a reply, a file); which requests await an answer and what each answer
 * answers.
 *
 * The outbox feeds the link a few frames at a time (OUTBOX_INFLIGHT): the link's own
 * queue then never fills, and there is always room for what must go first. A command
 * that arrives while frames of an earlier one still wait replaces the ones that write the
 * same field (coalescing): a flood of commands costs at most one waiting frame per field,
 * never a queue that grows or frames dropped half-way through a command. A safety cut-off
 * (preempt) drops everything that waits, here and in the link's queue, and goes first:
 * a user's "heat" still waiting must not land after the cut-off's "off".
 *
 * Replies come two ways. A request/reply family (driver message) answers every request in
 * order: the oldest unanswered request is the one answered. A push family with typed
 * replies (driver replies/reply_of: the Panda Breath's {"response":{"type":T,"ok":1}})
 * answers some writes by type, and to every client: the oldest request of that type is
 * the one answered, and a reply to none of ours is another client's. */
#include "device_priv.h"

#include "panda2mqtt/command.h"
#include "panda2mqtt/json_util.h"
#include "panda2mqtt/update.h"
#include "firmware.h"
#include "ws.h"

#include <string.h>

/* Frames handed to the link at a time; the rest wait in the outbox. */
#define OUTBOX_INFLIGHT 4
/* A request/reply device that has not answered a request this long will not: the rest
 * of a command waiting on it is dropped. */
#define REPLY_TIMEOUT_S 30
/* A typed request answered by nobody is forgotten after this long (not every firmware
 * answers every write: docs/protocol-panda-breath.md). */
#define REQUEST_EXPIRE_US ((gint64)60 * G_USEC_PER_SEC)
/* Requests kept waiting for their answers; a device that stops answering but keeps its
 * link must not grow the queue without end. */
#define MAX_UNANSWERED 64

/* ---- requests and their answers ---- */

const char *p2m_device_request_name(const struct p2m_driver *drv, const cJSON *frame)
{
	const cJSON *root;

	if (drv->request_key) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(frame, drv->request_key);

		return cJSON_IsString(n) ? n->valuestring : NULL;
	}
	cJSON_ArrayForEach(root, frame)
	{
		for (const char *const(*r)[3] = drv->replies; r && (*r)[0]; r++)
			if (strcmp((*r)[0], root->string) == 0 &&
			    cJSON_GetObjectItemCaseSensitive(root, (*r)[1]))
				return (*r)[2];
	}
	return NULL;
}

static void request_free(gpointer p)
{
	struct p2m_request *r = p;

	g_free(r->name);
	g_free(r);
}

/* Typed requests that nobody answered for a minute are no longer awaited. */
static void expire_requests(struct p2m_device *d)
{
	gint64 now = g_get_monotonic_time();
	struct p2m_request *r;

	if (!d->driver->reply_of)
		return; /* a request/reply family answers in order: none may be skipped */
	while ((r = g_queue_peek_head(&d->unanswered)) && now - r->sent_at > REQUEST_EXPIRE_US) {
		p2m_debug("device %s: no reply to %s; no longer expected", d->conf->id, r->name);
		request_free(g_queue_pop_head(&d->unanswered));
	}
}

void p2m_device_sent_request(struct p2m_device *d, const char *name, bool restarts)
{
	struct p2m_request *r;

	if (!name)
		return;
	expire_requests(d);
	if (g_queue_get_length(&d->unanswered) >= MAX_UNANSWERED) {
		p2m_device_warn_limited(d, "unanswered",
					"%u requests unanswered; forgetting the "
					"oldest",
					MAX_UNANSWERED);
		request_free(g_queue_pop_head(&d->unanswered));
	}
	r = g_new0(struct p2m_request, 1);
	r->name = g_strdup(name);
	r->sent_at = g_get_monotonic_time();
	r->restarts = restarts;
	g_queue_push_tail(&d->unanswered, r);
}

static void end_await(struct p2m_device *d)
{
	d->await = P2M_AWAIT_NONE;
	g_free(d->await_type);
	d->await_type = NULL;
	if (d->await_timer)
		g_source_remove(d->await_timer);
	d->await_timer = 0;
}

/* The rest of a command cannot be sent: say so, and end an update it was for. */
static void drop_outbox(struct p2m_device *d, const char *why)
{
	bool had_file = false;
	const cJSON *f;

	cJSON_ArrayForEach(f, d->outbox) had_file |=
	    cJSON_GetObjectItemCaseSensitive(f, P2M_SEND_FILE_KEY) != NULL;
	if (d->outbox && d->outbox->child)
		p2m_warn("device %s: %s; %d frame(s) of the command not sent", d->conf->id, why,
			 cJSON_GetArraySize(d->outbox));
	cJSON_Delete(d->outbox);
	d->outbox = NULL;
	if (d->pending_timer)
		g_source_remove(d->pending_timer);
	d->pending_timer = 0;
	end_await(d);
	if (had_file)
		p2m_device_update_failed(d, why);
}

void p2m_device_send_reset(struct p2m_device *d)
{
	if (d->outbox && d->outbox->child)
		p2m_warn("device %s: %d frame(s) of the last command not sent: link lost",
			 d->conf->id, cJSON_GetArraySize(d->outbox));
	cJSON_Delete(d->outbox);
	d->outbox = NULL;
	if (d->pending_timer)
		g_source_remove(d->pending_timer);
	d->pending_timer = 0;
	end_await(d);
	g_queue_clear_full(&d->unanswered, request_free);
}

/* An answer came: frames waiting on answers go on, or are dropped after a refusal. */
static void answered(struct p2m_device *d, const char *type, bool ok)
{
	if (d->await == P2M_AWAIT_NONE ||
	    (d->await == P2M_AWAIT_TYPE && (!type || strcmp(type, d->await_type) != 0)))
		return;
	if (!ok) {
		char why[160];

		snprintf(why, sizeof(why), "the device refused %s, which the rest needed",
			 type ? type : "a request");
		drop_outbox(d, why);
		return;
	}
	if (d->await == P2M_AWAIT_ALL && !g_queue_is_empty(&d->unanswered))
		return;
	end_await(d);
	p2m_device_send_more(d);
}

static gboolean on_await_timeout(gpointer data)
{
	struct p2m_device *d = data;

	d->await_timer = 0;
	if (d->await == P2M_AWAIT_TYPE) {
		/* the reply only shortens a wait the device needs anyway: go on */
		p2m_info("device %s: no %s reply; going on", d->conf->id, d->await_type);
		end_await(d);
		p2m_device_send_more(d);
		return G_SOURCE_REMOVE;
	}
	drop_outbox(d, "the device did not answer within 30 s");
	return G_SOURCE_REMOVE;
}

void p2m_device_take_reply(struct p2m_device *d, const cJSON *frame)
{
	const char *type = NULL;
	struct p2m_request *mine = NULL;
	bool ok = false;

	if (!d->driver->reply_of || !d->driver->reply_of(frame, &type, &ok))
		return;
	if (p2m_device_ota_reply(d, type, ok))
		return;
	expire_requests(d);
	for (GList *l = d->unanswered.head; l; l = l->next) {
		struct p2m_request *r = l->data;

		if (strcmp(r->name, type) == 0) {
			mine = r;
			g_queue_delete_link(&d->unanswered, l);
			break;
		}
	}
	if (ok) {
		p2m_info("device %s: the device confirmed %s%s", d->conf->id, type,
			 mine ? "" : " (for another client)");
	} else {
		p2m_device_warn_limited(d, "refused", "the device refused %s%s", type,
					mine ? "" : " (asked by another client)");
		cJSON *e = p2m_device_event(P2M_EV_COMMAND_FAILED);

		cJSON_AddStringToObject(e, "command", type);
		cJSON_AddStringToObject(e, "status", "failed");
		cJSON_AddBoolToObject(e, "sent_by_gateway", mine != NULL);
		p2m_device_emit(d, e);
		if (mine && mine->restarts && d->expect_reboot) {
			/* a refused hostname restarts nothing: no reboot is to be expected */
			p2m_info("device %s: %s was refused; the device will not restart",
				 d->conf->id, type);
			d->expect_reboot = false;
		}
	}
	if (mine) {
		request_free(mine);
		answered(d, type, ok);
	}
}

void p2m_device_take_message(struct p2m_device *d, const cJSON *msg, bool first)
{
	struct p2m_request *req = g_queue_peek_head(&d->unanswered);
	cJSON *frame = NULL;
	enum p2m_reply r =
	    d->driver->message(msg, req ? req->name : NULL, &frame, p2m_device_emit, d);
	bool whole = first;

	if (r != P2M_NOT_A_REPLY && req) {
		g_queue_pop_head(&d->unanswered);
		whole = whole || (r == P2M_REPLY_OK && d->status_name &&
				  strcmp(req->name, d->status_name) == 0);
		if (r == P2M_REPLY_FAILED && req->restarts)
			d->expect_reboot = false;
		request_free(req);
	} else if (r != P2M_NOT_A_REPLY) {
		p2m_debug("device %s: an answer to no request; taken as state", d->conf->id);
	}
	if (frame) {
		p2m_device_take_frame(d, frame, whole, first);
		cJSON_Delete(frame);
		if (whole && !first)
			p2m_device_check_expected(d);
	} else if (r == P2M_NOT_A_REPLY) {
		p2m_device_warn_limited(d, "neither",
					"a message that is neither a %s nor an answer; ignored",
					d->driver->dials_in ? "handshake" : "report");
	}
	if (r != P2M_NOT_A_REPLY && req)
		answered(d, NULL, r == P2M_REPLY_OK);
}

/* ---- the outbox ---- */

static gboolean on_pending(gpointer data)
{
	struct p2m_device *d = data;

	d->pending_timer = 0;
	p2m_device_send_more(d);
	return G_SOURCE_REMOVE;
}

/* The frame as it may appear in a log line: secrets removed. */
static char *loggable(const cJSON *frame)
{
	cJSON *r = p2m_json_redacted(frame);
	char *s = p2m_json_print(r);

	cJSON_Delete(r);
	return s;
}

/* A marker at the head of the outbox: act on it. false: the outbox waits. */
static bool take_marker(struct p2m_device *d, const cJSON *m)
{
	const cJSON *delay = cJSON_GetObjectItemCaseSensitive(m, P2M_DELAY_KEY);
	const cJSON *file = cJSON_GetObjectItemCaseSensitive(m, P2M_SEND_FILE_KEY);
	const cJSON *await = cJSON_GetObjectItemCaseSensitive(m, P2M_AWAIT_REPLY_KEY);
	const cJSON *install = cJSON_GetObjectItemCaseSensitive(m, P2M_INSTALL_KEY);

	if (cJSON_IsNumber(delay)) {
		p2m_info("device %s: waiting %d ms before the next frame", d->conf->id,
			 delay->valueint);
		d->pending_timer = g_timeout_add((guint)delay->valueint, on_pending, d);
		return false;
	}
	if (cJSON_IsObject(await)) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(await, "type");
		const cJSON *ms = cJSON_GetObjectItemCaseSensitive(await, "timeout_ms");

		d->await = P2M_AWAIT_TYPE;
		d->await_type = g_strdup(cJSON_IsString(type) ? type->valuestring : "");
		/* answered already (a fast device)? Then it is no longer unanswered. */
		for (GList *l = d->unanswered.head; l; l = l->next)
			if (strcmp(((struct p2m_request *)l->data)->name, d->await_type) == 0) {
				d->await_timer =
				    g_timeout_add(cJSON_IsNumber(ms) ? (guint)ms->valueint : 10000,
						  on_await_timeout, d);
				return false;
			}
		end_await(d);
		return true;
	}
	if (await) {
		if (g_queue_is_empty(&d->unanswered))
			return true;
		d->await = P2M_AWAIT_ALL;
		d->await_timer = g_timeout_add_seconds(REPLY_TIMEOUT_S, on_await_timeout, d);
		return false;
	}
	if (cJSON_IsObject(install)) {
		p2m_device_ota_start(
		    d, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(install, "reinstall")));
		return true;
	}
	if (cJSON_IsString(file)) {
		p2m_device_upload_start(d, file->valuestring);
		return d->upload == NULL; /* the rest, if any, once the image is sent */
	}
	return true;
}

static bool is_marker(const cJSON *f)
{
	return f->child && f->child->string && f->child->string[0] == '@';
}

/* Hand one frame to the link. */
static void send_frame(struct p2m_device *d, const cJSON *frame)
{
	char *text = p2m_json_print(frame);
	char *log = loggable(frame);

	if (p2m_ws_send(d->ws, text) == 0) {
		bool restarts = d->driver->restarts && d->driver->restarts(frame);

		p2m_info("device %s: sending %s", d->conf->id, log);
		p2m_device_expect(d, frame);
		p2m_device_sent_request(d, p2m_device_request_name(d->driver, frame), restarts);
		if (restarts)
			d->expect_reboot = true;
	} else {
		p2m_warn("device %s: could not queue %s", d->conf->id, log);
	}
	cJSON_free(text);
	cJSON_free(log);
}

void p2m_device_send_more(struct p2m_device *d)
{
	cJSON *f;

	if (d->pending_timer || d->await != P2M_AWAIT_NONE || d->upload)
		return;
	while (d->outbox && (f = d->outbox->child)) {
		if (!is_marker(f) && p2m_ws_queued(d->ws) >= OUTBOX_INFLIGHT)
			return; /* on_drained calls again */
		f = cJSON_DetachItemViaPointer(d->outbox, f);
		if (is_marker(f)) {
			bool go_on = take_marker(d, f);

			cJSON_Delete(f);
			if (!go_on)
				return;
			continue;
		}
		if (!p2m_ws_is_open(d->ws)) {
			cJSON_Delete(f);
			drop_outbox(d, "the link is not open");
			return;
		}
		send_frame(d, f);
		cJSON_Delete(f);
	}
	if (d->outbox) {
		cJSON_Delete(d->outbox);
		d->outbox = NULL;
		p2m_device_schedule_verify(d);
	}
}

/* What a frame writes, for coalescing: "root.field" of a one-field frame, "@name" of a
 * named request; "" for anything else (never coalesced). */
static void frame_key(const struct p2m_driver *drv, const cJSON *f, char *buf, size_t len)
{
	const char *req = drv->request_key ? p2m_device_request_name(drv, f) : NULL;

	buf[0] = '\0';
	if (req)
		snprintf(buf, len, "@%s", req);
	else if (!is_marker(f) && f->child && !f->child->next && cJSON_IsObject(f->child) &&
		 f->child->child && !f->child->child->next)
		snprintf(buf, len, "%s.%s", f->child->string, f->child->child->string);
}

/* Frames of earlier commands that still wait and write what one of `frames` writes are
 * superseded: the device would end where the newer command puts it either way. */
static int coalesce(struct p2m_device *d, const cJSON *frames)
{
	char key[160], other[160];
	const cJSON *f;
	int dropped = 0;

	cJSON_ArrayForEach(f, frames)
	{
		cJSON *o, *next;

		frame_key(d->driver, f, key, sizeof(key));
		if (!key[0])
			continue;
		for (o = d->outbox ? d->outbox->child : NULL; o; o = next) {
			next = o->next;
			frame_key(d->driver, o, other, sizeof(other));
			if (strcmp(key, other) == 0) {
				cJSON_Delete(cJSON_DetachItemViaPointer(d->outbox, o));
				dropped++;
			}
		}
	}
	return dropped;
}

/* Has the outbox stopped at a marker (a pause, a wait, an image)? */
static bool outbox_paused(const struct p2m_device *d)
{
	return d->pending_timer || d->await != P2M_AWAIT_NONE || d->upload;
}

int p2m_device_run_command(struct p2m_device *d, const cJSON *command, bool preempt)
{
	struct p2m_view v = p2m_device_view(d);
	struct p2m_cmd cmd = {
	    .driver = d->driver,
	    .dev = d->dev,
	    .view = &v,
	    .safety = &d->env->safety,
	};
	const cJSON *f;
	int dropped;

	if (!d->online || !p2m_ws_is_open(d->ws)) {
		p2m_device_reject(d, "", "device is offline");
		return -1;
	}
	if (d->upload) {
		p2m_device_reject(d, "", "a firmware image is being sent");
		return -1;
	}
	if (!preempt && d->ota) {
		p2m_device_reject(d, "", "a firmware update is under way");
		return -1;
	}
	if (!preempt && outbox_paused(d)) {
		p2m_device_reject(d, "", "the previous command is still being sent");
		return -1;
	}
	if (p2m_command_plan(&cmd, command) != 0) {
		p2m_device_reject(d, cmd.field, cmd.reason);
		p2m_command_clear(&cmd);
		return -1;
	}
	if (!preempt && cmd.frames->child && p2m_device_refuse_heating(d, cmd.frames)) {
		p2m_command_clear(&cmd);
		return -1;
	}
	if (cmd.local) {
		p2m_json_merge(d->local, cmd.local);
		p2m_device_publish_state(d, NULL, false);
	}
	if (!cmd.frames->child) {
		p2m_command_clear(&cmd);
		return 0;
	}
	cJSON_ArrayForEach(f, cmd.frames)
	{
		if (cJSON_GetObjectItemCaseSensitive(f, P2M_SEND_FILE_KEY)) {
			d->update.in_progress = true;
			d->update.percent = -1;
			p2m_device_publish_state(d, NULL, false);
		}
	}
	if (preempt) {
		/* nothing that waits may land after this: here, or in the link's queue */
		size_t purged = p2m_ws_purge(d->ws);

		if (purged || (d->outbox && d->outbox->child))
			p2m_warn("device %s: %d frame(s) of earlier commands dropped: the safety "
				 "cut-off goes first",
				 d->conf->id, (int)purged + cJSON_GetArraySize(d->outbox));
		cJSON_Delete(d->outbox);
		d->outbox = NULL;
		if (d->pending_timer)
			g_source_remove(d->pending_timer);
		d->pending_timer = 0;
		end_await(d);
	} else if ((dropped = coalesce(d, cmd.frames)) > 0) {
		p2m_device_log_limited(d, P2M_LOG_INFO, 5, "coalesced",
				       "%d waiting frame(s) of earlier commands superseded",
				       dropped);
	}
	cJSON_Delete(d->expected);
	d->expected = NULL;
	if (!d->outbox)
		d->outbox = cJSON_CreateArray();
	while ((f = cmd.frames->child))
		cJSON_AddItemToArray(d->outbox, cJSON_DetachItemViaPointer(cmd.frames, (cJSON *)f));
	p2m_command_clear(&cmd);
	p2m_device_send_more(d);
	return 0;
}

void p2m_device_command(struct p2m_device *d, const cJSON *command)
{
	p2m_device_run_command(d, command, false);
}
