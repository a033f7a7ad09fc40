/* families.c - every device family, in one list (see families.h). A new family is one
 * file in this directory and one line here (docs/ADDING-A-FAMILY.md). */
#include "panda2mqtt/families.h"

#include <string.h>

const struct p2m_driver *const p2m_families[] = {
    &p2m_driver_panda_breath, /* first: the family of a [device] without a type */
    &p2m_driver_ptalk,
    &p2m_driver_json_sensor,
    NULL,
};

const struct p2m_driver *p2m_family_by_name(const char *name)
{
	for (const struct p2m_driver *const *d = p2m_families; name && *d; d++)
		if (strcmp((*d)->name, name) == 0)
			return *d;
	return NULL;
}

bool p2m_family_known(const char *name)
{
	return p2m_family_by_name(name) != NULL;
}

const char *p2m_family_names(void)
{
	static char names[256];

	if (!names[0]) {
		size_t used = 0;

		for (const struct p2m_driver *const *d = p2m_families; *d; d++) {
			size_t n = strlen((*d)->name);

			if (used + n + 3 > sizeof(names))
				break;
			if (used) {
				memcpy(names + used, ", ", 2);
				used += 2;
			}
			memcpy(names + used, (*d)->name, n + 1);
			used += n;
		}
	}
	return names;
}

const struct p2m_driver *p2m_family_of(const char *type)
{
	return type ? p2m_family_by_name(type) : p2m_families[0];
}

const struct p2m_driver *p2m_family_for_snapshot(const cJSON *frame, bool dials_in)
{
	for (const struct p2m_driver *const *d = p2m_families; *d; d++)
		if ((*d)->dials_in == dials_in && (*d)->is_snapshot && (*d)->is_snapshot(frame))
			return *d;
	return NULL;
}
