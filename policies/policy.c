/*
 * policies/policy.c - the policy parser: YAML bytes (libyaml) into one
 * canonical, fully resolved JSON policy (policy.h gives the shape,
 * docs/policies.md every key and its default).
 *
 * Two passes. The first reads libyaml's events into a small tree of maps,
 * lists and scalars that keeps each node's position, refusing what a plain
 * data file has no use for (anchors, aliases, tags, more than one
 * document, deep nesting). The second walks the tree against the schema,
 * so every refusal names the file, line, column and rule path.
 */
#include "policy.h"
#include "repo.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum kind { K_SCALAR, K_SEQ, K_MAP };

typedef struct node node;
struct node {
	enum kind kind;
	size_t line, col; /* 1-based, from libyaml's start_mark */
	char *text;       /* scalars: the value, NUL-terminated (may hold NULs) */
	size_t len;
	int plain;   /* scalars: written unquoted, so YAML would resolve its type */
	node **kids; /* lists: items; maps: key, value, key, value, ... */
	size_t n, cap;
};

typedef struct {
	sluice_ctx *ctx;
	const char *name;
	yaml_parser_t yp;
	json_t *gate_defaults; /* sluice_gates__default_config(): what thresholds may set */
} parser;

/* Durations are capped at 100 years: enough for "practically never", far from overflow. */
#define MAX_SECONDS (36500LL * 86400)

static const char *const gate_names[] = {"regression", "safety", "poisoning", NULL};
static const char *const top_keys[] = {"version", "default", "channels", NULL};
static const char *const rule_keys[] = {"from",   "gates",     "drift_budget",
                                        "suites", "approvals", "inconclusive",
                                        "expiry", "emergency", NULL};
static const char *const gates_keys[] = {"required", "thresholds", NULL};
static const char *const drift_keys[] = {"max_drop", NULL};
static const char *const approvals_keys[] = {"roles", "count", "proposer_counts", NULL};
static const char *const inconclusive_keys[] = {"roles", "count", NULL};
static const char *const expiry_keys[] = {"approvals", "verdicts", NULL};
static const char *const emergency_keys[] = {"rollback", NULL};

/*
 * What a policy that says nothing means: every gate, no approvals needed,
 * inconclusive verdicts block, approvals lapse after 7 days, only
 * operators roll back (docs/policies.md argues each).
 */
static const char builtin_rules[] =
        "{\"from\": [],"
        " \"gates\": {\"required\": [\"regression\", \"safety\", \"poisoning\"],"
        "   \"thresholds\": {}},"
        " \"drift_budget\": {\"max_drop\": null},"
        " \"suites\": {},"
        " \"approvals\": {\"roles\": [\"approver\"], \"count\": 0, \"proposer_counts\": false},"
        " \"inconclusive\": {\"roles\": [], \"count\": 1},"
        " \"expiry\": {\"approvals\": 604800, \"verdicts\": null},"
        " \"emergency\": {\"rollback\": [\"operator\"]}}";

/* ---- messages ------------------------------------------------------------ */

static int fail(parser *p, size_t line, size_t col, const char *path, const char *fmt, ...)
        SLUICE_PRINTF(5, 6);

static int fail(parser *p, size_t line, size_t col, const char *path, const char *fmt, ...)
{
	char msg[1024]; /* the context's message holds 1024 bytes in all */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sluice_ctx__error(p->ctx, SLUICE_EINVALID, "%s:%zu:%zu: %s: %s", p->name, line, col,
	                         path[0] ? path : "(top level)", msg);
}

#define FAIL_AT(p, nd, path, ...) fail((p), (nd)->line, (nd)->col, (path), __VA_ARGS__)

static int nomem(parser *p)
{
	return sluice_ctx__error(p->ctx, SLUICE_ENOMEM, "%s: out of memory reading the policy",
	                         p->name);
}

/*
 * A scalar as messages show it: at most 64 bytes, cut at a character
 * boundary, control characters as '?', so a hostile key cannot flood or
 * split the message.
 */
static const char *show(char buf[80], const char *s, size_t len)
{
	size_t n = len, i;

	if (n > 64) {
		n = 64;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	strcpy(buf + i, n < len ? "..." : "");
	return buf;
}

/* list joined with ", " into buf (size at least 4); a list cut short ends in "...". */
static void join(char *buf, size_t size, const char *const *list)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; list[i] && off < size; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", list[i]);
	if (off >= size)
		memcpy(buf + size - 4, "...", 4);
}

static void path_join(char out[256], const char *path, const char *key, size_t keylen)
{
	char shown[80];
	size_t o = strnlen(path, 255), n;

	/* By hand, not snprintf: a cut path is fine in a message. */
	memcpy(out, path, o);
	if (o > 0 && o < 255)
		out[o++] = '.';
	n = strlen(show(shown, key, keylen));
	if (n > 255 - o)
		n = 255 - o;
	memcpy(out + o, shown, n);
	out[o + n] = 0;
}

/* ---- pass 1: events into a tree ------------------------------------------ */

static void node_free(node *nd)
{
	if (!nd)
		return;
	for (size_t i = 0; i < nd->n; i++)
		node_free(nd->kids[i]);
	free(nd->kids);
	free(nd->text);
	free(nd);
}

static int yaml_failed(parser *p, const unsigned char *data, size_t len)
{
	yaml_parser_t *y = &p->yp;
	const char *problem = y->problem ? y->problem : "cannot parse";

	if (y->error == YAML_MEMORY_ERROR)
		return nomem(p);
	if (y->error == YAML_READER_ERROR) {
		/* Reader errors carry a byte offset, not a mark. */
		size_t line = 1, col = 1;
		for (size_t i = 0; i < y->problem_offset && i < len; i++) {
			if (data[i] == '\n') {
				line++;
				col = 1;
			} else if ((data[i] & 0xC0) != 0x80) {
				col++;
			}
		}
		return fail(p, line, col, "YAML", "%s", problem);
	}
	if (y->context)
		return fail(p, y->problem_mark.line + 1, y->problem_mark.column + 1, "YAML",
		            "%s (%s at %zu:%zu)", problem, y->context, y->context_mark.line + 1,
		            y->context_mark.column + 1);
	return fail(p, y->problem_mark.line + 1, y->problem_mark.column + 1, "YAML", "%s", problem);
}

typedef struct {
	parser *p;
	const unsigned char *data;
	size_t len;
} reader;

static int next_event(reader *r, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&r->p->yp, ev))
		return yaml_failed(r->p, r->data, r->len);
	return SLUICE_OK;
}

static int add_kid(parser *p, node *nd, node *kid)
{
	if (nd->n == nd->cap) {
		size_t cap = nd->cap ? nd->cap * 2 : 8, bytes;
		node **k;
		if (sluice__mul_ovf(&bytes, cap, sizeof(*k)) < 0 ||
		    !(k = sluice__realloc(p->ctx, nd->kids, bytes))) {
			node_free(kid);
			return nomem(p);
		}
		nd->kids = k;
		nd->cap = cap;
	}
	nd->kids[nd->n++] = kid;
	return SLUICE_OK;
}

/* Build the node that event ev starts (ev stays the caller's). */
static int build(reader *r, const yaml_event_t *ev, node **out, const char *path, unsigned depth)
{
	parser *p = r->p;
	size_t line = ev->start_mark.line + 1, col = ev->start_mark.column + 1;
	const yaml_char_t *anchor, *tag;
	yaml_event_type_t end;
	node *nd = NULL;
	int error = SLUICE_OK;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return fail(p, line, col, path,
		            "alias '*%.64s' refused: a policy is plain data (no anchors, aliases "
		            "or tags)",
		            (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		end = YAML_NO_EVENT;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		end = YAML_SEQUENCE_END_EVENT;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		end = YAML_MAPPING_END_EVENT;
		break;
	default:
		return fail(p, line, col, path, "unexpected YAML event %d", (int)ev->type);
	}
	if (anchor)
		return fail(p, line, col, path,
		            "anchor '&%.64s' refused: a policy is plain data (no anchors, aliases "
		            "or tags)",
		            (const char *)anchor);
	if (tag)
		return fail(p, line, col, path,
		            "tag '%.64s' refused: a policy is plain data (no anchors, aliases or "
		            "tags)",
		            (const char *)tag);
	if (end != YAML_NO_EVENT && depth > SLUICE_POLICY_MAX_DEPTH)
		return fail(p, line, col, path, "nested deeper than %d maps and lists",
		            SLUICE_POLICY_MAX_DEPTH);

	if (!(nd = sluice__calloc(p->ctx, 1, sizeof(*nd))))
		return nomem(p);
	nd->line = line;
	nd->col = col;
	if (end == YAML_NO_EVENT) {
		size_t n = ev->data.scalar.length, bytes;
		nd->kind = K_SCALAR;
		nd->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if (sluice__add_ovf(&bytes, n, 1) < 0 ||
		    !(nd->text = sluice__malloc(p->ctx, bytes))) {
			error = nomem(p);
			goto done;
		}
		memcpy(nd->text, ev->data.scalar.value, n);
		nd->text[n] = 0;
		nd->len = n;
		goto done;
	}
	nd->kind = ev->type == YAML_MAPPING_START_EVENT ? K_MAP : K_SEQ;
	for (;;) {
		yaml_event_t kid;
		char kpath[256];
		node *k = NULL;

		if ((error = next_event(r, &kid)) < 0)
			goto done;
		if (kid.type == end) {
			yaml_event_delete(&kid);
			break;
		}
		if (nd->kind == K_SEQ)
			snprintf(kpath, sizeof(kpath), "%s[%zu]", path, nd->n);
		else if (nd->n % 2 == 0)
			snprintf(kpath, sizeof(kpath), "%s", path);
		else if (nd->kids[nd->n - 1]->kind == K_SCALAR)
			path_join(kpath, path, nd->kids[nd->n - 1]->text, nd->kids[nd->n - 1]->len);
		else
			path_join(kpath, path, "?", 1);
		error = build(r, &kid, &k, kpath, depth + 1);
		yaml_event_delete(&kid);
		if (error < 0 || (error = add_kid(p, nd, k)) < 0)
			goto done;
	}
done:
	if (error < 0)
		node_free(nd);
	else
		*out = nd;
	return error;
}

static int read_document(reader *r, node **out)
{
	parser *p = r->p;
	yaml_event_t ev;
	node *root = NULL;
	int error, type;

	/* STREAM-START, then a document or the end of an empty stream. */
	if ((error = next_event(r, &ev)) < 0)
		return error;
	yaml_event_delete(&ev);
	if ((error = next_event(r, &ev)) < 0)
		return error;
	type = ev.type;
	if (type == YAML_DOCUMENT_START_EVENT && ev.data.document_start.tag_directives.start !=
	                                                 ev.data.document_start.tag_directives.end)
		error = fail(p, ev.start_mark.line + 1, ev.start_mark.column + 1, "YAML",
		             "%%TAG directives refused: a policy is plain data");
	yaml_event_delete(&ev);
	if (error < 0)
		return error;
	if (type != YAML_DOCUMENT_START_EVENT)
		return fail(p, 1, 1, "", "no document: the policy is empty");

	if ((error = next_event(r, &ev)) < 0)
		return error;
	error = build(r, &ev, &root, "", 1);
	yaml_event_delete(&ev);
	if (error < 0)
		return error;

	/* DOCUMENT-END, then nothing but the end of the stream. */
	if ((error = next_event(r, &ev)) < 0)
		goto done;
	yaml_event_delete(&ev);
	if ((error = next_event(r, &ev)) < 0)
		goto done;
	if (ev.type != YAML_STREAM_END_EVENT)
		error = fail(p, ev.start_mark.line + 1, ev.start_mark.column + 1, "YAML",
		             "a second document: a policy is exactly one YAML document");
	yaml_event_delete(&ev);
done:
	if (error < 0)
		node_free(root);
	else
		*out = root;
	return error;
}

/* ---- scalars --------------------------------------------------------------- */

typedef enum { T_NULL, T_BOOL, T_INT, T_FLOAT, T_STR } stype;

static int is_one_of(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

static size_t span(const char *s, size_t n, const char *set)
{
	size_t i = 0;
	while (i < n && s[i] && strchr(set, s[i]))
		i++;
	return i;
}

#define DIGITS "0123456789"

/* Strict decimal: [-+]?(0|[1-9][0-9]*). */
static int is_decimal(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	size_t d = span(s + i, n - i, DIGITS);

	return d > 0 && i + d == n && (d == 1 || s[i] != '0');
}

/* Finite float syntax: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int is_float(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0, d, f = 0;

	d = span(s + i, n - i, DIGITS);
	i += d;
	if (i < n && s[i] == '.') {
		f = span(s + i + 1, n - i - 1, DIGITS);
		i += 1 + f;
	}
	if (d == 0 && f == 0)
		return 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t e;
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		if (!(e = span(s + i, n - i, DIGITS)))
			return 0;
		i += e;
	}
	return i == n;
}

static int is_nonfinite(const char *s)
{
	static const char *const words[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
	                                    "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
	                                    ".NaN",  ".NAN",  NULL};
	return is_one_of(s, words);
}

/*
 * The type YAML readers give a scalar. Quoted scalars are strings. Plain
 * ones are resolved as the YAML 1.2 core schema does, plus the YAML 1.1
 * readings (yes/no/on/off, 0b, 1_000) that other readers still apply, so a
 * name that some reader would take for a boolean or number must be quoted.
 */
static stype resolve(const node *nd)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE",
	                                    "yes",  "Yes",  "YES",  "no",    "No",    "NO",
	                                    "on",   "On",   "ON",   "off",   "Off",   "OFF",
	                                    "y",    "Y",    "n",    "N",     NULL};
	const char *s = nd->text;
	size_t n = nd->len, i;

	if (!nd->plain || strlen(s) != n)
		return T_STR;
	if (is_one_of(s, nulls))
		return T_NULL;
	if (is_one_of(s, bools))
		return T_BOOL;
	i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (n > i + 2 && s[i] == '0' &&
	    ((s[i + 1] == 'x' && span(s + i + 2, n - i - 2, DIGITS "abcdefABCDEF") == n - i - 2) ||
	     (s[i + 1] == 'o' && span(s + i + 2, n - i - 2, "01234567") == n - i - 2) ||
	     (s[i + 1] == 'b' && span(s + i + 2, n - i - 2, "01") == n - i - 2)))
		return T_INT;
	if (n > i && s[i] != '_' && span(s + i, n - i, DIGITS "_") == n - i)
		return T_INT;
	if (is_float(s, n) || is_nonfinite(s))
		return T_FLOAT;
	return T_STR;
}

static const char *describe(char buf[128], const node *nd)
{
	char shown[80];

	if (nd->kind == K_MAP)
		return "a map";
	if (nd->kind == K_SEQ)
		return "a list";
	show(shown, nd->text, nd->len);
	switch (resolve(nd)) {
	case T_NULL:
		snprintf(buf, 128, "nothing (null)");
		break;
	case T_BOOL:
		snprintf(buf, 128, "the boolean '%s'", shown);
		break;
	case T_INT:
	case T_FLOAT:
		snprintf(buf, 128, "the number '%s'", shown);
		break;
	default:
		snprintf(buf, 128, "the string '%s'", shown);
	}
	return buf;
}

static int want_kind(parser *p, const node *nd, enum kind k, const char *path)
{
	char d[128];

	if (nd->kind == k)
		return SLUICE_OK;
	return FAIL_AT(p, nd, path, "expected %s, got %s",
	               k == K_MAP   ? "a map"
	               : k == K_SEQ ? "a list"
	                            : "a single value",
	               describe(d, nd));
}

/* A scalar that every YAML reader takes for a string (NUL-free). */
static int get_string(parser *p, const node *nd, const char *path, const char **out)
{
	char d[128];
	int error;

	if ((error = want_kind(p, nd, K_SCALAR, path)) < 0)
		return error;
	if (strlen(nd->text) != nd->len)
		return FAIL_AT(p, nd, path, "a NUL character in a string");
	if (resolve(nd) != T_STR)
		return FAIL_AT(p, nd, path, "expected a string, got %s (quote it to mean the text)",
		               describe(d, nd));
	*out = nd->text;
	return SLUICE_OK;
}

/* A decimal integer, as [-+]?digits without leading zeros, into *out. */
static int parse_decimal(const char *s, size_t n, long long *out)
{
	size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	unsigned long long v = 0,
	                   limit = s[0] == '-' ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;

	for (; i < n; i++) {
		unsigned dgt = (unsigned)(s[i] - '0');
		if (v > (limit - dgt) / 10)
			return -1;
		v = v * 10 + dgt;
	}
	*out = s[0] == '-' ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v)
	                   : (long long)v;
	return 0;
}

static int get_int(parser *p, const node *nd, const char *path, long long lo, long long hi,
                   long long *out)
{
	char d[128];
	long long v;
	int error;

	if ((error = want_kind(p, nd, K_SCALAR, path)) < 0)
		return error;
	if (!nd->plain || !is_decimal(nd->text, nd->len))
		return FAIL_AT(p, nd, path,
		               "expected a decimal integer (no quotes, leading zeros, '_' or "
		               "base prefix), got %s",
		               describe(d, nd));
	if (parse_decimal(nd->text, nd->len, &v) < 0 || v < lo || v > hi)
		return FAIL_AT(p, nd, path, "%s is out of range: an integer in %lld..%lld",
		               show(d, nd->text, nd->len), lo, hi);
	*out = v;
	return SLUICE_OK;
}

/* A finite number; integers stay JSON integers. */
static int get_number(parser *p, const node *nd, const char *path, json_t **out)
{
	char d[128];
	long long iv;
	double v;
	int error;

	if ((error = want_kind(p, nd, K_SCALAR, path)) < 0)
		return error;
	if (nd->plain && is_decimal(nd->text, nd->len)) {
		if (parse_decimal(nd->text, nd->len, &iv) < 0)
			return FAIL_AT(p, nd, path, "%s is out of range for an integer",
			               show(d, nd->text, nd->len));
		*out = json_integer(iv);
		return *out ? SLUICE_OK : nomem(p);
	}
	if (nd->plain && is_nonfinite(nd->text))
		return FAIL_AT(p, nd, path, "%s is not a finite number", nd->text);
	if (!nd->plain || !is_float(nd->text, nd->len))
		return FAIL_AT(p, nd, path, "expected a number, got %s", describe(d, nd));
	v = strtod(nd->text, NULL);
	if (!isfinite(v))
		return FAIL_AT(p, nd, path, "%s is not a finite number",
		               show(d, nd->text, nd->len));
	*out = json_real(v);
	return *out ? SLUICE_OK : nomem(p);
}

static int get_bool(parser *p, const node *nd, const char *path, int *out)
{
	char d[128];
	int error;

	if ((error = want_kind(p, nd, K_SCALAR, path)) < 0)
		return error;
	if (nd->plain && (!strcmp(nd->text, "true") || !strcmp(nd->text, "false"))) {
		*out = nd->text[0] == 't';
		return SLUICE_OK;
	}
	return FAIL_AT(p, nd, path, "expected true or false, got %s", describe(d, nd));
}

/* "never" (null), integer seconds, or <n>s|m|h|d; 1 second to 100 years. */
static int get_duration(parser *p, const node *nd, const char *path, json_t **out)
{
	static const struct {
		char unit;
		long long seconds;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	char d[128];
	long long v, mult = 0;
	int error;

	if ((error = want_kind(p, nd, K_SCALAR, path)) < 0)
		return error;
	if (nd->plain && !strcmp(nd->text, "never")) {
		*out = json_null();
		return SLUICE_OK;
	}
	if (nd->plain && is_decimal(nd->text, nd->len)) {
		mult = 1;
		if (parse_decimal(nd->text, nd->len, &v) < 0)
			v = MAX_SECONDS + 1;
	} else if (nd->len >= 2 && strlen(nd->text) == nd->len &&
	           is_decimal(nd->text, nd->len - 1) && nd->text[0] != '-' && nd->text[0] != '+') {
		for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++)
			if (nd->text[nd->len - 1] == units[i].unit)
				mult = units[i].seconds;
		if (mult && parse_decimal(nd->text, nd->len - 1, &v) < 0)
			v = MAX_SECONDS + 1;
	}
	if (!mult)
		return FAIL_AT(p, nd, path,
		               "expected never, seconds, or <n>s|m|h|d (e.g. 7d), got %s",
		               describe(d, nd));
	if (v < 1 || v > MAX_SECONDS / mult)
		return FAIL_AT(p, nd, path, "%s is out of range: 1 second to 36500d",
		               show(d, nd->text, nd->len));
	*out = json_integer(v * mult);
	return *out ? SLUICE_OK : nomem(p);
}

/* ---- maps and names --------------------------------------------------------- */

/*
 * A map's keys: scalars, none twice, each one of allowed when allowed is
 * given (the message lists them). A set in a JSON object keeps this linear.
 */
static int check_map(parser *p, const node *map, const char *path, const char *const *allowed)
{
	json_t *seen = json_object();
	char shown[80], list[900]; /* the poisoning gate's thirty keys, with room to grow */
	int error = SLUICE_OK;

	if (!seen)
		return nomem(p);
	for (size_t i = 0; i < map->n && error == SLUICE_OK; i += 2) {
		const node *k = map->kids[i];
		char d[128];
		if (k->kind != K_SCALAR) {
			error = FAIL_AT(p, k, path, "a key must be a single value, got %s",
			                describe(d, k));
		} else if (strlen(k->text) != k->len) {
			error = FAIL_AT(p, k, path, "a NUL character in key '%s'",
			                show(shown, k->text, k->len));
		} else if (json_object_get(seen, k->text)) {
			error = FAIL_AT(p, k, path, "duplicate key '%s'",
			                show(shown, k->text, k->len));
		} else if (allowed && !is_one_of(k->text, allowed)) {
			join(list, sizeof(list), allowed);
			error = FAIL_AT(p, k, path, "unknown key '%s' (allowed: %s)",
			                show(shown, k->text, k->len), list);
		} else if (json_object_set_new_nocheck(seen, k->text, json_true()) < 0) {
			error = nomem(p);
		}
	}
	json_decref(seen);
	return error;
}

/* Suite names as eval/suite.c accepts them. */
static int suite_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 128 && s[0] != '.' && s[0] != '-' &&
	       span(s, n, DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-") == n;
}

static int bad_channel(parser *p, const node *nd, const char *path)
{
	char shown[80];

	return FAIL_AT(p, nd, path,
	               "'%s' is not a channel name (1-64 of A-Z a-z 0-9 . _ -, not starting "
	               "with '.' or '-', no '..', not ending in '.lock')",
	               show(shown, nd->text, nd->len));
}

enum list_kind { L_GATES, L_ROLES, L_CHANNELS };

/* A list of distinct names of one kind (new array in *out). */
static int get_names(parser *p, const node *nd, const char *path, enum list_kind kind, json_t **out)
{
	json_t *arr = NULL, *seen = NULL;
	char ipath[256], shown[80], list[256];
	int error;

	if ((error = want_kind(p, nd, K_SEQ, path)) < 0)
		return error;
	if (!(arr = json_array()) || !(seen = json_object())) {
		error = nomem(p);
		goto done;
	}
	for (size_t i = 0; i < nd->n; i++) {
		const node *it = nd->kids[i];
		const char *s = NULL;
		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		if ((error = get_string(p, it, ipath, &s)) < 0)
			goto done;
		if (kind == L_GATES && !is_one_of(s, gate_names)) {
			join(list, sizeof(list), gate_names);
			error = FAIL_AT(p, it, ipath, "unknown gate '%s' (gates: %s)",
			                show(shown, s, it->len), list);
		} else if (kind == L_ROLES && !is_one_of(s, sluice_keys__roles)) {
			join(list, sizeof(list), sluice_keys__roles);
			error = FAIL_AT(p, it, ipath, "unknown role '%s' (roles: %s)",
			                show(shown, s, it->len), list);
		} else if (kind == L_ROLES && !strcmp(s, "auditor")) {
			/* Every role list grants something: approving, accepting, rolling back. */
			error = FAIL_AT(p, it, ipath,
			                "the auditor role is read-only: it cannot approve, accept "
			                "an inconclusive verdict or roll back");
		} else if (kind == L_CHANNELS && !sluice_channel__name_ok(s)) {
			error = bad_channel(p, it, ipath);
		} else if (json_object_get(seen, s)) {
			error = FAIL_AT(p, it, ipath, "'%s' is given twice", s);
		} else if (json_object_set_new_nocheck(seen, s, json_true()) < 0 ||
		           json_array_append_new(arr, json_string_nocheck(s)) < 0) {
			error = nomem(p);
		}
		if (error < 0)
			goto done;
	}
	*out = arr;
	arr = NULL;
done:
	json_decref(arr);
	json_decref(seen);
	return error;
}

static int jset(parser *p, json_t *obj, const char *key, json_t *val)
{
	/* json_object_set_new releases val when it fails. */
	if (!val || json_object_set_new(obj, key, val) < 0)
		return nomem(p);
	return SLUICE_OK;
}

/* ---- pass 2: rules -------------------------------------------------------------- */

/*
 * gates.thresholds: overrides of the gate configuration, checked against
 * its defaults (sluice_gates__merge_config's rules, with positions): a
 * known key, a finite number of the default's sign, an integer where the
 * default is one (counts), within the key's range where it has one
 * (sluice_gates__threshold_range), alpha in (0, 0.5). Kept exactly as
 * written.
 */
static int get_thresholds(parser *p, const node *nd, const char *path, json_t **out)
{
	const char *top[8], *names[32];
	size_t ntop = 0;
	json_t *res = NULL, *v;
	const char *k;
	char kpath[256], vpath[256], shown[80];
	double lo, hi;
	int error;

	json_object_foreach(p->gate_defaults, k, v)
	{
		if ((json_is_number(v) || json_is_object(v)) && ntop < 7)
			top[ntop++] = k;
	}
	top[ntop] = NULL;
	if ((error = want_kind(p, nd, K_MAP, path)) < 0 ||
	    (error = check_map(p, nd, path, top)) < 0)
		return error;
	if (!(res = json_object()))
		return nomem(p);
	for (size_t i = 0; i < nd->n; i += 2) {
		const node *key = nd->kids[i], *val = nd->kids[i + 1];
		json_t *def = json_object_get(p->gate_defaults, key->text), *g = NULL, *num = NULL;
		size_t nnames = 0;

		path_join(kpath, path, key->text, key->len);
		if (json_is_number(def)) {
			if ((error = get_number(p, val, kpath, &num)) < 0)
				goto done;
			if (!(json_number_value(num) > 0 && json_number_value(num) < 0.5)) {
				json_decref(num);
				error = FAIL_AT(p, val, kpath, "must be a number in (0, 0.5)");
				goto done;
			}
			if ((error = jset(p, res, key->text, num)) < 0)
				goto done;
			continue;
		}
		json_object_foreach(def, k, v)
		{
			/* The drift budget has its own key (drift_budget.max_drop). */
			if (strcmp(k, "anchor_max_drop") && nnames < 31)
				names[nnames++] = k;
		}
		names[nnames] = NULL;
		if ((error = want_kind(p, val, K_MAP, kpath)) < 0)
			goto done;
		for (size_t j = 0; j < val->n; j += 2) {
			const node *tk = val->kids[j];
			if (tk->kind == K_SCALAR && !strcmp(tk->text, "anchor_max_drop")) {
				error = FAIL_AT(
				        p, tk, kpath,
				        "anchor_max_drop is set by drift_budget.max_drop, not "
				        "here");
				goto done;
			}
		}
		if ((error = check_map(p, val, kpath, names)) < 0)
			goto done;
		if (!(g = json_object())) {
			error = nomem(p);
			goto done;
		}
		for (size_t j = 0; j < val->n; j += 2) {
			const node *tk = val->kids[j], *tv = val->kids[j + 1];
			json_t *old = json_object_get(def, tk->text);
			path_join(vpath, kpath, tk->text, tk->len);
			if ((error = get_number(p, tv, vpath, &num)) < 0)
				break;
			if (json_is_integer(old) && !json_is_integer(num)) {
				json_decref(num);
				error = FAIL_AT(p, tv, vpath,
				                "expected an integer (the default is %lld)",
				                (long long)json_integer_value(old));
				break;
			}
			if ((json_number_value(num) < 0) != (json_number_value(old) < 0)) {
				json_decref(num);
				error = FAIL_AT(
				        p, tv, vpath, "%s has the wrong sign: the default is %g",
				        show(shown, tv->text, tv->len), json_number_value(old));
				break;
			}
			if (sluice_gates__threshold_range(key->text, tk->text, &lo, &hi) &&
			    !(json_number_value(num) >= lo && json_number_value(num) <= hi)) {
				json_decref(num);
				error = FAIL_AT(p, tv, vpath,
				                "%s is out of range: it must be %g to %g",
				                show(shown, tv->text, tv->len), lo, hi);
				break;
			}
			if ((error = jset(p, g, tk->text, num)) < 0)
				break;
		}
		if (error < 0) {
			json_decref(g);
			goto done;
		}
		if ((error = jset(p, res, key->text, g)) < 0)
			goto done;
	}
	*out = res;
	res = NULL;
done:
	json_decref(res);
	return error;
}

/* Read sub-map nd of rules key `section` into rules[section], key by key. */
typedef struct {
	const node *count, *roles; /* approvals: for the roles/count check */
	const node *from;
} rule_marks;

static int sub_value(parser *p, const node *k, const node *v, const char *path, const char *section,
                     json_t **out, rule_marks *m)
{
	json_t *roles;
	long long n = 0;
	int b, error;

	if (!strcmp(section, "gates")) {
		if (!strcmp(k->text, "required"))
			return get_names(p, v, path, L_GATES, out);
		return get_thresholds(p, v, path, out);
	}
	if (!strcmp(section, "drift_budget")) {
		json_t *x;
		if ((error = get_number(p, v, path, &x)) < 0)
			return error;
		if (!(json_number_value(x) > 0 && json_number_value(x) <= 1)) {
			json_decref(x);
			return FAIL_AT(p, v, path, "must be a number in (0, 1]");
		}
		*out = x;
		return SLUICE_OK;
	}
	if (!strcmp(section, "approvals") || !strcmp(section, "inconclusive")) {
		int appr = section[0] == 'a';
		if (!strcmp(k->text, "roles")) {
			if (appr)
				m->roles = v;
			return get_names(p, v, path, L_ROLES, out);
		}
		if (!strcmp(k->text, "count")) {
			if (appr)
				m->count = v;
			if ((error = get_int(p, v, path, appr ? 0 : 1, 64, &n)) < 0)
				return error;
			*out = json_integer(n);
			return *out ? SLUICE_OK : nomem(p);
		}
		if ((error = get_bool(p, v, path, &b)) < 0)
			return error;
		*out = json_boolean(b);
		return SLUICE_OK;
	}
	if (!strcmp(section, "expiry"))
		return get_duration(p, v, path, out);
	/* emergency.rollback */
	if ((error = get_names(p, v, path, L_ROLES, &roles)) < 0)
		return error;
	for (size_t i = 0; i < json_array_size(roles); i++)
		if (!strcmp(json_string_value(json_array_get(roles, i)), "operator")) {
			*out = roles;
			return SLUICE_OK;
		}
	json_decref(roles);
	return FAIL_AT(p, v, path, "must include 'operator' (operators can always roll back)");
}

static int get_suites(parser *p, const node *nd, const char *path, json_t **out)
{
	json_t *res;
	char kpath[256], shown[80];
	int error;

	if ((error = want_kind(p, nd, K_MAP, path)) < 0 ||
	    (error = check_map(p, nd, path, NULL)) < 0)
		return error;
	if (!(res = json_object()))
		return nomem(p);
	for (size_t i = 0; i < nd->n; i += 2) {
		const node *k = nd->kids[i], *v = nd->kids[i + 1];
		const char *name;
		if ((error = get_string(p, k, path, &name)) < 0)
			break;
		if (!suite_name_ok(name)) {
			error = FAIL_AT(p, k, path,
			                "'%s' is not a suite name (1-128 of A-Z a-z 0-9 . _ -, not "
			                "starting with '.' or '-')",
			                show(shown, k->text, k->len));
			break;
		}
		path_join(kpath, path, k->text, k->len);
		/* Any scalar: a digest of only decimal digits is still a digest. */
		if ((error = want_kind(p, v, K_SCALAR, kpath)) < 0)
			break;
		if (v->len != 64 || span(v->text, v->len, "0123456789abcdef") != 64) {
			error = FAIL_AT(p, v, kpath,
			                "'%s' is not a suite digest (64 lowercase hex digits, the "
			                "suite's BLAKE2b-256)",
			                show(shown, v->text, v->len));
			break;
		}
		if ((error = jset(p, res, k->text, json_string_nocheck(v->text))) < 0)
			break;
	}
	if (error < 0)
		json_decref(res);
	else
		*out = res;
	return error;
}

/*
 * One rules map over base (a resolved rules object): each key given
 * replaces base's at the second level (approvals.count alone keeps base's
 * roles and proposer_counts). self is the channel's name, or NULL for
 * default.
 */
static int get_rules(parser *p, const node *nd, const char *path, const json_t *base,
                     const char *self, json_t **out)
{
	static const struct {
		const char *name;
		const char *const *keys;
	} sections[] = {{"gates", gates_keys},         {"drift_budget", drift_keys},
	                {"approvals", approvals_keys}, {"inconclusive", inconclusive_keys},
	                {"expiry", expiry_keys},       {"emergency", emergency_keys}};
	rule_marks m = {NULL, NULL, NULL};
	json_t *r = NULL, *v = NULL, *appr;
	char kpath[256], spath[256];
	int error;

	if ((error = want_kind(p, nd, K_MAP, path)) < 0 ||
	    (error = check_map(p, nd, path, rule_keys)) < 0)
		return error;
	if (!(r = json_deep_copy(base)))
		return nomem(p);
	for (size_t i = 0; i < nd->n; i += 2) {
		const node *k = nd->kids[i], *val = nd->kids[i + 1];
		const char *const *keys = NULL;
		json_t *sect;

		path_join(kpath, path, k->text, k->len);
		if (!strcmp(k->text, "from")) {
			m.from = val;
			if ((error = get_names(p, val, kpath, L_CHANNELS, &v)) < 0)
				goto done;
			for (size_t j = 0; self && j < json_array_size(v); j++)
				if (!strcmp(json_string_value(json_array_get(v, j)), self)) {
					error = FAIL_AT(p, val->kids[j], kpath,
					                "'%s' names the channel itself", self);
					goto done;
				}
			error = jset(p, r, "from", v);
			v = NULL;
			if (error < 0)
				goto done;
			continue;
		}
		if (!strcmp(k->text, "suites")) {
			if ((error = get_suites(p, val, kpath, &v)) < 0)
				goto done;
			error = jset(p, r, "suites", v);
			v = NULL;
			if (error < 0)
				goto done;
			continue;
		}
		for (size_t s = 0; s < sizeof(sections) / sizeof(*sections); s++)
			if (!strcmp(k->text, sections[s].name))
				keys = sections[s].keys;
		if ((error = want_kind(p, val, K_MAP, kpath)) < 0 ||
		    (error = check_map(p, val, kpath, keys)) < 0)
			goto done;
		sect = json_object_get(r, k->text);
		for (size_t j = 0; j < val->n; j += 2) {
			const node *sk = val->kids[j];
			path_join(spath, kpath, sk->text, sk->len);
			if ((error = sub_value(p, sk, val->kids[j + 1], spath, k->text, &v, &m)) <
			    0)
				goto done;
			error = jset(p, sect, sk->text, v);
			v = NULL;
			if (error < 0)
				goto done;
		}
	}

	/* Checks across keys, on the merged result, placed where this map said something. */
	appr = json_object_get(r, "approvals");
	if (json_integer_value(json_object_get(appr, "count")) > 0 &&
	    json_array_size(json_object_get(appr, "roles")) == 0) {
		const node *at = m.count ? m.count : m.roles ? m.roles : nd;
		path_join(kpath, path, "approvals", 9);
		error = FAIL_AT(p, at, kpath,
		                "count %lld needs roles whose approvals count, and roles is []",
		                (long long)json_integer_value(json_object_get(appr, "count")));
		goto done;
	}
	if (self && !m.from) {
		json_t *from = json_object_get(r, "from");
		for (size_t j = 0; j < json_array_size(from); j++)
			if (!strcmp(json_string_value(json_array_get(from, j)), self)) {
				path_join(kpath, path, "from", 4);
				error = FAIL_AT(p, nd, kpath,
				                "default.from names '%s', which this channel would "
				                "inherit; give it its own from",
				                self);
				goto done;
			}
	}
	*out = r;
	r = NULL;
done:
	json_decref(r);
	json_decref(v);
	return error;
}

static const node *map_get(const node *map, const char *key)
{
	for (size_t i = 0; map && i < map->n; i += 2)
		if (map->kids[i]->kind == K_SCALAR && !strcmp(map->kids[i]->text, key))
			return map->kids[i + 1];
	return NULL;
}

/* Where channel i's from[j] was written, for messages: its own list, or the channel's map. */
static const node *from_at(const node *chans, size_t i, size_t j, char kpath[256], int *inherited)
{
	const node *fn = map_get(chans->kids[2 * i + 1], "from");
	char base[256];

	path_join(base, "channels", chans->kids[2 * i]->text, chans->kids[2 * i]->len);
	*inherited = !fn;
	if (fn && j < fn->n) {
		snprintf(kpath, 256, "%.200s.from[%zu]", base, j);
		return fn->kids[j];
	}
	snprintf(kpath, 256, "%.200s.from", base);
	return chans->kids[2 * i + 1];
}

/*
 * The promotion order the from lists write: every name in a from is a
 * channel the policy lists (a name it does not list is a typo or an order
 * written half down), and following from never comes back to where it
 * started (then nothing could ever enter those channels). A depth-first
 * walk with its own stack: a policy may list many channels in a chain.
 */
static int check_order(parser *p, const node *chans, json_t *channels)
{
	size_t n = chans ? chans->n / 2 : 0, sp = 0, i, j;
	size_t *stack = NULL, *next = NULL;
	unsigned char *state = NULL; /* 0 not seen, 1 on the walk's path, 2 done */
	json_t *index = NULL;
	const node *at;
	char kpath[256], shown[80];
	int error = SLUICE_OK, inherited;

	if (n == 0)
		return SLUICE_OK;
	if (!(stack = calloc(n, sizeof(*stack))) || !(next = calloc(n, sizeof(*next))) ||
	    !(state = calloc(n, 1)) || !(index = json_object())) {
		error = nomem(p);
		goto done;
	}
	for (i = 0; i < n; i++)
		if ((error = jset(p, index, chans->kids[2 * i]->text,
		                  json_integer((json_int_t)i))) < 0)
			goto done;
	for (i = 0; i < n; i++) {
		json_t *from = json_object_get(json_object_get(channels, chans->kids[2 * i]->text),
		                               "from");
		for (j = 0; j < json_array_size(from); j++) {
			const char *name = json_string_value(json_array_get(from, j));
			if (json_object_get(index, name))
				continue;
			at = from_at(chans, i, j, kpath, &inherited);
			error = FAIL_AT(p, at, kpath,
			                "'%s' is not listed in channels: the promotion order names "
			                "only channels the policy lists (write '%s: {}' for one "
			                "that takes default's rules)",
			                show(shown, name, strlen(name)),
			                show(shown, name, strlen(name)));
			goto done;
		}
	}
	for (i = 0; i < n; i++) {
		if (state[i])
			continue;
		stack[sp++] = i;
		state[i] = 1;
		while (sp > 0) {
			size_t u = stack[sp - 1], v, k;
			json_t *from = json_object_get(
			        json_object_get(channels, chans->kids[2 * u]->text), "from");
			if (next[u] >= json_array_size(from)) {
				state[u] = 2;
				sp--;
				continue;
			}
			j = next[u]++;
			v = (size_t)json_integer_value(
			        json_object_get(index, json_string_value(json_array_get(from, j))));
			if (state[v] == 0) {
				state[v] = 1;
				stack[sp++] = v;
				continue;
			}
			if (state[v] == 2)
				continue;
			{
				/* v is on the path: v ... u, and u takes from v. */
				char cyc[512];
				size_t o = 0;
				for (k = 0; k < sp && stack[k] != v; k++)
					;
				for (; k < sp && o < sizeof(cyc); k++) {
					size_t w = k + 1 < sp ? stack[k + 1] : v;
					/* Names passed sluice_channel__name_ok: printable as they
					 * are. */
					int m = snprintf(cyc + o, sizeof(cyc) - o, "%s%s from %s",
					                 o ? ", " : "",
					                 chans->kids[2 * stack[k]]->text,
					                 chans->kids[2 * w]->text);
					o += m > 0 ? (size_t)m : 0;
				}
				if (o >= sizeof(cyc))
					strcpy(cyc + sizeof(cyc) - 4, "...");
				at = from_at(chans, u, j, kpath, &inherited);
				error = FAIL_AT(p, at, kpath,
				                "the promotion order goes round in a cycle (%s%s): "
				                "nothing could ever enter these channels",
				                cyc, inherited ? "; this from is default's" : "");
				goto done;
			}
		}
	}
done:
	free(stack);
	free(next);
	free(state);
	json_decref(index);
	return error;
}

static int get_policy(parser *p, const node *root, json_t **out)
{
	const node *ver, *def, *chans;
	json_t *builtin = NULL, *dflt = NULL, *channels = NULL, *pol = NULL, *r = NULL;
	json_error_t jerr;
	char d[128], kpath[256];
	long long version;
	int error;

	if (root->kind == K_SCALAR && root->plain && root->len == 0)
		return FAIL_AT(p, root, "", "the document is empty");
	if ((error = want_kind(p, root, K_MAP, "")) < 0)
		return error;
	/* The version first: a later format's keys should not read as typos. */
	if (!(ver = map_get(root, "version")))
		return FAIL_AT(p, root, "version", "missing (write 'version: 1')");
	if (ver->kind != K_SCALAR || !ver->plain || !is_decimal(ver->text, ver->len))
		return FAIL_AT(p, ver, "version", "expected the integer 1, got %s",
		               describe(d, ver));
	if (parse_decimal(ver->text, ver->len, &version) < 0 || version != 1)
		return FAIL_AT(p, ver, "version",
		               "version %s is not understood (this sluice reads version 1)",
		               show(d, ver->text, ver->len));
	if ((error = check_map(p, root, "", top_keys)) < 0)
		return error;

	if (!(builtin = json_loads(builtin_rules, 0, &jerr))) {
		error = nomem(p);
		goto done;
	}
	if ((def = map_get(root, "default")) != NULL) {
		if ((error = get_rules(p, def, "default", builtin, NULL, &dflt)) < 0)
			goto done;
	} else if (!(dflt = json_deep_copy(builtin))) {
		error = nomem(p);
		goto done;
	}
	if (!(channels = json_object())) {
		error = nomem(p);
		goto done;
	}
	if ((chans = map_get(root, "channels")) != NULL) {
		if ((error = want_kind(p, chans, K_MAP, "channels")) < 0 ||
		    (error = check_map(p, chans, "channels", NULL)) < 0)
			goto done;
		for (size_t i = 0; i < chans->n; i += 2) {
			const node *k = chans->kids[i];
			const char *name;
			/* Names as keys are read as in lists: `1:` is a number, `"1":` a name. */
			if ((error = get_string(p, k, "channels", &name)) < 0)
				goto done;
			if (!sluice_channel__name_ok(name)) {
				error = bad_channel(p, k, "channels");
				goto done;
			}
			path_join(kpath, "channels", k->text, k->len);
			if ((error = get_rules(p, chans->kids[i + 1], kpath, dflt, k->text, &r)) <
			    0)
				goto done;
			error = jset(p, channels, k->text, r);
			r = NULL;
			if (error < 0)
				goto done;
		}
	}
	/*
	 * A channel default.from names but the policy does not list would take
	 * default's rules, and so need itself first: nothing could enter it.
	 */
	if (def && (def = map_get(def, "from")) != NULL) {
		for (size_t i = 0; i < def->n; i++)
			if (!json_object_get(channels, def->kids[i]->text)) {
				snprintf(kpath, sizeof(kpath), "default.from[%zu]", i);
				error = FAIL_AT(p, def->kids[i], kpath,
				                "'%s' is not listed in channels, so it would take "
				                "default's rules and need itself",
				                def->kids[i]->text);
				goto done;
			}
	}
	if ((error = check_order(p, chans, channels)) < 0)
		goto done;
	if (!(pol = json_object())) {
		error = nomem(p);
		goto done;
	}
	if ((error = jset(p, pol, "version", json_integer(1))) < 0)
		goto done;
	error = jset(p, pol, "default", dflt);
	dflt = NULL;
	if (error < 0)
		goto done;
	error = jset(p, pol, "channels", channels);
	channels = NULL;
	if (error < 0)
		goto done;
	*out = pol;
	pol = NULL;
done:
	json_decref(builtin);
	json_decref(dflt);
	json_decref(channels);
	json_decref(pol);
	json_decref(r);
	return error;
}

int sluice_policy__parse(sluice_ctx *ctx, json_t **out, const void *data, size_t len,
                         const char *name)
{
	parser p;
	reader r;
	node *root = NULL;
	json_t *pol = NULL;
	int error;

	memset(&p, 0, sizeof(p));
	p.ctx = ctx;
	p.name = name ? name : "policy";
	if (len > SLUICE_POLICY_MAX_BYTES)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: %zu bytes: a policy is at most %zu bytes (1 MiB)",
		                         p.name, len, SLUICE_POLICY_MAX_BYTES);
	if (!data && len)
		return sluice_ctx__error(ctx, SLUICE_EUSAGE, "%s: no data", p.name);
	if (!yaml_parser_initialize(&p.yp))
		return nomem(&p);
	yaml_parser_set_input_string(&p.yp, data ? data : (const void *)"", len);
	/* UTF-8 only: libyaml would otherwise also take UTF-16 with a BOM. */
	yaml_parser_set_encoding(&p.yp, YAML_UTF8_ENCODING);
	r.p = &p;
	r.data = data;
	r.len = len;
	error = read_document(&r, &root);
	yaml_parser_delete(&p.yp);
	if (error < 0 ||
	    (error = sluice_gates__default_config(ctx, &p.gate_defaults, NULL, 0, 0)) < 0 ||
	    (error = get_policy(&p, root, &pol)) < 0)
		goto done;
	*out = pol;
done:
	node_free(root);
	json_decref(p.gate_defaults);
	return error;
}

json_t *sluice_policy__channel(json_t *policy, const char *channel)
{
	json_t *r = channel ? json_object_get(json_object_get(policy, "channels"), channel) : NULL;

	if (!r)
		r = json_object_get(policy, "default");
	return json_is_object(r) ? r : NULL;
}

int sluice_policy__gate_config(sluice_ctx *ctx, json_t **out, json_t *policy, const char *channel)
{
	json_t *rules = sluice_policy__channel(policy, channel), *gates, *req, *thr, *md, *v;
	json_t *config = NULL;
	const char *names[3];
	char *text = NULL;
	size_t i;
	int error;

	gates = json_object_get(rules, "gates");
	req = json_object_get(gates, "required");
	thr = json_object_get(gates, "thresholds");
	md = json_object_get(json_object_get(rules, "drift_budget"), "max_drop");
	if (!json_is_array(req) || json_array_size(req) > 3 || !json_is_object(thr) ||
	    !(json_is_null(md) || json_is_number(md)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "policy: the rules for channel '%s' are not a parsed "
		                         "policy's",
		                         channel ? channel : "");
	json_array_foreach(req, i, v)
	{
		if (!json_is_string(v))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "policy: channel '%s': gates.required holds a "
			                         "non-string",
			                         channel ? channel : "");
		names[i] = json_string_value(v);
	}
	/* The same checks and merge as sluice init --gate-config, so both agree. */
	if ((error = sluice_gates__default_config(ctx, &config, names, json_array_size(req), 1)) <
	            0 ||
	    (error = sluice_repo__dump(ctx, &text, thr)) < 0 ||
	    (error = sluice_gates__merge_config(ctx, config, text, "gates.thresholds")) < 0) {
		error = sluice_ctx__wrap(ctx, error, "policy: channel '%s'",
		                         channel ? channel : "");
		goto done;
	}
	if (json_is_number(md) &&
	    json_object_set_new(json_object_get(config, "regression"), "anchor_max_drop",
	                        json_real(json_number_value(md))) < 0) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM,
		                          "cannot build the gate configuration");
		goto done;
	}
	*out = config;
	config = NULL;
done:
	json_decref(config);
	free(text);
	return error;
}
