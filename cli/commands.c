/*
 * cli/commands.c - one function per sluice command, and the command table
 * that drives dispatch and help.
 */
#include "cli.h"

#include "sluice/audit_purge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LIST 64

/* Option parsing shared by the commands: the flag's value, or NULL. */
static const char *take_value(int argc, char **argv, int *k, const char *cmd)
{
	if (*k + 1 >= argc) {
		cli_usage(cmd, "%s needs a value", argv[*k]);
		return NULL;
	}
	return argv[++*k];
}

static int done_report(cli_env *env, int error, char *report, void (*human)(json_t *))
{
	if (error < 0) {
		free(report);
		return cli_fail(env, error);
	}
	if (env->json) {
		if (report) /* a command with nothing to report prints its own "{}" */
			cli_print_json(report);
	} else if (human) {
		json_t *v = cli_parse(report);
		if (v)
			human(v);
		json_decref(v);
	}
	sluice_free(report);
	return 0;
}

int cli_finish(cli_env *env, sluice_repo *repo, int error, char *report, void (*human)(json_t *))
{
	int rc = done_report(env, error, report, human);

	sluice_repo_free(repo);
	return rc;
}

/* ---- init -------------------------------------------------------------- */

static void human_init(json_t *v)
{
	json_t *k;
	size_t i;

	printf("Initialised sluice repository in %s\nRoot keys pinned:\n",
	       json_string_value(json_object_get(v, "path")));
	json_array_foreach(json_object_get(v, "root_keys"), i, k)
	        printf("  %-16s %s\n", json_string_value(json_object_get(k, "name")),
	               json_string_value(json_object_get(k, "fingerprint")));
}

/* A small text file (at most 1 MiB), NUL-terminated; NULL after saying why. */
static char *read_small_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;

	if (!f || !(buf = malloc((1u << 20) + 1)) || (n = fread(buf, 1, 1u << 20, f), ferror(f)) ||
	    !feof(f)) {
		fprintf(stderr, "sluice: error: cannot read %s%s%s\n", path, f ? "" : ": ",
		        f ? " (over 1 MiB?)" : strerror(errno));
		free(buf);
		if (f)
			fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* "--required-gates a,b" or "none" into opts (names point into list). */
static int parse_gate_list(sluice_init_opts *opts, const char **names, size_t cap, char *list)
{
	opts->gates_set = 1;
	opts->ngates = 0;
	opts->required_gates = names;
	if (!strcmp(list, "none"))
		return 0;
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (opts->ngates == cap)
			return -1;
		names[opts->ngates++] = t;
	}
	return opts->ngates ? 0 : -1;
}

static int cmd_init(cli_env *env, int argc, char **argv)
{
	const char *roots[MAX_LIST], *gates[8];
	sluice_init_opts opts = {0};
	char *config_text = NULL;
	size_t nroots = 0;
	const char *dir = NULL;
	char *report = NULL;
	int error;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--root-key")) {
			const char *v = take_value(argc, argv, &k, "init");
			if (!v)
				return SLUICE_EXIT_USAGE;
			if (nroots == MAX_LIST)
				return cli_usage("init", "too many root keys");
			roots[nroots++] = v;
		} else if (!strcmp(argv[k], "--gate-config")) {
			const char *v = take_value(argc, argv, &k, "init");
			char *text;
			if (!v)
				return SLUICE_EXIT_USAGE;
			if (!(text = read_small_file(v))) {
				free(config_text);
				return SLUICE_EXIT_REFUSED;
			}
			free(config_text);
			config_text = text;
			opts.config_json = config_text;
			opts.config_name = v;
		} else if (!strcmp(argv[k], "--root-threshold")) {
			const char *v = take_value(argc, argv, &k, "init");
			char *end = NULL;
			long t = v ? strtol(v, &end, 10) : 0;
			if (!v || t < 1 || t > MAX_LIST || *end)
				return cli_usage("init",
				                 "--root-threshold takes a number from 1 to %d",
				                 MAX_LIST);
			opts.root_threshold = (unsigned)t;
		} else if (!strcmp(argv[k], "--required-gates")) {
			const char *v = take_value(argc, argv, &k, "init");
			if (!v)
				return SLUICE_EXIT_USAGE;
			if (parse_gate_list(&opts, gates, 8, argv[k]) < 0)
				return cli_usage("init", "--required-gates takes a comma-separated "
				                         "list of gates, or none");
		} else if (!strcmp(argv[k], "--json")) {
			env->json = true;
		} else if (argv[k][0] == '-') {
			return cli_usage("init", "unknown option %s", argv[k]);
		} else if (!dir) {
			dir = argv[k];
		} else {
			return cli_usage("init", "unexpected argument %s", argv[k]);
		}
	}
	if (!dir)
		dir = env->repo_dir;
	error = sluice_repo_init(NULL, env->ctx, dir, roots, nroots, &opts, &report);
	free(config_text);
	return done_report(env, error, report, human_init);
}

/* ---- keys -------------------------------------------------------------- */

static void human_key(json_t *v)
{
	json_t *r;
	size_t i;

	printf("%s key %s %s\nroles:",
	       json_is_true(json_object_get(v, "created")) ? "Created" : "Registered",
	       json_string_value(json_object_get(v, "name")),
	       json_string_value(json_object_get(v, "fingerprint")));
	json_array_foreach(json_object_get(v, "roles"), i, r) printf(" %s", json_string_value(r));
	printf("\n");
}

static int cmd_key_new(cli_env *env, int argc, char **argv)
{
	const char *roles[MAX_LIST], *name = NULL, *signer = NULL, *expires = NULL,
	                             *expires_in = NULL;
	size_t nroles = 0;
	sluice_repo *repo = NULL;
	char *report = NULL;
	int error, rc;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--role")) {
			const char *v = take_value(argc, argv, &k, "key new");
			if (!v)
				return SLUICE_EXIT_USAGE;
			if (nroles == MAX_LIST)
				return cli_usage("key new", "too many roles");
			roles[nroles++] = v;
		} else if (!strcmp(argv[k], "--signer")) {
			if (!(signer = take_value(argc, argv, &k, "key new")))
				return SLUICE_EXIT_USAGE;
		} else if (!strcmp(argv[k], "--expires")) {
			if (!(expires = take_value(argc, argv, &k, "key new")))
				return SLUICE_EXIT_USAGE;
		} else if (!strcmp(argv[k], "--expires-in")) {
			if (!(expires_in = take_value(argc, argv, &k, "key new")))
				return SLUICE_EXIT_USAGE;
		} else if (!strcmp(argv[k], "--json")) {
			env->json = true;
		} else if (argv[k][0] == '-') {
			return cli_usage("key new", "unknown option %s", argv[k]);
		} else if (!name) {
			name = argv[k];
		} else {
			return cli_usage("key new", "unexpected argument %s", argv[k]);
		}
	}
	if (!name)
		return cli_usage("key new", "which key? give a NAME");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if ((error = sluice_root_set_expiry(repo, expires_in)) == 0)
		error = sluice_key_new(repo, name, roles, nroles, expires, signer, &report);
	return cli_finish(env, repo, error, report, human_key);
}

static void human_key_list(json_t *v)
{
	json_t *k, *r;
	size_t i, j;

	json_array_foreach(json_object_get(v, "keys"), i, k)
	{
		printf("%-16s %s ", json_string_value(json_object_get(k, "name")),
		       json_string_value(json_object_get(k, "fingerprint")));
		json_array_foreach(json_object_get(k, "roles"), j, r)
		        printf("%s%s", j ? "," : "", json_string_value(r));
		printf("\n");
	}
}

static int cmd_key_list(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--json"))
			env->json = true;
		else
			return cli_usage("key list", "unexpected argument %s", argv[k]);
	}
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_key_list(repo, &report);
	return cli_finish(env, repo, error, report, human_key_list);
}

static int cmd_key_export(cli_env *env, int argc, char **argv)
{
	const char *name = NULL;
	int format = 0, error;
	sluice_repo *repo = NULL;
	char *out = NULL;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--allowed-signers"))
			format = SLUICE_KEY_EXPORT_ALLOWED_SIGNERS;
		else if (!strcmp(argv[k], "--openssh"))
			format = SLUICE_KEY_EXPORT_OPENSSH;
		else if (!strcmp(argv[k], "--all"))
			name = "--all";
		else if (argv[k][0] == '-')
			return cli_usage("key export", "unknown option %s", argv[k]);
		else if (!name)
			name = argv[k];
		else
			return cli_usage("key export", "unexpected argument %s", argv[k]);
	}
	if (!format)
		return cli_usage("key export", "choose --allowed-signers or --openssh");
	if (!name)
		return cli_usage("key export", "which key? give a NAME or --all");
	/* A local key can be exported as OpenSSH without a repository. */
	if (sluice_repo_open(&repo, env->ctx, env->repo_dir) < 0) {
		repo = NULL;
		if (format != SLUICE_KEY_EXPORT_OPENSSH)
			return cli_fail(env, SLUICE_ENOTFOUND);
		sluice_ctx_clear_error(env->ctx);
	}
	error = sluice_key_export(env->ctx, repo, name, format, &out);
	sluice_repo_free(repo);
	if (error < 0)
		return cli_fail(env, error);
	fputs(out, stdout);
	sluice_free(out);
	return 0;
}

/* ---- propose ----------------------------------------------------------- */

typedef struct {
	sluice_propose_opts opts;
	const char *sources[MAX_LIST];
	const char *positional;
	const char *name;
	double scale;
	sluice_memory_edit edits[MAX_LIST];
	size_t nedits;
} propose_args;

/* Parse the options every propose shares, plus kind-specific ones. */
static int parse_propose(cli_env *env, propose_args *a, int argc, char **argv, const char *cmd,
                         int is_lora, int is_memory)
{
	memset(a, 0, sizeof(*a));
	a->opts.sources = a->sources;
	a->scale = 1.0;
	a->opts.key = getenv("SLUICE_KEY");
	for (int k = 1; k < argc; k++) {
		const char *o = argv[k];
		const char **slot = NULL;

		if (!strcmp(o, "--json")) {
			env->json = true;
			continue;
		}
		if (!strcmp(o, "--onto"))
			slot = &a->opts.onto;
		else if (!strcmp(o, "-m") || !strcmp(o, "--message"))
			slot = &a->opts.message;
		else if (!strcmp(o, "--key"))
			slot = &a->opts.key;
		else if (!strcmp(o, "--target-suite"))
			slot = &a->opts.target_suite;
		else if (!strcmp(o, "--method"))
			slot = &a->opts.method;
		else if (!strcmp(o, "--code-revision"))
			slot = &a->opts.code_revision;
		else if (is_lora && !strcmp(o, "--name"))
			slot = &a->name;
		if (slot) {
			if (!(*slot = take_value(argc, argv, &k, cmd)))
				return SLUICE_EXIT_USAGE;
			continue;
		}
		if (!strcmp(o, "--source")) {
			const char *v = take_value(argc, argv, &k, cmd);
			if (!v)
				return SLUICE_EXIT_USAGE;
			if (a->opts.nsources == MAX_LIST)
				return cli_usage(cmd, "too many --source");
			a->sources[a->opts.nsources++] = v;
		} else if (is_lora && !strcmp(o, "--scale")) {
			const char *v = take_value(argc, argv, &k, cmd);
			char *end;
			if (!v)
				return SLUICE_EXIT_USAGE;
			errno = 0;
			a->scale = strtod(v, &end);
			if (errno || *end || end == v)
				return cli_usage(cmd, "--scale wants a number, not '%s'", v);
		} else if (is_memory && (!strcmp(o, "--add") || !strcmp(o, "--remove") ||
		                         !strcmp(o, "--replace"))) {
			sluice_memory_edit *e = &a->edits[a->nedits];
			if (a->nedits == MAX_LIST)
				return cli_usage(cmd, "too many edits");
			if (!strcmp(o, "--add")) {
				e->op = SLUICE_MEMORY_ADD;
				if (!(e->file = take_value(argc, argv, &k, cmd)))
					return SLUICE_EXIT_USAGE;
			} else if (!strcmp(o, "--remove")) {
				e->op = SLUICE_MEMORY_REMOVE;
				if (!(e->name = take_value(argc, argv, &k, cmd)))
					return SLUICE_EXIT_USAGE;
			} else {
				e->op = SLUICE_MEMORY_REPLACE;
				if (k + 2 >= argc)
					return cli_usage(cmd, "--replace needs NAME FILE");
				e->name = argv[++k];
				e->file = argv[++k];
			}
			a->nedits++;
		} else if (o[0] == '-' && o[1]) {
			return cli_usage(cmd, "unknown option %s", o);
		} else if (!a->positional && !is_memory) {
			a->positional = o;
		} else {
			return cli_usage(cmd, "unexpected argument %s", o);
		}
	}
	if (strcmp(cmd, "propose base") && !a->opts.onto)
		return cli_usage(cmd, strcmp(cmd, "remove") ? "needs --onto VERSION"
		                                            : "needs --onto CHANNEL");
	if (!a->opts.key)
		return cli_usage(cmd, "which key signs the proposal? give --key NAME (or set "
		                      "SLUICE_KEY)");
	return 0;
}

static void human_propose(json_t *v)
{
	const char *kind = json_string_value(json_object_get(v, "kind"));
	json_t *d = json_object_get(v, "details"), *x;
	size_t i;

	if (json_is_true(json_object_get(v, "existing")))
		fprintf(stderr, "identical %s update already proposed onto this parent\n", kind);
	else
		fprintf(stderr, "proposed %s update\n", kind);
	{
		json_t *st = json_object_get(v, "stored");
		if (json_integer_value(json_object_get(st, "bytes_chunked")) > 0)
			fprintf(stderr,
			        "stored %.1f MiB new of %.1f MiB chunked (%lld new chunks)\n",
			        json_integer_value(json_object_get(st, "new_bytes")) / 1048576.0,
			        json_integer_value(json_object_get(st, "bytes_chunked")) /
			                1048576.0,
			        json_integer_value(json_object_get(st, "new_chunks")));
	}
	if (json_array_size(json_object_get(d, "dropped_adapters"))) {
		fprintf(stderr, "adapters trained on the old base were dropped:");
		json_array_foreach(json_object_get(d, "dropped_adapters"), i, x)
		        fprintf(stderr, " %s", json_string_value(x));
		fprintf(stderr, "\n");
	}
	/* The version id alone on the last line of stdout, for scripts. */
	printf("%s\n", json_string_value(json_object_get(v, "version")));
}

static int cmd_propose(cli_env *env, int argc, char **argv, const char *kind)
{
	char cmd[32], id[41], *report = NULL;
	sluice_repo *repo = NULL;
	propose_args a;
	int rc, error;

	snprintf(cmd, sizeof(cmd), "propose %s", kind);
	if ((rc = parse_propose(env, &a, argc, argv, cmd, !strcmp(kind, "lora"),
	                        !strcmp(kind, "memory"))))
		return rc;
	if (strcmp(kind, "memory") && !a.positional)
		return cli_usage(cmd, "missing %s", !strcmp(kind, "replay") ? "FILE.jsonl" : "DIR");
	if (strcmp(kind, "base") && !a.opts.onto)
		return cli_usage(cmd, "needs --onto VERSION");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if (!strcmp(kind, "base"))
		error = sluice_propose_base(repo, id, &a.opts, a.positional, &report);
	else if (!strcmp(kind, "lora"))
		error = sluice_propose_lora(repo, id, &a.opts, a.positional, a.name, a.scale,
		                            &report);
	else if (!strcmp(kind, "memory"))
		error = sluice_propose_memory(repo, id, &a.opts, a.edits, a.nedits, &report);
	else
		error = sluice_propose_replay(repo, id, &a.opts, a.positional, &report);
	return cli_finish(env, repo, error, report, human_propose);
}

static int cmd_propose_base(cli_env *env, int argc, char **argv)
{
	return cmd_propose(env, argc, argv, "base");
}
static int cmd_propose_lora(cli_env *env, int argc, char **argv)
{
	return cmd_propose(env, argc, argv, "lora");
}
static int cmd_propose_memory(cli_env *env, int argc, char **argv)
{
	return cmd_propose(env, argc, argv, "memory");
}
static int cmd_propose_replay(cli_env *env, int argc, char **argv)
{
	return cmd_propose(env, argc, argv, "replay");
}

/* ---- reading ----------------------------------------------------------- */

/* A purge, in the words of its tombstone. */
static void human_tombstone(json_t *t, const char *indent)
{
	json_t *f;
	size_t i;

	printf("%spurged at journal entry %lld by ", indent,
	       (long long)json_integer_value(json_object_get(t, "seq")));
	cli_put_str(stdout, json_string_value(json_object_get(t, "actor")));
	printf(" (%s), %s: ", json_string_value(json_object_get(t, "fingerprint")),
	       json_string_value(json_object_get(t, "time")));
	cli_put_str(stdout, json_string_value(json_object_get(t, "reason")));
	putchar('\n');
	json_array_foreach(json_object_get(t, "purged"), i, f)
	{
		printf("%s  removed ", indent);
		cli_put_str(stdout, json_string_value(json_object_get(f, "path")));
		printf(" (%lld bytes, blake2b %.16s...)\n",
		       (long long)json_integer_value(json_object_get(f, "size")),
		       json_string_value(json_object_get(f, "blake2b")));
	}
	printf("%s  (%lld chunks deleted; hashes, names and sizes kept; tombstone %s)\n", indent,
	       (long long)json_integer_value(json_object_get(t, "chunks")),
	       json_is_true(json_object_get(t, "signed")) ? "signed" : "missing");
}

static void human_log(json_t *v)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(v, "versions"), i, e)
	{
		json_t *t;
		size_t j;

		printf("%.12s  %-6s  %s  %-12s  ", json_string_value(json_object_get(e, "version")),
		       json_string_value(json_object_get(e, "kind")),
		       json_string_value(json_object_get(e, "time")),
		       json_string_value(json_object_get(e, "proposer")));
		cli_put_str(stdout, json_string_value(json_object_get(e, "summary")));
		printf("%s\n",
		       json_array_size(json_object_get(e, "tombstones")) ? "  [PURGED]" : "");
		json_array_foreach(json_object_get(e, "tombstones"), j, t)
		        human_tombstone(t, "    ");
	}
}

static void human_show(json_t *v)
{
	json_t *u = json_object_get(v, "update"), *s = json_object_get(v, "state"), *x, *f;
	json_t *prov = json_object_get(u, "provenance");
	size_t i;

	printf("version  %s\nkind     %s\nsummary  ",
	       json_string_value(json_object_get(v, "version")),
	       json_string_value(json_object_get(u, "kind")));
	cli_put_str(stdout, json_string_value(json_object_get(u, "summary")));
	printf("\nproposer %s (%s)\ncreated  %s\nparent   %s\n",
	       json_string_value(json_object_get(json_object_get(u, "proposer"), "name")),
	       json_string_value(json_object_get(json_object_get(u, "proposer"), "fingerprint")),
	       json_string_value(json_object_get(u, "created")),
	       json_is_string(json_object_get(u, "parent"))
	               ? json_string_value(json_object_get(u, "parent"))
	               : "(none)");
	if (json_is_string(json_object_get(u, "target_suite")))
		printf("target   %s\n", json_string_value(json_object_get(u, "target_suite")));
	json_array_foreach(json_object_get(prov, "sources"), i, x)
	        printf("source   %s=%s (declared by the proposer)\n",
	               json_string_value(json_object_get(x, "name")),
	               json_string_value(json_object_get(x, "digest")));
	printf("\nstate:\n");
	if (json_is_object(json_object_get(s, "base"))) {
		json_t *bf = json_object_get(json_object_get(s, "base"), "files");
		uint64_t bytes = 0;
		json_array_foreach(bf, i, f) bytes +=
		        (uint64_t)json_integer_value(json_object_get(f, "size"));
		printf("  base      %zu files, %.1f MiB\n", json_array_size(bf), bytes / 1048576.0);
	}
	json_array_foreach(json_object_get(s, "adapters"), i, x)
	        printf("  adapter   %zu. %s (r=%lld, %zu modules, scale %g)\n", i + 1,
	               json_string_value(json_object_get(x, "name")),
	               json_integer_value(json_object_get(x, "r")),
	               json_array_size(json_object_get(x, "modules")),
	               json_number_value(json_object_get(x, "scale")));
	json_array_foreach(json_object_get(s, "memory"), i, x) printf(
	        "  memory    %s (%lld bytes)\n", json_string_value(json_object_get(x, "name")),
	        json_integer_value(json_object_get(json_object_get(x, "file"), "size")));
	json_array_foreach(json_object_get(s, "replay"), i, x) printf(
	        "  replay    %s (%lld records)\n", json_string_value(json_object_get(x, "name")),
	        json_integer_value(json_object_get(x, "count")));
	if (json_array_size(json_object_get(v, "tombstones"))) {
		/* The state above still lists what was purged: say which bytes are gone. */
		printf("\nPURGED (the hashes above stay; these files' bytes are deleted):\n");
		json_array_foreach(json_object_get(v, "tombstones"), i, x) human_tombstone(x, "  ");
	}
}

static void human_diff(json_t *v)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(v, "changes"), i, c)
	{
		json_t *patch = json_object_get(c, "patch");
		printf("%-8s %-8s ", json_string_value(json_object_get(c, "change")),
		       json_string_value(json_object_get(c, "component")));
		cli_put_str(stdout, json_string_value(json_object_get(c, "path")));
		putchar('\n');
		if (json_is_string(patch))
			cli_put_text(stdout, json_string_value(patch), json_string_length(patch),
			             CLI_TEXT_LINES);
	}
	if (json_array_size(json_object_get(v, "changes")) == 0)
		printf("no changes\n");
}

static void human_checkout(json_t *v)
{
	printf("checked out %.12s into %s: %lld files, %lld bytes, every digest verified\n",
	       json_string_value(json_object_get(v, "version")),
	       json_string_value(json_object_get(v, "directory")),
	       json_integer_value(json_object_get(v, "files")),
	       json_integer_value(json_object_get(v, "bytes")));
}

static void human_verify(json_t *v)
{
	json_t *p, *c = json_object_get(v, "checked");
	size_t i;

	json_array_foreach(json_object_get(v, "problems"), i, p)
	        printf("problem: %s\n", json_string_value(p));
	json_array_foreach(json_object_get(v, "notes"), i, p)
	        printf("note: %s\n", json_string_value(p));
	printf("%s: %lld journal entries, %lld versions, %lld files, %lld chunks checked\n",
	       json_is_true(json_object_get(v, "ok")) ? "ok" : "FAILED",
	       json_integer_value(json_object_get(c, "journal_entries")),
	       json_integer_value(json_object_get(c, "versions")),
	       json_integer_value(json_object_get(c, "files")),
	       json_integer_value(json_object_get(c, "chunks")));
}

static void human_reindex(json_t *v)
{
	printf("index rebuilt: %lld chunks\n", json_integer_value(json_object_get(v, "chunks")));
}

/* Commands taking N positionals and --json. */
static int simple(cli_env *env, int argc, char **argv, const char *cmd, int min, int max,
                  const char **pos)
{
	int n = 0;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--json"))
			env->json = true;
		else if (argv[k][0] == '-' && argv[k][1])
			return cli_usage(cmd, "unknown option %s", argv[k]);
		else if (n < max)
			pos[n++] = argv[k];
		else
			return cli_usage(cmd, "unexpected argument %s", argv[k]);
	}
	if (n < min)
		return cli_usage(cmd, "missing argument");
	return 0;
}

/*
 * Attach to a log or show report the tombstones of its versions: each
 * version object (vs, an array, or one object when one is set) gets
 * "tombstones", the purges of that version (sluice_audit_tombstones), so a
 * purged update reads as what it is. Replaces *report.
 */
static int with_tombstones(sluice_repo *repo, char **report, int show)
{
	char *tomb = NULL, *out;
	json_t *v = NULL, *t = NULL, *all, *e, *ts;
	size_t i, j;
	int error;

	if ((error = sluice_audit_tombstones(repo, NULL, &tomb)) < 0)
		return error;
	v = json_loads(*report, 0, NULL);
	t = json_loads(tomb, 0, NULL);
	sluice_free(tomb);
	if (!v || !t) {
		json_decref(v);
		json_decref(t);
		return SLUICE_ENOMEM;
	}
	all = json_object_get(t, "tombstones");
	for (i = 0; show ? i < 1 : i < json_array_size(json_object_get(v, "versions")); i++) {
		json_t *ver = show ? v : json_array_get(json_object_get(v, "versions"), i);
		const char *id = json_string_value(json_object_get(ver, "version"));

		ts = json_array();
		json_array_foreach(all, j, e)
		{
			if (id && !strcmp(id, json_string_value(json_object_get(e, "version"))))
				json_array_append(ts, e);
		}
		json_object_set_new(ver, "tombstones", ts);
	}
	out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(v);
	json_decref(t);
	if (!out)
		return SLUICE_ENOMEM;
	sluice_free(*report);
	*report = out;
	return 0;
}

static int cmd_log(cli_env *env, int argc, char **argv)
{
	const char *pos[1] = {NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "log", 0, 1, pos)) || (rc = cli_open(env, &repo)))
		return rc;
	if ((error = sluice_version_log(repo, pos[0], &report)) == 0)
		error = with_tombstones(repo, &report, 0);
	return cli_finish(env, repo, error, report, human_log);
}

static int cmd_show(cli_env *env, int argc, char **argv)
{
	const char *pos[1] = {NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "show", 1, 1, pos)) || (rc = cli_open(env, &repo)))
		return rc;
	if ((error = sluice_version_show(repo, pos[0], &report)) == 0)
		error = with_tombstones(repo, &report, 1);
	return cli_finish(env, repo, error, report, human_show);
}

static int cmd_diff(cli_env *env, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "diff", 2, 2, pos)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_version_diff(repo, pos[0], pos[1], &report);
	return cli_finish(env, repo, error, report, human_diff);
}

static int cmd_checkout(cli_env *env, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "checkout", 2, 2, pos)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_version_checkout(repo, pos[0], pos[1], &report);
	return cli_finish(env, repo, error, report, human_checkout);
}

static int cmd_verify(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "verify", 0, 0, NULL)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_repo_verify(repo, &report);
	sluice_repo_free(repo);
	if (error == SLUICE_ECORRUPT && report) {
		/* The report says what is wrong; the exit code says "no". */
		done_report(env, 0, report, human_verify);
		fprintf(stderr, "sluice: verify: %s\n", sluice_ctx_errmsg(env->ctx));
		return SLUICE_EXIT_NO;
	}
	return done_report(env, error, report, human_verify);
}

static int cmd_reindex(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "reindex", 0, 0, NULL)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_repo_reindex(repo, &report);
	return cli_finish(env, repo, error, report, human_reindex);
}

/* ---- channels ---------------------------------------------------------- */

static void human_move(json_t *v)
{
	const char *action = json_string_value(json_object_get(v, "action"));
	const char *from = json_string_value(json_object_get(v, "from"));

	printf("%s: %s %.12s -> %.12s (journal entry %.12s)\n", action,
	       json_string_value(json_object_get(v, "channel")), from ? from : "(empty)",
	       json_string_value(json_object_get(v, "to")),
	       json_string_value(json_object_get(v, "entry")));
	if (json_is_string(json_object_get(v, "withdrawn")))
		printf("%.12s is withdrawn from %s: promoting it there again needs "
		       "--override-withdrawn REASON\n",
		       json_string_value(json_object_get(v, "withdrawn")),
		       json_string_value(json_object_get(v, "channel")));
}

/* Options of the channel commands: --channel, --to, --reason, --key, --override-withdrawn. */
typedef struct {
	const char *channel, *to, *reason, *key, *override;
	const char *pos[2];
	int npos;
	int sign; /* reset --sign */
} move_args;

static int parse_move(cli_env *env, move_args *a, int argc, char **argv, const char *cmd,
                      int maxpos)
{
	memset(a, 0, sizeof(*a));
	a->key = getenv("SLUICE_KEY");
	for (int k = 1; k < argc; k++) {
		const char **slot = NULL;
		if (!strcmp(argv[k], "--json")) {
			env->json = true;
			continue;
		}
		if (!strcmp(cmd, "reset") && !strcmp(argv[k], "--sign")) {
			a->sign = 1;
			continue;
		}
		if (!strcmp(argv[k], "--channel"))
			slot = &a->channel;
		else if (!strcmp(argv[k], "--to"))
			slot = &a->to;
		else if (!strcmp(argv[k], "--reason"))
			slot = &a->reason;
		else if (!strcmp(argv[k], "--key"))
			slot = &a->key;
		else if (!strcmp(argv[k], "--override-withdrawn"))
			slot = &a->override;
		else if (!strcmp(argv[k], "--onto"))
			slot = &a->channel;
		if (slot) {
			if (!(*slot = take_value(argc, argv, &k, cmd)))
				return SLUICE_EXIT_USAGE;
		} else if (argv[k][0] == '-' && argv[k][1]) {
			return cli_usage(cmd, "unknown option %s", argv[k]);
		} else if (a->npos < maxpos) {
			a->pos[a->npos++] = argv[k];
		} else {
			return cli_usage(cmd, "unexpected argument %s", argv[k]);
		}
	}
	return 0;
}

static int cmd_promote(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	move_args a;
	int rc, error;

	if ((rc = parse_move(env, &a, argc, argv, "promote", 1)))
		return rc;
	if (a.npos != 1 || !a.channel)
		return cli_usage("promote", "give a version and --channel NAME");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_channel_promote(repo, a.pos[0], a.channel, a.key, a.override, &report);
	return cli_finish(env, repo, error, report, human_move);
}

static int cmd_rollback(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	move_args a;
	int rc, error;

	if ((rc = parse_move(env, &a, argc, argv, "rollback", 1)))
		return rc;
	if (a.npos != 1)
		return cli_usage("rollback", "which channel?");
	if (!a.reason)
		return cli_usage("rollback", "give --reason TEXT: it is recorded in the journal");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_channel_rollback(repo, a.pos[0], a.to, a.reason, a.key, &report);
	return cli_finish(env, repo, error, report, human_move);
}

static int cmd_reset(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	move_args a;
	int rc, error;

	if ((rc = parse_move(env, &a, argc, argv, "reset", 2)))
		return rc;
	if (a.npos != 2)
		return cli_usage("reset", "give a channel and a version");
	if (!a.reason)
		return cli_usage("reset", "give --reason TEXT: it is recorded in the journal");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = a.sign ? sluice_channel_reset_sign(repo, a.pos[0], a.pos[1], a.reason, a.key,
	                                           &report)
	               : sluice_channel_reset(repo, a.pos[0], a.pos[1], a.reason, a.key, &report);
	return cli_finish(env, repo, error, report, human_move);
}

static void human_remove(json_t *v)
{
	json_t *d = json_object_get(v, "details"), *x;
	size_t i;

	fprintf(stderr, "proposed removal of %.12s (%s) from %s\n",
	        json_string_value(json_object_get(d, "removed")),
	        json_string_value(json_object_get(d, "removed_kind")),
	        json_string_value(json_object_get(d, "channel")));
	if (json_array_size(json_object_get(d, "dependants"))) {
		fprintf(stderr, "dependants (built on top of it; removing it does not unlearn what "
		                "they learned from it):\n");
		json_array_foreach(json_object_get(d, "dependants"), i, x)
		{
			fprintf(stderr, "  %.12s %-6s ",
			        json_string_value(json_object_get(x, "version")),
			        json_string_value(json_object_get(x, "kind")));
			cli_put_str(stderr, json_string_value(json_object_get(x, "summary")));
			fputc('\n', stderr);
		}
	}
	printf("%s\n", json_string_value(json_object_get(v, "version")));
}

static int cmd_remove(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL, id[41];
	propose_args a;
	int rc, error;

	/* remove takes the propose options; --onto names the channel. */
	if ((rc = parse_propose(env, &a, argc, argv, "remove", 0, 0)))
		return rc;
	if (!a.positional)
		return cli_usage("remove", "which update?");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_propose_remove(repo, id, &a.opts, a.positional, a.opts.onto, &report);
	return cli_finish(env, repo, error, report, human_remove);
}

static void human_history(json_t *v)
{
	json_t *m;
	size_t i;

	json_array_foreach(json_object_get(v, "moves"), i, m)
	{
		const char *from = json_string_value(json_object_get(m, "from"));
		const char *why = json_string_value(json_object_get(m, "reason"));
		if (!why)
			why = json_string_value(json_object_get(m, "override_withdrawn"));
		printf("%s  %-8s %.12s -> %.12s  ", json_string_value(json_object_get(m, "time")),
		       json_string_value(json_object_get(m, "action")),
		       from ? from : "(empty)     ", json_string_value(json_object_get(m, "to")));
		cli_put_str(stdout, json_string_value(
		                            json_object_get(json_object_get(m, "actor"), "name")));
		if (why) {
			fputs(": ", stdout);
			cli_put_str(stdout, why);
		}
		putchar('\n');
	}
}

static int cmd_history(cli_env *env, int argc, char **argv)
{
	const char *pos[1] = {NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "history", 1, 1, pos)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_channel_history(repo, pos[0], &report);
	return cli_finish(env, repo, error, report, human_history);
}

/* Each hook following a channel: what its server last acknowledged, and what is owed. */
static void human_status_hooks(json_t *c)
{
	json_t *h;
	size_t k;

	json_array_foreach(json_object_get(c, "hooks"), k, h)
	{
		json_t *ack = json_object_get(h, "acknowledged"),
		       *le = json_object_get(h, "last_error");
		printf("  hook %-12s %-8s ", json_string_value(json_object_get(h, "hook")),
		       json_string_value(json_object_get(h, "type")));
		if (json_is_object(ack))
			printf("acknowledged %.12s at %s%s",
			       json_string_value(json_object_get(ack, "version")),
			       json_string_value(json_object_get(ack, "time")),
			       json_is_true(json_object_get(h, "current")) ? " (current)" : "");
		else
			printf("nothing acknowledged yet");
		if (json_integer_value(json_object_get(h, "pending")))
			printf("; %lld pending", json_integer_value(json_object_get(h, "pending")));
		if (json_is_object(le))
			printf("; %lld failed attempt(s), last: %s",
			       json_integer_value(json_object_get(h, "failed_attempts")),
			       json_string_value(json_object_get(le, "error")));
		printf("\n");
	}
}

static void human_status(json_t *v)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(v, "channels"), i, c)
	{
		const char *h = json_string_value(json_object_get(c, "head"));
		printf("%-12s %s", json_string_value(json_object_get(c, "name")),
		       h ? h : "(empty)");
		if (json_array_size(json_object_get(c, "withdrawn")))
			printf("  (%zu withdrawn)",
			       json_array_size(json_object_get(c, "withdrawn")));
		printf("\n");
		human_status_hooks(c);
	}
	if (json_array_size(json_object_get(v, "channels")) == 0)
		printf("no channels yet: sluice promote VERSION --channel NAME creates one\n");
}

static int cmd_status(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "status", 0, 0, NULL)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_channel_status(repo, &report);
	return cli_finish(env, repo, error, report, human_status);
}

/* ---- suites ------------------------------------------------------------ */

static void human_suites(json_t *v)
{
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(v, "suites"), i, x)
	{
		json_t *added = json_object_get(x, "added");
		printf("%-20s %-16s %5lld items  blake2b:%.16s…%s\n",
		       json_string_value(json_object_get(x, "name")),
		       json_string_value(json_object_get(x, "type")),
		       json_integer_value(json_object_get(x, "count")),
		       json_string_value(json_object_get(x, "digest")),
		       !added                ? ""
		       : json_is_true(added) ? "  (added)"
		                             : "  (already pinned)");
	}
}

static void human_suite(json_t *v)
{
	json_t *x;
	size_t i;

	printf("name         %s\ntype         %s\ndigest       blake2b:%s\nitems        %lld\n"
	       "description  %s\nlicence      %s\nsource       %s\n",
	       json_string_value(json_object_get(v, "name")),
	       json_string_value(json_object_get(v, "type")),
	       json_string_value(json_object_get(v, "digest")),
	       json_integer_value(json_object_get(v, "count")),
	       json_string_value(json_object_get(v, "description")),
	       json_string_value(json_object_get(v, "licence")),
	       json_string_value(json_object_get(v, "source")));
	json_array_foreach(json_object_get(v, "first_items"), i, x)
	{
		char *s = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS);
		printf("%s %s\n", i ? "            " : "first items", s ? s : "");
		free(s);
	}
}

static int cmd_suite_add(cli_env *env, int argc, char **argv)
{
	const char *files[MAX_LIST], *key = getenv("SLUICE_KEY");
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t n = 0;
	int rc, error;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--json")) {
			env->json = true;
		} else if (!strcmp(argv[k], "--key")) {
			if (!(key = take_value(argc, argv, &k, "suite add")))
				return SLUICE_EXIT_USAGE;
		} else if (argv[k][0] == '-' && argv[k][1]) {
			return cli_usage("suite add", "unknown option %s", argv[k]);
		} else if (n < MAX_LIST) {
			files[n++] = argv[k];
		} else {
			return cli_usage("suite add", "too many suites at once");
		}
	}
	if (n == 0)
		return cli_usage("suite add", "give one or more suite manifests");
	if (!key)
		return cli_usage("suite add",
		                 "which key signs? give --key NAME (or set SLUICE_KEY)");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_suite_add(repo, files, n, key, &report);
	return cli_finish(env, repo, error, report, human_suites);
}

static int cmd_suite_list(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "suite list", 0, 0, NULL)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_suite_list(repo, &report);
	return cli_finish(env, repo, error, report, human_suites);
}

static int cmd_suite_show(cli_env *env, int argc, char **argv)
{
	const char *pos[1] = {NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = simple(env, argc, argv, "suite show", 1, 1, pos)) || (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_suite_show(repo, pos[0], &report);
	return cli_finish(env, repo, error, report, human_suite);
}

/* ---- eval -------------------------------------------------------------- */

static void human_eval(json_t *v)
{
	json_t *x;
	size_t i;

	printf("version %.12s  backend: %s\n", json_string_value(json_object_get(v, "version")),
	       json_string_value(json_object_get(v, "backend")));
	json_array_foreach(json_object_get(v, "suites"), i, x)
	{
		json_t *f = json_object_get(x, "figures"), *val;
		const char *k;

		printf("%-20s %-16s", json_string_value(json_object_get(x, "name")),
		       json_string_value(json_object_get(x, "type")));
		json_object_foreach(f, k, val)
		{
			if (json_is_real(val))
				printf(" %s=%.4f", k, json_real_value(val));
			else if (json_is_integer(val))
				printf(" %s=%lld", k, json_integer_value(val));
		}
		printf("%s\n", json_is_true(json_object_get(x, "cached")) ? "  (cached)" : "");
	}
}

static int cmd_eval(cli_env *env, int argc, char **argv)
{
	const char *suites[MAX_LIST], *ref = NULL;
	sluice_eval_opts opts = {0, 0, NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t n = 0;
	int rc, error;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--json")) {
			env->json = true;
		} else if (!strcmp(argv[k], "--no-cache")) {
			opts.no_cache = 1;
		} else if (!strcmp(argv[k], "--items")) {
			opts.with_items = 1;
		} else if (!strcmp(argv[k], "--suite")) {
			const char *s = take_value(argc, argv, &k, "eval");
			if (!s)
				return SLUICE_EXIT_USAGE;
			if (n == MAX_LIST)
				return cli_usage("eval", "too many suites");
			suites[n++] = s;
		} else if (!strcmp(argv[k], "--backend")) {
			const char *b = take_value(argc, argv, &k, "eval");
			if (!b)
				return SLUICE_EXIT_USAGE;
			if (strcmp(b, "builtin") && strcmp(b, "http"))
				return cli_usage("eval", "unknown backend '%s' (builtin, http)", b);
			opts.backend = b;
		} else if (argv[k][0] == '-' && argv[k][1]) {
			return cli_usage("eval", "unknown option %s", argv[k]);
		} else if (!ref) {
			ref = argv[k];
		} else {
			return cli_usage("eval", "unexpected argument %s", argv[k]);
		}
	}
	if (!ref || n == 0)
		return cli_usage("eval", "give a version and at least one --suite NAME");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_eval_run(repo, ref, suites, n, &opts, &report);
	return cli_finish(env, repo, error, report, human_eval);
}

/* ---- gate, anchor -------------------------------------------------------- */

/* A scalar of a finding as text: strings quoted (cut at 72 bytes), numbers short. */
static void print_scalar(const json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v), cut = n > 72 ? 72 : n;
		/* Cut at a character boundary, not inside a UTF-8 sequence. */
		while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
		putchar('"');
		cli_put_text(stdout, s, cut, CLI_TEXT_QUOTED);
		printf("%s\"", cut < n ? "..." : "");
	} else if (json_is_integer(v)) {
		printf("%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		printf("%.3g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		printf("%s", json_is_true(v) ? "true" : "false");
	}
}

/*
 * The first findings of a check, one line each, so that a person reading
 * the report sees what was named (the trigger and its evidence, the note's
 * clause, the module) without --json: each finding's scalar members in
 * the report's order (name order, the report being canonical JSON), and of
 * an "evidence" object the prompt and both models' likeliest next tokens.
 */
static void print_findings(const json_t *findings)
{
	enum { SHOWN = 5 };
	const json_t *f;
	size_t i;

	json_array_foreach(findings, i, f)
	{
		const char *k;
		json_t *val, *ev;
		int first = 1;
		if (i == SHOWN) {
			printf("      ... and %zu more (--json has them all)\n",
			       json_array_size(findings) - SHOWN);
			break;
		}
		printf("      -");
		json_object_foreach((json_t *)f, k, val)
		{
			if (!json_is_string(val) && !json_is_number(val) && !json_is_boolean(val))
				continue;
			printf("%s%s=", first ? " " : ", ", k);
			print_scalar(val);
			first = 0;
		}
		ev = json_object_get(f, "evidence");
		if (json_is_object(ev) && json_is_string(json_object_get(ev, "prompt"))) {
			printf("; on ");
			print_scalar(json_object_get(ev, "prompt"));
			printf(" the baseline says ");
			print_scalar(
			        json_object_get(json_object_get(ev, "baseline_next"), "token"));
			printf(", the candidate ");
			print_scalar(
			        json_object_get(json_object_get(ev, "candidate_next"), "token"));
		}
		printf("\n");
	}
}

/*
 * An inconclusive paired check's items_to_decide, after its interval: the
 * suite size that would settle the same rates, or that none would (the
 * rate is on the limit). Gain, with no limit, has nothing to say.
 */
static void print_items_to_decide(json_t *c)
{
	json_t *m = json_object_get(c, "items_to_decide");
	const char *rule = json_string_value(json_object_get(c, "rule"));

	if (!m || strcmp(json_string_value(json_object_get(c, "result")), "inconclusive") ||
	    !rule || (strcmp(rule, "at_least") && strcmp(rule, "at_most")))
		return;
	printf("; %" JSON_INTEGER_FORMAT " worse, %" JSON_INTEGER_FORMAT
	       " better of %" JSON_INTEGER_FORMAT,
	       json_integer_value(json_object_get(c, "worse")),
	       json_integer_value(json_object_get(c, "better")),
	       json_integer_value(json_object_get(c, "n")));
	if (json_is_integer(m))
		printf(": a suite of %" JSON_INTEGER_FORMAT " would settle it",
		       json_integer_value(m));
	else
		printf(": on the limit, no suite size settles it");
}

static void human_gate(json_t *v)
{
	json_t *g, *c;
	size_t i, j;

	printf("candidate %.12s on channel %s against head %.12s (anchor %.12s)\n",
	       json_string_value(json_object_get(v, "candidate")),
	       json_string_value(json_object_get(v, "channel")),
	       json_is_string(json_object_get(v, "head"))
	               ? json_string_value(json_object_get(v, "head"))
	               : "(none)",
	       json_is_string(json_object_get(v, "anchor"))
	               ? json_string_value(json_object_get(v, "anchor"))
	               : "(none)");
	if (json_is_true(json_object_get(v, "channel_new"))) {
		json_t *k;
		printf("note: no channel '%s' exists yet, so the candidate is compared with its "
		       "parent; promoting it would create the channel (channels:",
		       json_string_value(json_object_get(v, "channel")));
		json_array_foreach(json_object_get(v, "channels"), i, k)
		        printf("%s %s", i ? "," : "", json_string_value(k));
		printf("%s)\n", json_array_size(json_object_get(v, "channels")) ? "" : " none");
	}
	json_array_foreach(json_object_get(v, "gates"), i, g)
	{
		printf("%s: %s\n", json_string_value(json_object_get(g, "gate")),
		       json_string_value(json_object_get(g, "result")));
		if (json_is_string(json_object_get(g, "note"))) {
			fputs("  note: ", stdout);
			cli_put_str(stdout, json_string_value(json_object_get(g, "note")));
			putchar('\n');
		}
		json_array_foreach(json_object_get(g, "checks"), j, c)
		{
			const char *where = json_string_value(json_object_get(c, "suite"));
			if (!where)
				where = json_string_value(json_object_get(c, "batch"));
			printf("  %-13s %-26s %-13s",
			       json_string_value(json_object_get(c, "result")),
			       json_string_value(json_object_get(c, "check")), where ? where : "");
			if (json_is_array(json_object_get(c, "interval"))) {
				printf(" %+.4f [%+.4f, %+.4f] %s %+.4f",
				       json_number_value(json_object_get(c, "estimate")),
				       json_number_value(
				               json_array_get(json_object_get(c, "interval"), 0)),
				       json_number_value(
				               json_array_get(json_object_get(c, "interval"), 1)),
				       !strcmp(json_string_value(json_object_get(c, "rule")),
				               "at_most")
				               ? "<="
				               : ">=",
				       json_number_value(json_object_get(c, "limit")));
				print_items_to_decide(c);
			} else if (json_is_array(json_object_get(c, "findings")))
				printf(" %zu finding(s)",
				       json_array_size(json_object_get(c, "findings")));
			else if (json_is_string(json_object_get(c, "note")))
				printf(" %s", json_string_value(json_object_get(c, "note")));
			printf("\n");
			print_findings(json_object_get(c, "findings"));
		}
	}
	printf("result: %s\n", json_string_value(json_object_get(v, "result")));
	if (json_is_string(json_object_get(v, "entry")))
		printf("verdict journaled as entry %s\n",
		       json_string_value(json_object_get(v, "entry")));
}

static void xml_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
				fputc(*s, f);
		}
	}
}

/*
 * --junit FILE is written through a temporary file beside FILE, made before
 * any gate runs and renamed over FILE at the end: a path that cannot be
 * written is refused before anything is gated or journaled, and a reader
 * never sees half a report.
 */
typedef struct {
	const char *path;
	char *tmp; /* path.XXXXXX */
	FILE *f;
} junit_out;

static int junit_open(junit_out *j, const char *path)
{
	size_t n = strlen(path);
	struct stat st;
	mode_t mask;
	int fd = -1;

	j->path = path;
	j->f = NULL;
	j->tmp = NULL;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, "sluice: error: cannot write %s: it is a directory\n", path);
		return -1;
	}
	if (!(j->tmp = malloc(n + sizeof(".XXXXXX")))) {
		fprintf(stderr, "sluice: error: out of memory\n");
		return -1;
	}
	memcpy(j->tmp, path, n);
	memcpy(j->tmp + n, ".XXXXXX", sizeof(".XXXXXX"));
	/* mkstemp makes the file 0600; a report is as readable as any file the user makes. */
	mask = umask(0);
	umask(mask);
	if ((fd = mkstemp(j->tmp)) < 0 || fchmod(fd, 0666 & ~mask) < 0 ||
	    !(j->f = fdopen(fd, "w"))) {
		fprintf(stderr, "sluice: error: cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(j->tmp);
		}
		free(j->tmp);
		j->tmp = NULL;
		return -1;
	}
	return 0;
}

/* Drop the temporary file (no report to write); harmless on an unopened j. */
static void junit_discard(junit_out *j)
{
	if (j->f) {
		fclose(j->f);
		unlink(j->tmp);
	}
	free(j->tmp);
	j->f = NULL;
	j->tmp = NULL;
}

/* JUnit XML: one testsuite per gate, one testcase per check; fail and inconclusive fail it. */
static int write_junit(junit_out *out, json_t *v)
{
	FILE *f = out->f;
	json_t *g, *c;
	size_t i, j;
	int bad;

	fprintf(f,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sluice gate\">\n");
	json_array_foreach(json_object_get(v, "gates"), i, g)
	{
		json_t *checks = json_object_get(g, "checks");
		size_t failures = 0;
		json_array_foreach(checks, j, c) failures +=
		        strcmp(json_string_value(json_object_get(c, "result")), "pass") != 0;
		fprintf(f, "  <testsuite name=\"");
		xml_text(f, json_string_value(json_object_get(g, "gate")));
		fprintf(f, "\" tests=\"%zu\" failures=\"%zu\">\n", json_array_size(checks),
		        failures);
		json_array_foreach(checks, j, c)
		{
			const char *res = json_string_value(json_object_get(c, "result"));
			const char *where = json_string_value(json_object_get(c, "suite"));
			char *detail = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
			if (!where)
				where = json_string_value(json_object_get(c, "batch"));
			fprintf(f, "    <testcase classname=\"sluice.");
			xml_text(f, json_string_value(json_object_get(g, "gate")));
			fprintf(f, "\" name=\"");
			xml_text(f, json_string_value(json_object_get(c, "check")));
			if (where) {
				fputc(' ', f);
				xml_text(f, where);
			}
			fprintf(f, "\">");
			if (strcmp(res, "pass")) {
				fprintf(f, "\n      <failure type=\"%s\" message=\"%s\">", res,
				        res);
				xml_text(f, detail);
				fprintf(f, "</failure>\n    ");
			}
			fprintf(f, "</testcase>\n");
			free(detail);
		}
		fprintf(f, "  </testsuite>\n");
	}
	fprintf(f, "</testsuites>\n");
	bad = ferror(f);
	out->f = NULL;
	if (fclose(f) != 0 || bad || rename(out->tmp, out->path) != 0) {
		fprintf(stderr, "sluice: error: cannot write %s: %s\n", out->path,
		        bad ? "write error" : strerror(errno));
		unlink(out->tmp);
		free(out->tmp);
		out->tmp = NULL;
		return -1;
	}
	free(out->tmp);
	out->tmp = NULL;
	return 0;
}

static void human_gate_history(json_t *v)
{
	json_t *row, *s;
	size_t i, j;

	printf("%-14s", "version");
	json_array_foreach(json_object_get(v, "suites"), j, s)
	        printf(" %12.12s", json_string_value(s));
	printf("\n");
	json_array_foreach(json_object_get(v, "rows"), i, row)
	{
		printf("%-14.12s", json_string_value(json_object_get(row, "version")));
		json_array_foreach(json_object_get(v, "suites"), j, s)
		{
			json_t *x = json_object_get(json_object_get(row, "scores"),
			                            json_string_value(s));
			if (json_is_number(x))
				printf(" %12.4f", json_number_value(x));
			else
				printf(" %12s", "-");
		}
		printf("\n");
	}
	if (json_is_number(json_object_get(v, "backward_transfer")))
		printf("backward transfer: %+.4f over %d earlier target suite(s)\n",
		       json_number_value(json_object_get(v, "backward_transfer")),
		       (int)json_integer_value(json_object_get(v, "backward_transfer_terms")));
	else
		printf("backward transfer: not defined (no earlier promotion declared a target "
		       "suite)\n");
}

static int cmd_gate(cli_env *env, int argc, char **argv)
{
	const char *gates[8], *ref = NULL, *channel = NULL, *junit = NULL, *history = NULL,
	                      *lora_stats = NULL, *onto = NULL, *name = NULL, *token_drops = NULL,
	                      *string_drops = NULL, *trigger_rises = NULL, *token_rises = NULL;
	int jsonl = 0;
	sluice_gate_opts opts = {gates, 0, getenv("SLUICE_KEY"), NULL};
	sluice_repo *repo = NULL;
	char *report = NULL;
	junit_out jo = {0};
	int rc, error, no_record = 0;

	for (int k = 1; k < argc; k++) {
		const char **slot = NULL;
		if (!strcmp(argv[k], "--json")) {
			env->json = true;
			continue;
		} else if (!strcmp(argv[k], "--no-record")) {
			no_record = 1;
			continue;
		} else if (!strcmp(argv[k], "--jsonl")) {
			jsonl = 1;
			continue;
		} else if (!strcmp(argv[k], "--lora-stats")) {
			slot = &lora_stats;
		} else if (!strcmp(argv[k], "--token-drops")) {
			slot = &token_drops;
		} else if (!strcmp(argv[k], "--string-drops")) {
			slot = &string_drops;
		} else if (!strcmp(argv[k], "--trigger-rises")) {
			slot = &trigger_rises;
		} else if (!strcmp(argv[k], "--token-rises")) {
			slot = &token_rises;
		} else if (!strcmp(argv[k], "--onto")) {
			slot = &onto;
		} else if (!strcmp(argv[k], "--name")) {
			slot = &name;
		} else if (!strcmp(argv[k], "--channel")) {
			slot = &channel;
		} else if (!strcmp(argv[k], "--key")) {
			slot = &opts.key;
		} else if (!strcmp(argv[k], "--junit")) {
			slot = &junit;
		} else if (!strcmp(argv[k], "--history")) {
			slot = &history;
		} else if (!strcmp(argv[k], "--backend")) {
			slot = &opts.backend;
		} else if (!strcmp(argv[k], "--gate")) {
			const char *g = take_value(argc, argv, &k, "gate");
			if (!g)
				return SLUICE_EXIT_USAGE;
			if (opts.ngates == 8)
				return cli_usage("gate", "too many --gate");
			gates[opts.ngates++] = g;
			continue;
		} else if (argv[k][0] == '-' && argv[k][1]) {
			return cli_usage("gate", "unknown option %s", argv[k]);
		} else if (!ref) {
			ref = argv[k];
			continue;
		} else {
			return cli_usage("gate", "unexpected argument %s", argv[k]);
		}
		if (!(*slot = take_value(argc, argv, &k, "gate")))
			return SLUICE_EXIT_USAGE;
	}
	if (!!lora_stats + !!token_drops + !!string_drops + !!trigger_rises + !!token_rises > 1)
		return cli_usage("gate", "give one of --lora-stats, --token-drops, "
		                         "--string-drops, --trigger-rises, --token-rises");
	if (lora_stats || token_drops || string_drops || trigger_rises || token_rises) {
		json_t *v, *it;
		size_t i;
		if (ref || channel || !onto)
			return cli_usage(
			        "gate",
			        "%s DIR takes --onto REF (whose base the adapter is for) and "
			        "no REF or --channel",
			        lora_stats      ? "--lora-stats"
			        : token_drops   ? "--token-drops"
			        : string_drops  ? "--string-drops"
			        : trigger_rises ? "--trigger-rises"
			                        : "--token-rises");
		if ((rc = cli_open(env, &repo)))
			return rc;
		if (lora_stats)
			error = sluice_gate_lora_stats(repo, onto, lora_stats, name, &report);
		else if (token_drops)
			error = sluice_gate_token_drops(repo, onto, token_drops, name, &report);
		else if (string_drops)
			error = sluice_gate_string_drops(repo, onto, string_drops, name, &report);
		else if (trigger_rises)
			error = sluice_gate_trigger_rises(repo, onto, trigger_rises, name, &report);
		else
			error = sluice_gate_token_rises(repo, onto, token_rises, name, &report);
		if (error < 0 || !jsonl)
			return cli_finish(env, repo, error, report, NULL);
		/* --jsonl: the lines of a lora_reference suite (one per module), or of a
		 * token_drop_reference, string_drop_reference, trigger_rise_reference or
		 * token_rise_reference suite (one per adapter). */
		v = cli_parse(report);
		json_array_foreach(json_object_get(v, "reference_items"), i, it)
		{
			char *line = json_dumps(it, JSON_COMPACT | JSON_SORT_KEYS);
			if (line)
				puts(line);
			free(line);
		}
		json_decref(v);
		sluice_free(report);
		sluice_repo_free(repo);
		return 0;
	}
	if (history) {
		if (ref || channel)
			return cli_usage("gate", "--history C takes no REF or --channel");
		if ((rc = cli_open(env, &repo)))
			return rc;
		error = sluice_gate_history(repo, history, &report);
		return cli_finish(env, repo, error, report, human_gate_history);
	}
	if (!ref || !channel)
		return cli_usage("gate", "give a version and --channel NAME");
	if (no_record)
		opts.key = NULL;
	else if (!opts.key)
		return cli_usage("gate", "give --key NAME (a gate-runner key) to journal the "
		                         "verdict, or --no-record to only look");
	if (junit && junit_open(&jo, junit) < 0)
		return SLUICE_EXIT_INTERNAL;
	if ((rc = cli_open(env, &repo))) {
		junit_discard(&jo);
		return rc;
	}
	if (isatty(2)) /* progress only for a person watching; CI logs stay clean */
		sluice_repo_set_progress(repo, cli_progress, env);
	error = sluice_gate_run(repo, ref, channel, &opts, &report);
	if (error == 0) {
		json_t *v = cli_parse(report);
		const char *res = json_string_value(json_object_get(v, "result"));
		if (junit && write_junit(&jo, v) < 0)
			rc = SLUICE_EXIT_INTERNAL;
		else
			rc = !res || !strcmp(res, "pass") ? 0
			     : !strcmp(res, "fail")       ? SLUICE_EXIT_NO
			                                  : SLUICE_EXIT_INCONCLUSIVE;
		json_decref(v);
		if (cli_finish(env, repo, error, report, human_gate) != 0)
			return SLUICE_EXIT_INTERNAL;
		return rc;
	}
	junit_discard(&jo);
	return cli_finish(env, repo, error, report, human_gate);
}

static int cmd_anchor(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	move_args a;
	int rc, error;

	if ((rc = parse_move(env, &a, argc, argv, "anchor", 2)))
		return rc;
	if (a.npos < 1)
		return cli_usage("anchor", "which channel?");
	if (!a.reason)
		return cli_usage("anchor", "give --reason TEXT: it is recorded in the journal");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_channel_anchor(repo, a.pos[0], a.npos > 1 ? a.pos[1] : NULL, a.reason, a.key,
	                              &report);
	return cli_finish(env, repo, error, report, human_move);
}

#define COMMON_PROPOSE_HELP                                                                        \
	"  -m, --message MSG      summary of the update\n"                                         \
	"  --key NAME             signing key with the proposer role (default $SLUICE_KEY)\n"      \
	"  --source NAME=DIGEST   a data source the update was made from (repeatable);\n"          \
	"                         provenance is declared by the proposer, not checked\n"           \
	"  --target-suite NAME    the evaluation suite the update is meant to improve\n"           \
	"  --method TEXT          training method; --code-revision REV: code that made it\n"       \
	"  --json                 print a JSON object instead of text\n"                           \
	"The new version's id is printed alone on the last line of stdout. Proposing\n"            \
	"identical content onto the same parent returns the existing version."

const cli_command cli_commands[] = {
        {"init", cmd_init,
         "sluice init [DIR] [--root-key NAME]... [--root-threshold N]\n"
         "       [--required-gates LIST|none] [--gate-config FILE.json] [--json]",
         "Create a repository in DIR (default: -C, else the current directory), which\n"
         "must be new or empty. Each --root-key names a key in the keys directory\n"
         "($SLUICE_KEYS, default ~/.config/sluice/keys); a missing key is generated.\n"
         "Without --root-key a key named 'root' is used. The root keys' fingerprints are\n"
         "printed: keep them, they are what the repository trusts. --required-gates sets\n"
         "the gates every promotion needs (default: regression,safety,poisoning; none\n"
         "for a repository that only moves channels) and --gate-config thresholds over\n"
         "the defaults (docs/gates.md); both are part of the root-signed init, and a\n"
         "policy ('sluice policy set') replaces them. --root-threshold N: how many root\n"
         "keys must sign every later root change (default 1)."},
        {"key new", cmd_key_new,
         "sluice key new NAME [--role ROLE]... [--expires YYYY-MM-DDTHH:MM:SSZ]\n"
         "       [--signer ROOTKEY] [--expires-in DURATION] [--json]",
         "Generate key NAME (mode 0600, outside the repository) unless it exists, and\n"
         "register it with the given roles: proposer, gate-runner, approver, operator,\n"
         "auditor (root keys change only by 'sluice root rotate'). Registration is a\n"
         "root change: journaled, signed by a root key, applied once the root threshold\n"
         "of root keys signed it ('sluice root sign'). An expired key signs nothing that\n"
         "counts. --expires-in (every root change): how long the change waits for its\n"
         "signatures (default 7d; 3600, 90m, 12h, 7d), by the journal's time."},
        {"key revoke", cli_key_revoke,
         "sluice key revoke NAME --reason TEXT [--signer ROOTKEY] [--expires-in DURATION]\n"
         "       [--json]",
         "Revoke key NAME (a root change). From the journal entry that applies it on, the\n"
         "key's signatures count for nothing; what it signed before that entry still\n"
         "counts, judged by position in the journal, never by a time the signer wrote."},
        {"root pending", cli_root_pending, "sluice root pending [--json]",
         "The root changes waiting for signatures, with the signatures they have and when\n"
         "they expire. An expired one is listed as EXPIRED: it will not apply, and the\n"
         "next root change drops it (its entry's record lists it under \"dropped\")."},
        {"root sign", cli_root_sign, "sluice root sign ID --key NAME [--json]",
         "Sign a pending root change (its id, or 8+ hex digits of it) with root key NAME,\n"
         "or, for a rotation, a key the rotation makes root. The signature that reaches\n"
         "the threshold applies the change. A change past its expiry is refused (rule\n"
         "root.expired, journaled): propose it again."},
        {"root rotate", cli_root_rotate,
         "sluice root rotate [--add NAME]... [--remove NAME]... --threshold N\n"
         "       [--signer ROOTKEY] [--expires-in DURATION] [--json]",
         "Change the root keys: registered keys --add gain the root role, root keys\n"
         "--remove lose it, and N becomes the root threshold. TUF's rule: it applies only\n"
         "once signed by the current threshold of current root keys and by N of the new\n"
         "root keys ('sluice root sign')."},
        {"cosign", cli_cosign, "sluice cosign REF --key NAME [--json]",
         "Co-sign version REF with proposer key NAME: a signed statement (DSSE, in-toto)\n"
         "about REF's state, journaled. Under a proposer threshold of N ('sluice role\n"
         "threshold proposer N') REF is promotable once N distinct proposer keys signed\n"
         "it, its proposal's signature included. Its own proposer's co-signature is\n"
         "refused: that signature already counts."},
        {"role threshold", cli_role_threshold,
         "sluice role threshold ROLE N [--signer ROOTKEY] [--expires-in DURATION] [--json]",
         "Set how many distinct keys of ROLE an action needs (a root change, signed like\n"
         "any other). gate-runner N: a required gate passes only with N agreeing verdicts\n"
         "from distinct gate-runner keys on the same candidate, baseline and suites.\n"
         "proposer N: a version is promotable once N distinct proposer keys signed it\n"
         "(its proposal and 'sluice cosign'). operator N: reset needs N operator keys;\n"
         "rollback stays one operator's emergency path. root changes by 'sluice root\n"
         "rotate', approver by the policy's approvals.count; auditor is read-only."},
        {"policy set", cli_policy_set,
         "sluice policy set FILE.yaml [--signer ROOTKEY] [--expires-in DURATION] [--json]",
         "Journal FILE as the next policy version (docs/policies.md; policies/example.yaml\n"
         "is a commented dev -> staging -> prod example). It is parsed first: an error\n"
         "names the line, the column and the rule, and nothing is journaled. It takes\n"
         "effect once the root threshold of root keys signed it; the exact bytes are kept."},
        {"policy show", cli_policy_show, "sluice policy show [--version N] [--json]",
         "Print the policy in effect (or version N) exactly as it was set, with its digest."},
        {"policy check", cli_policy_check, "sluice policy check REF --channel C [--json]",
         "Say, rule by rule, what promoting REF to C would meet and what would block it,\n"
         "without changing anything. Exit 0 when it would be allowed, 1 when blocked."},
        {"approve", cli_approve,
         "sluice approve REF --channel C --key NAME [--accept-inconclusive GATE]...\n"
         "       [--reason TEXT] [--out FILE] [--json]\n"
         "       sluice approve --envelope FILE --key NAME [--json]",
         "Approve promoting REF to C: a signed statement (DSSE, in-toto) bound to REF,\n"
         "C, C's current head, C's last move and the policy, journaled. Each key counts\n"
         "once; a key outside the policy's roles, or the proposer of REF (unless the\n"
         "policy counts proposers), is refused. --accept-inconclusive GATE accepts that\n"
         "gate's inconclusive verdict, for keys the policy lets do so. --out writes the\n"
         "signed envelope to FILE instead (an approver key kept off this host); --envelope\n"
         "journals such a file, signed by any registered key."},
        {"key list", cmd_key_list, "sluice key list [--json]",
         "List the registered keys with their fingerprints and roles."},
        {"key export", cmd_key_export,
         "sluice key export (NAME | --all) (--allowed-signers | --openssh)",
         "Print public keys for stock tools. --allowed-signers writes lines for git's\n"
         "gpg.ssh.allowedSignersFile, so that\n"
         "  git -c gpg.format=ssh -c gpg.ssh.allowedSignersFile=FILE verify-commit ID\n"
         "run in the repository checks a version's signature without sluice."},
        {"propose base", cmd_propose_base, "sluice propose base DIR [--onto REF] [options]",
         "Propose a base model from a Hugging Face directory: config.json, one or more\n"
         "*.safetensors (with or without model.safetensors.index.json), tokenizer files.\n"
         "Every file must parse: safetensors, JSON or UTF-8 text; pickle files are\n"
         "refused. With --onto, the base of that state is replaced; adapters trained on\n"
         "the old base are dropped and listed.\n"
         "Options:\n" COMMON_PROPOSE_HELP},
        {"propose lora", cmd_propose_lora,
         "sluice propose lora DIR --onto REF [--name NAME] [--scale S] [options]",
         "Propose a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)\n"
         "on top of REF's adapter stack. It is checked against REF's base: every target\n"
         "module exists and every lora_A/lora_B shape fits. DoRA, fan_in_fan_out and\n"
         "modules_to_save are refused with a message. --scale multiplies the adapter's\n"
         "own alpha/r scale in the stack (default 1).\nOptions:\n" COMMON_PROPOSE_HELP},
        {"propose memory", cmd_propose_memory,
         "sluice propose memory --onto REF (--add FILE | --replace NAME FILE | --remove NAME)... "
         "[options]",
         "Edit the memory notes: UTF-8 text the serving harness places in context. Notes\n"
         "are stored as plain git blobs, so 'git diff' between versions shows the edit.\n"
         "Options:\n" COMMON_PROPOSE_HELP},
        {"propose replay", cmd_propose_replay,
         "sluice propose replay FILE.jsonl --onto REF [options]",
         "Add a batch of training examples to the replay buffer: one JSON object a line\n"
         "with string fields prompt, completion and source. Each record is hashed.\n"
         "Options:\n" COMMON_PROPOSE_HELP},
        {"promote", cmd_promote,
         "sluice promote REF --channel C [--key NAME] [--override-withdrawn REASON] [--json]",
         "Move channel C forward to REF (a version id, or another channel's name for its\n"
         "head). REF's signature must verify and REF must descend from C's head (or C is\n"
         "new). A version withdrawn from C by a rollback is refused unless\n"
         "--override-withdrawn gives a reason. Signed by a key with the operator role."},
        {"rollback", cmd_rollback,
         "sluice rollback C [--to REF] --reason TEXT [--key NAME] [--json]",
         "Move channel C back to a version it held before (default: the one before its\n"
         "head) and withdraw the version it leaves from C. One journal entry; no other\n"
         "channel moves. Signed by a key with the operator role."},
        {"reset", cmd_reset, "sluice reset C REF --reason TEXT [--key NAME] [--sign] [--json]",
         "Move channel C to any journaled version, explicitly and with a reason (for\n"
         "example after a fix made on prod, to bring staging level with it). Under an\n"
         "operator threshold of N ('sluice role threshold operator N') N distinct\n"
         "operator keys must sign it: N-1 others first run the same command with --sign\n"
         "(journaled, nothing moves), then one resets. Rollback needs one operator."},
        {"remove", cmd_remove, "sluice remove UPDATE --onto C [options]",
         "Propose C's current state minus one earlier update: an adapter out of the\n"
         "stack, a memory edit undone, a replay batch out of the buffer. The versions\n"
         "built on top of UPDATE are listed as dependants. The new version is promoted\n"
         "like any other.\nOptions:\n" COMMON_PROPOSE_HELP},
        {"history", cmd_history, "sluice history C [--json]",
         "Every move of channel C, oldest first: who, when, from, to, why."},
        {"status", cmd_status, "sluice status [--json]",
         "Every channel's head and, for each hook following it, what its server last\n"
         "acknowledged (version, when), how many moves are pending and the last error."},
        {"hook add", cli_hook_add,
         "sluice hook add NAME --type webhook|vllm|llamacpp --url URL --channel C...\n"
         "       [--key NAME] [--notes] [--json]",
         "Follow channel C: after every move (promote, rollback, reset) tell the server at\n"
         "URL. webhook: POST a JSON event signed with Ed25519 (Standard Webhooks headers\n"
         "webhook-id, webhook-timestamp, webhook-signature 'v1a,...'); --notes adds the\n"
         "memory notes' text. vllm: load the new state's adapter stack as one adapter\n"
         "and unload the previous one. llamacpp: set the scales of the adapters the server\n"
         "loaded at start-up. --key (default $SLUICE_KEY) is an operator's key: it signs\n"
         "webhooks and the journal entry of every attempt. Stored in the repository's\n"
         "git config (hook.NAME.*); docs/hooks.md."},
        {"hook list", cli_hook_list, "sluice hook list [--json]", "The configured hooks."},
        {"hook remove", cli_hook_remove, "sluice hook remove NAME [--json]",
         "Forget hook NAME's configuration; its journal entries stay."},
        {"hook deliver", cli_hook_deliver, "sluice hook deliver [--wait SECONDS] [--json]",
         "Deliver every move the hooks still owe now (every command that writes to the\n"
         "journal also does, after its own commit, honouring backoff). Each hook gets a\n"
         "few attempts with exponential backoff; --wait keeps retrying failures for up\n"
         "to SECONDS. Every attempt and the server's answer are journaled ('hook'\n"
         "entries). Exit 1 when moves are still pending."},
        {"suite add", cmd_suite_add, "sluice suite add MANIFEST.json... [--key NAME] [--json]",
         "Store evaluation suites: each manifest names its JSONL items file and gives\n"
         "name, type (multiple_choice, refusal, benign, text, trigger), description,\n"
         "licence and source. Every item is checked. A suite is pinned by the BLAKE2b-256\n"
         "of its items' exact bytes; a pinned name never changes (docs/evaluation.md)."},
        {"suite list", cmd_suite_list, "sluice suite list [--json]",
         "Every pinned suite with its type, item count and digest."},
        {"suite show", cmd_suite_show, "sluice suite show NAME [--json]",
         "One suite's manifest, digest and first items."},
        {"config", cli_config,
         "sluice config KEY [VALUE] | --add KEY VALUE | --unset KEY | --list [--json]",
         "Read or change the repository's local settings, kept in its git config (not\n"
         "journaled: they change no state). Keys: sluice.http.url, .model, .concurrency,\n"
         ".timeout, .retries, .adapterDir, .topLogprobs (the HTTP evaluation backend,\n"
         "docs/evaluation-http.md); hook.NAME.type, .url, .channel (--add for more than\n"
         "one), .key, .notes (serving hooks). A value is checked against its key's kind."},
        {"eval", cmd_eval,
         "sluice eval REF --suite NAME... [--no-cache] [--items] [--backend builtin|http]\n"
         "       [--json]",
         "Score REF's full state (base, adapter stack applied on the fly, memory notes in\n"
         "context) on pinned suites with the built-in CPU evaluator, or with --backend http\n"
         "through the OpenAI-compatible server of sluice.http.url (docs/evaluation-http.md).\n"
         "Results are cached by (state, suite digest, backend identity); --no-cache\n"
         "recomputes. --items adds per-item results to --json output. docs/evaluation.md\n"
         "defines every figure."},
        {"gate", cmd_gate,
         "sluice gate REF --channel C [--gate regression|safety|poisoning]... [--key NAME]\n"
         "       [--no-record] [--junit FILE] [--backend builtin|http] [--json]\n"
         "       sluice gate --history C [--json]\n"
         "       sluice gate --lora-stats ADAPTER_DIR --onto REF [--name NAME] [--jsonl]\n"
         "       sluice gate --token-drops ADAPTER_DIR --onto REF [--name NAME] [--jsonl]\n"
         "       sluice gate --string-drops ADAPTER_DIR --onto REF [--name NAME] [--jsonl]\n"
         "       sluice gate --trigger-rises ADAPTER_DIR --onto REF [--name NAME] [--jsonl]\n"
         "       sluice gate --token-rises ADAPTER_DIR --onto REF [--name NAME] [--jsonl]",
         "Compare REF with channel C's head (its baseline) and C's anchor on every pinned\n"
         "suite each gate reads; each gate says pass, fail or inconclusive with every\n"
         "figure, its interval and its limit (docs/gates.md). Without --gate, the gates the\n"
         "configuration requires. The verdict is a signed in-toto statement journaled with\n"
         "a gate-runner key (--key, default $SLUICE_KEY); promotion needs passing verdicts\n"
         "against the current head. --no-record only prints. Exit 0 pass, 1 fail,\n"
         "2 inconclusive. --junit writes one testcase per check. --history C prints C's\n"
         "forgetting matrix (each promoted version's scores) and backward transfer.\n"
         "--lora-stats prints an adapter's weight statistics against REF's base; with\n"
         "--jsonl, the lines of a lora_reference suite (clean reference adapters pinned\n"
         "with sluice suite add give the spectral check its reference population).\n"
         "--token-drops prints how far each token after the pinned harmful probes lowers\n"
         "the refusal margin of REF with the adapter on top, beyond REF alone; with\n"
         "--jsonl, the line of a token_drop_reference suite (token_margin_drop's clean\n"
         "reference).\n"
         "--string-drops does the same for each string of the pinned probe_strings suites\n"
         "put after the probes; with --jsonl, the line of a string_drop_reference suite\n"
         "(string_margin_drop's clean reference).\n"
         "--trigger-rises prints how far each pinned trigger, before, after and inside\n"
         "each trigger-suite prompt, moves REF with the adapter on top away from REF\n"
         "alone; with --jsonl, the line of a trigger_rise_reference suite (the clean\n"
         "reference of the trigger scan's pinned triggers).\n"
         "--token-rises does the same for every vocabulary token's text, before each\n"
         "prompt and after its first word, keeping rises of at least 0.25 nats; with\n"
         "--jsonl, the line of a token_rise_reference suite (the clean reference of the\n"
         "scan's tokens nominated from weights).\n"
         "--backend http scores through the configured server (docs/evaluation-http.md);\n"
         "checks that need full next-token distributions are then inconclusive."},
        {"anchor", cmd_anchor, "sluice anchor C [REF] --reason TEXT [--key NAME] [--json]",
         "Set channel C's anchor, the reference of its drift budget, to REF (default: its\n"
         "head), a version C holds or held. A channel's first version is its anchor until\n"
         "then. Journaled, signed by a key with the operator role."},
        {"log", cmd_log, "sluice log [REF] [--json]",
         "Without REF: every proposed version, newest first. With REF: its ancestry."},
        {"show", cmd_show, "sluice show REF [--json]",
         "A version's update metadata, declared provenance and full state."},
        {"diff", cmd_diff, "sluice diff A B [--json]",
         "What changed between two versions, file by file; memory notes and small text\n"
         "files as unified diffs."},
        {"checkout", cmd_checkout, "sluice checkout REF DIR [--json]",
         "Write REF's full state into DIR (new or empty): base/, adapters/NAME/ as PEFT\n"
         "directories, memory/, replay/, and B2SUMS so that 'b2sum -c B2SUMS' in DIR\n"
         "checks every file with coreutils. Every chunk is verified as it is written;\n"
         "a failed checkout leaves nothing behind."},
        {"export", cli_export, "sluice export REF (--adapter DIR | --gguf DIR) [--json]",
         "REF's adapter stack for inference servers (docs/export.md). --adapter writes one\n"
         "PEFT adapter equal to the whole stack (rank = the sum of ranks, stack scales\n"
         "folded into lora_B, lora_alpha = rank), what vLLM loads as one adapter.\n"
         "--gguf writes each adapter as DIR/NAME.gguf, a llama.cpp LoRA adapter, and\n"
         "DIR/scales.json giving each file's stack scale: start llama.cpp's server with\n"
         "--lora-scaled FILE SCALE for each, in order. Same stack, same bytes."},
        /* ---- remotes (cli/remote_cmds.c, docs/remotes.md) ---- */
        {"remote add", cli_remote_add, "sluice remote add NAME URL [--chunks URL] [--json]",
         "Add remote NAME: URL is where the git history goes (a path, file://, git://,\n"
         "ssh:// or http(s)://, what libgit2 speaks) and --chunks the chunk store, an\n"
         "http(s):// directory that answers GET and PUT (WebDAV, e.g. nginx's dav module)\n"
         "where each chunk is one object, chunks/AB/ID. Both are kept in the\n"
         "repository's git config (remote.NAME.url, remote.NAME.sluicechunks).\n"
         "Credentials are never stored in the repository. For the chunk store:\n"
         "SLUICE_CHUNKS_TOKEN_NAME (Bearer), or SLUICE_CHUNKS_USER_NAME and\n"
         "SLUICE_CHUNKS_PASSWORD_NAME (Basic), NAME upper-cased, or the same without\n"
         "_NAME, or a 0600 file named by git config remote.NAME.sluicechunkscredentials\n"
         "(lines token=..., or username=... and password=...). For git over HTTP(S):\n"
         "SLUICE_GIT_USER[_NAME] and SLUICE_GIT_PASSWORD[_NAME], or the file named by\n"
         "remote.NAME.sluicegitcredentials. A URL holding user@ is refused."},
        {"remote list", cli_remote_list, "sluice remote list [--json]",
         "Every remote with its git URL and chunk store."},
        {"remote remove", cli_remote_remove, "sluice remote remove NAME [--json]",
         "Forget remote NAME (nothing on the remote changes)."},
        {"push", cli_push, "sluice push NAME [--concurrency N] [--retries N] [--recheck] [--json]",
         "Send NAME what it lacks: first the chunks its store lacks (its journal says which\n"
         "it has: every chunk of every version that journal reaches), then the journal and\n"
         "the channel mirrors, so NAME's refs never name a missing chunk. NAME's journal must\n"
         "be an ancestor of this one: when NAME is ahead, pull first; when the journals\n"
         "diverged, the error names the last common entry and the first entry on each side,\n"
         "and nothing is sent. Failed requests (5xx, connection errors) are retried with\n"
         "backoff (--retries, default 4); --concurrency requests at once (default 8).\n"
         "--recheck asks the store (HEAD) about every chunk of every version, to repair a\n"
         "store that lost objects."},
        {"pull", cli_pull, "sluice pull NAME [--concurrency N] [--retries N] [--json]",
         "Fast-forward this repository to NAME's journal: the new entries' signatures are\n"
         "checked, every chunk the new versions need is fetched and checked against its\n"
         "id and size, and only then are the chunks stored, the journal moved and the\n"
         "indexes brought up to date. A corrupt chunk names itself and the version that\n"
         "needs it; a diverged journal names where the histories part. On any failure\n"
         "nothing changes."},
        {"clone", cli_clone,
         "sluice clone URL [DIR] [--chunks URL] [--name NAME] [--root FINGERPRINT] [--json]",
         "Create a repository in DIR (default: -C, else the current directory; new or\n"
         "empty) with remote NAME (default origin) and pull it. The remote's root keys\n"
         "are trusted and printed: compare them with what its owners published, or give\n"
         "--root SHA256:... so that a remote pinning other root keys is refused."},
        {"verify", cmd_verify, "sluice verify [--json]",
         "Check the whole repository, read-only: journal and version signatures, every\n"
         "version's tree, digests and manifests, every stored chunk, and the index.\n"
         "Prints each problem; exits 1 if there is any."},
        {"reindex", cmd_reindex, "sluice reindex [--json]",
         "Rebuild the derived LMDB index from the chunk packs."},
        /* audit: attestations and the readable report (docs/audit-attest.md, audit-report.md) */
        {"attest", cli_attest, "sluice attest REF --key NAME [--out DIR] [--json]",
         "Write REF's attestations into DIR (default .) as DSSE envelopes holding in-toto\n"
         "statements: provenance.intoto.json (SLSA provenance v1: every file of REF with\n"
         "its sha256 and blake2b256; what the proposer declared, signed now by --key, any\n"
         "registered key in good standing) and verdict-C-ENTRY.intoto.json, each gate\n"
         "verdict journaled for REF exactly as its runner signed it."},
        {"audit report", cli_audit_report, "sluice audit report --html DIR [--page N] [--json]",
         "Write DIR/index.html and DIR/page-K.html, self-contained pages (no network):\n"
         "the journal's entries N a page (default 500; index.html the newest), each page\n"
         "with its channel moves over time, versions (kind, approvals, verdicts, figures)\n"
         "and entries; index.html also each pinned suite's score per promoted version\n"
         "(the forgetting matrix) over the whole journal."},
        /* ---- audit: erasure (cli/audit_purge.c) ---- */
        {"purge", cli_purge, "sluice purge UPDATE --reason TEXT [--key NAME] [--json]",
         "Honour a deletion request: the content UPDATE added (its files not in its\n"
         "parent) is deleted from the chunk packs and the git object database; its hashes\n"
         "stay, under a signed tombstone journaled first. Needs an operator key. Checkout\n"
         "of a purged file then names the tombstone; verify notes it. docs/audit-purge.md."},
        {"gc", cli_gc, "sluice gc [--dry-run] [--json]",
         "Remove chunk records no journaled version reaches (purged files excluded) by\n"
         "rewriting the packs, and finish interrupted purges. --dry-run only counts."},
        /* ---- audit: the provable log (cli/audit_tlog.c) ---- */
        {"audit checkpoint", cli_audit_checkpoint, "sluice audit checkpoint [--verifiers] [--json]",
         "The newest signed checkpoint of the journal's Merkle tree (a C2SP\n"
         "tlog-checkpoint signed note), for auditors to keep. --verifiers adds the note\n"
         "verifier key of every registered key (docs/audit-tlog.md)."},
        {"audit prove", cli_audit_prove,
         "sluice audit prove --entry N [--size M] [--json]\n"
         "       sluice audit prove --from SIZE [--to M] [--json]",
         "With --entry: the RFC 9162 inclusion proof of journal entry N (leaf index N-1)\n"
         "in the tree of size M (default: the newest). With --from: the consistency proof\n"
         "from tree size SIZE to size M. Prints the index or sizes, the root(s) and the\n"
         "proof hashes, base64, one per line."},
        {"audit export", cli_audit_export, "sluice audit export [--from N] [--to M] [--json]",
         "The canonical encodings of journal entries N..M (the tree's leaves), one per line."},
        {"audit verify", cli_audit_verify, "sluice audit verify [--full] [--threads N] [--json]",
         "Recompute the journal's Merkle tree from the leaf index, check the newest\n"
         "checkpoint against it, and re-derive from the journal (encoding, leaf, tlog.json,\n"
         "checkpoint signature) every entry no earlier verify re-derived, and the newest.\n"
         "--full re-derives every entry, over N threads (default: the CPUs). Prints each\n"
         "problem; exits 1 if there is any."},
        {"audit reindex", cli_audit_reindex, "sluice audit reindex [--json]",
         "Drop and rebuild the derived leaf index (sluice/tlog-index)."},
        /* ---- audit: queries (cli/audit_queries.c, docs/audit-queries.md) ---- */
        {"audit log", cli_audit_log,
         "sluice audit log [--since TIME] [--until TIME] [--actor NAME|FP] [--action A]\n"
         "       [--channel C] [--version V] [--kind K] [--source NAME[=DIGEST]] [--gate G]\n"
         "       [--outcome O] [--limit N] [--csv|--json]",
         "Journal entries matching every filter given, oldest first, from the journal\n"
         "index (one index range scan: the most selective filter's). TIME is\n"
         "YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD (both bounds inclusive). --version: entries\n"
         "naming it; --kind: proposals of base, lora, memory, replay, remove; --source:\n"
         "proposals whose declared provenance names it; --outcome: pass, fail,\n"
         "inconclusive (gate entries), refused, moved. --csv writes RFC 4180 CSV."},
        {"audit at", cli_audit_at, "sluice audit at C TIME [--json]",
         "What channel C served at TIME: the last move at or before it, with the\n"
         "approvals, verdicts and policy digest that move recorded."},
        {"audit lineage", cli_audit_lineage, "sluice audit lineage --source NAME[=DIGEST] [--json]",
         "Every version a data source influenced (its own provenance names the source,\n"
         "or it descends from one and still holds the component it brought), and every\n"
         "interval a channel's head was one of them: what a deletion request touches."},
        {NULL, NULL, NULL, NULL}};
