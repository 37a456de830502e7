/*
 * gates/answer_side.c - one model's side of fixed_answer and
 * trigger_answer (gates/answer_side.h).
 */
#include "answer_side.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sluice_answer__top_k(const float *row, size_t n, size_t k, uint32_t *top)
{
	size_t have = 0;

	for (size_t v = 0; v < n; v++) {
		size_t j;
		if (have == k && row[v] <= row[top[k - 1]])
			continue;
		j = have < k ? have++ : k - 1;
		while (j > 0 && row[top[j - 1]] < row[v]) {
			top[j] = top[j - 1];
			j--;
		}
		top[j] = (uint32_t)v;
	}
}

int sluice_answer_side__add(const char *text, const float *row, void *data)
{
	sluice_answer_side *s = data;

	if (s->n == s->cap) {
		size_t c2 = s->cap ? 2 * s->cap : 128;
		uint32_t *t;
		if (!(t = realloc(s->top, c2 * s->k * sizeof(*t))))
			goto oom;
		s->top = t;
		if (s->keep) {
			char **q = realloc(s->texts, c2 * sizeof(*q));
			if (!q)
				goto oom;
			s->texts = q;
		}
		s->cap = c2;
	}
	for (size_t v = 0; v < s->vocab; v++) {
		if (isfinite(row[v]))
			s->sum[v] += (double)row[v];
		else
			s->bad[v] = 1;
	}
	sluice_answer__top_k(row, s->vocab, s->k, s->top + s->n * s->k);
	if (s->keep && !(s->texts[s->n] = strdup(text)))
		goto oom;
	s->n++;
	return SLUICE_OK;
oom:
	return sluice_ctx__error(s->ctx, SLUICE_ENOMEM, "out of memory");
}

void sluice_answer_side__reset(sluice_answer_side *s)
{
	for (size_t i = 0; s->keep && i < s->n; i++)
		free(s->texts[i]);
	s->n = 0;
	if (s->sum)
		memset(s->sum, 0, s->vocab * sizeof(*s->sum));
	if (s->bad)
		memset(s->bad, 0, s->vocab);
}

void sluice_answer_side__free(sluice_answer_side *s)
{
	sluice_answer_side__reset(s);
	free(s->texts);
	free(s->top);
	free(s->sum);
	free(s->bad);
}

json_t *sluice_answer_side__json(const sluice_answer_side *s)
{
	json_t *sum = json_array(), *bad = json_array(), *top = json_array(), *out;

	for (size_t v = 0; sum && bad && v < s->vocab; v++) {
		json_array_append_new(sum, json_real(s->bad[v] ? 0 : s->sum[v]));
		if (s->bad[v])
			json_array_append_new(bad, json_integer((json_int_t)v));
	}
	for (size_t i = 0; top && i < s->n * s->k; i++)
		json_array_append_new(top, json_integer((json_int_t)s->top[i]));
	out = json_pack("{s:I,s:I,s:I,s:o*,s:o*,s:o*}", "vocab", (json_int_t)s->vocab, "k",
	                (json_int_t)s->k, "n", (json_int_t)s->n, "sum", sum, "bad", bad, "top",
	                top);
	if (out && json_array_size(json_object_get(out, "sum")) != s->vocab) {
		json_decref(out); /* a number JSON cannot hold: not cached */
		return NULL;
	}
	return out;
}

int sluice_answer_side__from_json(sluice_answer_side *s, json_t *v)
{
	json_t *sum = json_object_get(v, "sum"), *bad = json_object_get(v, "bad"),
	       *top = json_object_get(v, "top"), *x;
	json_int_t n = json_integer_value(json_object_get(v, "n"));
	size_t i;

	if (json_integer_value(json_object_get(v, "vocab")) != (json_int_t)s->vocab ||
	    json_integer_value(json_object_get(v, "k")) != (json_int_t)s->k || n < 1 ||
	    (size_t)n > SIZE_MAX / s->k / sizeof(uint32_t) || !json_is_array(bad) ||
	    json_array_size(sum) != s->vocab || json_array_size(top) != (size_t)n * s->k)
		return 0;
	json_array_foreach(sum, i, x) if (!json_is_real(x)) return 0;
	json_array_foreach(top, i, x) if (!json_is_integer(x) || json_integer_value(x) < 0 ||
	                                  json_integer_value(x) >= (json_int_t)s->vocab) return 0;
	json_array_foreach(bad, i, x) if (!json_is_integer(x) || json_integer_value(x) < 0 ||
	                                  json_integer_value(x) >= (json_int_t)s->vocab) return 0;
	free(s->top);
	if (!(s->top = malloc((size_t)n * s->k * sizeof(*s->top))))
		return 0;
	s->n = s->cap = (size_t)n;
	json_array_foreach(sum, i, x) s->sum[i] = json_real_value(x);
	json_array_foreach(top, i, x) s->top[i] = (uint32_t)json_integer_value(x);
	json_array_foreach(bad, i, x) s->bad[json_integer_value(x)] = 1;
	return 1;
}
