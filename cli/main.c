/*
 * cli/main.c - sluice's entry point: global options, dispatch, help and
 * exit codes (docs/cli.md).
 */
#include "cli.h"

#include "sluice/hooks.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const exit_codes_text =
        "Exit codes:\n"
        "  0  success\n"
        "  1  a check said no (verification failed, signature refused)\n"
        "  2  a check was inconclusive\n"
        "  3  usage error\n"
        "  4  bad input refused; nothing was changed\n"
        "  5  I/O or internal error\n";

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sluice %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'sluice help %s')\n", cmd);
	return SLUICE_EXIT_USAGE;
}

int cli_parse_opts(cli_env *env, const char *cmd, int argc, char **argv, const cli_opt *specs,
                   const char **pos, size_t maxpos, size_t *npos)
{
	*npos = 0;
	for (int k = 1; k < argc; k++) {
		const cli_opt *s = specs;
		if (!strcmp(argv[k], "--json")) {
			env->json = true;
			continue;
		}
		while (s->flag && strcmp(s->flag, argv[k]))
			s++;
		if (s->flag) {
			if (s->set) {
				*s->set = true;
				continue;
			}
			if (k + 1 >= argc)
				return cli_usage(cmd, "%s needs a value", argv[k]);
			if (s->value) {
				*s->value = argv[++k];
			} else {
				if (*s->n == CLI_MAX_LIST)
					return cli_usage(cmd, "too many %s", argv[k]);
				s->list[(*s->n)++] = argv[++k];
			}
		} else if (argv[k][0] == '-' && argv[k][1]) {
			return cli_usage(cmd, "unknown option %s", argv[k]);
		} else if (*npos < maxpos) {
			pos[(*npos)++] = argv[k];
		} else {
			return cli_usage(cmd, "unexpected argument %s", argv[k]);
		}
	}
	return 0;
}

int cli_fail(cli_env *env, int error)
{
	const char *msg = sluice_ctx_errmsg(env->ctx);

	fprintf(stderr, "sluice: error: %s\n", *msg ? msg : sluice_strerror(error));
	return sluice_exit_code(error);
}

int cli_open(cli_env *env, sluice_repo **out)
{
	int error = sluice_repo_open(out, env->ctx, env->repo_dir);

	if (error < 0)
		return cli_fail(env, error);
	if (isatty(2)) {
		sluice_repo_set_progress(*out, cli_progress, NULL);
		sluice_repo_set_item_progress(*out, cli_item_progress, NULL);
	}
	return 0;
}

void cli_print_json(const char *report)
{
	json_error_t jerr;
	json_t *v = json_loads(report, 0, &jerr);
	char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

	puts(s ? s : report);
	free(s);
	json_decref(v);
}

json_t *cli_parse(const char *report)
{
	json_error_t jerr;
	return report ? json_loads(report, 0, &jerr) : NULL;
}

/* The code point of the UTF-8 sequence at s (at most n bytes) and its length; 0 when none. */
static size_t utf8_at(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len = 0;
	uint32_t c;

	if (s[0] < 0x80)
		len = 1;
	else if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;

	if (len == 0 || len > n)
		return 0;
	c = len == 1 ? s[0] : s[0] & (0x7F >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	/* Overlong forms, surrogates and what lies beyond U+10FFFF are not UTF-8. */
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/*
 * Characters a reader cannot see or that change how the line around them
 * shows: controls, and at least every character the note scan reports as
 * hidden text (gates/scan.c: zero-width, bidirectional, tag characters).
 */
static bool hidden_char(uint32_t c)
{
	return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0xAD || c == 0x061C || c == 0x180E ||
	       (c >= 0x200B && c <= 0x200F) || (c >= 0x2028 && c <= 0x202E) ||
	       (c >= 0x2060 && c <= 0x2069) || c == 0xFEFF || (c >= 0xE0000 && c <= 0xE007F);
}

void cli_put_text(FILE *f, const char *s, size_t n, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		uint32_t c = 0;
		size_t len = utf8_at(p + i, n - i, &c);
		if (len == 0) {
			fprintf(f, "\\x%02x", p[i++]);
			continue;
		}
		if ((c == '\n' || c == '\t') && (flags & CLI_TEXT_LINES))
			fputc((int)c, f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c == 0x1B)
			fputs("\\e", f);
		else if (c < 0x80 && hidden_char(c))
			fprintf(f, "\\x%02x", (unsigned)c);
		else if (hidden_char(c))
			fprintf(f, "\\u%04x", (unsigned)c);
		else if ((flags & CLI_TEXT_QUOTED) && (c == '"' || c == '\\'))
			fprintf(f, "\\%c", (int)c);
		else
			fwrite(p + i, 1, len, f);
		i += len;
	}
}

void cli_put_str(FILE *f, const char *s)
{
	if (s)
		cli_put_text(f, s, strlen(s), 0);
}

void cli_progress(void *data, const char *what, uint64_t done, uint64_t total)
{
	(void)data;
	if (total) {
		/* A 24-cell bar: commands only install this when stderr is a terminal. */
		char bar[25];
		unsigned cells = (unsigned)(done >= total ? 24 : done * 24 / total);
		memset(bar, '#', cells);
		memset(bar + cells, '.', 24 - cells);
		bar[24] = 0;
		fprintf(stderr, "\r%s [%s] %3u%% (%llu/%llu MiB)", what, bar,
		        (unsigned)(done >= total ? 100 : done * 100 / total),
		        (unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
	} else
		fprintf(stderr, "\r%s: %llu MiB", what, (unsigned long long)(done >> 20));
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* The same bar for counted work (items scored): "what [####....] done/total". */
void cli_item_progress(void *data, const char *what, uint64_t done, uint64_t total)
{
	char bar[25];
	unsigned cells;

	(void)data;
	if (!total)
		return;
	cells = (unsigned)(done >= total ? 24 : done * 24 / total);
	memset(bar, '#', cells);
	memset(bar + cells, '.', 24 - cells);
	bar[24] = 0;
	if (done >= total)
		fprintf(stderr, "\r%s [%s] done\033[K\n", what, bar);
	else
		fprintf(stderr, "\r%s [%s] %llu/%llu", what, bar, (unsigned long long)done,
		        (unsigned long long)total);
	fflush(stderr);
}

static void print_overview(FILE *f)
{
	fprintf(f, "sluice - signed, gated, content-addressed updates for deployed language "
	           "models\n\nusage: sluice [-C DIR] COMMAND [ARGS]\n\nCommands:\n");
	for (const cli_command *c = cli_commands; c->name; c++)
		fprintf(f, "  %s\n", c->usage);
	fprintf(f,
	        "\nGlobal options:\n  -C DIR   the repository (default: $SLUICE_REPO, else "
	        "the current directory)\n\n%s\n'sluice help COMMAND' describes one "
	        "command.\n",
	        exit_codes_text);
}

/*
 * Text as roff: backslashes doubled, and a line starting with '.' or '\''
 * (a roff request) guarded with the zero-width \&. Indented lines (option
 * lists, examples) are kept as they are inside .nf/.fi.
 */
static void roff_text(FILE *f, const char *text)
{
	int bol = 1;

	for (const char *p = text; *p; p++) {
		if (bol && (*p == '.' || *p == '\''))
			fputs("\\&", f);
		if (*p == '\\')
			fputs("\\e", f);
		else if (*p == '-')
			fputs("\\-", f);
		else
			fputc(*p, f);
		bol = *p == '\n';
	}
	if (!bol)
		fputc('\n', f);
}

/*
 * sluice(1), made from the same usage and help texts `sluice help` prints,
 * so the man page cannot drift from the program (CMake writes it to
 * build/.../sluice.1 after every build).
 */
static void print_man(FILE *f)
{
	fprintf(f, ".TH SLUICE 1 \"\" \"sluice %s\" \"sluice manual\"\n", SLUICE_VERSION_STRING);
	fputs(".SH NAME\nsluice \\- signed, gated, content-addressed updates for deployed "
	      "language models\n.SH SYNOPSIS\n.B sluice\n[\\-C DIR] COMMAND [ARGS]\n"
	      ".SH DESCRIPTION\nsluice makes every update to a deployed language model (a LoRA "
	      "adapter, a memory edit, a replay batch) a signed, content-addressed version that "
	      "must pass regression, safety and poisoning gates before it reaches a channel; "
	      "promotion and rollback are atomic; a tamper-evident journal records every "
	      "action.\n.SH OPTIONS\n.TP\n.B \\-C DIR\nthe repository (default: "
	      "$SLUICE_REPO, else the current directory)\n.TP\n.B \\-\\-version\nprint the "
	      "version\n.SH COMMANDS\n",
	      f);
	for (const cli_command *c = cli_commands; c->name; c++) {
		fputs(".SS ", f);
		roff_text(f, c->name);
		fputs(".nf\n", f);
		roff_text(f, c->usage);
		fputs(".fi\n.PP\n.nf\n", f);
		roff_text(f, c->help);
		fputs(".fi\n", f);
	}
	fputs(".SH EXIT STATUS\n.nf\n", f);
	roff_text(f, exit_codes_text);
	fputs(".fi\n.SH ENVIRONMENT\n.TP\n.B SLUICE_REPO\nthe repository when \\-C is not "
	      "given\n.TP\n.B SLUICE_KEYS\nthe private keys directory (default "
	      "$XDG_CONFIG_HOME/sluice/keys or ~/.config/sluice/keys)\n.TP\n.B SLUICE_KEY\nthe "
	      "signing key when \\-\\-key is not given\n.TP\n.B SLUICE_LIBCURL\nthe libcurl to "
	      "open "
	      "when a command first speaks HTTP (default libcurl.so.4)\n.TP\n.B "
	      "SLUICE_LIBOPENBLAS\nthe OpenBLAS to open when a command first computes (default "
	      "libopenblas.so.0)\n.TP\n.B SLUICE_FSYNC_BATCH\naio or threads: how a batch of "
	      "fsyncs is flushed (default: threads for a process's first four batches, then "
	      "aio)\n.SH SEE ALSO\n"
	      ".BR git (1),\nthe docs/ folder of the sluice sources.\n",
	      f);
}

static const cli_command *find_command(const char *name)
{
	for (const cli_command *c = cli_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static int cmd_help_impl(int argc, char **argv)
{
	char joined[128] = "";
	const cli_command *c;

	if (argc <= 1) {
		print_overview(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--man")) {
		print_man(stdout);
		return 0;
	}
	/* "help key new" and "help key" both work. */
	snprintf(joined, sizeof(joined), "%s%s%s", argv[1], argc > 2 ? " " : "",
	         argc > 2 ? argv[2] : "");
	if (!(c = find_command(joined)) && !(c = find_command(argv[1]))) {
		int any = 0;
		for (c = cli_commands; c->name; c++) {
			if (!strncmp(c->name, argv[1], strlen(argv[1])) &&
			    c->name[strlen(argv[1])] == ' ') {
				printf("%s%s\n\n%s\n", any ? "\n" : "", c->usage, c->help);
				any = 1;
			}
		}
		if (any)
			return 0;
		fprintf(stderr, "sluice help: no command '%s'\n", argv[1]);
		return SLUICE_EXIT_USAGE;
	}
	printf("usage: %s\n\n%s\n\n%s", c->usage, c->help, exit_codes_text);
	return 0;
}

int main(int argc, char **argv)
{
	cli_env env = {0};
	const cli_command *c = NULL;
	int i = 1, rc;
	char joined[128];

	env.repo_dir = getenv("SLUICE_REPO");
	if (!env.repo_dir || !*env.repo_dir)
		env.repo_dir = ".";
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-C") && i + 1 < argc) {
			env.repo_dir = argv[i + 1];
			i += 2;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			print_overview(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			puts("sluice " SLUICE_VERSION_STRING);
			return 0;
		} else {
			fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
			print_overview(stderr);
			return SLUICE_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		print_overview(stderr);
		return SLUICE_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help"))
		return cmd_help_impl(argc - i, argv + i);
	/* Two-word commands ("key new", "propose base") take precedence. */
	if (i + 1 < argc) {
		snprintf(joined, sizeof(joined), "%s %s", argv[i], argv[i + 1]);
		if ((c = find_command(joined)))
			i++;
	}
	if (!c && !(c = find_command(argv[i]))) {
		fprintf(stderr, "sluice: no command '%s'\n", argv[i]);
		print_overview(stderr);
		return SLUICE_EXIT_USAGE;
	}
	for (int k = i + 1; k < argc; k++) {
		if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
			printf("usage: %s\n\n%s\n\n%s", c->usage, c->help, exit_codes_text);
			return 0;
		}
	}
	if (sluice_global_init() < 0 || sluice_ctx_new(&env.ctx) < 0) {
		fprintf(stderr, "sluice: cannot initialise libraries\n");
		return SLUICE_EXIT_INTERNAL;
	}
	rc = c->run(&env, argc - i, argv + i);
	/*
	 * After the command's own commit point: hooks follow what it wrote (a
	 * move) and whatever earlier processes left due. Its exit status stands.
	 */
	if (sluice_ctx_journal_writes(env.ctx))
		cli_hooks_after_write(&env);
	sluice_ctx_free(env.ctx);
	sluice_global_shutdown();
	return rc;
}
