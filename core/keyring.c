/*
 * core/keyring.c - registering keys and their roles in the journal, and
 * exporting public keys for stock tools (git's allowed-signers file,
 * OpenSSH authorized-keys style lines).
 */
#include "repo.h"

#include "sluice/keys.h"

#include <string.h>

static const char *const known_roles[] = {"root",     "proposer", "gate-runner",
                                          "approver", "operator", "auditor"};

static int check_role(sluice_ctx *ctx, const char *role)
{
	for (size_t i = 0; i < sizeof(known_roles) / sizeof(*known_roles); i++)
		if (!strcmp(role, known_roles[i]))
			return SLUICE_OK;
	return sluice_ctx__error(ctx, SLUICE_EINVALID,
	                         "unknown role '%s' (roles: root, proposer, gate-runner, approver, "
	                         "operator, auditor)",
	                         role);
}

/* A root key whose private half is here: signer if named, else the first. */
static int find_root_signer(sluice_repo *repo, sluice_key *out, json_t *registry,
                            const char *signer)
{
	const char *name;
	json_t *e;

	if (signer)
		return sluice_repo__signing_key(repo, out, signer, "root");
	json_object_foreach(registry, name, e)
	{
		json_t *r;
		size_t i;
		int is_root = 0;

		json_array_foreach(json_object_get(e, "roles"), i, r) is_root |=
		        !strcmp(sluice__jstr(r), "root");
		if (!is_root)
			continue;
		if (sluice_repo__signing_key(repo, out, name, "root") == SLUICE_OK)
			return SLUICE_OK;
	}
	return sluice_ctx__error(
	        repo->ctx, SLUICE_EDENIED,
	        "no root key of this repository is available in the keys directory; "
	        "registering a key needs a root key's signature (--signer NAME)");
}

struct key_add {
	const sluice_key *key;
	const sluice_key *root;
	const char *name;
	const char *const *roles;
	size_t nroles;
	json_t *entry_after; /* the key's registry entry as committed */
};

/* The registry with NAME's roles extended; *changed says whether it differs. */
static int extend_registry(sluice_repo *repo, json_t **out, int *changed, json_t *registry,
                           const struct key_add *ka)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *newreg = json_deep_copy(registry), *entry, *rolearr;
	char fp[SLUICE_FP_LEN];
	int error;

	sluice_keys__fingerprint(fp, ka->key->pk);
	entry = json_object_get(newreg, ka->name);
	if (entry && strcmp(sluice__jstr(json_object_get(entry, "fingerprint")), fp)) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EEXISTS, "a different key named %s is already registered (%s)",
		        ka->name, sluice__jstr(json_object_get(entry, "fingerprint")));
		json_decref(newreg);
		return error;
	}
	if (!entry) {
		if ((error = sluice_repo__key_entry(ctx, &entry, ka->key, NULL, 0)) < 0) {
			json_decref(newreg);
			return error;
		}
		json_object_set_new(newreg, ka->name, entry);
	}
	rolearr = json_object_get(entry, "roles");
	for (size_t i = 0; i < ka->nroles; i++) {
		json_t *r;
		size_t k;
		int has = 0;

		json_array_foreach(rolearr, k, r) has |= !strcmp(sluice__jstr(r), ka->roles[i]);
		if (!has)
			json_array_append_new(rolearr, json_string(ka->roles[i]));
	}
	*changed = !json_equal(newreg, registry);
	*out = newreg;
	return SLUICE_OK;
}

static int decide_key_add(sluice_repo *repo, const sluice_jstate *st, void *arg,
                          sluice_jchange *out)
{
	struct key_add *ka = arg;
	json_t *newreg = NULL, *entry;
	char fp[SLUICE_FP_LEN];
	int changed, error;

	if ((error = sluice_journal__check_role(repo, st->keys, ka->root, "root")) < 0 ||
	    (error = extend_registry(repo, &newreg, &changed, st->keys, ka)) < 0)
		return error;
	sluice_keys__fingerprint(fp, ka->key->pk);
	entry = json_object_get(newreg, ka->name);
	json_decref(ka->entry_after);
	ka->entry_after = json_incref(entry);
	out->record = json_pack("{s:s,s:s,s:O}", "name", ka->name, "fingerprint", fp, "roles",
	                        json_object_get(entry, "roles"));
	out->keys_after = newreg;
	return SLUICE_OK;
}

int sluice_key_new(sluice_repo *repo, const char *name, const char *const *roles, size_t nroles,
                   const char *signer, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_key key = {0}, root = {0};
	struct key_add ka = {&key, &root, name, roles, nroles, NULL};
	json_t *registry = NULL, *newreg = NULL;
	char fp[SLUICE_FP_LEN];
	int error, created = 0, changed = 0;

	if ((error = sluice_keys__check_name(ctx, name)) < 0)
		return error;
	for (size_t i = 0; i < nroles; i++)
		if ((error = check_role(ctx, roles[i])) < 0)
			return error;
	if ((error = sluice_journal__keys(repo, &registry)) < 0)
		return error;
	if ((error = find_root_signer(repo, &root, registry, signer)) < 0)
		goto done;
	error = sluice_keys__load(ctx, &key, name);
	if (error == SLUICE_ENOTFOUND) {
		if ((error = sluice_keys__generate(ctx, &key, name)) < 0)
			goto done;
		created = 1;
	}
	if (error < 0)
		goto done;
	sluice_keys__fingerprint(fp, key.pk);
	if ((error = extend_registry(repo, &newreg, &changed, registry, &ka)) < 0)
		goto done;
	if (changed) {
		if ((error = sluice_journal__transact(repo, NULL, &root, "key.add", decide_key_add,
		                                      &ka)) < 0)
			goto done;
	} else {
		/* Nothing new: no journal entry. */
		ka.entry_after = json_incref(json_object_get(newreg, name));
	}
	error = sluice_repo__report(ctx, report,
	                            json_pack("{s:s,s:s,s:O,s:b}", "name", name, "fingerprint", fp,
	                                      "roles", json_object_get(ka.entry_after, "roles"),
	                                      "created", created));
done:
	json_decref(ka.entry_after);
	json_decref(newreg);
	json_decref(registry);
	sluice_key__dispose(&key);
	sluice_key__dispose(&root);
	return error;
}

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
