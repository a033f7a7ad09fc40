/* device_safety.c - the [safety] rules applied to one device (device_priv.h).
 *
 * Owns: after every report, switching the heating off when a rule trips (safety.h
 * decides which: a hot chamber, a sensor or heater fault, while heating); the broker
 * gone too long (controller_lost); and, while a rule's condition holds, refusing any
 * command that would switch heating back on, so that no flood of commands can toggle a
 * heater the rule switched off.
 * Does not own: what heating means for a family (the driver's heat_status and
 * off_command) or how the off command is sent ahead of everything (device_send.c). */
#include "device_priv.h"

#include "panda2mqtt/command.h"
#include "panda2mqtt/json_util.h"

/* A tripped safety rule sends the off command again at most this often while the
 * device still reports heating (the re-read after the first one takes 1.5 s). */
#define SAFETY_RESEND_US ((gint64)10 * G_USEC_PER_SEC)

/* The device's heat status, for a family that can be switched off by safety rules. */
static bool heat_status(const struct p2m_device *d, const cJSON *dev, struct p2m_heat_status *h)
{
	if (d->retired || !d->driver->heat_status || !d->driver->off_command)
		return false;
	*h = (struct p2m_heat_status){0};
	d->driver->heat_status(dev, h);
	return true;
}

/* Switch the device's heating off because a [safety] rule tripped: an event, an error
 * line, and the driver's off command ahead of anything still queued. */
static void safety_off(struct p2m_device *d, enum p2m_trip trip, const struct p2m_heat_status *h)
{
	gint64 now = g_get_monotonic_time();
	cJSON *e, *off;

	if (d->safety_sent && now - d->safety_sent < SAFETY_RESEND_US)
		return;
	d->safety_sent = now;
	e = p2m_device_event(P2M_EV_SAFETY_CUTOFF);
	cJSON_AddStringToObject(e, "rule", p2m_trip_rule(trip));
	if (h->has_chamber)
		cJSON_AddNumberToObject(e, "chamber_temperature", h->chamber);
	if (trip == P2M_TRIP_CHAMBER)
		cJSON_AddNumberToObject(e, "limit", d->env->safety.max_chamber_temp);
	p2m_err("device %s: safety: %s; switching the heating off", d->conf->id,
		p2m_trip_reason(trip));
	p2m_device_emit(d, e);
	off = cJSON_Parse(d->driver->off_command);
	if (!off || p2m_device_run_command(d, off, true) != 0) {
		p2m_err("device %s: safety: the off command could not be sent; trying again "
			"with the next report",
			d->conf->id);
		d->safety_sent = 0;
	}
	cJSON_Delete(off);
}

void p2m_device_check_safety(struct p2m_device *d, bool changed)
{
	struct p2m_heat_status h;
	enum p2m_trip trip;

	if ((!changed && !d->safety_tripped) || !heat_status(d, d->dev, &h))
		return;
	trip = p2m_safety_check(&d->env->safety, &h);
	d->safety_tripped = trip != P2M_TRIP_NONE;
	if (trip == P2M_TRIP_NONE) {
		d->safety_sent = 0;
		return;
	}
	safety_off(d, trip, &h);
}

void p2m_device_controller_lost(struct p2m_device *d)
{
	struct p2m_heat_status h;

	if (heat_status(d, d->dev, &h) && h.heating)
		safety_off(d, P2M_TRIP_CONTROLLER_LOST, &h);
}

/* The rooted frames of a planned command written onto state (markers skipped). */
static void apply_frames(cJSON *state, const cJSON *frames)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, frames)
	{
		if (!(f->child && f->child->string && f->child->string[0] == '@'))
			p2m_json_merge(state, f);
	}
}

bool p2m_device_refuse_heating(struct p2m_device *d, const cJSON *frames)
{
	struct p2m_heat_status h;
	enum p2m_trip hold;
	cJSON *after, *off;
	struct p2m_view v;
	struct p2m_cmd cmd;
	bool heats;

	if (!heat_status(d, d->dev, &h))
		return false;
	hold = p2m_safety_hold(&d->env->safety, &h);
	if (hold == P2M_TRIP_NONE)
		return false;
	/* Would the command heat once the cut-off has landed? Its frames are written onto
	 * the state with the off command's frames applied first: a command that leaves the
	 * heating off (a scan, a target for later, "off" itself) goes; one that switches it
	 * on does not, however the state looks while the cut-off is on its way. */
	after = cJSON_Duplicate(d->dev, true);
	v = p2m_device_view(d);
	cmd = (struct p2m_cmd){
	    .driver = d->driver, .dev = d->dev, .view = &v, .safety = &d->env->safety};
	off = cJSON_Parse(d->driver->off_command);
	if (off && p2m_command_plan(&cmd, off) == 0)
		apply_frames(after, cmd.frames);
	p2m_command_clear(&cmd);
	cJSON_Delete(off);
	apply_frames(after, frames);
	heats = heat_status(d, after, &h) && h.heating;
	cJSON_Delete(after);
	if (heats) {
		cJSON *e = p2m_device_event(P2M_EV_COMMAND_REFUSED);

		cJSON_AddStringToObject(e, "rule", p2m_trip_rule(hold));
		cJSON_AddStringToObject(e, "reason", p2m_trip_condition(hold));
		p2m_device_warn_limited(d, "refused heating",
					"command refused: it would heat while %s ([safety] %s)",
					p2m_trip_condition(hold), p2m_trip_rule(hold));
		p2m_device_emit(d, e);
	}
	return heats;
}
