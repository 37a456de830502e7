/*
 * core/dl.c - opening a shared library on first use, for core/curl.c and
 * core/blas.c: the soname (or one named in the environment) and its
 * functions, each missing one named.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *sluice__dl_open(const char *env, const char *soname, const char *what, char *why,
                      size_t whylen, const char **opened)
{
	const char *name = getenv(env);
	void *so;

	if (!name || !*name)
		name = soname;
	*opened = name;
	if (!(so = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
		snprintf(why, whylen, "cannot load %s%s: %s", name, what, dlerror());
	return so;
}

void sluice__dl_find(void *so, const char *name, void *fn, const char **missing)
{
	void *p = dlsym(so, name);

	if (!p && !*missing)
		*missing = name;
	/* Object to function pointer through memcpy: POSIX guarantees the round trip. */
	memcpy(fn, &p, sizeof(p));
}
