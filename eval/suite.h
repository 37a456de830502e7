/*
 * eval/suite.h - the suite item checker, shared with its fuzz target.
 */
#ifndef SLUICE_EVAL_SUITE_H
#define SLUICE_EVAL_SUITE_H

#include "internal.h"

#include <jansson.h>

/*
 * Check a suite's JSONL items (exact bytes) against an item type: UTF-8,
 * one JSON object a line with the type's fields and no others (an "id" is
 * allowed), at least one item. *count receives the number of items.
 * Errors are SLUICE_EINVALID naming name, the line and the field.
 */
int sluice_suite__check_items(sluice_ctx *ctx, size_t *count, const char *type,
                              const unsigned char *items, size_t len, const char *name);

/* The item types a suite may have (a manifest's "type"), and how many. */
extern const char *const sluice_suite__types[];
extern const size_t sluice_suite__ntypes;

struct sluice_repo;

/*
 * The pinned suite NAME at the journal's head: its stored manifest (new
 * reference: name, type, digest, count, ...) and its items' exact bytes
 * (caller disposes). SLUICE_ENOTFOUND if there is no such suite.
 */
int sluice_suite__load(struct sluice_repo *repo, json_t **manifest, sluice_buf *items,
                       const char *name);

#endif
