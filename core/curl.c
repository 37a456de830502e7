/*
 * core/curl.c - libcurl opened on first use (core/curl.h says why).
 */
#include "curl.h"
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Until libcurl is loaded every function is a stand-in that does nothing
 * and reports failure, so the cleanup paths of a use whose first call
 * found no libcurl (curl_easy_cleanup(NULL) and the like) are safe.
 */
static CURLcode no_easy_setopt(CURL *h, CURLoption o, ...)
{
	(void)h;
	(void)o;
	return CURLE_FAILED_INIT;
}
static CURLcode no_easy_perform(CURL *h)
{
	(void)h;
	return CURLE_FAILED_INIT;
}
static void no_easy_cleanup(CURL *h)
{
	(void)h;
}
static CURLcode no_easy_getinfo(CURL *h, CURLINFO i, ...)
{
	(void)h;
	(void)i;
	return CURLE_FAILED_INIT;
}
static const char *no_easy_strerror(CURLcode c)
{
	(void)c;
	return "libcurl is not loaded";
}
static void no_slist_free_all(struct curl_slist *l)
{
	(void)l;
}
static CURLMcode no_multi_handle(CURLM *m, CURL *h)
{
	(void)m;
	(void)h;
	return CURLM_BAD_HANDLE;
}
static CURLMcode no_multi_perform(CURLM *m, int *running)
{
	(void)m;
	if (running)
		*running = 0;
	return CURLM_BAD_HANDLE;
}
static CURLMcode no_multi_poll(CURLM *m, struct curl_waitfd fds[], unsigned int n, int ms, int *ret)
{
	(void)m;
	(void)fds;
	(void)n;
	(void)ms;
	(void)ret;
	return CURLM_BAD_HANDLE;
}
static CURLMsg *no_multi_info_read(CURLM *m, int *left)
{
	(void)m;
	if (left)
		*left = 0;
	return NULL;
}
static CURLMcode no_multi_cleanup(CURLM *m)
{
	(void)m;
	return CURLM_BAD_HANDLE;
}
static CURLMcode no_multi_setopt(CURLM *m, CURLMoption o, ...)
{
	(void)m;
	(void)o;
	return CURLM_BAD_HANDLE;
}

struct sluice_curl_api sluice__curl = {
        .easy_setopt = no_easy_setopt,
        .easy_perform = no_easy_perform,
        .easy_cleanup = no_easy_cleanup,
        .easy_getinfo = no_easy_getinfo,
        .easy_reset = no_easy_cleanup,
        .easy_strerror = no_easy_strerror,
        .slist_free_all = no_slist_free_all,
        .multi_add_handle = no_multi_handle,
        .multi_remove_handle = no_multi_handle,
        .multi_perform = no_multi_perform,
        .multi_poll = no_multi_poll,
        .multi_info_read = no_multi_info_read,
        .multi_cleanup = no_multi_cleanup,
        .multi_setopt = no_multi_setopt,
};

static struct {
	pthread_once_t once;
	int ok;               /* the library and every function found */
	int inited;           /* curl_global_init done since the last cleanup */
	pthread_mutex_t lock; /* for inited */
	char why[512];
	CURL *(*easy_init)(void);
	CURLM *(*multi_init)(void);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	CURLcode (*global_init)(long);
	void (*global_cleanup)(void);
} lazy = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

/* The soname of the ABI the headers describe (Debian's libcurl4). */
#define CURL_SONAME "libcurl.so.4"

static void load(void)
{
	struct sluice_curl_api api;
	const char *soname, *missing = NULL;
	/* SLUICE_LIBCURL names another build (libcurl-gnutls.so.4, a path). */
	void *so = sluice__dl_open("SLUICE_LIBCURL", CURL_SONAME, "", lazy.why, sizeof(lazy.why),
	                           &soname);

	if (!so)
		return;
	sluice__dl_find(so, "curl_easy_setopt", &api.easy_setopt, &missing);
	sluice__dl_find(so, "curl_easy_perform", &api.easy_perform, &missing);
	sluice__dl_find(so, "curl_easy_cleanup", &api.easy_cleanup, &missing);
	sluice__dl_find(so, "curl_easy_getinfo", &api.easy_getinfo, &missing);
	sluice__dl_find(so, "curl_easy_reset", &api.easy_reset, &missing);
	sluice__dl_find(so, "curl_easy_strerror", &api.easy_strerror, &missing);
	sluice__dl_find(so, "curl_slist_free_all", &api.slist_free_all, &missing);
	sluice__dl_find(so, "curl_multi_add_handle", &api.multi_add_handle, &missing);
	sluice__dl_find(so, "curl_multi_remove_handle", &api.multi_remove_handle, &missing);
	sluice__dl_find(so, "curl_multi_perform", &api.multi_perform, &missing);
	sluice__dl_find(so, "curl_multi_poll", &api.multi_poll, &missing);
	sluice__dl_find(so, "curl_multi_info_read", &api.multi_info_read, &missing);
	sluice__dl_find(so, "curl_multi_cleanup", &api.multi_cleanup, &missing);
	sluice__dl_find(so, "curl_multi_setopt", &api.multi_setopt, &missing);
	sluice__dl_find(so, "curl_easy_init", &lazy.easy_init, &missing);
	sluice__dl_find(so, "curl_multi_init", &lazy.multi_init, &missing);
	sluice__dl_find(so, "curl_slist_append", &lazy.slist_append, &missing);
	sluice__dl_find(so, "curl_global_init", &lazy.global_init, &missing);
	sluice__dl_find(so, "curl_global_cleanup", &lazy.global_cleanup, &missing);
	if (missing) {
		snprintf(lazy.why, sizeof(lazy.why), "%s has no %s (too old a libcurl)", soname,
		         missing);
		dlclose(so);
		return;
	}
	/* Kept open for the life of the process. */
	sluice__curl = api;
	lazy.ok = 1;
}

/* Loaded, and curl_global_init done since sluice_global_shutdown last undid it. */
static int loaded(void)
{
	int ok;

	pthread_once(&lazy.once, load);
	if (!lazy.ok)
		return 0;
	pthread_mutex_lock(&lazy.lock);
	if (!lazy.inited) {
		lazy.inited = lazy.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
		if (!lazy.inited)
			snprintf(lazy.why, sizeof(lazy.why), "curl_global_init failed");
	}
	ok = lazy.inited;
	pthread_mutex_unlock(&lazy.lock);
	return ok;
}

CURL *sluice_curl__easy_init(void)
{
	return loaded() ? lazy.easy_init() : NULL;
}

CURLM *sluice_curl__multi_init(void)
{
	return loaded() ? lazy.multi_init() : NULL;
}

struct curl_slist *sluice_curl__slist_append(struct curl_slist *list, const char *s)
{
	return loaded() ? lazy.slist_append(list, s) : NULL;
}

const char *sluice_curl__why(void)
{
	return lazy.why;
}

void sluice_curl__shutdown(void)
{
	pthread_mutex_lock(&lazy.lock);
	if (lazy.inited)
		lazy.global_cleanup();
	lazy.inited = 0;
	pthread_mutex_unlock(&lazy.lock);
}
