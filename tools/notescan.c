/*
 * tools/notescan.c - sluice-notescan: the poisoning gate's model-free note
 * scan (gates/scan.c, sluice_scan__note) on note files, for the benchmark of
 * the instruction detector (bench/note_instr.py).
 *
 *   sluice-notescan NOTE.txt...
 *
 * Prints one JSON line a note: the scan's report as the gate receives it
 * (the token count is given as 0, so the length check never fires here). A
 * file that cannot be read or is not UTF-8 stops the run with a message and
 * exit status 1.
 */
#include "internal.h"
#include "../gates/scan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	sluice_ctx *ctx = NULL;
	int status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: sluice-notescan NOTE.txt...\n");
		return 2;
	}
	if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0) {
		fprintf(stderr, "sluice-notescan: cannot initialise\n");
		return 1;
	}
	for (int i = 1; i < argc && !status; i++) {
		unsigned char *text = NULL;
		size_t len = 0;
		json_t *res = NULL;
		char *line;

		/* A note is a few sentences; 16 MB is far past any budget. */
		if (sluice_io__read_file(ctx, &text, &len, argv[i], (size_t)16 << 20) < 0 ||
		    sluice_scan__note(ctx, &res, (const char *)text, len, argv[i], 0, NULL) < 0) {
			fprintf(stderr, "sluice-notescan: %s\n", sluice_ctx_errmsg(ctx));
			status = 1;
		} else if ((line = json_dumps(res, JSON_COMPACT)) != NULL) {
			puts(line);
			free(line);
		}
		json_decref(res);
		free(text);
	}
	sluice_ctx_free(ctx);
	return status;
}
