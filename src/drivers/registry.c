/* registry.c - every device family, in one list (see drivers.h). */
#include "panda2mqtt/drivers.h"

const struct p2m_driver *const p2m_drivers[] = {
    &p2m_driver_panda_breath,
    &p2m_driver_ptalk,
    NULL,
};

const struct p2m_driver *p2m_driver_for_snapshot(const cJSON *frame, bool dials_in)
{
	for (const struct p2m_driver *const *d = p2m_drivers; *d; d++)
		if ((*d)->dials_in == dials_in && (*d)->is_snapshot && (*d)->is_snapshot(frame))
			return *d;
	return NULL;
}
