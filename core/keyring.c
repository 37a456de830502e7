/*
 * core/keyring.c - registering keys and their roles in the journal, and
 * exporting public keys for stock tools (git's allowed-signers file,
 * OpenSSH authorized-keys style lines).
 */
#include "repo.h"

#include "sluice/keys.h"

#include <string.h>

const char *const sluice_keys__roles[] = {"root",     "proposer", "gate-runner", "approver",
                                          "operator", "auditor",  NULL};

int sluice_key_list(sluice_repo *repo, char **report)
{
	json_t *registry = NULL, *arr, *e;
	const char *name;
	int error;

	if ((error = sluice_journal__keys(repo, &registry)) < 0)
		return error;
	arr = json_array();
	json_object_foreach(registry, name, e)
	{
		json_t *item = json_deep_copy(e);
		json_object_set_new(item, "name", json_string(name));
		json_array_append_new(arr, item);
	}
	json_decref(registry);
	return sluice_repo__report(repo->ctx, report, json_pack("{s:o}", "keys", arr));
}

int sluice_key_export(sluice_ctx *ctx, sluice_repo *repo, const char *name,
                      sluice_key_export_format format, char **out)
{
	json_t *registry = NULL, *e;
	sluice_buf buf = {0};
	const char *regname;
	int error = SLUICE_OK, all = !name || !strcmp(name, "--all");

	if (format == SLUICE_KEY_EXPORT_OPENSSH && !all && !repo) {
		sluice_key k = {0};
		if ((error = sluice_keys__load(ctx, &k, name)) < 0)
			return error;
		error = sluice_keys__openssh_pub(ctx, k.pk, k.name, &buf);
		sluice_key__dispose(&k);
		goto finish;
	}
	if (!repo)
		return sluice_ctx__error(ctx, SLUICE_EUSAGE, "exporting needs a repository");
	if ((error = sluice_journal__keys(repo, &registry)) < 0)
		return error;
	if (!all && !json_object_get(registry, name)) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                          "no key named %s is registered in this repository", name);
		goto done;
	}
	json_object_foreach(registry, regname, e)
	{
		unsigned char pk[32];
		const char *pub = sluice__jstr(json_object_get(e, "public_key"));

		if (!all && strcmp(regname, name))
			continue;
		if ((error = sluice_keys__parse_openssh_pub(ctx, pk, pub, strlen(pub))) < 0)
			goto done;
		if (format == SLUICE_KEY_EXPORT_ALLOWED_SIGNERS)
			error = sluice_keys__allowed_signers(ctx, regname, pk, &buf);
		else
			error = sluice_keys__openssh_pub(ctx, pk, regname, &buf);
		if (error < 0)
			goto done;
		if (buf.len && buf.ptr[buf.len - 1] != '\n' &&
		    (error = sluice_buf__put(ctx, &buf, "\n", 1)) < 0)
			goto done;
	}
finish:
	if (error == SLUICE_OK) {
		if (buf.len && buf.ptr[buf.len - 1] != '\n')
			error = sluice_buf__put(ctx, &buf, "\n", 1);
		if (error == SLUICE_OK && (error = sluice_buf__cstr(ctx, &buf)) == SLUICE_OK) {
			*out = (char *)buf.ptr;
			buf.ptr = NULL;
		}
	}
done:
	json_decref(registry);
	sluice_buf__dispose(&buf);
	return error;
}
