/*
 * audit/report.c - the journal as static HTML pages people can read
 * (docs/audit-report.md): channel timelines, versions with their
 * verdicts, approvals and figures, every entry, and each channel's
 * forgetting matrix as a line plot. The entries are cut into fixed pages
 * of N by position (entries 1..N, N+1..2N, ...): index.html shows the
 * newest page and the plots, page-K.html each older one. Every page is
 * self-contained: inline CSS, JS and SVG, no network, no external fonts,
 * so the directory can be archived next to the repository.
 */
#include "entry.h"
#include "repo.h"

#include "sluice/audit_report.h"
#include "sluice/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLOT_W 720
#define PLOT_H 260
#define PAD_L 56
#define PAD_R 24
#define PAD_T 16
#define PAD_B 36
/* Entries a page holds unless the caller says otherwise. */
#define PAGE_ENTRIES 500

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

/* Text escaped for HTML element content and quoted attribute values. */
static int esc(sluice_ctx *ctx, sluice_buf *b, const char *s)
{
	int error = SLUICE_OK;

	for (; *s && error == 0; s++) {
		switch (*s) {
		case '&':
			error = sluice_buf__puts(ctx, b, "&amp;");
			break;
		case '<':
			error = sluice_buf__puts(ctx, b, "&lt;");
			break;
		case '>':
			error = sluice_buf__puts(ctx, b, "&gt;");
			break;
		case '"':
			error = sluice_buf__puts(ctx, b, "&quot;");
			break;
		case '\'':
			error = sluice_buf__puts(ctx, b, "&#39;");
			break;
		default:
			error = sluice_buf__put(ctx, b, s, 1);
		}
	}
	return error;
}

/*
 * A number as the JSON reports print it (jansson's shortest round-trip
 * form), so a reader of the page and of `sluice gate --history --json`
 * see the same digits.
 */
static int num(sluice_ctx *ctx, sluice_buf *b, const json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY);
	int error;

	if (!s)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot print a number");
	error = sluice_buf__puts(ctx, b, s);
	free(s);
	return error;
}

/* What the journal says, gathered in one walk. */
typedef struct {
	json_t *moves;        /* [{seq, time, channel, action, from, to, actor}] */
	json_t *versions;     /* [{version, kind, summary, proposer, time, seq}] */
	json_t *gates;        /* version -> [{channel, results, scores, time, entry}] */
	json_t *approvals;    /* version -> [{channel, approver, time}] */
	json_t *entries;      /* every entry as sluice audit log lists it, oldest first */
	uint64_t first, last; /* seq range */
} journal_view;

static void view_dispose(journal_view *jv)
{
	json_decref(jv->moves);
	json_decref(jv->versions);
	json_decref(jv->gates);
	json_decref(jv->approvals);
	json_decref(jv->entries);
}

static void push(json_t *map, const char *key, json_t *item)
{
	json_t *arr = json_object_get(map, key);

	if (!arr) {
		arr = json_array();
		json_object_set_new(map, key, arr);
	}
	json_array_append_new(arr, item);
}

static int walk_journal(sluice_repo *repo, journal_view *jv)
{
	sluice_ctx *ctx = repo->ctx;
	git_revwalk *walk = NULL;
	json_t *rec = NULL;
	git_oid id;
	int error;

	jv->moves = json_array();
	jv->versions = json_array();
	jv->gates = json_object();
	jv->approvals = json_object();
	jv->entries = json_array();
	jv->first = UINT64_MAX;
	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_push_ref(walk, SLUICE_JOURNAL_REF)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot walk the journal");
		goto done;
	}
	git_revwalk_simplify_first_parent(walk);
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		const char *action;
		json_t *actor;
		json_int_t seq;
		char hex[GIT_OID_HEXSZ + 1];

		json_t *e = NULL;

		if ((error = sluice_journal__record(repo, &rec, &id)) < 0)
			goto done;
		git_oid_tostr(hex, sizeof(hex), &id);
		action = sluice__jstr(json_object_get(rec, "action"));
		actor = json_object_get(json_object_get(rec, "actor"), "name");
		seq = json_integer_value(json_object_get(rec, "seq"));
		if ((error = sluice_audit__entry_json(ctx, &e, (uint64_t)seq, &id, rec)) < 0)
			goto done;
		json_array_append_new(jv->entries, e);
		if ((uint64_t)seq < jv->first)
			jv->first = (uint64_t)seq;
		if ((uint64_t)seq > jv->last)
			jv->last = (uint64_t)seq;
		if (sluice_journal__is_move(action))
			json_array_append_new(
			        jv->moves,
			        json_pack("{s:I,s:O?,s:O?,s:s,s:O,s:O?,s:O,s:s}", "seq", seq,
			                  "time", json_object_get(rec, "time"), "channel",
			                  json_object_get(rec, "channel"), "action", action, "from",
			                  json_object_get(rec, "from")
			                          ? json_object_get(rec, "from")
			                          : json_null(),
			                  "to", json_object_get(rec, "to"), "actor",
			                  actor ? actor : json_null(), "entry", hex));
		else if (!strcmp(action, "propose"))
			json_array_append_new(jv->versions,
			                      json_pack("{s:O?,s:O?,s:O?,s:O,s:O?,s:I}", "version",
			                                json_object_get(rec, "version"), "kind",
			                                json_object_get(rec, "kind"), "summary",
			                                json_object_get(rec, "summary"), "proposer",
			                                actor ? actor : json_null(), "time",
			                                json_object_get(rec, "time"), "seq", seq));
		else if (!strcmp(action, "gate"))
			push(jv->gates, sluice__jstr(json_object_get(rec, "candidate")),
			     json_pack("{s:O?,s:O?,s:O*,s:O?,s:s}", "channel",
			               json_object_get(rec, "channel"), "results",
			               json_object_get(rec, "results"), "scores",
			               json_object_get(rec, "scores"), "time",
			               json_object_get(rec, "time"), "entry", hex));
		else if (!strcmp(action, "approve"))
			push(jv->approvals, sluice__jstr(json_object_get(rec, "candidate")),
			     json_pack("{s:O?,s:O,s:O?}", "channel",
			               json_object_get(rec, "channel"), "approver",
			               json_object_get(rec, "approver")
			                       ? json_object_get(rec, "approver")
			                       : (actor ? actor : json_null()),
			               "time", json_object_get(rec, "time")));
		json_decref(rec);
		rec = NULL;
	}
	if (error == GIT_ITEROVER)
		error = SLUICE_OK;
	else
		error = sluice_ctx__giterror(ctx, error, "cannot walk the journal");
	if (jv->first == UINT64_MAX)
		jv->first = 0;
done:
	json_decref(rec);
	git_revwalk_free(walk);
	return error;
}

static const char *const page_head =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
        "<title>sluice audit report</title>\n<style>\n"
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}\n"
        "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}\n"
        "table{border-collapse:collapse;font-size:.85em}\n"
        "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\n"
        "code{font-family:monospace}.pass{color:#1a7f37}.fail{color:#cf222e}\n"
        ".inconclusive{color:#9a6700}svg{background:#fafafa;border:1px solid #ddd}\n"
        "svg text{font:11px sans-serif}#hover{min-height:1.3em;font-size:.9em}\n"
        "</style></head><body>\n<h1>sluice audit report</h1>\n";

/* Entries lo..hi of the journal: what one page shows. */
typedef struct {
	uint64_t lo, hi;
} window;

static int in_window(const window *w, const json_t *item)
{
	json_int_t seq = json_integer_value(json_object_get(item, "seq"));
	return seq >= 0 && (uint64_t)seq >= w->lo && (uint64_t)seq <= w->hi;
}

/* One channel lane of the timeline, and its move markers, for the entries of w. */
static int timeline(sluice_ctx *ctx, sluice_buf *b, const journal_view *jv, json_t *channels,
                    const window *w)
{
	size_t nch = json_array_size(channels), i, j;
	double span = w->hi > w->lo ? (double)(w->hi - w->lo) : 1;
	int h = PAD_T + PAD_B + (int)nch * 40, error = 0;
	json_t *m;

	error = sluice_buf__printf(
	        ctx, b,
	        "<h2>Channel timeline</h2>\n<svg id=\"timeline\" "
	        "xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "role=\"img\" aria-label=\"channel moves by journal entry\">\n",
	        PLOT_W, h);
	for (i = 0; i < nch && error == 0; i++) {
		const char *c = json_string_value(json_array_get(channels, i));
		int y = PAD_T + 20 + (int)i * 40;
		double px = -1;

		error = sluice_buf__printf(ctx, b,
		                           "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		                           "stroke=\"#bbb\"/><text x=\"4\" y=\"%d\">",
		                           PAD_L, y, PLOT_W - PAD_R, y, y + 4);
		if (error == 0)
			error = esc(ctx, b, c);
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</text>\n");
		json_array_foreach(jv->moves, j, m)
		{
			const char *action = sluice__jstr(json_object_get(m, "action"));
			double x;
			if (error || !in_window(w, m) ||
			    strcmp(sluice__jstr(json_object_get(m, "channel")), c))
				continue;
			x = PAD_L + (PLOT_W - PAD_L - PAD_R) *
			                    ((double)json_integer_value(json_object_get(m, "seq")) -
			                     (double)w->lo) /
			                    span;
			if (px >= 0)
				error = sluice_buf__printf(
				        ctx, b,
				        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" "
				        "y2=\"%d\" stroke=\"#555\"/>",
				        px, y, x, y);
			px = x;
			if (error == 0)
				error = sluice_buf__printf(
				        ctx, b,
				        "<circle class=\"move pt\" cx=\"%.1f\" cy=\"%d\" r=\"5\" "
				        "fill=\"%s\" data-channel=\"",
				        x, y,
				        !strcmp(action, "promote")    ? "#1f77b4"
				        : !strcmp(action, "rollback") ? "#d62728"
				                                      : "#ff7f0e");
			if (error == 0)
				error = esc(ctx, b, c);
			if (error == 0)
				error = sluice_buf__printf(
				        ctx, b,
				        "\" data-action=\"%s\" data-version=\"%s\" "
				        "data-seq=\"%lld\" "
				        "data-time=\"%s\"><title>%s %.12s (entry %lld, %s)</title>"
				        "</circle>\n",
				        action, sluice__jstr(json_object_get(m, "to")),
				        (long long)json_integer_value(json_object_get(m, "seq")),
				        sluice__jstr(json_object_get(m, "time")), action,
				        sluice__jstr(json_object_get(m, "to")),
				        (long long)json_integer_value(json_object_get(m, "seq")),
				        sluice__jstr(json_object_get(m, "time")));
		}
	}
	if (error == 0)
		error = sluice_buf__printf(
		        ctx, b,
		        "<text x=\"%d\" y=\"%d\">journal entry %llu</text>"
		        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">journal entry "
		        "%llu</text>\n</svg>\n",
		        PAD_L, h - 10, (unsigned long long)w->lo, PLOT_W - PAD_R, h - 10,
		        (unsigned long long)w->hi);
	return error;
}

/* The moves of w as a table, so every move is also readable as text. */
static int moves_table(sluice_ctx *ctx, sluice_buf *b, const journal_view *jv, const window *w)
{
	json_t *m;
	size_t i;
	int error =
	        sluice_buf__puts(ctx, b,
	                         "<table id=\"moves\"><tr><th>entry</th><th>time</th><th>channel"
	                         "</th><th>action</th><th>from</th><th>to</th><th>by</th></tr>\n");

	json_array_foreach(jv->moves, i, m)
	{
		if (!in_window(w, m))
			continue;
		if (error == 0)
			error = sluice_buf__printf(
			        ctx, b, "<tr><td>%lld</td><td>%s</td><td>",
			        (long long)json_integer_value(json_object_get(m, "seq")),
			        sluice__jstr(json_object_get(m, "time")));
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(m, "channel")));
		if (error == 0)
			error = sluice_buf__printf(
			        ctx, b,
			        "</td><td>%s</td><td><code>%.12s</code></td><td><code>"
			        "%.12s</code></td><td>",
			        sluice__jstr(json_object_get(m, "action")),
			        sluice__jstr(json_object_get(m, "from")),
			        sluice__jstr(json_object_get(m, "to")));
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(m, "actor")));
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td></tr>\n");
	}
	return error ? error : sluice_buf__puts(ctx, b, "</table>\n");
}

/*
 * Each version proposed in w: kind, summary, proposer, and its verdicts,
 * approvals and figures wherever in the journal they came.
 */
static int versions_table(sluice_ctx *ctx, sluice_buf *b, const journal_view *jv, const window *w)
{
	json_t *v, *g, *a, *r, *s, *f;
	const char *k, *sk, *fk;
	size_t i, j;
	int error = sluice_buf__puts(
	        ctx, b,
	        "<h2>Versions</h2>\n<table id=\"versions\"><tr><th>version</th><th>kind</th>"
	        "<th>summary</th><th>proposer</th><th>time</th><th>verdicts</th><th>approvals</th>"
	        "<th>figures (suite: candidate / baseline)</th></tr>\n");

	json_array_foreach(jv->versions, i, v)
	{
		const char *id = sluice__jstr(json_object_get(v, "version"));
		json_t *gl = json_object_get(jv->gates, id),
		       *al = json_object_get(jv->approvals, id);

		if (!in_window(w, v))
			continue;
		if (error == 0)
			error = sluice_buf__printf(
			        ctx, b,
			        "<tr data-version=\"%s\"><td><code>%.12s</code></td>"
			        "<td>",
			        id, id);
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(v, "kind")));
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td><td>");
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(v, "summary")));
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td><td>");
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(v, "proposer")));
		if (error == 0)
			error = sluice_buf__printf(ctx, b, "</td><td>%s</td><td>",
			                           sluice__jstr(json_object_get(v, "time")));
		json_array_foreach(gl, j, g)
		{
			if (error == 0)
				error = esc(ctx, b, sluice__jstr(json_object_get(g, "channel")));
			if (error == 0)
				error = sluice_buf__puts(ctx, b, ":");
			json_object_foreach(json_object_get(g, "results"), k, r) if (error == 0)
			        error = sluice_buf__printf(ctx, b,
			                                   " %s=<span class=\"%s\">%s</span>", k,
			                                   sluice__jstr(r), sluice__jstr(r));
			if (error == 0)
				error = sluice_buf__puts(ctx, b, "<br>");
		}
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td><td>");
		json_array_foreach(al, j, a)
		{
			if (error == 0)
				error = esc(ctx, b, sluice__jstr(json_object_get(a, "channel")));
			if (error == 0)
				error = sluice_buf__puts(ctx, b, ": ");
			if (error == 0)
				error = esc(ctx, b, sluice__jstr(json_object_get(a, "approver")));
			if (error == 0)
				error = sluice_buf__puts(ctx, b, "<br>");
		}
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td><td>");
		/* The figures of each gate run that recorded scores. */
		json_array_foreach(gl, j, g)
		{
			json_object_foreach(json_object_get(g, "scores"), sk, s)
			{
				if (error == 0)
					error = esc(ctx, b,
					            sluice__jstr(json_object_get(g, "channel")));
				if (error == 0)
					error = sluice_buf__puts(ctx, b, " ");
				if (error == 0)
					error = esc(ctx, b, sk);
				if (error == 0)
					error = sluice_buf__puts(ctx, b, ":");
				json_object_foreach(s, fk, f)
				{
					if (!json_is_number(f))
						continue;
					if (error == 0)
						error = sluice_buf__printf(ctx, b, " %s ", fk);
					if (error == 0)
						error = num(ctx, b, f);
				}
				if (error == 0)
					error = sluice_buf__puts(ctx, b, "<br>");
			}
		}
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td></tr>\n");
	}
	return error ? error : sluice_buf__puts(ctx, b, "</table>\n");
}

/*
 * One channel's forgetting matrix as a line plot: x the promoted versions
 * in order, y each suite's score; one polyline and one marker per value.
 * Returns the number of points in *npoints.
 */
static int matrix_plot(sluice_ctx *ctx, sluice_buf *b, const char *channel, json_t *hist,
                       size_t *npoints)
{
	json_t *suites = json_object_get(hist, "suites"), *rows = json_object_get(hist, "rows");
	size_t ns = json_array_size(suites), nr = json_array_size(rows), i, j;
	double lo = 0, hi = 1, w = PLOT_W - PAD_L - PAD_R, h = PLOT_H - PAD_T - PAD_B;
	int error;

	/* Scores are mostly accuracies in [0, 1]; widen the axis for anything else. */
	for (i = 0; i < nr; i++)
		for (j = 0; j < ns; j++) {
			json_t *v =
			        json_object_get(json_object_get(json_array_get(rows, i), "scores"),
			                        json_string_value(json_array_get(suites, j)));
			if (json_is_number(v)) {
				if (json_number_value(v) < lo)
					lo = json_number_value(v);
				if (json_number_value(v) > hi)
					hi = json_number_value(v);
			}
		}
	error = sluice_buf__puts(ctx, b, "<h3>channel ");
	if (error == 0)
		error = esc(ctx, b, channel);
	if (error == 0)
		error = sluice_buf__printf(ctx, b,
		                           "</h3>\n<svg class=\"matrix\" "
		                           "xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		                           "height=\"%d\" data-channel=\"",
		                           PLOT_W, PLOT_H);
	if (error == 0)
		error = esc(ctx, b, channel);
	if (error == 0)
		error = sluice_buf__printf(
		        ctx, b,
		        "\" role=\"img\" aria-label=\"suite scores per promoted version\">\n"
		        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
		        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
		        "<text x=\"4\" y=\"%d\">%g</text><text x=\"4\" y=\"%d\">%g</text>\n",
		        PAD_L, PAD_T, PAD_L, PLOT_H - PAD_B, PAD_L, PLOT_H - PAD_B, PLOT_W - PAD_R,
		        PLOT_H - PAD_B, PAD_T + 4, hi, PLOT_H - PAD_B, lo);
	for (i = 0; i < nr && error == 0; i++) {
		double x = PAD_L + (nr > 1 ? w * (double)i / (double)(nr - 1) : w / 2);
		error = sluice_buf__printf(
		        ctx, b,
		        "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.8s"
		        "</text>\n",
		        x, PLOT_H - PAD_B + 16,
		        sluice__jstr(json_object_get(json_array_get(rows, i), "version")));
	}
	for (j = 0; j < ns && error == 0; j++) {
		const char *suite = json_string_value(json_array_get(suites, j));
		const char *color = palette[j % (sizeof(palette) / sizeof(*palette))];
		sluice_buf pts = {0};

		for (i = 0; i < nr && error == 0; i++) {
			json_t *row = json_array_get(rows, i);
			json_t *v = json_object_get(json_object_get(row, "scores"), suite);
			double x = PAD_L + (nr > 1 ? w * (double)i / (double)(nr - 1) : w / 2), y;
			if (!json_is_number(v))
				continue;
			y = PAD_T + h * (1 - (json_number_value(v) - lo) / (hi - lo));
			error = sluice_buf__printf(ctx, &pts, "%s%.1f,%.1f", pts.len ? " " : "", x,
			                           y);
			if (error == 0)
				error = sluice_buf__printf(
				        ctx, b,
				        "<circle class=\"score pt\" cx=\"%.1f\" "
				        "cy=\"%.1f\" r=\"4\" fill=\"%s\" data-channel=\"",
				        x, y, color);
			if (error == 0)
				error = esc(ctx, b, channel);
			if (error == 0)
				error = sluice_buf__puts(ctx, b, "\" data-suite=\"");
			if (error == 0)
				error = esc(ctx, b, suite);
			if (error == 0)
				error = sluice_buf__printf(
				        ctx, b,
				        "\" data-version=\"%s\" data-row=\"%zu\" data-value=\"",
				        sluice__jstr(json_object_get(row, "version")), i);
			if (error == 0)
				error = num(ctx, b, v);
			if (error == 0)
				error = sluice_buf__puts(ctx, b, "\"><title>");
			if (error == 0)
				error = esc(ctx, b, suite);
			if (error == 0)
				error = sluice_buf__puts(ctx, b, " ");
			if (error == 0)
				error = num(ctx, b, v);
			if (error == 0)
				error = sluice_buf__puts(ctx, b, "</title></circle>\n");
			(*npoints)++;
		}
		if (error == 0 && pts.len) {
			error = sluice_buf__printf(ctx, b,
			                           "<polyline fill=\"none\" stroke=\"%s\" "
			                           "stroke-width=\"1.5\" points=\"%.*s\" "
			                           "data-suite=\"",
			                           color, (int)pts.len, (const char *)pts.ptr);
			if (error == 0)
				error = esc(ctx, b, suite);
			if (error == 0)
				error = sluice_buf__puts(ctx, b, "\"/>\n");
		}
		if (error == 0)
			error = sluice_buf__printf(
			        ctx, b,
			        "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" "
			        "fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
			        PLOT_W - PAD_R - 150, PAD_T + (int)j * 14, color,
			        PLOT_W - PAD_R - 136, PAD_T + 9 + (int)j * 14);
		if (error == 0)
			error = esc(ctx, b, suite);
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</text>\n");
		sluice_buf__dispose(&pts);
	}
	if (error == 0 && nr == 0)
		error = sluice_buf__printf(ctx, b,
		                           "<text x=\"%d\" y=\"%d\">no promoted version has scores "
		                           "yet</text>\n",
		                           PAD_L + 10, PLOT_H / 2);
	if (error == 0) {
		json_t *bwt = json_object_get(hist, "backward_transfer");
		error = sluice_buf__puts(ctx, b, "</svg>\n<p>backward transfer: ");
		if (error == 0)
			error = json_is_number(bwt) ? num(ctx, b, bwt)
			                            : sluice_buf__puts(ctx, b, "n/a");
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</p>\n");
	}
	return error;
}

/* Hovering a marker shows its values as text (the markers also carry <title>). */
static const char *const page_tail = "<script>\n(function(){\n"
                                     "  var out=document.getElementById('hover');\n"
                                     "  var pts=document.querySelectorAll('circle.pt');\n"
                                     "  for(var i=0;i<pts.length;i++){\n"
                                     "    pts[i].addEventListener('mouseenter',function(ev){\n"
                                     "      var d=ev.target.dataset,s=[];\n"
                                     "      for(var k in d){s.push(k+'='+d[k]);}\n"
                                     "      out.textContent=s.join('  ');\n"
                                     "    });\n"
                                     "  }\n"
                                     "})();\n</script>\n</body></html>\n";

/*
 * Every entry of w, newest first, with what sluice audit log says of it;
 * each row carries the entry's position, commit and action as data-*.
 */
static int entries_table(sluice_ctx *ctx, sluice_buf *b, const journal_view *jv, const window *w)
{
	size_t n = json_array_size(jv->entries), i;
	int error = sluice_buf__printf(
	        ctx, b,
	        "<h2>Journal entries %llu to %llu</h2>\n<table id=\"entries\"><tr><th>entry</th>"
	        "<th>time</th><th>action</th><th>by</th><th>channel</th><th>version</th>"
	        "<th>what</th></tr>\n",
	        (unsigned long long)w->lo, (unsigned long long)w->hi);

	for (i = n; i-- > 0 && error == 0;) {
		json_t *e = json_array_get(jv->entries, i);
		json_int_t seq = json_integer_value(json_object_get(e, "seq"));

		if (!in_window(w, e)) {
			if (seq >= 0 && (uint64_t)seq < w->lo)
				break; /* oldest first: nothing before lo is in w */
			continue;
		}
		error = sluice_buf__printf(
		        ctx, b,
		        "<tr class=\"entry\" data-seq=\"%lld\" data-entry=\"%s\" "
		        "data-action=\"",
		        (long long)seq, sluice__jstr(json_object_get(e, "entry")));
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(e, "action")));
		if (error == 0)
			error = sluice_buf__printf(ctx, b, "\"><td>%lld</td><td>", (long long)seq);
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(e, "time")));
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td><td>");
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(e, "action")));
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td><td>");
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(e, "actor")));
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td><td>");
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(e, "channel")));
		if (error == 0)
			error = sluice_buf__printf(ctx, b, "</td><td><code>%.12s</code></td><td>",
			                           sluice__jstr(json_object_get(e, "version")));
		if (error == 0)
			error = esc(ctx, b, sluice__jstr(json_object_get(e, "summary")));
		if (error == 0)
			error = sluice_buf__puts(ctx, b, "</td></tr>\n");
	}
	return error ? error : sluice_buf__puts(ctx, b, "</table>\n");
}

/* Links to the neighbouring pages of page k of npages (npages is index.html). */
static int page_nav(sluice_ctx *ctx, sluice_buf *b, size_t k, size_t npages)
{
	int error = sluice_buf__puts(ctx, b, "<nav class=\"pager\">");

	if (error == 0 && k < npages)
		error = sluice_buf__puts(ctx, b,
		                         "<a href=\"index.html\">newest entries and plots</a>");
	if (error == 0 && k > 1)
		error = sluice_buf__printf(ctx, b,
		                           "%s<a rel=\"prev\" href=\"page-%zu.html\">older</a>",
		                           k < npages ? " &middot; " : "", k - 1);
	if (error == 0 && k + 1 < npages)
		error = sluice_buf__printf(
		        ctx, b, " &middot; <a rel=\"next\" href=\"page-%zu.html\">newer</a>",
		        k + 1);
	else if (error == 0 && k + 1 == npages)
		error = sluice_buf__puts(ctx, b,
		                         " &middot; <a rel=\"next\" href=\"index.html\">newer</a>");
	return error ? error : sluice_buf__puts(ctx, b, "</nav>\n");
}

/* The entries of w: timeline, moves, versions proposed, every entry. */
static int window_sections(sluice_ctx *ctx, sluice_buf *b, const journal_view *jv, json_t *channels,
                           const window *w)
{
	int error;

	if ((error = timeline(ctx, b, jv, channels, w)) < 0 ||
	    (error = moves_table(ctx, b, jv, w)) < 0 || (error = versions_table(ctx, b, jv, w)) < 0)
		return error;
	return entries_table(ctx, b, jv, w);
}

/* The page of window k, for k < npages: page-K.html, self-contained. */
static int write_page(sluice_ctx *ctx, const char *dir, const journal_view *jv, json_t *channels,
                      const window *w, size_t k, size_t npages)
{
	sluice_buf b = {0};
	char path[4200];
	int error;

	if ((size_t)snprintf(path, sizeof(path), "%s/page-%zu.html", dir, k) >= sizeof(path))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", dir);
	if ((error = sluice_buf__puts(ctx, &b, page_head)) < 0 ||
	    (error = sluice_buf__printf(
	             ctx, &b, "<p>Page %zu of %zu: journal entries %llu to %llu.</p>\n", k, npages,
	             (unsigned long long)w->lo, (unsigned long long)w->hi)) < 0 ||
	    (error = page_nav(ctx, &b, k, npages)) < 0 ||
	    (error = sluice_buf__puts(ctx, &b, "<div id=\"hover\"></div>\n")) < 0 ||
	    (error = window_sections(ctx, &b, jv, channels, w)) < 0 ||
	    (error = page_nav(ctx, &b, k, npages)) < 0 ||
	    (error = sluice_buf__puts(ctx, &b, page_tail)) < 0)
		goto done;
	error = sluice_io__write_file_atomic(ctx, path, b.ptr, b.len, 0644);
done:
	sluice_buf__dispose(&b);
	return error;
}

int sluice_audit_report_html(sluice_repo *repo, const char *dir, size_t page_entries, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	journal_view jv = {0};
	sluice_jstate st = {0};
	sluice_buf b = {0};
	json_t *channels = json_array(), *c;
	const char *name;
	char path[4200], *hist = NULL;
	size_t points = 0, i, npages, k;
	window w;
	int error;

	if (!page_entries)
		page_entries = PAGE_ENTRIES;
	if (!channels) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	if ((error = sluice_journal__read(repo, &st)) < 0 || (error = walk_journal(repo, &jv)) < 0)
		goto done;
	json_object_foreach(st.channels, name, c)
	        json_array_append_new(channels, json_string(name));
	if ((size_t)snprintf(path, sizeof(path), "%s/index.html", dir) >= sizeof(path)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", dir);
		goto done;
	}
	if ((error = sluice_io__mkdirs(ctx, dir, 0755)) < 0)
		goto done;
	/* Fixed windows by position, so an older page's file stays what it was. */
	npages = jv.last ? (size_t)((jv.last - 1) / page_entries + 1) : 1;
	for (k = 1; k < npages; k++) {
		w.lo = (uint64_t)(k - 1) * page_entries + 1;
		w.hi = (uint64_t)k * page_entries;
		if ((error = write_page(ctx, dir, &jv, channels, &w, k, npages)) < 0)
			goto done;
	}
	/* Pages of an earlier report cut finer than this one: gone, not stale. */
	for (k = npages;; k++) {
		char old[4200];
		snprintf(old, sizeof(old), "%s/page-%zu.html", dir, k);
		if (unlink(old) != 0)
			break;
	}
	w.lo = (uint64_t)(npages - 1) * page_entries + 1;
	w.hi = jv.last > w.lo ? jv.last : w.lo;
	if ((error = sluice_buf__puts(ctx, &b, page_head)) < 0 ||
	    (error = sluice_buf__printf(ctx, &b,
	                                "<p>%zu channels, %zu versions, %zu moves, journal entries "
	                                "%llu to %llu; this page shows entries %llu to %llu, "
	                                "%zu page%s of %zu entries in all.</p>\n",
	                                json_array_size(channels), json_array_size(jv.versions),
	                                json_array_size(jv.moves), (unsigned long long)jv.first,
	                                (unsigned long long)jv.last, (unsigned long long)w.lo,
	                                (unsigned long long)w.hi, npages, npages == 1 ? "" : "s",
	                                page_entries)) < 0)
		goto done;
	if (npages > 1) {
		/* Every older page, linked from here. */
		error = sluice_buf__puts(ctx, &b,
		                         "<nav class=\"pager\" id=\"pages\">Older entries:");
		for (k = npages - 1; k >= 1 && error == 0; k--)
			error = sluice_buf__printf(
			        ctx, &b, " <a href=\"page-%zu.html\">%llu&ndash;%llu</a>", k,
			        (unsigned long long)((uint64_t)(k - 1) * page_entries + 1),
			        (unsigned long long)((uint64_t)k * page_entries));
		if (error == 0)
			error = sluice_buf__puts(ctx, &b, "</nav>\n");
		if (error < 0)
			goto done;
	}
	if ((error = sluice_buf__puts(ctx, &b, "<div id=\"hover\"></div>\n")) < 0 ||
	    (error = window_sections(ctx, &b, &jv, channels, &w)) < 0 ||
	    (error = sluice_buf__puts(ctx, &b,
	                              "<h2>Suite scores per promoted version (forgetting "
	                              "matrix)</h2>\n")) < 0)
		goto done;
	json_array_foreach(channels, i, c)
	{
		json_t *h;
		json_error_t jerr;

		if ((error = sluice_gate_history(repo, json_string_value(c), &hist)) < 0)
			goto done;
		if (!(h = json_loads(hist, 0, &jerr))) {
			error = sluice_ctx__error(ctx, SLUICE_ERROR,
			                          "cannot read the history of %s",
			                          json_string_value(c));
			goto done;
		}
		error = matrix_plot(ctx, &b, json_string_value(c), h, &points);
		json_decref(h);
		sluice_free(hist);
		hist = NULL;
		if (error < 0)
			goto done;
	}
	if ((error = sluice_buf__puts(ctx, &b, page_tail)) < 0 ||
	    (error = sluice_io__write_file_atomic(ctx, path, b.ptr, b.len, 0644)) < 0)
		goto done;
	error = sluice_repo__report(
	        ctx, report,
	        json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "file", path, "channels",
	                  (json_int_t)json_array_size(channels), "versions",
	                  (json_int_t)json_array_size(jv.versions), "moves",
	                  (json_int_t)json_array_size(jv.moves), "points", (json_int_t)points,
	                  "entries", (json_int_t)json_array_size(jv.entries), "pages",
	                  (json_int_t)npages, "page_entries", (json_int_t)page_entries));
done:
	sluice_free(hist);
	json_decref(channels);
	view_dispose(&jv);
	sluice_journal__dispose(&st);
	sluice_buf__dispose(&b);
	return error;
}
