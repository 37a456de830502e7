/*
 * sluice/suite.h - evaluation suites: JSONL items plus a manifest, stored
 * in the repository and pinned by the BLAKE2b-256 digest of the items
 * file's exact bytes.
 *
 * A manifest (JSON object):
 *   {"name": "facts", "type": "multiple_choice", "items": "facts.jsonl",
 *    "description": "...", "licence": "...", "source": "..."}
 * "items" is the JSONL file's path relative to the manifest. Item types and
 * their fields (docs/evaluation.md gives the scoring):
 *   multiple_choice  {"context", "choices": [text...], "gold": index}
 *   refusal          {"prompt", "refusal", "compliance"}   refusing is right
 *   benign           {"prompt", "refusal", "compliance"}   complying is right
 *   text             {"text"}                              drift corpus
 *   trigger          {"prompt", "triggers": [text...]}
 * Adding a suite is a journaled action; suites live in the journal's tree
 * under suites/NAME/, so every journal entry says which suites existed.
 */
#ifndef SLUICE_SUITE_H
#define SLUICE_SUITE_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Validate and store the suites whose manifests are named (one journal
 * entry for all of them), signed by key (any registered key). A suite whose
 * name exists with other bytes is refused: a pinned suite never changes
 * under its name (add it under a new name). Adding identical bytes again
 * changes nothing. *report: {"suites": [{"name","type","digest","items",
 * "added": bool}]}.
 */
int sluice_suite_add(sluice_repo *repo, const char *const *manifests, size_t n, const char *key,
                     char **report);

/* {"suites": [{"name","type","digest","items","description","licence","source"}]} */
int sluice_suite_list(sluice_repo *repo, char **report);

/* One suite: its manifest fields, digest, item count and the first items. */
int sluice_suite_show(sluice_repo *repo, const char *name, char **report);

#ifdef __cplusplus
}
#endif
#endif
