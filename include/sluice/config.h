/*
 * sluice/config.h - the repository's local settings (the HTTP evaluation
 * backend's server, serving hooks), kept in the repository's git config
 * so stock git reads them (`git --git-dir=REPO config --list`). Settings
 * are operational: they are not journaled and change no state. The keys
 * and what each takes are listed in docs/cli.md under "sluice config".
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A key's value(s). *report: {"key": KEY, "value": last value, "values":
 * [every value]}. SLUICE_ENOTFOUND when the key is not set.
 */
int sluice_config_get(sluice_repo *repo, const char *key, char **report);

/*
 * Set a known key (SLUICE_EINVALID, naming the key, for an unknown key or
 * a value not of its kind). With add, a value is added after the key's
 * others (hook.NAME.channel only), as git config --add does; otherwise it
 * replaces them all.
 */
int sluice_config_set(sluice_repo *repo, const char *key, const char *value, int add);

/* Remove every value of a key. SLUICE_ENOTFOUND when it has none. */
int sluice_config_unset(sluice_repo *repo, const char *key);

/*
 * The sluice.* and hook.* settings. *report: {"config": {key: value or
 * [values]}} with keys as git spells them (section and name lower-cased).
 */
int sluice_config_list(sluice_repo *repo, char **report);

#ifdef __cplusplus
}
#endif
#endif
