/* registry.c - every device family, in one list (see drivers.h). */
#include "panda2mqtt/drivers.h"

const struct p2m_driver *const p2m_drivers[] = {
    &p2m_driver_panda_breath,
    NULL,
};

const struct p2m_driver *p2m_driver_for_snapshot(const cJSON *frame)
{
	for (const struct p2m_driver *const *d = p2m_drivers; *d; d++)
		if ((*d)->is_snapshot && (*d)->is_snapshot(frame))
			return *d;
	return NULL;
}
