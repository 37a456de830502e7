/*
 * cli/cli.h - the sluice program: argument parsing, output helpers and the
 * command table. The program uses only libsluice's public headers.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include "sluice/channel.h"
#include "sluice/common.h"
#include "sluice/eval.h"
#include "sluice/gate.h"
#include "sluice/keys.h"
#include "sluice/repo.h"
#include "sluice/suite.h"
#include "sluice/version.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Parsed arguments of one command: positionals and options. */
typedef struct {
	int argc;
	char **argv;
	const char *repo_dir; /* -C DIR, $SLUICE_REPO, or "." */
	bool json;
	sluice_ctx *ctx;
} cli_env;

typedef struct {
	const char *name;
	int (*run)(cli_env *env, int argc, char **argv);
	const char *usage;
	const char *help;
} cli_command;

extern const cli_command cli_commands[];

/* Print the library's error and return the exit code for it. */
int cli_fail(cli_env *env, int error);
/* A usage error: message to stderr, returns SLUICE_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Open the repository selected by -C. */
int cli_open(cli_env *env, sluice_repo **out);
/* Print a JSON report (for --json) and free it. */
void cli_print_json(const char *report);
/* Parse a report for human output; NULL if it does not parse. */
json_t *cli_parse(const char *report);

/* How cli_put_text shows text. */
enum {
	CLI_TEXT_QUOTED = 1, /* inside double quotes: '"' and '\\' escaped too */
	CLI_TEXT_LINES = 2,  /* several lines (a patch): newlines and tabs kept */
};

/*
 * Write n bytes of s, text from a report, for a person to read: control
 * characters (C0, DEL, C1), the invisible and bidirectional formatting
 * characters, and bytes that are not UTF-8 come out as escapes (\n, \t,
 * \e, \xNN, \u202e); flags as above. Notes, reasons and triggers are
 * whatever their authors wrote; raw, an escape sequence would act on the
 * reader's terminal or CI log, and a newline or a right-to-left override
 * would disguise a line.
 */
void cli_put_text(FILE *f, const char *s, size_t n, unsigned flags);
/* cli_put_text of a NUL-terminated string (nothing for NULL). */
void cli_put_str(FILE *f, const char *s);

/* The most values a repeatable option takes. */
#define CLI_MAX_LIST 64

/*
 * One option of a command: a flag that takes a value (value), a repeatable
 * one (list, with its count n; at most CLI_MAX_LIST), or a switch (set).
 * A table of them ends with a zeroed entry.
 */
typedef struct {
	const char *flag;
	const char **value;
	const char **list;
	size_t *n;
	bool *set;
} cli_opt;

/*
 * Parse argv[1..argc) against specs; positionals go to pos[0..maxpos)
 * (*npos counts them). --json is always understood. Returns 0, or the
 * usage exit code after printing what is wrong.
 */
int cli_parse_opts(cli_env *env, const char *cmd, int argc, char **argv, const cli_opt *specs,
                   const char **pos, size_t maxpos, size_t *npos);

/*
 * Print a command's report (JSON with --json, else through human), free
 * it, close repo, and give the exit code for error.
 */
int cli_finish(cli_env *env, sluice_repo *repo, int error, char *report, void (*human)(json_t *));

/* cli/trust_cmds.c: roles, root changes, policies, approvals. */
int cli_key_revoke(cli_env *env, int argc, char **argv);
int cli_root_pending(cli_env *env, int argc, char **argv);
int cli_root_sign(cli_env *env, int argc, char **argv);
int cli_root_rotate(cli_env *env, int argc, char **argv);
int cli_role_threshold(cli_env *env, int argc, char **argv);
int cli_cosign(cli_env *env, int argc, char **argv);
int cli_policy_set(cli_env *env, int argc, char **argv);
int cli_policy_show(cli_env *env, int argc, char **argv);
int cli_policy_check(cli_env *env, int argc, char **argv);
int cli_approve(cli_env *env, int argc, char **argv);

/* cli/audit_attest.c, cli/audit_report.c: attestations and the readable report. */
int cli_attest(cli_env *env, int argc, char **argv);
int cli_audit_report(cli_env *env, int argc, char **argv);

/* cli/audit_purge.c: erasure and garbage collection. */
int cli_purge(cli_env *env, int argc, char **argv);
int cli_gc(cli_env *env, int argc, char **argv);
/* cli/audit_tlog.c: the provable log (docs/audit-tlog.md). */
int cli_audit_checkpoint(cli_env *env, int argc, char **argv);
int cli_audit_prove(cli_env *env, int argc, char **argv);
int cli_audit_export(cli_env *env, int argc, char **argv);
int cli_audit_verify(cli_env *env, int argc, char **argv);
int cli_audit_reindex(cli_env *env, int argc, char **argv);
/* cli/audit_queries.c: auditor queries over the journal index. */
int cli_audit_log(cli_env *env, int argc, char **argv);
int cli_audit_at(cli_env *env, int argc, char **argv);
int cli_audit_lineage(cli_env *env, int argc, char **argv);

/* cli/hook_cmds.c: hooks that follow a channel (docs/hooks.md). */
int cli_hook_add(cli_env *env, int argc, char **argv);
int cli_hook_list(cli_env *env, int argc, char **argv);
int cli_hook_remove(cli_env *env, int argc, char **argv);
int cli_hook_deliver(cli_env *env, int argc, char **argv);
/* Drain the hooks' outbox after a command that wrote to the journal (warnings only). */
void cli_hooks_after_write(cli_env *env);
/* cli/export_cmds.c: adapters for inference servers (docs/export.md). */
int cli_export(cli_env *env, int argc, char **argv);
/* cli/config.c: the repository's local settings. */
int cli_config(cli_env *env, int argc, char **argv);

/* cli/remote_cmds.c: remotes, push, pull and clone (docs/remotes.md). */
int cli_remote_add(cli_env *env, int argc, char **argv);
int cli_remote_list(cli_env *env, int argc, char **argv);
int cli_remote_remove(cli_env *env, int argc, char **argv);
int cli_push(cli_env *env, int argc, char **argv);
int cli_pull(cli_env *env, int argc, char **argv);
int cli_clone(cli_env *env, int argc, char **argv);

/* Progress on stderr when it is a terminal. */
void cli_progress(void *data, const char *what, uint64_t done, uint64_t total);
void cli_item_progress(void *data, const char *what, uint64_t done, uint64_t total);

#endif
