/*
 * core/curl.h - libcurl, loaded when sluice first speaks HTTP.
 *
 * libcurl and the libraries it pulls in (TLS, Kerberos, LDAP, SSH, HTTP/2,
 * IDN) are about 30 shared objects, whose loading took 11 ms of every
 * sluice command's start on this project's machine (2026-12-03, an empty
 * program linked with and without -lcurl), while only remotes, webhooks
 * and the HTTP evaluation backend use them. So libsluice does not link
 * libcurl: it opens libcurl.so.4 with dlopen on first use, and the curl_*
 * names below, in the files that include this header instead of
 * <curl/curl.h>, call through the functions found there.
 *
 * Every use starts with sluice_curl__easy_init, sluice_curl__multi_init or
 * sluice_curl__slist_append (what curl_easy_init, curl_multi_init and
 * curl_slist_append name here), which load libcurl and return NULL when it
 * cannot be loaded; sluice_curl__why then says why. The first use after
 * sluice_global_init also runs curl_global_init (undone by
 * sluice_global_shutdown).
 *
 * SLUICE_LIBCURL in the environment names another libcurl to open (a
 * soname such as libcurl-gnutls.so.4, or a path).
 */
#ifndef SLUICE_CURL_H
#define SLUICE_CURL_H

/* Plain prototypes: curl's GCC type-checking macros would hide the names. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

struct sluice_curl_api {
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_reset)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	void (*slist_free_all)(struct curl_slist *);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
};
/* Stand-ins that fail until the first successful load fills it (core/curl.c). */
extern struct sluice_curl_api sluice__curl;

CURL *sluice_curl__easy_init(void);
CURLM *sluice_curl__multi_init(void);
struct curl_slist *sluice_curl__slist_append(struct curl_slist *list, const char *s);
/* Why libcurl could not be loaded ("" when it was, or was not tried). */
const char *sluice_curl__why(void);
/* curl_global_cleanup, if libcurl was loaded (sluice_global_shutdown). */
void sluice_curl__shutdown(void);

/* curl.h defines these three as function-like macros that check arity. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_easy_init() sluice_curl__easy_init()
#define curl_multi_init() sluice_curl__multi_init()
#define curl_slist_append sluice_curl__slist_append
#define curl_easy_setopt (sluice__curl.easy_setopt)
#define curl_easy_perform (sluice__curl.easy_perform)
#define curl_easy_cleanup (sluice__curl.easy_cleanup)
#define curl_easy_getinfo (sluice__curl.easy_getinfo)
#define curl_easy_reset (sluice__curl.easy_reset)
#define curl_easy_strerror (sluice__curl.easy_strerror)
#define curl_slist_free_all (sluice__curl.slist_free_all)
#define curl_multi_add_handle (sluice__curl.multi_add_handle)
#define curl_multi_remove_handle (sluice__curl.multi_remove_handle)
#define curl_multi_perform (sluice__curl.multi_perform)
#define curl_multi_poll (sluice__curl.multi_poll)
#define curl_multi_info_read (sluice__curl.multi_info_read)
#define curl_multi_cleanup (sluice__curl.multi_cleanup)
#define curl_multi_setopt (sluice__curl.multi_setopt)

#endif
